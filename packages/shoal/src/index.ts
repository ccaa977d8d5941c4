/**
 * Shoal: a Ray-like runtime for Node.js. This package is its public face.
 *
 * @example
 * ```ts
 * import { remote, store, shutdown } from 'shoal';
 * const ref = store.put(new Float64Array(200_000_000).fill(1)); // once, into shared memory
 * const sum = remote((a: Float64Array) => { let s = 0; for (let i = 0; i < a.length; i++) s += a[i]!; return s; });
 * console.log(await sum(ref));                                  // a worker process reads it in place
 * await shutdown();
 * ```
 */
export { init, shutdown, type InitOptions, type ShoalSession } from './session.js';
export { store, type Store } from './store.js';
export { cancel, get, remote, wait, type GetOptions, type WaitOptions } from './tasks.js';
export { actor, getActor, kill, type KillOptions } from './actors.js';
export type { Actor, ActorCallOptions, ActorClass, ActorMethod, ActorOptions, NamedVersion, RemoteArgs, RemoteFunction, RemoteOptions, RemoteResult, RuntimeEnv, NotStorable, Storable, WaitResult } from '@shoal/runtime';
export { ActorHandle, ObjectStream, type StreamItem } from '@shoal/runtime';
export * from '@shoal/runtime/errors';
export { ObjectRef, type ObjectRefJSON } from '@shoal/runtime';
export type { ObjectWriter, StoreOptions, StoreStats, TypedArrayKind } from '@shoal/runtime';
/** Messages of Shoal's `diagnostics_channel` events (`shoal:task:start`, ...: see docs/internals.md, "Diagnostics channels"). */
export type { ObjectFreeMessage, ObjectPutMessage, ObjectTransferMessage, TaskEndMessage, TaskFailMessage, TaskStartMessage } from '@shoal/runtime';
