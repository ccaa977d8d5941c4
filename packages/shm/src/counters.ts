import { native } from './native.js';

/**
 * Atomic 64-bit counters in a shared mapping, for books that several processes keep at once (the
 * session's capacity page). JavaScript's `Atomics` cannot be used: a mapping is a plain external
 * ArrayBuffer, not a SharedArrayBuffer. `offset` is the byte offset of an 8-byte-aligned word in
 * `buffer`; every function is one atomic operation on that word (a few tens of nanoseconds, the
 * cost of the call). Values are integers JavaScript holds exactly.
 *
 * @example
 * ```ts
 * const page = mapSegment(fd, 4096, { shared: true });
 * if (!reserveOnCounter(page, 0, size, limit)) throw new Error('full');
 * addToCounter(page, 0, -size); // give it back
 * ```
 * @throws TypeError for an offset outside the buffer or not aligned, or a size that is not a count.
 */
export function loadCounter(buffer: ArrayBuffer, offset: number): number {
  return native.loadCounter(buffer, offset);
}

/** Adds `delta` (negative to subtract) to the word; returns its new value. See {@link loadCounter}. */
export function addToCounter(buffer: ArrayBuffer, offset: number, delta: number): number {
  return native.addToCounter(buffer, offset, delta);
}

/**
 * Adds `size` to the word only if it then holds at most `limit`, in one compare-and-swap;
 * returns whether it did. See {@link loadCounter}.
 */
export function reserveOnCounter(buffer: ArrayBuffer, offset: number, size: number, limit: number): boolean {
  return native.reserveOnCounter(buffer, offset, size, limit);
}

/** Subtracts `size` from the word only if it holds at least that much; returns whether it did. */
export function takeFromCounter(buffer: ArrayBuffer, offset: number, size: number): boolean {
  return native.takeFromCounter(buffer, offset, size);
}

/** Sets the word to `desired` only if it holds `expected`; returns whether it did. */
export function exchangeCounter(buffer: ArrayBuffer, offset: number, expected: number, desired: number): boolean {
  return native.exchangeCounter(buffer, offset, expected, desired);
}
