// Every error class, the code union and the registry (errors.ts is the list).
export * from './errors.js';
export { argumentError } from './errors/argument-error.js';
export { LENT_FILE_PATTERN, checkObjectName, isValidId, newObjectId, newSessionId } from './ids.js';
// The object layout: one module, whole (its constants are the layout's definition).
export * from './layout.js';
export { ACTOR_INFO, ActorHandle, RESERVED_METHOD_NAMES, setActorHandleHooks, type ActorCallOptions, type ActorHandleHooks, type ActorInfo } from './actor-handle.js';
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
} from './serialize/index.js';
export { FrameDecoder, decodeMessage, encodeFrame, encodeMessage } from './framing.js';
export { checkMessageBytes } from './message-check.js';
export {
  decodeNodeMessage,
  decodeWorkerMessage,
  type NodeToWorker,
  type ObjectLocation,
  type ObjectPayload,
  type OutputStream,
  type WireRuntimeEnv,
  type WireArg,
  type WireFunction,
  type WireTask,
  type WireTaskOptions,
  type WireActorOptions,
  type WorkerToNode,
} from './local-protocol.js';
export {
  decodeFromHead,
  decodeToHead,
  type ActorEnd,
  type ClusterActor,
  type ClusterArg,
  type ClusterContained,
  type LocatedActor,
  type ClusterResult,
  type ClusterTask,
  type FromHead,
  type HeadRole,
  type PeerView,
  type WireFailure,
  type NodeReport,
  type NodeStatus,
  type ToHead,
} from './head-protocol.js';
export { decodeFromHolder, decodeToHolder, type FromHolder, type ToHolder } from './data-protocol.js';
export { decodeThrown, encodeError, fromWireFailure, toWireFailure } from './wire-errors.js';
export {
  BULK_CONNECTION_HEADER,
  BULK_STREAM_HEADER,
  BULK_UPGRADE,
  CLOSE_GOING_AWAY,
  CLOSE_IDLE,
  CLOSE_INTERNAL_ERROR,
  CLOSE_PROTOCOL_ERROR,
  CLOSE_TIMEOUT,
  CONCURRENT_PULLS,
  RELAY_MIN_BYTES,
  DATA_IDLE_TIMEOUT_MS,
  DATA_SERVER_MAX_PAYLOAD_BYTES,
  DEFAULT_MAX_FRAME_BYTES,
  DRIVER_PATH,
  HANDSHAKE_TIMEOUT_MS,
  HEAD_MAX_PAYLOAD_BYTES,
  HELLO_TIMEOUT_MS,
  MAX_BULK_STREAMS_PER_CONNECTION,
  MAX_CONNECTIONS,
  MAX_CONNECTIONS_PER_SOURCE,
  MAX_IDS_PER_MESSAGE,
  MAX_OUTPUT_CHARS,
  MESSAGE_MAX_DEPTH,
  PULLER_MAX_PAYLOAD_BYTES,
  REMOTE_ENVELOPE_BYTES,
  REMOTE_MAX_FRAME_BYTES,
  REMOTE_OBJECT_LIMIT_BYTES,
  TOKEN_HEADER,
} from './limits.js';
export type { FunctionTally, NodeObject, ObjectHolder, ObjectListing, TaskFailure, TaskSummary, TimelineSpan, NodeLog } from './task-summary.js';
