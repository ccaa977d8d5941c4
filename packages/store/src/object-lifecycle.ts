import { EventEmitter } from 'node:events';
import { debuglog } from 'node:util';
import { ObjectCorruptError, ObjectFreedError, ObjectStoreFullError, SpillError, formatBytes, type ObjectPayload } from '@shoal/protocol';
import { Capacity } from './capacity.js';
import { CollectionThrottle, collectGarbage } from './collect-garbage.js';
import { IncomingObject } from './incoming-object.js';
import { ObjectTable, wake, type Entry, type Woken } from './object-table.js';
import { RefCounts } from './ref-counts.js';
import { checkWrittenSize, closeSegment, mapSegment, openSegment } from './segment-files.js';
import { OutgoingObject } from './outgoing-object.js';
import { ObjectFiles, type IncomingFile, type SpillTaken } from './object-files.js';
import type { SessionSegments } from './session-segments.js';
import { NO_SPILLS, type SpillFiles, type SpillStats } from './spill-files.js';
import { objectFreeChannel, objectPutChannel, type ObjectFreeMessage, type ObjectPutMessage } from './diagnostics.js';

const debug = debuglog('shoal:store');

/**
 * An object handed out to another process (a task argument, its get) is not spilled for this
 * long: the process told of it maps it within that time, and its mapping then keeps it in memory.
 */
const SPILL_GRACE_MS = 5000;


/** The store's events: segment objects stored and deleted (inline objects only as `gone`). */
export interface StoreEvents {
  /** A segment object of `size` bytes was stored (a cluster's object directory learns of it). */
  add: [id: string, size: number];
  /** A segment object was deleted (other processes should drop their mappings of it). */
  delete: [id: string];
  /** Any object was deleted, inline or not (what lives as long as an object does ends: an actor). */
  gone: [id: string];
  /**
   * Spilling had to pass over objects because a process maps them: the node asks its processes
   * to collect garbage (their mappings of objects no view needs go), so that the next spill can
   * take them — a synchronous put cannot wait for that itself.
   */
  pressure: [];
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
  /** Objects arriving from other nodes, by id: their sizes are reserved. */
  readonly #incoming = new Map<string, IncomingObject>();
  readonly #collections = new CollectionThrottle();
  /** Room granted to writers in other processes before they write a segment, by object id (bytes). */
  readonly #grants = new Map<string, number>();
  /** Memory of deleted objects kept for reuse, and which object holds which reused file. */
  readonly #files: ObjectFiles;
  /** Where objects are spilled when the store is full; undefined when spilling is off. */
  readonly #spill: SpillFiles | undefined;
  /** Segment objects in memory, least recently used first, with when another process was last told of it (performance.now(); never: long before). */
  readonly #resident = new Map<string, number>();
  /** Objects that must stay in memory (arguments of tasks sent to a worker), with how many pins each has. */
  readonly #pins = new Map<string, number>();

  constructor(
    sessionId: string,
    capacity: number,
    segments: SessionSegments,
    directory: string,
    pathOf: (id: string) => string,
    spill?: SpillFiles,
  ) {
    this.#spill = spill;
    this.capacity = new Capacity(capacity);
    this.refs = new RefCounts(this.table, sessionId, (id) => this.delete(id));
    this.#segments = segments;
    this.#pathOf = pathOf;
    this.#files = new ObjectFiles(directory, this.capacity, pathOf);
  }

  /** Bytes of deleted objects' memory kept for reuse (never more than the capacity leaves free). */
  get reusableBytes(): number {
    return this.#files.reusableBytes;
  }

  /**
   * Takes `size` bytes of the capacity for an object about to be written. When they do not fit,
   * refs this process dropped may still be waiting for a collection that may never come (a small
   * heap gives V8 no reason to run one): one is run now, the refs it found dead count out at once
   * (their objects go), and the reservation is tried again.
   * @throws ObjectStoreFullError when it does not fit even then.
   */
  reserve(size: number, detail = ''): void {
    this.capacity.reserve(size, detail + this.makeRoom(size, detail));
  }

