// Errors about tasks and the session that runs them.
import { ShoalError, type ShoalErrorOptions } from './shoal-error.js';

/**
 * A task threw. `cause` is the error the task threw, rebuilt here (name, message, stack, its own
 * cause and extra fields such as `code`); `remoteName` and `remoteStack` are copied for printing.
 * Tasks that depend on the failed one fail with this same error.
 *
 * @example
 * ```ts
 * try { await remote(parse)(text); } catch (error) {
 *   if (error instanceof TaskError) console.log(error.remoteName, error.cause);
 * }
 * ```
 */
export class TaskError extends ShoalError {
  static readonly code = 'ERR_TASK_FAILED';
  /** The thrown error's name, e.g. `'TypeError'`. */
  readonly remoteName: string;
  /** The thrown error's stack, as printed in the worker. */
  readonly remoteStack: string | undefined;
  /** The task's function name. */
  readonly taskName: string;

  constructor(taskName: string, thrown: unknown) {
    const error = thrown instanceof Error ? thrown : undefined;
    const remoteName = error ? error.name : typeof thrown;
    const text = error ? error.message : String(thrown);
    super(TaskError.code, `Task ${taskName} failed: ${remoteName}: ${text}`, { cause: thrown });
    this.remoteName = remoteName;
    this.remoteStack = error?.stack;
    this.taskName = taskName;
    if (this.remoteStack) this.stack = `${this.name}: ${this.message}\n    --- in the worker ---\n${this.remoteStack}`;
  }
}

/** The worker running a task died (exit, signal, out of memory) and the retries ran out. */
export class WorkerCrashedError extends ShoalError {
  static readonly code = 'ERR_WORKER_CRASHED';
  readonly exitCode: number | null;
  readonly signal: string | null;
  readonly taskName: string;
  /** Times the task was started before giving up. */
  readonly attempts: number;
  constructor(taskName: string, exitCode: number | null, signal: string | null, attempts: number) {
    super(
      WorkerCrashedError.code,
      `Task ${taskName} failed: its worker process died (${signal ? `signal ${signal}` : `exit code ${exitCode}`}) ` +
        `on each of ${attempts} attempt${attempts === 1 ? '' : 's'}. A task that exhausts memory, calls ` +
        'process.exit() or crashes native code kills its worker; raise `maxRetries` if the failure is transient.',
    );
    this.exitCode = exitCode;
    this.signal = signal;
    this.taskName = taskName;
    this.attempts = attempts;
  }
}

/** A task ran longer than its `timeoutMs`; its worker was killed. */
export class TaskTimeoutError extends ShoalError {
  static readonly code = 'ERR_TASK_TIMEOUT';
  readonly timeoutMs: number;
  constructor(taskName: string, timeoutMs: number) {
    super(
      TaskTimeoutError.code,
      `Task ${taskName} did not finish within its timeoutMs of ${timeoutMs} ms; its worker was killed. ` +
        'Raise `timeoutMs` or split the work.',
    );
    this.timeoutMs = timeoutMs;
  }
}

/** The task was cancelled with `cancel(ref)` before it finished. */
export class TaskCancelledError extends ShoalError {
  static readonly code = 'ERR_TASK_CANCELLED';
  constructor(taskName: string) {
    super(TaskCancelledError.code, `Task ${taskName} was cancelled.`);
  }
}

/** No node can ever satisfy the task's resource demand. `detail` says what it needs and what is offered. */
export class InfeasibleTaskError extends ShoalError {
  static readonly code = 'ERR_TASK_INFEASIBLE';
  constructor(taskName: string, detail: string) {
    super(InfeasibleTaskError.code, `Task ${taskName} can never run: ${detail}`);
  }
}

/**
 * The node running a task left the cluster: on every attempt (`attempts`), or once with no node
 * left that offers what it needs (`demand`, described).
 */
export class NodeDiedError extends ShoalError {
  static readonly code = 'ERR_NODE_DIED';
  constructor(taskName: string, why: { readonly attempts: number } | { readonly demand: string }) {
    super(
      NodeDiedError.code,
      'attempts' in why
        ? `Task ${taskName} failed: the node running it left the cluster on each of ${why.attempts} attempt(s). ` +
            'Raise `maxRetries` if nodes come and go.'
        : `Task ${taskName} failed: the node running it left the cluster, and no node there now offers ` +
            `${why.demand}. Start one (or restart the one that left) and submit it again.`,
    );
  }
}

/**
 * No node of the cluster offers what a task needs now, and the one that did was dropped by the
 * head for missed heartbeats (stalled, overloaded or stopped): not a task that can never run.
 */
