import type { NodeToWorker } from '@shoal/protocol';
import type { Resources } from './resources.js';
import type { Task } from './task.js';

/** Lifecycle of a worker process as its node sees it. */
export type WorkerState = 'starting' | 'idle' | 'busy' | 'dead';

/**
 * A worker as the scheduler sees it: what it runs and what it holds, and the two things the
 * scheduler does to it (send it a message, kill it). The process behind it is the pool's business.
 */
export interface WorkerSlot {
  readonly pid: number;
  /** The environment it was started with (scheduling/runtime-env.ts): it runs only tasks of that one. */
  readonly envKey: string;
  state: WorkerState;
  /** Tasks sent to this worker, in order: the first is running, the others wait behind it. */
  readonly inflight: Task[];
  /** Resources held for this worker while it has tasks (all its queued tasks demand the same). */
  lease: Readonly<Resources> | undefined;
  /** Requests from the running task waiting on objects that are not ready (its CPU is lent). */
  blockedRequests: number;
  /**
   * Of those, the waits of a streaming task for its consumer: it lends its CPU, but a worker
   * only paused is not blocked for the extra-worker rule (its consumer may never read on).
   */
  pausedStreams: number;
  /** Hashes of the functions this worker already has. */
  readonly functions: Set<string>;
  send(message: NodeToWorker): void;
  kill(): void;
}
