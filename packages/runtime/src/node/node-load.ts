import type { DescriptorUsage, SpillStats, StoreStats } from '@shoal/store';
import type { LocalScheduler } from '../scheduling/local-scheduler.js';

/** A node's resources, load and objects right now: what it reports to its head with every heartbeat. */
export interface NodeLoad {
  resources: Record<string, number>;
  available: Record<string, number>;
  objects: number;
  objectBytes: number;
  capacityBytes: number;
  queuedTasks: number;
  runningTasks: number;
  workers: number;
  /** File descriptors open in the node's process (absent when even counting them failed). */
  openFiles?: number;
  /** Its soft descriptor limit (absent when unlimited). */
  fileLimit?: number;
  /** What its store spilled to disk and read back. */
  spill: SpillStats;
}

/**
 * The load of a node whose store reports `stats`, with `scheduler` and `workers` processes alive
 * and its process's `descriptors`.
 */
export function nodeLoad(stats: StoreStats, scheduler: LocalScheduler, workers: number, descriptors: DescriptorUsage): NodeLoad {
  let running = 0;
  for (const task of scheduler.tasks.values()) if (task.state === 'running') running += 1;
  return {
    resources: { ...scheduler.total },
    // Tasks the head placed here that have not started are room already taken, as far as the head is concerned.
    available: scheduler.available(),
    objects: stats.objects,
    objectBytes: stats.usedBytes + stats.inlineBytes,
    capacityBytes: stats.capacity,
    queuedTasks: scheduler.tasks.size - running,
    runningTasks: running,
    workers,
    ...(descriptors.open === undefined ? {} : { openFiles: descriptors.open }),
    ...(Number.isFinite(descriptors.limit) ? { fileLimit: descriptors.limit } : {}),
    spill: stats.spill,
  };
}
