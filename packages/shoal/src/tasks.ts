import { ObjectRef } from '@shoal/runtime';
import { remote as makeRemote, type RemoteFunction, type RemoteOptions, type WaitResult } from '@shoal/runtime';
import { runtime } from './session.js';

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
  return makeRemote(fn, options, runtime);
}

/** Values of refs: `get(ref)` or `get([ref1, ref2])` (in order). */
export function get<T>(ref: ObjectRef<T>): Promise<T>;
export function get<const R extends readonly ObjectRef[]>(refs: R): Promise<{ -readonly [K in keyof R]: Awaited<R[K]> }>;
export async function get(target: ObjectRef | readonly ObjectRef[]): Promise<unknown> {
  if (Array.isArray(target)) {
    target.forEach((ref, i) => checkRef(ref, `refs[${i}]`));
    return Promise.all(target.map((ref: ObjectRef) => runtime().get(ref)));
  }
  checkRef(target, 'ref');
  return runtime().get(target as ObjectRef);
}

/** Options of {@link wait}. */
export interface WaitOptions {
  /** How many refs must be ready before wait returns. @default 1 */
  readonly numReturns?: number;
  /** Return after this many ms with whatever is ready. @default no limit */
  readonly timeoutMs?: number;
}

/**
 * Waits until `numReturns` of the refs are ready (or failed), or until `timeoutMs`, and splits
 * them into `{ ready, pending }`, each in the order given.
 *
 * @example
 * ```ts
 * let pending = refs;
 * while (pending.length > 0) {
 *   const result = await wait(pending);
 *   for (const ref of result.ready) console.log(await ref);
 *   pending = result.pending;
 * }
 * ```
 */
export function wait<T>(refs: readonly ObjectRef<T>[], options: WaitOptions = {}): Promise<WaitResult<T>> {
  if (!Array.isArray(refs)) throw new TypeError(`Expected \`refs\` to be an array of ObjectRefs, got \`${typeof refs}\``);
  refs.forEach((ref, i) => checkRef(ref, `refs[${i}]`));
  const numReturns = options.numReturns ?? 1;
  if (!Number.isInteger(numReturns) || numReturns < 0 || numReturns > refs.length) {
    throw new TypeError(`Expected \`numReturns\` to be an integer from 0 to ${refs.length}, got \`${String(numReturns)}\``);
  }
  const timeoutMs = options.timeoutMs ?? null;
  if (timeoutMs !== null && (typeof timeoutMs !== 'number' || !(timeoutMs >= 0))) {
    throw new TypeError(`Expected \`timeoutMs\` to be a non-negative number, got \`${String(timeoutMs)}\``);
  }
  return runtime().wait(refs, numReturns, timeoutMs) as Promise<WaitResult<T>>;
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
    throw new TypeError(`Expected \`${name}\` to be an ObjectRef, got \`${ref === null ? 'null' : typeof ref}\``);
  }
}

