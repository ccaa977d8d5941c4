import { join } from 'node:path';
import {
  addToCounter,
  closeSegment,
  createSegment,
  exchangeCounter,
  loadCounter,
  mapSegment,
  openSegment,
  removeQuietly,
  reserveOnCounter,
  segmentSize,
  takeFromCounter,
} from './segment-files.js';

/**
 * The capacity page's file in a session directory. Named like the node's socket: it is the
 * node's, not an object (tests and tools that list objects skip `node.*`).
 */
export const CAPACITY_PAGE_FILE = 'node.capacity';

// The page's layout, in one place. Every word is a 64-bit integer updated atomically (shm's
// counters): a header, then one slot per process that writes segments.
const MAGIC = 0x5348_4350; // "SHCP"
const MAGIC_OFFSET = 0;
const LIMIT_OFFSET = 8;
/** Bytes of stored segments plus every writer's reservations, in every process. */
const USED_OFFSET = 16;
const SLOTS_OFFSET = 64;
/** A slot: the pid of the process that claimed it (0: free), then the bytes it holds reserved. */
const SLOT_BYTES = 16;
const PAGE_BYTES = 64 * 1024;

/**
 * The books of a store's capacity, in memory every process of the session can map: `used`
 * (stored segment bytes plus reservations) against `limit`, changed only by atomic operations so
 * writers in different processes share one limit. A process that writes segments itself (a
 * worker, an attached program) claims a slot and records there what it holds reserved, so the
 * node can give it back when that process dies. A store without peers keeps the same books in
 * its own memory ({@link CapacityPage.local}).
 */
export class CapacityPage {
  readonly #buffer: ArrayBuffer;
  readonly #limit: number;
  readonly #slots: number;
  /** The slot each writer pid was last found in (the node looks a writer up once per put). */
  readonly #slotOf = new Map<number, number>();

  private constructor(buffer: ArrayBuffer) {
    this.#buffer = buffer;
    // Written once, before the page is valid: read it once (a reservation needs no second load).
    this.#limit = loadCounter(buffer, LIMIT_OFFSET);
    this.#slots = Math.max(0, Math.floor((buffer.byteLength - SLOTS_OFFSET) / SLOT_BYTES));
  }

  /** Books in this process's memory only (a store nobody else writes into), with no slots. */
  static local(limit: number): CapacityPage {
    return CapacityPage.#initialized(new ArrayBuffer(SLOTS_OFFSET), limit, 0);
  }

  /**
   * Creates the page in `directory` (the node does, before any peer connects) with `used` bytes
   * already taken.
   * @throws SharedMemoryError when the file cannot be created or mapped.
   */
  static create(directory: string, limit: number, used: number): CapacityPage {
    const path = join(directory, CAPACITY_PAGE_FILE);
    const fd = createSegment(path, PAGE_BYTES);
    try {
      return CapacityPage.#initialized(mapSegment(fd, PAGE_BYTES, { shared: true }, path), limit, used);
    } catch (error) {
      removeQuietly(-1, path);
      throw error;
    } finally {
      closeSegment(fd, path);
    }
  }

  /**
   * Maps the page of the node whose session directory is `directory`; undefined when there is
   * none (an older node, or one going away): then nothing can be reserved here, and the node
   * checks each segment when it is told of it.
   */
  static open(directory: string): CapacityPage | undefined {
    const path = join(directory, CAPACITY_PAGE_FILE);
    let fd: number;
    try {
      fd = openSegment(path, 'write');
    } catch {
      return undefined;
    }
    try {
      if (segmentSize(fd, path) !== PAGE_BYTES) return undefined;
      const buffer = mapSegment(fd, PAGE_BYTES, { shared: true }, path);
      return loadCounter(buffer, MAGIC_OFFSET) === MAGIC ? new CapacityPage(buffer) : undefined;
    } catch {
      return undefined;
    } finally {
      closeSegment(fd, path);
    }
  }

