import { ACTOR_INFO, setActorHandleHooks, type ActorHandle, type ObjectRef } from '@shoal/protocol';
import type { ObjectWriter, StoreStats, TypedArrayKind } from '@shoal/store';
import type { FunctionSource } from './function-source.js';
import { ObjectStream } from './stream.js';
import { resolveActorCallOptions, type ResolvedActorOptions, type ResolvedRemoteOptions } from '../options.js';

/** The result of {@link Runtime.wait}. */
export interface WaitResult<T = unknown> {
  /** Refs whose objects are ready (or failed), in the order given. */
  readonly ready: ObjectRef<T>[];
  /** The others, in the order given. */
  readonly pending: ObjectRef<T>[];
}

/** `refs` split into a {@link WaitResult} by `settled` (1 for each ready position), in order. */
export function splitSettled<T>(refs: readonly ObjectRef<T>[], settled: ArrayLike<number>): WaitResult<T> {
  const ready: ObjectRef<T>[] = [];
  const pending: ObjectRef<T>[] = [];
  for (let i = 0; i < refs.length; i++) (settled[i] === 1 ? ready : pending).push(refs[i]!);
  return { ready, pending };
}

/** A version of a named object: what `store.watch` yields. */
export interface NamedVersion<T = unknown> {
  readonly name: string;
  /** Increases by one each time the name is bound to another object. */
  readonly version: number;
  readonly ref: ObjectRef<T>;
}

/**
 * What the public API needs from the process it runs in: the embedded node in a driver, the
 * connection to its node in a worker process, or in a process attached to a node.
 */
export interface Runtime {
  readonly kind: 'driver' | 'worker' | 'attached';
  put<T>(value: T): ObjectRef<T>;
  create(kind: TypedArrayKind | number, length?: number): ObjectWriter<ArrayBufferView>;
  get<T>(ref: ObjectRef<T>): Promise<T>;
  /** The values of `refs` in order, as `Promise.all(refs.map(get))` (a runtime may do it with less per ref). */
  getAll<T>(refs: readonly ObjectRef<T>[]): Promise<T[]>;
  getSync<T>(ref: ObjectRef<T>): T;
  makeRoom(bytes: number): Promise<void>;
  free(ref: ObjectRef): boolean;
  stats(): StoreStats;
  submit(fn: FunctionSource, args: readonly unknown[], options: ResolvedRemoteOptions): ObjectRef;
  wait(refs: readonly ObjectRef[], numReturns: number, timeoutMs: number | null): Promise<WaitResult>;
  cancel(ref: ObjectRef): void;
  /** Resolves once the object of `ref` is no longer pending (ready, failed or freed); never rejects. */
  settled(ref: ObjectRef): Promise<void>;
  putNamed<T>(name: string, value: T | ObjectRef<T>): Promise<NamedVersion<T>>;
  getNamed<T>(name: string): Promise<{ version: NamedVersion<T>; value: T }>;
  watch<T>(name: string): AsyncIterableIterator<NamedVersion<T>>;
  /** Starts an actor of class `cls` (with `methods`) and returns its handle at once; failures show in its calls. */
  createActor(cls: FunctionSource, methods: readonly string[], args: readonly unknown[], options: ResolvedActorOptions): ActorHandle;
  /** Submits a call of `method` on the actor; the ref of its result (of the stream's end, for a streaming method). */
  callActor(handle: ActorHandle, method: string, args: readonly unknown[]): ObjectRef;
  /** Kills the actor: for good (`noRestart`), or its process only (restarted within its maxRestarts). */
  killActor(handle: ActorHandle, noRestart: boolean): void;
  /** The live actor named `name` on this node. @throws ActorNotFoundError (rejects) */
  getActor(name: string): Promise<ActorHandle>;
  /**
   * Item `index` of the stream whose end is `returnId`, once yielded (wrapped: a ref is a
   * thenable, which a promise would unwrap); null after the last. Rejects with the stream's error.
   */
  streamNext(returnId: string, index: number): Promise<{ readonly ref: ObjectRef } | null>;
  /** The consumer stops the stream `returnId`: its producer ends, items not taken go. */
  closeStream(returnId: string): void;
  shutdown(): Promise<void>;
}

// Kept on globalThis under a registered symbol so that every copy of this module in a process
// (a user bundle, the worker entry) finds the same runtime.
const KEY = Symbol.for('shoal.runtime');
type Holder = { [KEY]?: Runtime };

/** The runtime of this process, if one is running. */
export function currentRuntime(): Runtime | undefined {
  return (globalThis as Holder)[KEY];
}

// A handle's methods reach the runtime of whichever process the handle is in (a decoded handle
// too: in a task, in an attached program).
setActorHandleHooks({
  call(handle, method, args, options) {
    const runtime = currentRuntime();
    if (!runtime) throw new Error(`Actor ${handle[ACTOR_INFO].className}: Shoal is not running in this process; call init() first`);
    const ref = runtime.callActor(handle, method, args);
    if (options?.signal) cancelOnAbort(runtime, ref, options.signal);
    return handle[ACTOR_INFO].methods.includes(`*${method}`) ? new ObjectStream(runtime, ref as ObjectRef<number>) : ref;
  },
  callOptions: resolveActorCallOptions,
});

/**
 * Cancels the task or actor call of `ref` when `signal` aborts (at once if it has); the listener
 * goes when the ref settles.
 */
export function cancelOnAbort(runtime: Runtime, ref: ObjectRef, signal: AbortSignal): void {
  if (signal.aborted) {
    runtime.cancel(ref);
    return;
  }
  const abort = () => runtime.cancel(ref);
  signal.addEventListener('abort', abort, { once: true });
  void runtime.settled(ref).finally(() => signal.removeEventListener('abort', abort));
}

/** Installs (or, with undefined, removes) the runtime of this process. */
export function setCurrentRuntime(runtime: Runtime | undefined): void {
  if (runtime) (globalThis as Holder)[KEY] = runtime;
  else delete (globalThis as Holder)[KEY];
}
