export {
  ObjectCorruptError,
  ObjectFreedError,
  ObjectNotFoundError,
  ObjectStoreFullError,
  SharedMemoryError,
  ShoalError,
  StoreClosedError,
  formatBytes,
} from './errors.js';
export { isValidId, newObjectId, newSessionId } from './ids.js';
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