export class NodeUnresponsiveError extends ShoalError {
  static readonly code = 'ERR_NODE_UNRESPONSIVE';
  constructor(taskName: string, detail: { demand: string; nodes: readonly string[]; heartbeatTimeoutMs: number }) {
    super(
      NodeUnresponsiveError.code,
      `Task ${taskName} needs ${detail.demand}, which only ${detail.nodes.join(', ')} offered, and the head dropped ` +
        `${detail.nodes.length === 1 ? 'it' : 'them'} after no heartbeat for ${detail.heartbeatTimeoutMs} ms (stalled, overloaded or stopped). ` +
        "Check that node's daemon log and `shoal status`; a node that recovers rejoins by itself, then submit the task again.",
    );
  }
}

/** The head placed a task on another node, and this node lost its connection to the head. */
export class HeadLostError extends ShoalError {
  static readonly code = 'ERR_HEAD_LOST';
  /** `message` replaces the task's sentence (a call on an actor of another node says its own). */
  constructor(taskName: string, message?: string) {
    super(
      HeadLostError.code,
      message ??
        `Task ${taskName} was placed on another node by the head, and the connection to the head was lost. ` +
          'Submit it again once the head is back.',
    );
  }
}

/** The node could not start a worker process (the operating system refused the spawn). */
export class WorkerSpawnError extends ShoalError {
  static readonly code = 'ERR_WORKER_SPAWN';
  constructor(options?: ShoalErrorOptions) {
    super(
      WorkerSpawnError.code,
      'Could not start a worker process (spawn failed). Check the limits on processes and memory (ulimit -u, free memory) and try again.',
      options,
    );
  }
}

/** A task's runtimeEnv cannot be set up where it was to run (its working directory is not there). */
export class RuntimeEnvError extends ShoalError {
  static readonly code = 'ERR_RUNTIME_ENV';
  constructor(taskName: string, problem: string, options?: ShoalErrorOptions) {
    super(
      RuntimeEnvError.code,
      `Task ${taskName} cannot run with its runtimeEnv: ${problem}. Give a working directory that exists on every node that may run the task.`,
      options,
    );
  }
}

/**
 * Every worker process of the node was blocked waiting on other tasks' results (nested tasks)
 * and the node already ran `cap` of them (`maxBlockedWorkers`): the newest task waiting to start
 * fails instead of waiting forever.
 */
export class WorkerLimitError extends ShoalError {
  static readonly code = 'ERR_WORKER_LIMIT';
  constructor(taskName: string, cap: number) {
    super(
      WorkerLimitError.code,
      `Task ${taskName} could not start: all ${cap} worker processes of the node (\`maxBlockedWorkers\`) are ` +
        "blocked waiting on other tasks' results, so no worker is left to run it. Have tasks await fewer " +
        'nested tasks at once, or raise `maxBlockedWorkers` in init().',
    );
  }
}

/** The runtime was shut down while the task or get was pending. */
export class RuntimeShutdownError extends ShoalError {
  static readonly code = 'ERR_RUNTIME_SHUTDOWN';
  constructor(what: string) {
    super(RuntimeShutdownError.code, `${what}: Shoal was shut down first. Await results before calling shutdown().`);
  }
}

/** `wait()` or `get()` with a timeout ran out. */
export class GetTimeoutError extends ShoalError {
  static readonly code = 'ERR_GET_TIMEOUT';
  constructor(timeoutMs: number, pending: number) {
    super(GetTimeoutError.code, `${pending} object(s) were not ready within ${timeoutMs} ms.`);
  }
}

/** `init()` was called inside a task, which already runs in a Shoal worker. */
export class InWorkerError extends ShoalError {
  static readonly code = 'ERR_IN_WORKER';
  constructor() {
    super(InWorkerError.code, 'init() cannot be called inside a task: the task already runs in a Shoal worker.');
  }
}

/** `init()` was called with other options while Shoal already runs in this process. */
export class AlreadyInitializedError extends ShoalError {
  static readonly code = 'ERR_ALREADY_INITIALIZED';
  constructor() {
    super(
      AlreadyInitializedError.code,
      'Shoal is already running in this process with other options (init() was called before, or Shoal ' +
        'was used, which starts it with the defaults). Call shutdown() before init() with new options.',
    );
  }
}

const NOT_AVAILABLE = {
  stats: 'store.stats() is available in the driver, not inside tasks.',
  shutdown: 'shutdown() cannot be called inside a task; the driver shuts Shoal down.',
} as const;

/** An operation only the driver may do was called inside a task. */
export class NotAvailableError extends ShoalError {
  static readonly code = 'ERR_NOT_AVAILABLE';
  constructor(operation: keyof typeof NOT_AVAILABLE) {
    super(NotAvailableError.code, NOT_AVAILABLE[operation]);
  }
}

/** A program that joins a cluster remotely used Shoal before the node accepted it. */
export class NotConnectedError extends ShoalError {
  static readonly code = 'ERR_NOT_CONNECTED';
  constructor(operation: string, options?: ShoalErrorOptions) {
    super(NotConnectedError.code, `Cannot ${operation} before the node accepted this program: \`await init({ address, token })\` first.`, options);
  }
}
