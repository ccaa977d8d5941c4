// The scheduler's ports: what it needs of the node around it (objects, workers, the cluster) and
// what a submission carries. Interfaces only; the node implements them.
import type { ObjectPayload } from '@shoal/protocol';
import type { Resources } from './resources.js';
import type { Task } from './task.js';
import type { WorkerSlot } from './worker-slot.js';
import type { LeaseEvents } from './worker-leases.js';
export type { TaskEvents } from './worker-leases.js';
import type { ResolvedRuntimeEnv } from '../options.js';

/** What the scheduler needs of the node's objects (the store, as the node hands it over). */
export interface TaskObjects {
  status(id: string): { readonly state: 'pending' | 'ready' | 'freed' } | { readonly state: 'failed'; readonly error: Error };
  /** `status(id).state === 'pending'`, without making a status (asked once per finished task). */
  isPending(id: string): boolean;
  hold(id: string): boolean;
  release(id: string): void;
  onSettled(id: string, callback: () => void): void;
  fail(id: string, error: Error): void;
  register(id: string, payload: ObjectPayload): void;
}

/** What the scheduler asks of the node around it; it never touches a process or a socket itself. */
export interface SchedulerHost extends LeaseEvents {
  readonly objects: TaskObjects;
  /** The node's workers (starting, idle, busy; dead ones are gone). */
  workers(): Iterable<WorkerSlot>;
  /**
   * Start one more worker (the scheduler decided it may: see policies/extra-worker.ts), for tasks
   * of `runtimeEnv` when given.
   * @throws Error saying what is wrong when a runtimeEnv's worker cannot be started (its cwd is not
   *   a directory here, the spawn failed): the scheduler fails the task with it.
   */
  spawnExtraWorker(runtimeEnv?: ResolvedRuntimeEnv): void;
  /** A task arrived: a node started without its workers starts them now (idempotent, cheap). */
  needWorkers(): void;
  /** A result nobody can want any more (cancelled, freed meanwhile): remove what it wrote. */
  discardResult(returnId: string, result: ObjectPayload): void;
  /** The worker running the task died: remove whatever it wrote of its result (a retry writes it anew). */
  discardPartialResult(returnId: string): void;
  /** Whether pending tasks keep the process alive. */
  /** Called as each task is submitted and as each ends (`alive`: tasks remain). */
  keepAlive(alive: boolean): void;
  /** In a cluster: the head placing tasks that cannot start here. */
  cluster(): SpillTarget | undefined;
}

/** Where tasks go that this node cannot start (its cluster agent). */
export interface SpillTarget {
  /**
   * Whether, by the head's last word, another node has room for `demand` now — and if so, that
   * room counts as taken until the next view (so call it only when the task will spill).
   */
  reserveElsewhere(demand: Readonly<Resources>): boolean;
  /** Hands a ready task to the head. */
  spill(task: Task): void;
  /** The submitter gave up on a spilled task. */
  cancel(returnId: string): void;
}

/** A task as submitted to the scheduler. */
export type TaskSubmission = Pick<Task, 'returnId' | 'fn' | 'args' | 'deps' | 'contains' | 'options'> & {
  readonly placement?: Task['placement'];
  readonly submitter?: object;
  readonly forwarded?: boolean;
};
