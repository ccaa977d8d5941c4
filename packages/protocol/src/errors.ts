/**
 * Shoal's errors: the base {@link ShoalError}, one class per {@link ShoalErrorCode}, and the
 * registry that maps a code back to its class (what wire-errors.ts uses to rebuild an error that
 * crossed nodes). The registry is checked against the code union at compile time, so a new code
 * cannot be added without its class being registered here.
 */
import { AttachFailedError, BadMessageError, BadTokenError, FrameError, HeadClosedError, HeadListenError, HeadProtocolError, HeadUnreachableError, NoLocalNodeError, NodeDisconnectedError, NoTokenError, UnknownError } from './errors/connection-errors.js';
import { BindFailedError, DescriptorsExhaustedError, ObjectCorruptError, ObjectFreedError, ObjectLostError, ObjectNotFoundError, ObjectStoreFullError, ObjectTooLargeError, SessionDirectoryError, SharedMemoryError, SpillError, StoreClosedError, TooManyMappingsError } from './errors/object-errors.js';
import { ActorDiedError, ActorNotFoundError } from './errors/actor-errors.js';
import type { ShoalError, ShoalErrorCode } from './errors/shoal-error.js';
import {
  AlreadyInitializedError,
  GetTimeoutError,
  HeadLostError,
  InWorkerError,
  InfeasibleTaskError,
  NodeDiedError,
  NodeUnresponsiveError,
  NotAvailableError,
  NotConnectedError,
  RuntimeShutdownError,
  WorkerLimitError,
  WorkerSpawnError,
  RuntimeEnvError,
  TaskCancelledError,
  TaskError,
  TaskTimeoutError,
  WorkerCrashedError,
} from './errors/task-errors.js';

export * from './errors/actor-errors.js';
export * from './errors/connection-errors.js';
export * from './errors/object-errors.js';
export * from './errors/shoal-error.js';
export * from './errors/task-errors.js';
export { ARGUMENT_ERROR_CODES, type ArgumentError, type ArgumentErrorCode } from './errors/argument-error.js';

/** The codes of the {@link SharedMemoryError} family: one per errno. */
type SharedMemoryCode = `${typeof SharedMemoryError.code}${string}`;

/** A ShoalError subclass as the registry holds it: its static `code` and its prototype. */
export interface ShoalErrorClass<C extends ShoalErrorCode = ShoalErrorCode> {
  readonly code: C;
  readonly name: string;
  readonly prototype: ShoalError;
}

/**
 * Every error class by its code. `satisfies` makes the compiler reject a code of the union that
 * has no entry, an entry for a code outside it, and an entry whose class has another code.
 */
export const ERROR_CLASSES = {
  ERR_OBJECT_FREED: ObjectFreedError,
  ERR_OBJECT_NOT_FOUND: ObjectNotFoundError,
  ERR_OBJECT_STORE_FULL: ObjectStoreFullError,
  ERR_OBJECT_CORRUPT: ObjectCorruptError,
  ERR_OBJECT_LOST: ObjectLostError,
  ERR_OBJECT_TOO_LARGE: ObjectTooLargeError,
  ERR_STORE_CLOSED: StoreClosedError,
  ERR_SESSION_DIRECTORY: SessionDirectoryError,
  ERR_TOO_MANY_MAPPINGS: TooManyMappingsError,
  ERR_SPILL_FAILED: SpillError,
  ERR_DESCRIPTORS_EXHAUSTED: DescriptorsExhaustedError,
  ERR_BIND_FAILED: BindFailedError,
  ERR_TASK_FAILED: TaskError,
  ERR_WORKER_CRASHED: WorkerCrashedError,
  ERR_TASK_TIMEOUT: TaskTimeoutError,
  ERR_TASK_CANCELLED: TaskCancelledError,
  ERR_TASK_INFEASIBLE: InfeasibleTaskError,
  ERR_NODE_DIED: NodeDiedError,
  ERR_NODE_UNRESPONSIVE: NodeUnresponsiveError,
  ERR_NODE_DISCONNECTED: NodeDisconnectedError,
  ERR_HEAD_LOST: HeadLostError,
  ERR_RUNTIME_SHUTDOWN: RuntimeShutdownError,
  ERR_WORKER_SPAWN: WorkerSpawnError,
  ERR_RUNTIME_ENV: RuntimeEnvError,
  ERR_WORKER_LIMIT: WorkerLimitError,
  ERR_GET_TIMEOUT: GetTimeoutError,
  ERR_IN_WORKER: InWorkerError,
  ERR_ALREADY_INITIALIZED: AlreadyInitializedError,
  ERR_NOT_AVAILABLE: NotAvailableError,
  ERR_NOT_CONNECTED: NotConnectedError,
  ERR_BAD_FRAME: FrameError,
  ERR_BAD_MESSAGE: BadMessageError,
  ERR_NO_LOCAL_NODE: NoLocalNodeError,
  ERR_ATTACH_FAILED: AttachFailedError,
  ERR_NO_TOKEN: NoTokenError,
  ERR_BAD_TOKEN: BadTokenError,
  ERR_HEAD_UNREACHABLE: HeadUnreachableError,
  ERR_HEAD_CLOSED: HeadClosedError,
  ERR_HEAD_PROTOCOL: HeadProtocolError,
  ERR_HEAD_LISTEN: HeadListenError,
  ERR_ACTOR_DIED: ActorDiedError,
  ERR_ACTOR_NOT_FOUND: ActorNotFoundError,
  ERR_UNKNOWN: UnknownError,
} as const satisfies { readonly [C in Exclude<ShoalErrorCode, SharedMemoryCode>]: ShoalErrorClass<C> };

/**
 * The class of an error code, or undefined for a code this version does not know (a newer peer's).
 *
 * @example
 * ```ts
 * errorClassOf('ERR_OBJECT_LOST') === ObjectLostError; // true
 * errorClassOf('ERR_SHM_ENOSPC') === SharedMemoryError; // true
 * ```
 */
export function errorClassOf(code: string): ShoalErrorClass | undefined {
  if (Object.prototype.hasOwnProperty.call(ERROR_CLASSES, code)) return ERROR_CLASSES[code as keyof typeof ERROR_CLASSES];
  return code.startsWith(SharedMemoryError.code) && code.length > SharedMemoryError.code.length ? SharedMemoryError : undefined;
}
