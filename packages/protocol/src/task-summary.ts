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