  /**
   * Writes object `id`'s new segment of `size` bytes (already reserved) through `write`, into
   * reused memory when the pool has a file of about that size (see SegmentPool). On failure
   * nothing is left behind (the reservation is the caller's to give back).
   */
  writeSegment(id: string, size: number, write: (memory: ArrayBuffer) => void): void {
    this.#files.write(id, size, write);
  }

  /**
   * Records segment `id`, written by {@link ObjectLifecycle.writeSegment} with its room reserved,
   * as ready (settling a pending entry of that id).
   * @throws Error when a finished object of that id exists (the new file is removed).
   */
  sealWritten(id: string, size: number, contains: readonly string[]): void {
    const existing = this.table.get(id);
    if (existing && existing.state !== 'pending') {
      this.#files.discard(id);
      this.capacity.unreserve(size);
      throw new Error(`object ${id} already exists`);
    }
    const held = this.refs.retainContained(contains);
    this.capacity.commitSegment();
    this.#stored(id, size);
    this.#settleReady(id, existing, size, undefined, held);
  }

  /**
   * Makes room for `size` more bytes unless they fit already: collects dropped refs (see
   * {@link ObjectLifecycle.reserve}), then spills least recently used objects nobody maps. When
   * even that cannot make the room nothing is spilled (the reservation then fails), and what
   * is returned says why, for its error ('' otherwise).
   * @throws ObjectStoreFullError when the spill itself fails (the disk is full): nothing was lost.
   */
  makeRoom(size: number, detail = ''): string {
    if (this.capacity.fits(size)) return '';
    if (this.#collections.due()) {
      collectGarbage();
      const freed = this.refs.sweep() > 0;
      this.#collections.ran(freed);
      debug('collected garbage for %d bytes: %s', size, freed ? 'refs were dropped' : 'nothing was dropped');
    }
    return this.capacity.fits(size) ? '' : this.#spillFor(size, detail);
  }

  /**
   * Spills least recently used segment objects (not used in the last SPILL_GRACE_MS, mapped by no
   * process) until `size` more bytes fit, in one batch file; nothing when they would not suffice.
   */
  #spillFor(size: number, detail: string): string {
    const spill = this.#spill;
    if (!spill || size > this.capacity.limit) return '';
    const need = this.capacity.usedBytes + size - this.capacity.limit;
    const now = performance.now();
    const taken: { id: string; entry: Entry; file: SpillTaken }[] = [];
    const mapped: string[] = [];
    let freed = 0;
    for (const [id, told] of this.#resident) {
      if (freed >= need) break;
      if (now - told < SPILL_GRACE_MS || this.#pins.has(id)) continue;
      const entry = this.table.get(id);
      if (!entry || entry.state !== 'ready' || entry.bytes || entry.spilled) continue;
      let file: SpillTaken | undefined;
      try {
        file = this.#files.takeForSpill(id, entry.size);
      } catch (error) {
        // This one cannot be mapped to be read (ENOMEM, EMFILE): the others may be.
        debug('cannot spill %s: %o', id, error);
      }
      if (file) {
        taken.push({ id, entry, file });
        freed += entry.size;
      } else mapped.push(id);
    }
    if (freed < need) {
      debug('cannot spill %d bytes for %d: only %d are spillable', need, size, freed);
      for (const { file } of taken) file.abort();
      // Some may be mapped by this process's cache only, kept for gets to come: let it go of
      // them, so that once collected (an await later: see ObjectStore.get) they can be spilled.
      this.#segments.release(mapped);
      if (mapped.length > 0) this.events.emit('pressure');
      return (
        `; spilling to disk could free only ${formatBytes(freed)}: the other objects are mapped by a process ` +
        '(a view of them is alive), are arguments of running tasks, or were handed to a process in the last 5 s'
      );
    }
    // An object read back earlier still has its copy on disk (it is immutable): only the others are written.
    const unwritten = taken.filter(({ id }) => !spill.has(id)).map(({ id, file }) => ({ id, bytes: file.bytes }));
    try {
      try {
        spill.write(unwritten);
      } catch (error) {
        // A full disk may be full of copies kept of objects in memory: they go, and it is tried again.
        const kept = spill.keptCopies();
        if (!(error instanceof SpillError) || !['ENOSPC', 'EDQUOT'].includes(error.errnoCode) || kept.length === 0) throw error;
        debug('the spill disk is full: deleting %d copies of objects in memory, then trying again', kept.length);
        for (const id of kept) if (!taken.some((object) => object.id === id)) spill.delete(id);
        spill.write(taken.filter(({ id }) => !spill.has(id)).map(({ id, file }) => ({ id, bytes: file.bytes })));
      }
    } catch (error) {
      for (const { file } of taken) file.abort();
      throw this.#full(size, `${detail}; spilling ${formatBytes(freed)} to make room failed`, error as Error);
    }
    // Every object is on disk now: all are marked before any file's memory goes.
    for (const { id, entry } of taken) {
      spill.respilled(id);
      entry.spilled = true;
      this.#resident.delete(id);
      this.capacity.removeSegment(entry.size);
    }
    this.#segments.forget(taken.map(({ id }) => id));
    for (const { file } of taken) file.commit();
    debug('spilled %d objects (%d bytes) for %d bytes', taken.length, freed, size);
    if (mapped.length > 0) this.events.emit('pressure');
    return '';
  }

