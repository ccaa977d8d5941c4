import { GetTimeoutError, ObjectRef, argumentError } from '@shoal/runtime';
import { remote as makeRemote, type RemoteFunction, type RemoteOptions, type WaitResult } from '@shoal/runtime';
import { expectTasks, runtime } from './session.js';

/**
 * Turns a function into a remote function: each call runs as a task in a worker process and
 * returns an `ObjectRef` of the result at once.
 *
 * The function is shipped as source, so it must not use variables from its enclosing scope
 * (a `TypeError` names any it does); it may use its arguments, globals, Node built-ins, and
 * modules it imports itself with `await import(...)`.
 *
 * @example
 * ```ts
 * const sum = remote((a: Float64Array) => { let s = 0; for (const x of a) s += x; return s; });
 * const ref = store.put(new Float64Array(1e8).fill(1));
 * console.log(await sum(ref)); // the worker reads the array in place
 * ```
 */
export function remote<A extends readonly unknown[], R>(fn: (...args: A) => R, options?: RemoteOptions): RemoteFunction<A, R> {
  // Its caller is where the function comes from (see functionSource).
  const made = makeRemote(fn, options, runtime, remote);
  expectTasks();
  return made;
}

/** Options of {@link get}. */
export interface GetOptions {
  /** Reject with `GetTimeoutError` if the value is not there after this many ms. @default no limit */
  readonly timeoutMs?: number;
  /** Reject with the signal's reason (an `AbortError` by default) when it aborts. */
  readonly signal?: AbortSignal;
}

/**
 * Values of refs: `get(ref)` or `get([ref1, ref2])` (in order), waiting for tasks still running.
 * With `timeoutMs` or `signal`, the wait can end first: the get rejects, and the objects and
 * their tasks are not affected (`cancel(ref)` stops a task).
 *
 * @example
 * ```ts
 * const value = await get(ref, { timeoutMs: 5000 }); // GetTimeoutError after 5 s
 * const values = await get(refs, { signal: AbortSignal.timeout(5000) });
 * ```
 */
export function get<T>(ref: ObjectRef<T>, options?: GetOptions): Promise<T>;
export function get<const R extends readonly ObjectRef[]>(refs: R, options?: GetOptions): Promise<{ -readonly [K in keyof R]: Awaited<R[K]> }>;
export async function get(target: ObjectRef | readonly ObjectRef[], options: GetOptions = {}): Promise<unknown> {
  const { timeoutMs, signal } = checkWaitOptions(options);
  let values: Promise<unknown>;
  let count = 1;
  if (Array.isArray(target)) {
    target.forEach((ref, i) => checkRef(ref, `refs[${i}]`));
    count = target.length;
    values = runtime().getAll(target as readonly ObjectRef[]);
  } else {
    checkRef(target, 'ref');
    values = runtime().get(target as ObjectRef);
  }
  if (timeoutMs === undefined && signal === undefined) return values;
  return bounded(values, timeoutMs, signal, () => new GetTimeoutError(timeoutMs ?? 0, count));
}

/** Checks `timeoutMs` and `signal` of a get or wait. */
function checkWaitOptions(options: GetOptions): GetOptions {
  if (typeof options !== 'object' || options === null) throw argumentError('ERR_INVALID_ARGUMENT', `Expected options to be an object, got \`${String(options)}\``);
  const { timeoutMs, signal } = options;
  if (timeoutMs !== undefined && (typeof timeoutMs !== 'number' || !(timeoutMs >= 0))) {
    throw argumentError('ERR_INVALID_ARGUMENT', `Expected \`timeoutMs\` to be a non-negative number, got \`${String(timeoutMs)}\``);
  }
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw argumentError('ERR_INVALID_ARGUMENT', `Expected \`signal\` to be an AbortSignal, got \`${typeof signal}\``);
  }
  return options;
}

/** `promise`, unless `timeoutMs` passes first (then `timedOut()`) or `signal` aborts (its reason). */
function bounded<T>(promise: Promise<T>, timeoutMs: number | undefined, signal: AbortSignal | undefined, timedOut: () => Error): Promise<T> {
  signal?.throwIfAborted();
  return new Promise<T>((resolve, reject) => {
    const timer = timeoutMs === undefined ? undefined : setTimeout(() => finish(() => reject(timedOut())), timeoutMs);
    const aborted = () => finish(() => reject(signal!.reason));
    signal?.addEventListener('abort', aborted, { once: true });
    const finish = (settle: () => void) => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', aborted);
      settle();
    };
    promise.then(
      (value) => finish(() => resolve(value)),
      (error: unknown) => finish(() => reject(error as Error)),
    );
  });
}

/** Options of {@link wait}. */
export interface WaitOptions {
  /** How many refs must be ready before wait returns. @default 1 */
  readonly numReturns?: number;
  /** Return after this many ms with whatever is ready. @default no limit */
  readonly timeoutMs?: number;
  /** Reject with the signal's reason (an `AbortError` by default) when it aborts. */
  readonly signal?: AbortSignal;
}

/**
 * Waits until `numReturns` of the refs are ready (or failed), or until `timeoutMs`, and splits
 * them into `{ ready, pending }`, each in the order given: `ready` has every ref ready by then,
 * which may be more than `numReturns`. Each call looks at every ref it is given, so handle all of
 * `ready` each round (one `get` for them), never one ref per call: that makes the loop quadratic.
 *
 * @example
 * ```ts
 * let pending = refs;
 * while (pending.length > 0) {
 *   const result = await wait(pending);               // at least one ready
 *   for (const value of await get(result.ready)) console.log(value);
 *   pending = result.pending;
 * }
 * ```
 */
export function wait<T>(refs: readonly ObjectRef<T>[], options: WaitOptions = {}): Promise<WaitResult<T>> {
  if (!Array.isArray(refs)) throw argumentError('ERR_INVALID_ARGUMENT', `Expected \`refs\` to be an array of ObjectRefs, got \`${typeof refs}\``);
  for (let i = 0; i < refs.length; i++) if (!(refs[i] instanceof ObjectRef)) checkRef(refs[i], `refs[${i}]`);
  const numReturns = options.numReturns ?? 1;
  if (!Number.isInteger(numReturns) || numReturns < 0 || numReturns > refs.length) {
    throw argumentError('ERR_INVALID_ARGUMENT', `Expected \`numReturns\` to be an integer from 0 to ${refs.length}, got \`${String(numReturns)}\``);
  }
  const { timeoutMs, signal } = checkWaitOptions(options);
  const waited = runtime().wait(refs, numReturns, timeoutMs ?? null) as Promise<WaitResult<T>>;
  return signal === undefined ? waited : bounded(waited, undefined, signal, () => new Error('unreachable'));
}

/**
 * Cancels the task that produces `ref`: a queued task is dropped, a running one has its worker
 * killed. Getting the ref then fails with `TaskCancelledError`. A finished task is unaffected.
 */
export function cancel(ref: ObjectRef): void {
  checkRef(ref, 'ref');
  runtime().cancel(ref);
}

function checkRef(ref: unknown, name: string): void {
  if (!(ref instanceof ObjectRef)) {
    throw argumentError('ERR_INVALID_ARGUMENT', `Expected \`${name}\` to be an ObjectRef, got \`${ref === null ? 'null' : typeof ref}\``);
  }
}

