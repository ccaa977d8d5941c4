import { channel } from 'node:diagnostics_channel';
import type { Task } from './scheduling/task.js';

/**
 * Shoal's events on Node's `diagnostics_channel`, for tracing and metrics without a patch: each
 * is published in the process that runs the node (an embedded program's own process, or the
 * daemon of `shoal start`), only while the channel has subscribers (an unwatched channel costs
 * one property read per event).
 *
 * | channel | message | when |
 * |---|---|---|
 * | `shoal:task:start` | {@link TaskStartMessage} | a task starts on a worker of this node (each attempt) |
 * | `shoal:task:finish` | {@link TaskEndMessage} | a task this node scheduled produced its result (here or on another node) |
 * | `shoal:task:fail` | {@link TaskFailMessage} | such a task failed for good (after its retries), or was cancelled |
 * | `shoal:object:put` | `ObjectPutMessage` | an object was stored on this node |
 * | `shoal:object:free` | `ObjectFreeMessage` | an object left this node (nothing holds it) |
 * | `shoal:object:transfer` | {@link ObjectTransferMessage} | this node pulled an object from another node |
 *
 * @example
 * ```ts
 * import { subscribe } from 'node:diagnostics_channel';
 * subscribe('shoal:task:fail', (message) => console.error('task failed:', message));
 * ```
 */
export const taskStartChannel = channel('shoal:task:start');
export const taskFinishChannel = channel('shoal:task:finish');
export const taskFailChannel = channel('shoal:task:fail');
export const objectTransferChannel = channel('shoal:object:transfer');

/** `shoal:task:start`. */
export interface TaskStartMessage {
  /** The id of the task's result object (its `ObjectRef`'s id): the key that ties a task's events. */
  readonly returnId: string;
  /** The function's name (`remote(fn).remoteName`). */
  readonly name: string;
  /** 1 for the first run, more for retries. */
  readonly attempt: number;
  /** The worker process that runs it. */
  readonly workerPid: number;
}

/** `shoal:task:finish`. */
export interface TaskEndMessage {
  readonly returnId: string;
  readonly name: string;
}

/** `shoal:task:fail`. */
export interface TaskFailMessage extends TaskEndMessage {
  /** What the task's result rejects with (`TaskError`, `TaskCancelledError`, `WorkerCrashedError`...). */
  readonly error: Error;
}

/** `shoal:object:transfer`. */
export interface ObjectTransferMessage {
  readonly id: string;
  readonly size: number;
  /** The data server it came from (`ws://IP:PORT`). */
  readonly from: string;
  /** From the pull's start to the object sealed here. */
  readonly durationMs: number;
}

/** Publishes `shoal:task:start` for `task`, starting on worker `workerPid`, if anyone listens. */
export function publishTaskStart(task: Task, workerPid: number): void {
  if (taskStartChannel.hasSubscribers) {
    taskStartChannel.publish({ returnId: task.returnId, name: task.fn.name, attempt: task.attempts, workerPid } satisfies TaskStartMessage);
  }
}

/** Publishes `shoal:task:finish`, or `shoal:task:fail` with `error`, for `task` if anyone listens. */
export function publishTaskEnd(task: Task, error?: Error): void {
  if (error === undefined) {
    if (taskFinishChannel.hasSubscribers) taskFinishChannel.publish({ returnId: task.returnId, name: task.fn.name } satisfies TaskEndMessage);
  } else if (taskFailChannel.hasSubscribers) {
    taskFailChannel.publish({ returnId: task.returnId, name: task.fn.name, error } satisfies TaskFailMessage);
  }
}
