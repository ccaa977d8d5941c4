/**
 * Shoal: a Ray-like runtime for Node.js. This package is its public face.
 *
 * @example
 * ```ts
 * import { store, shutdown } from 'shoal';
 * const ref = store.put(new Float64Array(200_000_000).fill(1)); // once, into shared memory
 * const array = await ref;                                      // a view, not a copy
 * await shutdown();
 * ```
 */
export { init, shutdown, type InitOptions, type ShoalSession } from './session.js';
export { store, type Store } from './store.js';
export {
  ObjectCorruptError,
  ObjectFreedError,
  ObjectNotFoundError,
  ObjectRef,
  ObjectStoreFullError,
  SharedMemoryError,
  ShoalError,
  StoreClosedError,
  type ObjectRefJSON,
} from '@shoal/protocol';
export type { ObjectWriter, StoreOptions, StoreStats, TypedArrayKind } from '@shoal/store';
