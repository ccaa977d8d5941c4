import type { ClusterResult, ClusterTask } from '@shoal/protocol';
import type { ObjectStore } from '@shoal/store';
import type { FunctionSource } from '../api/function-source.js';
import type { LocalScheduler } from '../scheduling/local-scheduler.js';
import { acceptClusterArgs, clusterResultOf } from './cluster-values.js';

/** Where a finished foreign task's result goes: the cluster agent reports it to the head. */
export type ForeignFinished = (origin: string, returnId: string, result: ClusterResult) => void;

/**
 * Tasks the head placed on this node for another node (their `origin`): arguments this node
 * lacks are registered (inline ones came with the task) or fetched; the result is reported and,
 * when in a segment, kept here (held) until the origin has pulled its copy.
 */
export class ForeignTasks {
  readonly #store: ObjectStore;
  readonly #scheduler: LocalScheduler;
  readonly #finished: ForeignFinished;
  /** Task results kept for the node that submitted them: returnId -> origin. */
  readonly #keptFor = new Map<string, string>();

  /** `finished` reports each foreign task's result (the cluster agent sends it to the head). */
  constructor(parts: { readonly store: ObjectStore; readonly scheduler: LocalScheduler; readonly finished: ForeignFinished }) {
    ({ store: this.#store, scheduler: this.#scheduler, finished: this.#finished } = parts);
  }

  /** Runs `task` for node `origin`; `fetch` is told of arguments to bring here. */
  run(origin: string, task: ClusterTask, fetch: (id: string, size: number) => void): void {
    if (this.#scheduler.tasks.has(task.returnId)) return;
    if (this.#store.status(task.returnId).state !== 'freed') {
      // It ran here already (the head lost sight of this node meanwhile and placed it again):
      // the result is still here, kept for the origin; report it once more.
      if (!this.#keptFor.has(task.returnId) && this.#store.hold(task.returnId)) this.#keptFor.set(task.returnId, origin);
      this.#report(origin, task.returnId);
      return;
    }
    const { args, deps } = acceptClusterArgs(this.#store, task.args, fetch);
    this.#store.expect(task.returnId);
    // Held for the origin until it has its own copy (see release).
    this.#store.hold(task.returnId);
    this.#keptFor.set(task.returnId, origin);
    const fn: FunctionSource = { source: task.fn.source, hash: task.fn.hash, name: task.fn.name };
    this.#store.onSettled(task.returnId, () => this.#report(origin, task.returnId));
    // Its output goes back to the origin (node/task-output.ts).
    this.#scheduler.submit({ returnId: task.returnId, fn, args, deps, contains: [], options: task.options, placement: 'local', submitter: { origin }, forwarded: true });
  }

  #report(origin: string, returnId: string): void {
    const result = clusterResultOf(this.#store, returnId);
    this.#finished(origin, returnId, result);
    // A result (and what it refers to) stays until the origin has its copy and says so.
    if (!result.ok) this.release([returnId]);
  }

  /** The origin has its copy of these results (or left the cluster): stop keeping them. */
  release(ids: readonly string[]): void {
    for (const id of ids) {
      if (!this.#keptFor.delete(id)) continue;
      this.#store.release(id);
    }
  }

  /** Stops the tasks, and drops the results kept, for which `match(returnId, origin)` holds. */
  drop(match: (returnId: string, origin: string) => boolean = () => true): void {
    const ids = [...this.#keptFor].filter(([id, origin]) => match(id, origin)).map(([id]) => id);
    for (const id of ids) this.#scheduler.cancel(id);
    this.release(ids);
  }
}
