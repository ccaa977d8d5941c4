import type { WireArg } from '@shoal/protocol';
import type { FunctionSource } from '../api/function-source.js';
import type { ResolvedRemoteOptions } from '../options.js';
import type { Resources } from './resources.js';
import type { WorkerSlot } from './worker-slot.js';

/** Lifecycle of a task on its node. */
export type TaskState = 'waiting' | 'ready' | 'queued' | 'running' | 'spilled' | 'finished';

/** A task as its node tracks it, from submission until its return object settles. */
export interface Task {
  readonly id: number;
  /** The id of the object the task's return value becomes. */
  readonly returnId: string;
  readonly fn: FunctionSource;
  readonly args: readonly WireArg[];
  /** Top-level ref arguments: the task is ready once all of them are. */
  readonly deps: readonly string[];
  /** Refs nested in inline arguments, held while the task lives. */
  readonly contains: readonly string[];
  readonly options: ResolvedRemoteOptions;
  readonly demand: Readonly<Resources>;
  state: TaskState;
  /** Dependencies not settled yet. */
  unsettled: number;
  /** Times the task was started on a worker. */
  attempts: number;
  /** `performance.now()` when it was submitted here, and when its last run started (0: none yet). */
  readonly submittedAt: number;
  startedAt: number;
  /** The pid of the worker its last run started in (0: none yet). */
  ranOn: number;
  /** Handed to the head for another node (the metrics count its run and end there). */
  spilled: boolean;
  /** Sent here by the head from the node it was submitted on (the metrics count its submission there). */
  readonly forwarded: boolean;
  worker: WorkerSlot | undefined;
  timer: NodeJS.Timeout | undefined;
  /** Why the task's worker is being killed on purpose. */
  ending: 'timeout' | 'cancel' | undefined;
  /** A recall of this queued task was sent to its worker and not answered yet. */
  recalling: boolean;
  /**
   * Where the task may run in a cluster: `local` tasks were sent here by the head and stay;
   * `elsewhere` tasks cannot run on this node at all and must spill; `any` is the default.
   */
  placement: 'any' | 'local' | 'elsewhere';
  /**
   * Who submitted it, for where its output goes (node/task-output.ts; the scheduler only keeps
   * it): a peer of this node, the origin of a foreign task, or undefined for this process.
   */
  readonly submitter: object | undefined;
}
