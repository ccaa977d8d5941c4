import type { WorkerSlot } from '../worker-slot.js';

/** How many worker processes a node may run (resolved node options). */
export interface WorkerLimits {
  /** Most workers at once while some worker can still make progress. */
  readonly maxWorkers: number;
  /** The hard cap once every worker is blocked waiting on other tasks' results. */
  readonly maxBlockedWorkers: number;
}

/**
 * Whether to start one more worker when every worker is busy and the head of the ready queue
 * could run (its CPUs are free: workers waiting on objects lent theirs back):
 * - `spawn`: below `maxWorkers`, or every worker is blocked waiting on objects and the pool is
 *   below the hard cap `maxBlockedWorkers` (nested tasks: the children need somewhere to run);
 * - `wait`: a worker is starting, or one is running and will free itself;
 * - `over-cap`: every one of `maxBlockedWorkers` workers is blocked. Waiting would be forever
 *   if they wait on tasks queued here; the scheduler fails the newest task instead.
 */
export function extraWorker(workers: Iterable<Pick<WorkerSlot, 'state' | 'blockedRequests'> & { readonly pausedStreams?: number }>, limits: WorkerLimits): 'spawn' | 'wait' | 'over-cap' {
  let alive = 0;
  let blocked = 0;
  for (const worker of workers) {
    if (worker.state === 'starting') return 'wait';
    if (worker.state === 'dead') continue;
    alive += 1;
    // A streaming task paused for its consumer is not blocked: past maxWorkers, more streams wait.
    if (worker.state === 'busy' && worker.blockedRequests > (worker.pausedStreams ?? 0)) blocked += 1;
  }
  if (alive < limits.maxWorkers) return 'spawn';
  // (No worker at all with maxWorkers 0: a store-only node never runs tasks, it does not fail them.)
  if (blocked < alive || alive === 0) return 'wait';
  return alive < limits.maxBlockedWorkers ? 'spawn' : 'over-cap';
}
