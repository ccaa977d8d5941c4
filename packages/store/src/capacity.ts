import { ObjectStoreFullError } from '@shoal/protocol';

/**
 * The store's accounting: bytes of segments (stored, or reserved by writers and incoming objects
 * not yet sealed) against the capacity, plus the counts `stats()` reports. Inline objects live in
 * the owner's memory and are counted apart, never against the capacity.
 */
export class Capacity {
  /** Bytes of segments the store may hold at once. */
  readonly limit: number;
  #used = 0;
  #inlineBytes = 0;
  #segments = 0;

  constructor(limit: number) {
    this.limit = limit;
  }

  /** Bytes of stored segments plus reservations. */
  get usedBytes(): number {
    return this.#used;
  }

  /** Bytes of inline objects. */
  get inlineBytes(): number {
    return this.#inlineBytes;
  }

  /** Stored segment objects. */
  get segments(): number {
    return this.#segments;
  }

  /**
   * Throws ObjectStoreFullError unless `size` more bytes fit now; `detail` is appended to its
   * message (why the object was wanted).
   */
  assertRoom(size: number, detail = ''): void {
    checkSize(size);
    if (this.#used + size > this.limit) throw new ObjectStoreFullError(size, this.#used, this.limit, detail);
  }

  /** Takes `size` bytes for an object about to be written (see {@link Capacity.assertRoom}). */
  reserve(size: number, detail = ''): void {
    this.assertRoom(size, detail);
    this.#used += size;
  }

  /** Gives back a reservation whose object was not stored. */
  unreserve(size: number): void {
    this.#used -= size;
  }

  /** A reservation became a stored segment object. */
  commitSegment(): void {
    this.#segments += 1;
  }

  /** A segment another process wrote, which fits (see {@link Capacity.assertRoom}). */
  addSegment(size: number): void {
    checkSize(size);
    this.#used += size;
    this.#segments += 1;
  }

  removeSegment(size: number): void {
    this.#used -= size;
    this.#segments -= 1;
  }

  addInline(size: number): void {
    checkSize(size);
    this.#inlineBytes += size;
  }

  removeInline(size: number): void {
    this.#inlineBytes -= size;
  }

  /** Forgets everything (the store closed). */
  reset(): void {
    this.#used = 0;
    this.#inlineBytes = 0;
    this.#segments = 0;
  }
}

/** A size from elsewhere must never make the books NaN, negative or fractional. */
function checkSize(size: number): void {
  if (!Number.isSafeInteger(size) || size < 0) {
    throw new RangeError(`Expected an object size to be a non-negative integer, got \`${size}\``);
  }
}
