import { ObjectStoreFullError } from '@shoal/protocol';
import { CapacityPage } from './capacity-page.js';

/**
 * The store's accounting: bytes of segments (stored, or reserved by writers and incoming objects
 * not yet sealed) against the capacity, plus the counts `stats()` reports. Inline objects live in
 * the owner's memory and are counted apart, never against the capacity.
 *
 * The bytes live in a {@link CapacityPage}: this process's memory until {@link Capacity.share}
 * moves them to the session directory, where workers and attached programs reserve on the same
 * books before they write a segment.
 */
export class Capacity {
  /** Bytes of segments the store may hold at once. */
  readonly limit: number;
  #page: CapacityPage;
  #inlineBytes = 0;
  #segments = 0;

  constructor(limit: number) {
    this.limit = limit;
    this.#page = CapacityPage.local(limit);
  }

  /**
   * Moves the books into a capacity page in `directory`, for the other processes of the session
   * (the node does this once, before any of them connects).
   */
  share(directory: string): void {
    this.#page = CapacityPage.create(directory, this.limit, this.#page.used);
  }

  /** Bytes of stored segments plus reservations (this process's and every peer's). */
  get usedBytes(): number {
    return this.#page.used;
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
    const used = this.#page.used;
    if (used + size > this.limit) throw new ObjectStoreFullError(size, used, this.limit, detail);
  }

  /** Whether `size` more bytes fit now (no error built: the question a put asks before every reservation). */
  fits(size: number): boolean {
    checkSize(size);
    return this.#page.used + size <= this.limit;
  }

  /** Takes `size` bytes for an object about to be written (see {@link Capacity.assertRoom}). */
  reserve(size: number, detail = ''): void {
    checkSize(size);
    // One compare-and-swap: a peer reserving at the same moment cannot take the same room.
    if (!this.#page.tryReserve(size)) throw new ObjectStoreFullError(size, this.#page.used, this.limit, detail);
  }

  /** Gives back a reservation whose object was not stored. */
  unreserve(size: number): void {
    this.#page.add(-size);
  }

  /**
   * Takes over the `size` bytes process `writer` reserved for a segment it wrote: they stay in
   * `usedBytes`, now as this process's reservation (committed, or given back with
   * {@link Capacity.unreserve}). False when it reserved none (a peer without the page, or one
   * that did not reserve): reserve for it as for any unreserved segment.
   */
  takeReserved(writer: number, size: number): boolean {
    checkSize(size);
    return this.#page.takeReserved(writer, size);
  }

  /** Process `writer` is gone: the room it still held reserved is free again. Returns the bytes. */
  releaseWriter(writer: number): number {
    return this.#page.releaseOwner(writer);
  }

  /** A reservation became a stored segment object. */
  commitSegment(): void {
    this.#segments += 1;
  }

  removeSegment(size: number): void {
    this.#page.add(-size);
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
    this.#page = CapacityPage.local(this.limit);
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
