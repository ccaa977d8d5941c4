import type { WireArg } from '@shoal/protocol';
import type { FunctionSource } from '../api/function-source.js';
import type { ResolvedRemoteOptions } from '../options.js';
import type { WorkerHandle } from '../workers/worker-handle.js';
import { shortfall, type Resources } from './resources.js';

export type { Resources } from './resources.js';

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
  worker: WorkerHandle | undefined;
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
}

/** The result of placing a task on a node's resources. */
export type Placement = { readonly kind: 'placed' } | { readonly kind: 'wait' } | { readonly kind: 'infeasible'; readonly reason: string };

/**
 * Whether `demand` can run now on `available`, later (once resources free up), or never on a node
 * offering `total`. A pure function over snapshots; it never throws for lack of capacity.
 */
export function place(demand: Readonly<Resources>, available: Readonly<Resources>, total: Readonly<Resources>): Placement {
  const missing = shortfall(demand, total);
  if (missing) {
    const what = missing.name === 'CPU' ? `${missing.amount} CPUs` : `${missing.amount} of resource "${missing.name}"`;
    return { kind: 'infeasible', reason: `it needs ${what}, and this node offers ${missing.offered}` };
  }
  return shortfall(demand, available) ? { kind: 'wait' } : { kind: 'placed' };
}
