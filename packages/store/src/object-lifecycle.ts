import { EventEmitter } from 'node:events';
import { debuglog } from 'node:util';
import { ObjectCorruptError, ObjectFreedError, type ObjectPayload } from '@shoal/protocol';
import { Capacity } from './capacity.js';
import { CollectionThrottle, collectGarbage } from './collect-garbage.js';
import { IncomingObject } from './incoming-object.js';
import { ObjectTable, wake, type Entry } from './object-table.js';
import { RefCounts } from './ref-counts.js';
import { checkWrittenSize, closeSegment, mapSegment, openSegment, removeQuietly, unmapNow } from './segment-files.js';
import { OutgoingObject } from './outgoing-object.js';
import { SegmentPool, type SegmentMemory } from './segment-pool.js';
import { copyViews } from './segment-io.js';
import type { SessionSegments } from './session-segments.js';

const debug = debuglog('shoal:store');


/** The store's events: segment objects stored and deleted (inline objects are not announced). */
export interface StoreEvents {
  /** A segment object of `size` bytes was stored (a cluster's object directory learns of it). */
  add: [id: string, size: number];
  /** A segment object was deleted (other processes should drop their mappings of it). */
  delete: [id: string];
}

/**
 * How objects come and go, and the files that go with them: it keeps the object table, the
 * reference counts and the capacity consistent with the segment files, and announces segment
 * objects added and deleted. The store's façade checks arguments and state, then calls this.
 */
export class ObjectLifecycle {
  readonly table = new ObjectTable();
  readonly refs: RefCounts;
  readonly capacity: Capacity;
  readonly events = new EventEmitter<StoreEvents>();
  readonly #segments: SessionSegments;
  readonly #pathOf: (id: string) => string;
  /** Objects arriving (written chunk by chunk), by id: their sizes are reserved. */
  readonly #incoming = new Map<string, IncomingObject>();
  readonly #collections = new CollectionThrottle();
  /** Room granted to writers in other processes before they write a segment, by object id (bytes). */
  readonly #grants = new Map<string, number>();
  /** Memory of deleted objects kept for reuse, and the files this process wrote through it, by id. */
  readonly #pool: SegmentPool;
  readonly #files = new Map<string, SegmentMemory>();
  /** Files of the pool lent to another process to write a task result into, by object id. */
  readonly #lent = new Map<string, SegmentMemory>();

  constructor(sessionId: string, capacity: number, segments: SessionSegments, directory: string, pathOf: (id: string) => string) {
    this.capacity = new Capacity(capacity);
    this.refs = new RefCounts(this.table, sessionId, (id) => this.delete(id));
    this.#segments = segments;
    this.#pathOf = pathOf;
    this.#pool = new SegmentPool(directory);
  }

  /** Bytes of deleted objects' memory kept for reuse (never more than the capacity leaves free). */
  get reusableBytes(): number {
    return this.#pool.heldBytes;
  }

  /**
   * Takes `size` bytes of the capacity for an object about to be written. When they do not fit,
   * refs this process dropped may still be waiting for a collection that may never come (a small
   * heap gives V8 no reason to run one): one is run now, the refs it found dead count out at once
   * (their objects go), and the reservation is tried again.
   * @throws ObjectStoreFullError when it does not fit even then.
   */
  reserve(size: number, detail = ''): void {
    this.makeRoom(size);
    this.capacity.reserve(size, detail);
    this.#trimPool();
  }

  /**
   * Writes object `id`'s new segment of `size` bytes (already reserved) through `write`, into
   * reused memory when the pool has a file of about that size (see SegmentPool). On failure
   * nothing is left behind (the reservation is the caller's to give back).
   */
  writeSegment(id: string, size: number, write: (memory: ArrayBuffer) => void): void {
    const path = this.#pathOf(id);
    const file = this.#pool.claim(path, size);
    try {
      write(file.memory);
    } catch (error) {
      this.#pool.discard(path, file);
      throw error;
    }
    this.#files.set(id, file);
  }

  /**
   * Records segment `id`, written by {@link ObjectLifecycle.writeSegment} with its room reserved,
   * as ready (settling a pending entry of that id).
   * @throws Error when a finished object of that id exists (the new file is removed).
   */
  sealWritten(id: string, size: number, contains: readonly string[]): void {
    const existing = this.table.get(id);
    if (existing && existing.state !== 'pending') {
      this.#removeWritten(id);
      this.capacity.unreserve(size);
      throw new Error(`object ${id} already exists`);
    }
    const held = this.refs.retainContained(contains);
    this.capacity.commitSegment();
    this.events.emit('add', id, size);
    this.#settleReady(id, existing, size, undefined, held);
  }

