/**
 * Every error Shoal raises on purpose is a {@link ShoalError}: a stable `code` to branch on, a
 * `name` to print, a message that says what happened and what to do, and the underlying `cause`.
 *
 * @example
 * ```ts
 * try { store.get(ref); } catch (error) {
 *   if (error instanceof ObjectFreedError) console.log(error.code); // 'ERR_OBJECT_FREED'
 * }
 * ```
 */
export class ShoalError extends Error {
  /** Stable machine-readable code, e.g. `'ERR_OBJECT_FREED'`. */
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** A system call on a shared-memory segment failed. Carries the `errno`, the syscall and the path. */
export class SharedMemoryError extends ShoalError {
  /** The system error code, e.g. `'ENOSPC'`. */
  readonly errnoCode: string;
  /** The numeric errno. */
  readonly errno: number;
  /** The failed system call, e.g. `'mmap'`. */
  readonly syscall: string;
  /** The segment file the call was about. */
  readonly path: string;

  constructor(details: { errnoCode: string; errno: number; syscall: string; path: string; advice: string }, options?: { cause?: unknown }) {
    super(
      `ERR_SHM_${details.errnoCode}`,
      `${details.syscall} failed for ${details.path} (${details.errnoCode}). ${details.advice}`,
      options,
    );
    this.errnoCode = details.errnoCode;
    this.errno = details.errno;
    this.syscall = details.syscall;
    this.path = details.path;
  }
}

/** The object was freed (by `store.free` or because no reference to it remained) before this get. */
export class ObjectFreedError extends ShoalError {
  readonly objectId: string;
  constructor(objectId: string, detail = '', options?: { cause?: unknown }) {
    super(
      'ERR_OBJECT_FREED',
      `Object ${objectId} was freed${detail}: its memory has been released. ` +
        'Keep an ObjectRef to it (or do not call store.free) for as long as you need to get it.',
      options,
    );
    this.objectId = objectId;
  }
}

/** No object with this id is known where it was looked up. */
export class ObjectNotFoundError extends ShoalError {
  readonly objectId: string;
  constructor(objectId: string, detail: string, options?: { cause?: unknown }) {
    super('ERR_OBJECT_NOT_FOUND', `Object ${objectId} was not found: ${detail}`, options);
    this.objectId = objectId;
  }
}

/** A put did not fit in the object store's capacity. */
export class ObjectStoreFullError extends ShoalError {
  /** Bytes the object needs. */
  readonly requested: number;
  /** Bytes already held by the store. */
  readonly used: number;
  /** The store's capacity in bytes. */
  readonly capacity: number;

  constructor(requested: number, used: number, capacity: number, detail = '') {
    super(
      'ERR_OBJECT_STORE_FULL',
      `Cannot store an object of ${formatBytes(requested)}: the object store holds ${formatBytes(used)} ` +
        `of its ${formatBytes(capacity)} capacity${detail}. Free objects you no longer need ` +
        '(store.free(ref), or drop the refs), or raise `objectStoreMemory` in init().',
    );
    this.requested = requested;
    this.used = used;
    this.capacity = capacity;
  }
}

/** The bytes of a stored object do not have Shoal's layout (wrong magic, version or sizes). */
export class ObjectCorruptError extends ShoalError {
  constructor(where: string, detail: string) {
    super('ERR_OBJECT_CORRUPT', `${where} is not a valid Shoal object: ${detail}.`);
  }
}

/** The store was used after `shutdown()`. */
export class StoreClosedError extends ShoalError {
  constructor(operation: string) {
    super('ERR_STORE_CLOSED', `Cannot ${operation}: the object store was shut down. Call init() again to start a new session.`);
  }
}

/** Formats a byte count for messages: `1.50 GB`, `512 KiB` style, always with a unit. */
export function formatBytes(bytes: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${bytes} bytes` : `${value.toFixed(value >= 100 ? 0 : value >= 10 ? 1 : 2)} ${units[unit]}`;
}

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
    super('ERR_TASK_FAILED', `Task ${taskName} failed: ${remoteName}: ${text}`, { cause: thrown });
    this.remoteName = remoteName;
    this.remoteStack = error?.stack;
    this.taskName = taskName;
    if (this.remoteStack) this.stack = `${this.name}: ${this.message}\n    --- in the worker ---\n${this.remoteStack}`;
  }
}

/** The worker running a task died (exit, signal, out of memory) and the retries ran out. */
export class WorkerCrashedError extends ShoalError {
  readonly exitCode: number | null;
  readonly signal: string | null;
  readonly taskName: string;
  /** Times the task was started before giving up. */
  readonly attempts: number;
  constructor(taskName: string, exitCode: number | null, signal: string | null, attempts: number) {
    super(
      'ERR_WORKER_CRASHED',
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
  readonly timeoutMs: number;
  constructor(taskName: string, timeoutMs: number) {
    super(
      'ERR_TASK_TIMEOUT',
      `Task ${taskName} did not finish within its timeoutMs of ${timeoutMs} ms; its worker was killed. ` +
        'Raise `timeoutMs` or split the work.',
    );
    this.timeoutMs = timeoutMs;
  }
}

/** The task was cancelled with `cancel(ref)` before it finished. */
export class TaskCancelledError extends ShoalError {
  constructor(taskName: string) {
    super('ERR_TASK_CANCELLED', `Task ${taskName} was cancelled.`);
  }
}

/** No node can ever satisfy the task's resource demand. */
export class InfeasibleTaskError extends ShoalError {
  constructor(taskName: string, detail: string) {
    super('ERR_TASK_INFEASIBLE', `Task ${taskName} can never run: ${detail}`);
  }
}

/**
 * Every copy of an object was on nodes that left the cluster (or a transfer of it broke and no
 * other node holds it). Re-execution from lineage is not done yet: re-run what made it.
 */
export class ObjectLostError extends ShoalError {
  readonly objectId: string;
  constructor(objectId: string, detail: string) {
    super('ERR_OBJECT_LOST', `Object ${objectId} is lost: ${detail}`);
    this.objectId = objectId;
  }
}

/** The runtime was shut down while the task or get was pending. */
export class RuntimeShutdownError extends ShoalError {
  constructor(what: string) {
    super('ERR_RUNTIME_SHUTDOWN', `${what}: Shoal was shut down first. Await results before calling shutdown().`);
  }
}

/** `wait()` or `get()` with a timeout ran out. */
export class GetTimeoutError extends ShoalError {
  constructor(timeoutMs: number, pending: number) {
    super('ERR_GET_TIMEOUT', `${pending} object(s) were not ready within ${timeoutMs} ms.`);
  }
}
