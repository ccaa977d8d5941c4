/**
 * Errors across the wire. Errors thrown by tasks travel as encoded values (what a worker sends in
 * `failed` and what a node sends for an object whose task failed); Shoal's own errors cross nodes
 * as a {@link WireFailure} and are rebuilt with their class, found by code in the registry of
 * errors.ts, so every class registered there round-trips without a table of its own here.
 */
import { ActorDiedError, ShoalError, TaskError, UnknownError, WorkerCrashedError, errorClassOf, type ActorDeathReason, type ShoalErrorCode } from './errors.js';
import type { WireFailure } from './head-protocol.js';
import { decodeValue, encodeValue, writeInline } from './serialize/index.js';

/**
 * Encodes an error (or anything thrown) for the wire, falling back to its name and message when
 * it cannot be stored whole (a field holding a function, say).
 *
 * @example
 * ```ts
 * const bytes = encodeError(new RangeError('too big'));
 * decodeThrown(bytes); // RangeError: too big
 * ```
 */
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

/** Decodes what {@link encodeError} made. Bytes that do not decode give the decoding error instead. */
export function decodeThrown(bytes: Uint8Array): unknown {
  try {
    return decodeValue(bytes, { copy: true, where: 'a task error' });
  } catch (error) {
    return error;
  }
}

/**
 * An error as it crosses nodes: its class is rebuilt on the other side by {@link fromWireFailure}.
 * An error that is not a ShoalError goes as `ERR_UNKNOWN` with its message.
 */
export function toWireFailure(error: Error): WireFailure {
  const base = { code: error instanceof ShoalError ? error.code : ((error as Partial<ShoalError>).code ?? UnknownError.code), message: error.message };
  if (error instanceof TaskError) return { ...base, taskName: error.taskName, thrown: encodeError(error.cause) };
  if (error instanceof WorkerCrashedError) {
    return { ...base, taskName: error.taskName, exitCode: error.exitCode, signal: error.signal, attempts: error.attempts };
  }
  if (error instanceof ActorDiedError) {
    return { ...base, actor: { name: error.actorName, reason: JSON.stringify(error.reason), restarts: error.restarts, final: error.final } };
  }
  return base;
}

/**
 * Rebuilds the error a {@link WireFailure} describes, with its class: TaskError keeps its cause
 * and WorkerCrashedError its exit; any other class keeps the message as it was worded where it
 * was thrown. A code this version does not know arrives as a plain ShoalError with that code.
 */
export function fromWireFailure(failure: WireFailure): Error {
  const taskName = failure.taskName ?? 'task';
  switch (failure.code) {
    case TaskError.code:
      return new TaskError(taskName, failure.thrown ? decodeThrown(failure.thrown) : new Error(failure.message));
    case WorkerCrashedError.code:
      return new WorkerCrashedError(taskName, failure.exitCode ?? null, failure.signal ?? null, failure.attempts ?? 1);
    case ActorDiedError.code: {
      const reason = failure.actor && actorReason(failure.actor.reason);
      if (failure.actor && reason) return new ActorDiedError(failure.actor.name, reason, failure.actor.restarts, failure.actor.final);
      return plainError(failure);
    }
    default:
      return plainError(failure);
  }
}

/** The ActorDeathReason an ActorDiedError's wire form carries, if it is one. */
function actorReason(json: string): ActorDeathReason | undefined {
  try {
    const reason = JSON.parse(json) as { kind?: unknown };
    return reason !== null && typeof reason === 'object' && typeof reason.kind === 'string' ? (reason as ActorDeathReason) : undefined;
  } catch {
    return undefined;
  }
}

/** The error of a failure's code with the message it came with (a code this version does not know: a plain ShoalError). */
function plainError(failure: WireFailure): Error {
  const Known = errorClassOf(failure.code);
  // A newer peer's code: kept as it came, though this version's union does not name it.
  if (!Known) return new ShoalError(failure.code as ShoalErrorCode, failure.message);
  // Same class, same message: built without its constructor, which would reword it.
  const error = Object.create(Known.prototype) as ShoalError;
  Object.defineProperty(error, 'message', { value: failure.message, writable: true, configurable: true });
  Object.assign(error, { name: Known.name, code: failure.code });
  error.stack = `${Known.name}: ${failure.message}`;
  return error;
}