  static #initialized(buffer: ArrayBuffer, limit: number, used: number): CapacityPage {
    addToCounter(buffer, LIMIT_OFFSET, limit);
    addToCounter(buffer, USED_OFFSET, used);
    // Last: a page is only valid once its limit is in place.
    addToCounter(buffer, MAGIC_OFFSET, MAGIC);
    return new CapacityPage(buffer);
  }

  /** Bytes the session's segments may take at once. */
  get limit(): number {
    return this.#limit;
  }

  /** Bytes of stored segments plus every reservation, whoever made it. */
  get used(): number {
    return loadCounter(this.#buffer, USED_OFFSET);
  }

  /** Takes `size` bytes if they fit under the limit (one compare-and-swap); false when they do not. */
  tryReserve(size: number): boolean {
    return reserveOnCounter(this.#buffer, USED_OFFSET, size, this.#limit);
  }

  /** Adds `delta` bytes to `used` (negative: gives bytes back). */
  add(delta: number): void {
    addToCounter(this.#buffer, USED_OFFSET, delta);
  }

  /**
   * Claims a free slot for process `pid` (the process itself does, before its first reservation).
   * Undefined when every slot is taken.
   */
  claimSlot(pid: number): number | undefined {
    for (let slot = 0; slot < this.#slots; slot++) {
      if (exchangeCounter(this.#buffer, this.#ownerOffset(slot), 0, pid)) return slot;
    }
    return undefined;
  }

  /**
   * Takes `size` bytes for a segment about to be written by the process owning `slot`, recorded
   * in its slot. Used first, then the slot: a process that dies between the two leaves `size`
   * bytes counted (never room counted twice).
   */
  reserveInSlot(slot: number, size: number): boolean {
    if (!this.tryReserve(size)) return false;
    addToCounter(this.#buffer, this.#heldOffset(slot), size);
    return true;
  }

  /** Gives back `size` bytes `slot` reserved for a segment it did not write after all. */
  releaseInSlot(slot: number, size: number): void {
    if (takeFromCounter(this.#buffer, this.#heldOffset(slot), size)) this.add(-size);
  }

  /**
   * The node takes over `size` bytes process `pid` reserved (its segment was registered): they
   * stay in `used`, as the object's charge. False when `pid` holds no such reservation.
   */
  takeReserved(pid: number, size: number): boolean {
    const cached = this.#slotOf.get(pid);
    if (cached !== undefined && this.#owner(cached) === pid && takeFromCounter(this.#buffer, this.#heldOffset(cached), size)) return true;
    for (let slot = 0; slot < this.#slots; slot++) {
      if (this.#owner(slot) !== pid || !takeFromCounter(this.#buffer, this.#heldOffset(slot), size)) continue;
      this.#slotOf.set(pid, slot);
      return true;
    }
    return false;
  }

  /**
   * Process `pid` is gone: what its slots still hold reserved is given back and the slots are
   * freed. Returns the bytes given back.
   */
  releaseOwner(pid: number): number {
    this.#slotOf.delete(pid);
    let released = 0;
    for (let slot = 0; slot < this.#slots; slot++) {
      if (this.#owner(slot) !== pid) continue;
      const held = loadCounter(this.#buffer, this.#heldOffset(slot));
      // A slot scribbled on by someone else must not drive the books below zero.
      const bytes = Math.max(0, Math.min(held, this.used));
      if (held > 0 && takeFromCounter(this.#buffer, this.#heldOffset(slot), held)) {
        this.add(-bytes);
        released += bytes;
      }
      exchangeCounter(this.#buffer, this.#ownerOffset(slot), pid, 0);
    }
    return released;
  }

  #owner(slot: number): number {
    return loadCounter(this.#buffer, this.#ownerOffset(slot));
  }

  #ownerOffset(slot: number): number {
    return SLOTS_OFFSET + slot * SLOT_BYTES;
  }

  #heldOffset(slot: number): number {
    return SLOTS_OFFSET + slot * SLOT_BYTES + 8;
  }
}
