import {
  InfeasibleTaskError,
  ObjectFreedError,
  ObjectLostError,
  ObjectStoreFullError,
  RuntimeShutdownError,
  ShoalError,
  TaskCancelledError,
  TaskError,
  TaskTimeoutError,
  WorkerCrashedError,
  decodeValue,
  encodeValue,
  writeInline,
  type ShoalErrorCode,
  type WireFailure,
} from '@shoal/protocol';

// Errors thrown by tasks travel as encoded values: what a worker sends in `failed` and what the
// node sends for an object whose task failed.

/** Encodes an error (or anything thrown) for the wire, falling back to its name and message. */
export function encodeError(error: unknown): Uint8Array {
  try {
    return writeInline(encodeValue(error));
  } catch {
    const plain = error instanceof Error ? error : new Error(String(error));
    const fallback = new Error(plain.message);
    fallback.name = plain.name;
    fallback.stack = plain.stack;
    return writeInline(encodeValue(fallback));
  }
}

export function decodeThrown(bytes: Uint8Array): unknown {
  try {
    return decodeValue(bytes, { copy: true, where: 'a task error' });
  } catch (error) {
    return error;
  }
}

/** An error as it crosses nodes: its class is rebuilt on the other side by {@link fromWireFailure}. */
export function toWireFailure(error: Error): WireFailure {
  const base = { code: (error as ShoalError).code ?? 'ERR_UNKNOWN', message: error.message };
  if (error instanceof TaskError) return { ...base, taskName: error.taskName, thrown: encodeError(error.cause) };
  if (error instanceof WorkerCrashedError) {
    return { ...base, taskName: error.taskName, exitCode: error.exitCode, signal: error.signal, attempts: error.attempts };
  }
  return base;
}

/** Rebuilds the error a {@link WireFailure} describes, with its class (TaskError keeps its cause). */
export function fromWireFailure(failure: WireFailure): Error {
  const taskName = failure.taskName ?? 'task';
  switch (failure.code) {
    case 'ERR_TASK_FAILED':
      return new TaskError(taskName, failure.thrown ? decodeThrown(failure.thrown) : new Error(failure.message));
    case 'ERR_WORKER_CRASHED':
      return new WorkerCrashedError(taskName, failure.exitCode ?? null, failure.signal ?? null, failure.attempts ?? 1);
    default: {
      const Known = KNOWN[failure.code];
      const error = Known ? Object.create(Known.prototype as object) as ShoalError : new ShoalError(failure.code as ShoalErrorCode, failure.message);
      if (Known) {
        // Same class, same message: built without its constructor, which would reword it.
        Object.assign(error, { name: Known.name, code: failure.code, message: failure.message });
        error.stack = `${Known.name}: ${failure.message}`;
      }
      return error;
    }
  }
}

const KNOWN: Record<string, { name: string; prototype: unknown }> = {
  ERR_TASK_TIMEOUT: TaskTimeoutError,
  ERR_TASK_CANCELLED: TaskCancelledError,
  ERR_TASK_INFEASIBLE: InfeasibleTaskError,
  ERR_OBJECT_LOST: ObjectLostError,
  ERR_OBJECT_FREED: ObjectFreedError,
  ERR_OBJECT_STORE_FULL: ObjectStoreFullError,
  ERR_RUNTIME_SHUTDOWN: RuntimeShutdownError,
};
