import type { ObjectRef } from '@shoal/protocol';
import { functionSource } from './function-source.js';
import { isAsyncGeneratorFunction, ObjectStream } from './stream.js';
import { resolveRemoteOptions, type RemoteOptions } from '../options.js';
import { cancelOnAbort, type Runtime } from './runtime.js';

/** Arguments of a remote function: each may be the value or an ObjectRef of it. */
export type RemoteArgs<A extends readonly unknown[]> = { [K in keyof A]: A[K] | ObjectRef<A[K]> };

/** What a call of a remote function returns: a ref of its result, or for an async generator a stream of refs. */
export type RemoteResult<R> = R extends AsyncGenerator<infer Y, unknown, unknown> ? ObjectStream<Awaited<Y>> : ObjectRef<Awaited<R>>;

/** A function turned into tasks by {@link remote}. */
export interface RemoteFunction<A extends readonly unknown[], R> {
  /**
   * Submits a task and returns at once with a ref to its result (for an async generator
   * function, an `ObjectStream` of its items). Top-level ObjectRef arguments are resolved
   * before the function runs (zero-copy for large objects); refs nested inside arguments arrive
   * as refs.
   */
  (...args: RemoteArgs<A>): RemoteResult<R>;
  /** The same function with other options, e.g. `.options({ numCpus: 0.5 })`. */
  options(options: RemoteOptions): RemoteFunction<A, R>;
  /** The wrapped function's name. */
  readonly remoteName: string;
}

/**
 * Turns `fn` into a remote function whose calls run as tasks in worker processes.
 * `fn` must not use variables from its enclosing scope (they do not exist in the worker): this is
 * checked now, with a TypeError naming each one.
 *
 * @param getRuntime the process's runtime, found (or started) at call time.
 */
export function makeRemote<A extends readonly unknown[], R>(
  fn: (...args: A) => R,
  options: RemoteOptions | undefined,
  getRuntime: () => Runtime,
  calledThrough: Function = makeRemote,
): RemoteFunction<A, R> {
  const source = functionSource(fn, 'remote', calledThrough);
  const streaming = isAsyncGeneratorFunction(fn);
  const resolved = resolveRemoteOptions(options, streaming);
  const signal = options?.signal;
  const call = (...args: RemoteArgs<A>): RemoteResult<R> => {
    const runtime = getRuntime();
    const ref = runtime.submit(source, args, resolved);
    if (signal) cancelOnAbort(runtime, ref, signal);
    return (streaming ? new ObjectStream(runtime, ref as ObjectRef<number>) : ref) as RemoteResult<R>;
  };
  return Object.assign(call, {
    options: function withOptions(next: RemoteOptions): RemoteFunction<A, R> {
      return makeRemote(fn, { ...options, ...next }, getRuntime, withOptions);
    },
    remoteName: source.name,
  });
}

export { makeRemote as remote };
