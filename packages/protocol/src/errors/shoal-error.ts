/**
 * Every code a {@link ShoalError} can carry. Branch on these rather than on messages: messages are
 * written for people and may be reworded, codes are stable. `ERR_SHM_<errno>` codes
 * (`'ERR_SHM_ENOSPC'`) are the family of {@link SharedMemoryError}.
 */
export type ShoalErrorCode =
  // Objects and the store
  | 'ERR_OBJECT_FREED'
  | 'ERR_OBJECT_NOT_FOUND'
  | 'ERR_OBJECT_STORE_FULL'
  | 'ERR_OBJECT_CORRUPT'
  | 'ERR_OBJECT_LOST'
  | 'ERR_OBJECT_TOO_LARGE'
  | 'ERR_STORE_CLOSED'
  | 'ERR_SESSION_DIRECTORY'
  | 'ERR_TOO_MANY_MAPPINGS'
  | 'ERR_SPILL_FAILED'
  | 'ERR_DESCRIPTORS_EXHAUSTED'
  | 'ERR_BIND_FAILED'
  | `ERR_SHM_${string}`
  // Tasks and the session
  | 'ERR_TASK_FAILED'
  | 'ERR_WORKER_CRASHED'
  | 'ERR_WORKER_SPAWN'
  | 'ERR_RUNTIME_ENV'
  | 'ERR_WORKER_LIMIT'
  | 'ERR_TASK_TIMEOUT'
  | 'ERR_TASK_CANCELLED'
  | 'ERR_TASK_INFEASIBLE'
  | 'ERR_NODE_DIED'
  | 'ERR_NODE_UNRESPONSIVE'
  | 'ERR_NODE_DISCONNECTED'
  | 'ERR_HEAD_LOST'
  | 'ERR_RUNTIME_SHUTDOWN'
  | 'ERR_GET_TIMEOUT'
  | 'ERR_IN_WORKER'
  | 'ERR_ALREADY_INITIALIZED'
  | 'ERR_NOT_AVAILABLE'
  | 'ERR_NOT_CONNECTED'
  // Actors
  | 'ERR_ACTOR_DIED'
  | 'ERR_ACTOR_NOT_FOUND'
  // Connections and the wire
  | 'ERR_BAD_FRAME'
  | 'ERR_BAD_MESSAGE'
  | 'ERR_NO_LOCAL_NODE'
  | 'ERR_ATTACH_FAILED'
  | 'ERR_NO_TOKEN'
  | 'ERR_BAD_TOKEN'
  | 'ERR_HEAD_UNREACHABLE'
  | 'ERR_HEAD_CLOSED'
  | 'ERR_HEAD_PROTOCOL'
  | 'ERR_HEAD_LISTEN'
  // An error that was not a ShoalError, as it arrives from another node
  | 'ERR_UNKNOWN';

/** The options every Shoal error takes: the error that led to it. */
export interface ShoalErrorOptions {
  readonly cause?: unknown;
}

/**
 * Every error Shoal raises on purpose is a {@link ShoalError}: a stable `code` to branch on, a
 * `name` to print, a message that says what happened and what to do, and the underlying `cause`.
 * Each code has its own subclass (see errors.ts); construct those, not this base.
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
  readonly code: ShoalErrorCode;

  constructor(code: ShoalErrorCode, message: string, options?: ShoalErrorOptions) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
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
