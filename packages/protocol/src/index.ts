export {
  GetTimeoutError,
  InfeasibleTaskError,
  RuntimeShutdownError,
  TaskCancelledError,
  TaskError,
  TaskTimeoutError,
  WorkerCrashedError,
  ObjectCorruptError,
  ObjectFreedError,
  ObjectNotFoundError,
  ObjectStoreFullError,
  SharedMemoryError,
  ShoalError,
  StoreClosedError,
  formatBytes,
} from './errors.js';
export { checkObjectName, isValidId, newObjectId, newSessionId } from './ids.js';
export {
  ALIGNMENT,
  LAYOUT_VERSION,
  PREFIX_BYTES,
  alignUp,
  frontLength,
  planLayout,
  readLayout,
  writeFront,
  type Layout,
} from './layout.js';
export { ObjectRef, setObjectRefHooks, type ObjectRefHooks, type ObjectRefJSON } from './object-ref.js';
export {
  MAX_DEPTH,
  decodeValue,
  encodeValue,
  encodeViewShell,
  TYPED_ARRAY_CONSTRUCTORS,
  type TypedArrayConstructor,
  writeFrontBytes,
  writeInline,
  type DecodeOptions,
  type EncodedValue,
} from './serialize.js';
export { DEFAULT_MAX_FRAME_BYTES, FrameDecoder, FrameError, decodeMessage, encodeFrame, encodeMessage } from './framing.js';
export {
  decodeNodeMessage,
  decodeWorkerMessage,
  type NodeToWorker,
  type ObjectLocation,
  type ObjectPayload,
  type WireArg,
  type WireFunction,
  type WireTask,
  type WireTaskOptions,
  type WorkerToNode,
} from './worker-protocol.js';
export {
  CLOSE_BAD_TOKEN,
  CLOSE_PROTOCOL_ERROR,
  CLOSE_TIMEOUT,
  decodeFromHead,
  decodeToHead,
  type FromHead,
  type HeadRole,
  type NodeReport,
  type NodeStatus,
  type ToHead,
} from './head-protocol.js';
