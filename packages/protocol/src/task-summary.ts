// What a node's data port answers at /api/tasks (JSON), and the head merges for its dashboard.

/** How many of a function's tasks did what on a node (the dashboard's table), and their run time. */
export interface FunctionTally {
  readonly name: string;
  submitted: number;
  started: number;
  finished: number;
  failed: number;
  /** Runs that ended here, and their seconds in all. */
  runs: number;
  runSeconds: number;
}

/** A task that failed on a node, as the dashboard lists it. */
export interface TaskFailure {
  readonly name: string;
  readonly returnId: string;
  /** `Date.now()` when it failed. */
  readonly at: number;
  readonly error: string;
  readonly message: string;
  readonly stack: string | undefined;
}

/** A node's tasks: per function, and the last failures (newest first). */
export interface TaskSummary {
  readonly functions: readonly FunctionTally[];
  readonly failures: readonly TaskFailure[];
}


/** A process holding refs to an object on a node. */
export interface ObjectHolder {
  readonly pid: number;
  /** `program`: attached to the node (or joined from another machine: `remote program`); `worker`: a task's or an actor's process. */
  readonly kind: 'program' | 'remote program' | 'worker';
  /** How many refs it holds. */
  readonly refs: number;
}

/** One object of a store, as `ObjectStore.list` gives it. */
export interface ObjectListing {
  readonly id: string;
  readonly size: number;
  /** `pending`: a task will make it; `failed`: it never will. */
  readonly state: 'pending' | 'ready' | 'failed';
  /** Small: kept in the node process's memory, not in shared memory. */
  readonly inline: boolean;
  /** On disk only (its memory went). */
  readonly spilled: boolean;
  /** Every hold on it: refs in the node's process, other processes' and tasks' holds, stored objects containing it, names. */
  readonly holds: number;
}

/** One object of a node's store, as its data port answers at /api/objects (`shoal memory`). */
export interface NodeObject extends ObjectListing {
  /** Names bound to it. */
  readonly names: readonly string[];
  /** Processes of the node holding refs to it. */
  readonly holders: readonly ObjectHolder[];
}

/**
 * A span of a node's timeline, as its data port answers at /api/timeline (`shoal timeline`): a
 * task run on one of its workers, or a pull of an object from another node.
 */
export interface TimelineSpan {
  readonly kind: 'task' | 'pull';
  /** The task's function name, or `pull`. */
  readonly name: string;
  /** The task's return id, or the pulled object's id. */
  readonly id: string;
  /** When it started, in milliseconds since the epoch (with fractions), and how long it took. */
  readonly start: number;
  readonly duration: number;
  /** The worker process a task ran in (0 for a pull: the node's own process). */
  readonly pid: number;
  /** A task run that ended in an error (thrown, timed out, cancelled, its worker died). */
  readonly failed: boolean;
  /** A pull's bytes, and the data server it came from. */
  readonly bytes?: number;
  readonly from?: string;
}

/** A node's log lines, as its data port answers at /api/logs (`shoal logs --node`). */
export interface NodeLog {
  /** The file the node logs to (null: it logs to no file, e.g. a daemon run with --foreground). */
  readonly file: string | null;
  /** Complete lines (JSON, as pino writes them), oldest first. */
  readonly lines: readonly string[];
  /** The offset after the last line: ask again with `?after=` this to follow the log. */
  readonly end: number;
}