  /** Collects dropped refs (see {@link ObjectLifecycle.reserve}) unless `size` fits already; never throws for room. */
  makeRoom(size: number): void {
    if (this.capacity.fits(size)) return;
    if (!this.#collections.due()) return;
    collectGarbage();
    const freed = this.refs.sweep() > 0;
    this.#collections.ran(freed);
    debug('collected garbage for %d bytes: %s', size, freed ? 'refs were dropped' : 'nothing was dropped');
  }

  /** Records a new object made in this process (inline, or a segment whose reservation it commits). */
  added(id: string, size: number, bytes: Uint8Array | undefined, contains: readonly string[]): void {
    if (bytes) this.capacity.addInline(size);
    else this.capacity.commitSegment();
    this.table.ready(id, undefined, size, bytes, this.refs.retainContained(contains));
    if (!bytes) this.events.emit('add', id, size);
  }

  /** See `ObjectStore.register`. */
  register(id: string, payload: ObjectPayload, writer?: number): void {
    const incoming = payload.bytes ? undefined : this.#incoming.get(id);
    if (incoming) return incoming.seal(payload.contains);
    if (payload.bytes) {
      // The size is what capacity counts: it must be the bytes'. A grant for a segment result
      // whose retry came back inline is given back (no segment will charge it).
      if (payload.bytes.byteLength !== payload.size) {
        throw new RangeError(`Object ${id} says it has ${payload.size} bytes but carries ${payload.bytes.byteLength}`);
      }
      this.releaseGrant(id);
    }
    const existing = this.table.get(id);
    if (existing && existing.state !== 'pending') throw new Error(`object ${id} already exists`);
    if (!payload.bytes) {
      try {
        this.#chargeWritten(id, payload.size, writer);
      } catch (error) {
        // No room, or a file that is not what its writer said: the file goes (a lent one back to
        // the pool); a pending object (a task's result) is that failure.
        if (!this.#returnLent(id)) removeQuietly(-1, this.#pathOf(id));
        if (existing?.state !== 'pending') throw error;
        this.fail(id, error as Error);
        return;
      }
    }
    const contains = this.refs.retainContained(payload.contains);
    if (payload.bytes) this.capacity.addInline(payload.size);
    else this.events.emit('add', id, payload.size);
    this.#settleReady(id, existing, payload.size, payload.bytes, contains);
  }

  /** See `ObjectStore.reserveRoom`. */
  grant(id: string, size: number, detail: string): boolean {
    // A retry of the same task asks again: its earlier grant is replaced, not added to.
    this.releaseGrant(id, true);
    try {
      this.reserve(size, detail);
    } catch (error) {
      this.#returnLent(id);
      throw error;
    }
    this.#grants.set(id, size);
    const lent = this.#lent.get(id);
    if (lent && lent.capacity >= size) return true;
    this.#returnLent(id);
    const file = this.#pool.lend(this.#pathOf(id), size);
    if (file) this.#lent.set(id, file);
    return file !== undefined;
  }

  /**
   * See `ObjectStore.releaseRoom`. A file lent for the object goes back to the pool too, unless
   * `keepFile` (the grant is about to be replaced, or becomes the object's charge).
   */
  releaseGrant(id: string, keepFile = false): void {
    if (!keepFile) this.#returnLent(id);
    const size = this.#grants.get(id);
    if (size === undefined) return;
    this.#grants.delete(id);
    this.capacity.unreserve(size);
  }

  /** Gives the file lent for `id`'s result back to the pool (it drains while its writer holds it). Whether there was one. */
  #returnLent(id: string): boolean {
    const file = this.#lent.get(id);
    if (!file) return false;
    this.#lent.delete(id);
    this.#pool.release(this.#pathOf(id), file);
    return true;
  }

  /**
   * A segment another process wrote is charged: its grant, or what `writer` (its pid) reserved
   * in the capacity page, becomes the object's bytes, with no moment in between when another
   * writer could take them. Without either (or beyond a grant) it must fit now, or
   * ObjectStoreFullError. A file that is not the size its writer said is refused, and the room
   * held for it given back.
   */
  #chargeWritten(id: string, size: number, writer: number | undefined): void {
    const granted = this.#grants.get(id) ?? 0;
    // Bytes of `used` already held for this segment: from here they are this charge's to keep or give back.
    let held = 0;
    if (granted >= size && this.#grants.delete(id)) held = granted;
    else {
      this.releaseGrant(id, true);
      if (writer !== undefined && this.capacity.takeReserved(writer, size)) held = size;
    }
    const lent = this.#lent.get(id);
    try {
      // A lent file keeps its size (its pages); one the writer made is exactly the object's.
      checkWrittenSize(this.#pathOf(id), lent?.capacity ?? size, `object ${id}`);
      if (lent && lent.capacity < size) throw new ObjectCorruptError(`object ${id}`, `its writer says ${size} bytes, more than the ${lent.capacity} lent for it`);
      if (held === 0) {
        this.makeRoom(size);
        this.capacity.reserve(size, granted > 0 ? ` (${granted} bytes were reserved for it)` : ' (written by another process of the session)');
        held = size;
      }
    } catch (error) {
      this.capacity.unreserve(held);
      throw error;
    }
    this.capacity.unreserve(held - size);
    this.capacity.commitSegment();
    if (lent) {
      this.#lent.delete(id);
      this.#files.set(id, lent);
    }
    this.#trimPool();
  }

  /** See `ObjectStore.releaseWriter`. */
  releaseWriter(pid: number): number {
    return this.capacity.releaseWriter(pid);
  }

  /** See `ObjectStore.acceptIncoming`. */
  accept(id: string, size: number, detail: string): IncomingObject {
    if (this.#incoming.has(id)) throw new Error(`object ${id} is already arriving`);
    this.reserve(size, detail);
    const path = this.#pathOf(id);
    let file: SegmentMemory;
    try {
      file = this.#pool.claim(path, size);
    } catch (error) {
      this.capacity.unreserve(size);
      throw error;
    }
    const incoming = new IncomingObject(id, size, (chunk, offset) => copyViews(file.memory, [chunk], [offset]), {
      seal: (sealed, contains) => {
        this.#incoming.delete(id);
        this.#files.set(id, file);
        this.sealWritten(sealed.id, sealed.size, contains);
      },
      discarded: (gone) => {
        if (this.#incoming.get(id) !== gone) return;
        this.#incoming.delete(id);
        // Never published, so nobody maps it: its memory is reused at once.
        this.#pool.release(path, file);
        this.capacity.unreserve(size);
      },
    });
    this.#incoming.set(id, incoming);
    return incoming;
  }

  /** See `ObjectStore.discardUnclaimed`. */
  discardUnclaimed(id: string): void {
    this.releaseGrant(id);
    const incoming = this.#incoming.get(id);
    if (incoming) return incoming.discard();
    const entry = this.table.get(id);
    if (entry?.state === 'ready' && !entry.bytes) return;
    removeQuietly(-1, this.#pathOf(id));
  }

  /** See `ObjectStore.openForRead`. */
  openForRead(id: string): OutgoingObject {
    const entry = this.table.get(id);
    if (!entry || entry.state !== 'ready' || entry.bytes) throw new ObjectFreedError(id);
    const path = this.#pathOf(id);
    const fd = openSegment(path, 'read');
    try {
      return new OutgoingObject(id, entry.size, mapSegment(fd, entry.size, { shared: false }, path));
    } finally {
      closeSegment(fd, path);
    }
  }

  /** Settles a pending object as failed. */
  fail(id: string, error: Error): void {
    this.releaseGrant(id);
    const entry = this.table.get(id);
    if (!entry || entry.state !== 'pending') return;
    this.#settle(id, entry, this.table.fail(entry, error));
  }

  /** Deletes the object whatever holds it: its segment is unlinked. False when there was none. */
  delete(id: string): boolean {
    const entry = this.table.remove(id);
    if (!entry) return false;
    const segment = entry.state === 'ready' && !entry.bytes;
    if (entry.state === 'ready' && entry.bytes) {
      this.capacity.removeInline(entry.size);
    } else if (segment) {
      this.capacity.removeSegment(entry.size);
      this.#segments.forget([id]);
      const file = this.#files.get(id);
      this.#files.delete(id);
      // Its memory is kept for reuse (within what the capacity leaves free), whoever wrote it.
      if (file) this.#pool.release(this.#pathOf(id), file);
      else if (this.capacity.limit - this.capacity.usedBytes - this.#pool.heldBytes >= entry.size) this.#pool.adopt(this.#pathOf(id));
      else removeQuietly(-1, this.#pathOf(id));
      this.#trimPool();
    }
    debug('freed %s (%d bytes)', id, entry.size);
    if (segment) this.events.emit('delete', id);
    for (const contained of entry.contains) this.refs.release(contained);
    return true;
  }

  /** Forgets every object, discarding those still arriving (the store closes). */
  clear(): void {
    for (const incoming of [...this.#incoming.values()]) incoming.discard();
    for (const file of [...this.#files.values(), ...this.#lent.values()]) unmapNow(file.memory);
    this.#files.clear();
    this.#lent.clear();
    this.#pool.clear();
    this.#grants.clear();
    this.table.clear();
    this.capacity.reset();
  }

  /** Removes a file written through the pool that will not be an object. */
  #removeWritten(id: string): void {
    const file = this.#files.get(id);
    if (!file) return removeQuietly(-1, this.#pathOf(id));
    this.#files.delete(id);
    this.#pool.discard(this.#pathOf(id), file);
  }

  /** Reused memory never takes room the capacity would give an object: at most what is free. */
  #trimPool(): void {
    if (this.#pool.heldFiles > 0) this.#pool.trim(Math.max(0, this.capacity.limit - this.capacity.usedBytes));
  }

  #settleReady(id: string, existing: Entry | undefined, size: number, bytes: Uint8Array | undefined, contains: readonly string[]): void {
    const waiters = this.table.ready(id, existing, size, bytes, contains);
    if (existing) this.#settle(id, existing, waiters);
  }

  /** A settled object nothing holds goes now; then whoever waited for it wakes. */
  #settle(id: string, entry: Entry, waiters: (() => void)[] | undefined): void {
    if (entry.count <= 0) this.delete(id);
    wake(waiters);
  }
}