  /**
   * Object `id` is used now (a get, a task argument, a pull): a spilled one is read back into
   * memory (room made as for a put, spilling others), and either is the most recently used.
   * `toldOther`: another process is told of it now, to map it itself (not spilled meanwhile).
   * @throws ObjectStoreFullError when it cannot be brought back (no room, the disk failed).
   */
  use(id: string, toldOther: boolean): void {
    const entry = this.table.get(id);
    if (!entry || entry.state !== 'ready' || entry.bytes) return;
    const told = toldOther ? performance.now() : (this.#resident.get(id) ?? -SPILL_GRACE_MS);
    if (!entry.spilled) {
      this.#resident.delete(id);
      this.#resident.set(id, told);
      return;
    }
    const spill = this.#spill!;
    const { size } = entry;
    this.reserve(size, `, so spilled object ${id} cannot be read back`);
    // The collection the reservation may have run can have freed this very object.
    if (this.table.get(id) !== entry) {
      this.capacity.unreserve(size);
      throw new ObjectFreedError(id);
    }
    try {
      this.#files.write(id, size, (memory) => spill.read(id, new Uint8Array(memory, 0, size)));
    } catch (error) {
      this.capacity.unreserve(size);
      if (error instanceof SpillError) throw this.#full(size, `, so spilled object ${id} cannot be read back`, error);
      throw error;
    }
    this.capacity.commitSegment();
    spill.restored(id);
    entry.spilled = false;
    this.#resident.set(id, told);
  }

  /**
   * Object `id` must stay in memory until as many {@link ObjectLifecycle.unpin} calls (an argument
   * of a task sent to a worker: it maps the object when the task starts). A spilled one is not
   * read back by this: {@link ObjectLifecycle.use} does that, and it then stays.
   */
  pin(id: string): void {
    this.#pins.set(id, (this.#pins.get(id) ?? 0) + 1);
  }

  /** One pin of `id` is let go (see {@link ObjectLifecycle.pin}); with none left it may be spilled. */
  unpin(id: string): void {
    const pins = this.#pins.get(id);
    if (pins === undefined) return;
    if (pins > 1) this.#pins.set(id, pins - 1);
    else this.#pins.delete(id);
  }

  /**
   * Milliseconds until the soonest grace after a hand-out ends among objects that spilling passes
   * over only for it: waiting that long may make room for `size` more bytes. 0 when spilling is
   * off, when none is in its grace, or when all of them together could not make that room.
   */
  graceLeft(size: number): number {
    if (!this.#spill) return 0;
    const now = performance.now();
    let left = 0;
    let graced = 0;
    for (const [id, told] of this.#resident) {
      const remaining = SPILL_GRACE_MS - (now - told);
      if (remaining <= 0 || this.#pins.has(id)) continue;
      graced += this.table.get(id)?.size ?? 0;
      left = left === 0 ? remaining : Math.min(left, remaining);
    }
    return graced >= this.capacity.usedBytes + size - this.capacity.limit ? Math.ceil(left) : 0;
  }

  /** Whether object `id` is on disk now (a use reads it back). */
  isSpilled(id: string): boolean {
    return this.table.get(id)?.spilled === true;
  }

  /** What was spilled and read back (zeros when spilling is off). */
  spillStats(): SpillStats {
    return this.#spill?.stats() ?? NO_SPILLS;
  }

  /** The store has no room for `size` bytes because `cause` (the disk's error) stopped what `why` says. */
  #full(size: number, why: string, cause: Error): ObjectStoreFullError {
    return new ObjectStoreFullError(size, this.capacity.usedBytes, this.capacity.limit, `${why}: ${cause.message.replace(/\.$/, '')}`);
  }

  /** A segment object is stored in memory: it is announced, and the most recently used. */
  #stored(id: string, size: number): void {
    this.#resident.set(id, -SPILL_GRACE_MS);
    this.events.emit('add', id, size);
  }

  /** Records a new object made in this process (inline, or a segment whose reservation it commits). */
  added(id: string, size: number, bytes: Uint8Array | undefined, contains: readonly string[]): void {
    if (bytes) this.capacity.addInline(size);
    else this.capacity.commitSegment();
    this.table.ready(id, undefined, size, bytes, this.refs.retainContained(contains));
    if (!bytes) this.#stored(id, size);
    if (objectPutChannel.hasSubscribers) objectPutChannel.publish({ id, size, inline: bytes !== undefined } satisfies ObjectPutMessage);
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
        this.#files.discard(id);
        if (existing?.state !== 'pending') throw error;
        this.fail(id, error as Error);
        return;
      }
    }
    const contains = this.refs.retainContained(payload.contains);
    if (payload.bytes) this.capacity.addInline(payload.size);
    else this.#stored(id, payload.size);
    if (objectPutChannel.hasSubscribers) objectPutChannel.publish({ id, size: payload.size, inline: payload.bytes !== undefined } satisfies ObjectPutMessage);
    this.#settleReady(id, existing, payload.size, payload.bytes, contains);
  }

  /** See `ObjectStore.reserveRoom`. */
  grant(id: string, size: number, detail: string): string | undefined {
    // A retry of the same task asks again: its earlier grant is replaced, not added to.
    this.releaseGrant(id, true);
    try {
      this.reserve(size, detail);
    } catch (error) {
      this.#files.returnLent(id);
      throw error;
    }
    this.#grants.set(id, size);
    return this.#files.lend(id, size);
  }

  /**
   * See `ObjectStore.releaseRoom`. A file lent for the object goes back to the pool too, unless
   * `keepFile` (the grant is about to be replaced, or becomes the object's charge).
   */
  releaseGrant(id: string, keepFile = false): void {
    if (!keepFile) this.#files.returnLent(id);
    const size = this.#grants.get(id);
    if (size === undefined) return;
    this.#grants.delete(id);
    this.capacity.unreserve(size);
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
    // A lent file is renamed to the object's id now; it keeps its size (its pages), one the writer
    // made is exactly the object's.
    const lent = this.#files.publishLent(id);
    try {
      checkWrittenSize(this.#pathOf(id), lent ?? size, `object ${id}`);
      if (lent !== undefined && lent < size) throw new ObjectCorruptError(`object ${id}`, `its writer says ${size} bytes, more than the ${lent} lent for it`);
      if (held === 0) {
        const why = granted > 0 ? ` (${granted} bytes were reserved for it)` : ' (written by another process of the session)';
        this.capacity.reserve(size, why + this.makeRoom(size, why));
        held = size;
      }
    } catch (error) {
      this.capacity.unreserve(held);
      throw error;
    }
    this.capacity.unreserve(held - size);
    this.capacity.commitSegment();
    this.#files.trim();
  }

  /** See `ObjectStore.releaseWriter`. */
  releaseWriter(pid: number): number {
    return this.capacity.releaseWriter(pid);
  }

  /** See `ObjectStore.acceptIncoming`. */
  accept(id: string, size: number, detail: string): IncomingObject {
    if (this.#incoming.has(id)) throw new Error(`object ${id} is already arriving`);
    this.reserve(size, detail);
    let file: IncomingFile;
    try {
      file = this.#files.incoming(size);
    } catch (error) {
      this.capacity.unreserve(size);
      throw error;
    }
    const incoming = new IncomingObject(id, size, file.memory, {
      seal: (sealed, contains) => {
        this.#incoming.delete(id);
        file.publish(id);
        this.sealWritten(sealed.id, sealed.size, contains);
      },
      discarded: (gone) => {
        if (this.#incoming.get(id) !== gone) return;
        this.#incoming.delete(id);
        // Never published: its memory is reused at once, unless a relay reader still maps it.
        file.giveBack();
        this.capacity.unreserve(size);
      },
      mapToRead: () => file.mapToRead(size),
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
    this.#files.discard(id);
  }

  /** See `ObjectStore.openForRead`. */
  openForRead(id: string): OutgoingObject {
    const entry = this.table.get(id);
    if (!entry || entry.state !== 'ready' || entry.bytes) throw new ObjectFreedError(id);
    // Sent from its spill file: faster than reading it back (which needs room, and may spill others).
    if (entry.spilled) return new OutgoingObject(id, entry.size, this.#spill!.openForRead(id));
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
    this.#resident.delete(id);
    if (entry.state === 'ready' && entry.bytes) {
      this.capacity.removeInline(entry.size);
    } else if (entry.spilled) {
      // On disk only: its memory went when it was spilled.
    } else if (segment) {
      this.capacity.removeSegment(entry.size);
      this.#segments.forget([id]);
      // Its memory is kept for reuse (within what the capacity leaves free), whoever wrote it.
      this.#files.deleted(id, entry.size);
    }
    // Spilled, or read back with its copy kept on disk.
    this.#spill?.delete(id);
    debug('freed %s (%d bytes)', id, entry.size);
    if (objectFreeChannel.hasSubscribers) objectFreeChannel.publish({ id, size: entry.size } satisfies ObjectFreeMessage);
    if (segment) this.events.emit('delete', id);
    this.events.emit('gone', id);
    for (const contained of entry.contains) this.refs.release(contained);
    return true;
  }

  /** Forgets every object, discarding those still arriving (the store closes). */
  clear(): void {
    for (const incoming of [...this.#incoming.values()]) incoming.discard();
    this.#spill?.close();
    this.#resident.clear();
    this.#files.clear();
    this.#grants.clear();
    this.table.clear();
    this.capacity.reset();
  }

  #settleReady(id: string, existing: Entry | undefined, size: number, bytes: Uint8Array | undefined, contains: readonly string[]): void {
    const waiters = this.table.ready(id, existing, size, bytes, contains);
    if (existing) this.#settle(id, existing, waiters);
  }

  /** A settled object nothing holds goes now; then whoever waited for it wakes. */
  #settle(id: string, entry: Entry, waiters: Woken | undefined): void {
    if (entry.count <= 0) this.delete(id);
    wake(waiters);
  }
}
