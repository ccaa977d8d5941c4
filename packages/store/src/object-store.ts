import { debuglog } from 'node:util';
import {
  ObjectFreedError,
  ObjectNotFoundError,
  ObjectRef,
  ObjectStoreFullError,
  StoreClosedError,
  decodeValue,
  encodeValue,
  newObjectId,
  newSessionId,
  setObjectRefHooks,
  writeInline,
  type EncodedValue,
  type ObjectPayload,
} from '@shoal/protocol';
import type { IncomingObject } from './incoming-object.js';
import { ObjectLifecycle, type StoreEvents } from './object-lifecycle.js';
import type { ObjectStatus } from './object-table.js';
import { type ObjectWriter, type TypedArrayKind, describe, resolveCreateArguments } from './object-writer.js';
import { resolveStoreOptions, type ResolvedStoreOptions, type StoreOptions } from './options.js';
import type { OutgoingObject } from './outgoing-object.js';
import { SessionDirectory } from './session-directory.js';
import { SessionSegments } from './session-segments.js';
import { SpillFiles } from './spill-files.js';
import type { StoreStats } from './store-stats.js';
import { copyEncoded } from './segment-io.js';
import { copyIntoMapping } from './segment-files.js';
import { afterFinalizers, collectGarbage } from './collect-garbage.js';
import { argumentError, type ObjectListing } from '@shoal/protocol';

const debug = debuglog('shoal:store');

/** Tries to read a spilled object back when there is no room, each after a collection (see ObjectStore.restoreWhenRoom). */
const RESTORE_ATTEMPTS = 4;

/** An inline object's value: decoded afresh (a copy) from its bytes each time it is read. */
function readInline(id: string, bytes: Uint8Array): unknown {
  return decodeValue(bytes, { copy: true, where: `object ${id}` });
}

export type { StoreStats } from './store-stats.js';

/** Lifecycle of a store. */
export type StoreState = 'running' | 'closed';



/**
 * The node-local object store: the authority over a session's objects, and the only owner of
 * their segment files (it creates, registers and unlinks every one).
 *
 * Small objects stay inline in memory; larger ones each get a segment file under
 * `/dev/shm/shoal-<session>/`, which every process on the machine maps copy-on-write to read
 * in place. Objects are reference-counted (ref-counts.ts): at zero (or on
 * {@link ObjectStore.free}) the segment is unlinked. Pages stay alive for views still using them.
 *
 * @example
 * ```ts
 * const store = new ObjectStore();
 * store.on('delete', (id) => console.log('deleted', id));
 * const ref = store.put(new Float64Array(1_000_000).fill(1));
 * const array = store.getSync(ref); // a copy-on-write view of the segment
 * store.close();
 * ```
 */
export class ObjectStore {
  readonly options: ResolvedStoreOptions;
  readonly sessionId: string;
  readonly #directory: SessionDirectory;
  readonly #segments: SessionSegments;
  readonly #objects: ObjectLifecycle;
  readonly #removeRefHooks: () => void;
  /**
   * Asks the node's other processes (its workers, attached programs) to collect garbage, so that
   * mappings of objects they no longer view go and those objects can be spilled; resolves when
   * they answered. Set by the node that serves this store; unset, only this process collects.
   */
  collectOthers: (() => Promise<void>) | undefined;
  #state: StoreState = 'running';

  constructor(options?: StoreOptions) {
    this.options = resolveStoreOptions(options);
    this.sessionId = this.options.sessionId ?? newSessionId();
    this.#directory = new SessionDirectory(this.options.shmRoot, this.sessionId, this.options.handleSignals);
    this.#segments = new SessionSegments(this.#directory.path, this.options.maxMappings);
    const directory = this.#directory;
    const { spillDirectory } = this.options;
    const spill = spillDirectory === false ? undefined : new SpillFiles(spillDirectory, this.sessionId, this.options.handleSignals);
    this.#objects = new ObjectLifecycle(
      this.sessionId,
      this.options.objectStoreMemory,
      this.#segments,
      directory.path,
      (id) => directory.segmentPath(id),
      spill,
    );
    const refs = this.#objects.refs;
    this.#removeRefHooks = setObjectRefHooks({
      track: (ref) => refs.track(ref),
      untrack: (ref) => refs.untrack(ref),
      get: (ref) => this.get(ref),
    });
    debug('session %s started in %s', this.sessionId, this.#directory.path);
  }

  get state(): StoreState {
    return this.#state;
  }

  /** The session's segment directory. */
  get directory(): string {
    return this.#directory.path;
  }

  /** Listens to {@link StoreEvents}; listeners run synchronously, in the order added. */
  on<E extends keyof StoreEvents>(event: E, listener: (...args: StoreEvents[E]) => void): this {
    this.#objects.events.on(event, listener as never);
    return this;
  }

  /** Stops a listener added with {@link ObjectStore.on}. */
  off<E extends keyof StoreEvents>(event: E, listener: (...args: StoreEvents[E]) => void): this {
    this.#objects.events.off(event, listener as never);
    return this;
  }

  /**
   * Stores `value` and returns a ref to it, synchronously. Values below `inlineThreshold` bytes
   * stay in memory; larger ones are written into their own segment (one copy, straight from the
   * caller's buffers into shared memory).
   *
   * @throws TypeError naming the path of a value that cannot be stored.
   * @throws ObjectStoreFullError when the object does not fit in the remaining capacity.
   */
  put<T>(value: T): ObjectRef<T> {
    this.#assertRunning('put an object');
    return this.putEncoded<T>(encodeValue(value));
  }

  /** {@link ObjectStore.put} of a value already encoded. */
  putEncoded<T>(encoded: EncodedValue): ObjectRef<T> {
    this.#assertRunning('put an object');
    const id = newObjectId();
    const size = encoded.layout.totalSize;
    const contains = encoded.refs.map((ref) => ref.id);
    if (size < this.options.inlineThreshold) {
      this.#objects.added(id, size, writeInline(encoded), contains);
    } else {
      const capacity = this.#objects.capacity;
      this.#objects.reserve(size);
      try {
        this.#objects.writeSegment(id, size, (memory) => copyEncoded(memory, encoded));
      } catch (error) {
        capacity.unreserve(size);
        throw error;
      }
      this.#objects.added(id, size, undefined, contains);
    }
    return new ObjectRef<T>(id, this.sessionId);
  }

  /**
   * Allocates a segment for one TypedArray and returns a writer whose `array` you fill in place;
   * `seal()` publishes it and returns the ref. A put with no copy at all.
   *
   * @example
   * ```ts
   * const writer = store.create(Float64Array, 1_000_000);
   * writer.array.fill(1);
   * const ref = writer.seal();
   * ```
   */
  create<K extends TypedArrayKind>(type: K, length: number): ObjectWriter<InstanceType<K>>;
  create(byteLength: number): ObjectWriter<Uint8Array>;
  create(typeOrBytes: TypedArrayKind | number, length?: number): ObjectWriter<ArrayBufferView> {
    this.#assertRunning('create an object');
    const { kind, length: count } = resolveCreateArguments(typeOrBytes, length);
    const id = newObjectId();
    return this.#segments.create(id, kind, count, {
      inlineThreshold: this.options.inlineThreshold,
      publishInline: (array) => this.put(array),
      reserve: (size) => this.#objects.reserve(size),
      unreserve: (size) => this.#objects.capacity.unreserve(size),
      publish: (size) => {
        this.#assertRunning('seal an object');
        this.#objects.added(id, size, undefined, []);
        return new ObjectRef(id, this.sessionId);
      },
    });
  }

  /**
   * The value of `ref`, synchronously. Segment objects come back as copy-on-write views of the
   * segment, mapped once per process: no copy. Inline objects are decoded afresh each time.
   *
   * A write to a returned view changes only that view's copy of the page (and views from gets
   * made before it): later gets, here or anywhere, see the object as stored.
   *
   * @throws ObjectFreedError when the object was freed.
   * @throws ObjectNotFoundError when the object lives in another session's memory, which this
   *   process cannot reach.
   */
  getSync<T>(ref: ObjectRef<T>): T {
    this.#assertRunning('get an object');
    if (!(ref instanceof ObjectRef)) {
      throw argumentError('ERR_INVALID_ARGUMENT', `Expected an ObjectRef, got \`${describe(ref)}\``);
    }
    if (ref.owner !== this.sessionId) return this.#segments.readOther(ref.id, ref.owner) as T;
    const entry = this.#objects.table.get(ref.id);
    if (!entry) throw new ObjectFreedError(ref.id);
    if (entry.state === 'failed') throw entry.error!;
    if (entry.state === 'pending') {
      throw new ObjectNotFoundError(ref.id, 'it is not ready yet (its task is still running); use `await get(ref)`.');
    }
    if (entry.bytes) return readInline(ref.id, entry.bytes) as T;
    this.#objects.use(ref.id, false);
    return this.#segments.read(ref.id, entry.size) as T;
  }

  /** The value of `ref`, once it is ready (see {@link ObjectStore.getSync}). */
  async get<T>(ref: ObjectRef<T>): Promise<T> {
    if (ref instanceof ObjectRef && ref.owner === this.sessionId) {
      await this.whenSettled(ref.id);
      if (this.isSpilled(ref.id)) await this.restoreWhenRoom(ref.id, false);
    }
    return this.getSync(ref);
  }

  /**
   * The values of `refs`, in order, once all are ready: what `Promise.all(refs.map(get))` gives
   * (it rejects with the first failure as it happens), with one promise and one callback for all
   * of them instead of a chain of promises per ref (~800 bytes each: a get of a million task
   * results held 800 MB for that alone).
   */
  getAll<T>(refs: readonly ObjectRef<T>[]): Promise<T[]> {
    return new Promise<T[]>((resolve, reject) => {
      const table = this.#objects.table;
      const values = new Array<T>(refs.length);
      // 1: read once everything has settled (pending now, or spilled: read back first).
      const later = new Uint8Array(refs.length);
      let waiting = 1;
      let over = false;
      const failed = (error: unknown) => {
        if (over) return;
        over = true;
        reject(error as Error);
      };
      const settled = (entry: { readonly state: string; readonly error?: Error | undefined }) => {
        if (over) return;
        if (entry.state === 'failed') failed(entry.error);
        else if (--waiting === 0) this.#readLater(refs, later, values).then(resolve, failed);
      };
      try {
        for (let i = 0; i < refs.length; i++) {
          const ref = refs[i]!;
          const own = ref instanceof ObjectRef && ref.owner === this.sessionId;
          if (own && table.whenPending(ref.id, settled)) {
            waiting += 1;
            later[i] = 1;
          } else if (own && this.isSpilled(ref.id)) later[i] = 1;
          else values[i] = this.getSync(ref);
        }
      } catch (error) {
        failed(error);
        return;
      }
      settled({ state: 'ready' });
    });
  }

  async #readLater<T>(refs: readonly ObjectRef<T>[], later: Uint8Array, values: T[]): Promise<T[]> {
    const table = this.#objects.table;
    for (let i = 0; i < refs.length; i++) {
      if (later[i] === 0) continue;
      const ref = refs[i]!;
      // An inline object (a small task result, most of them) is read from its entry at once: one
      // lookup, not the three of isSpilled and getSync (at a million results, a second of the
      // get's tail, after the last task ended).
      const entry = table.get(ref.id);
      if (entry?.state === 'ready' && entry.bytes && this.#state === 'running') {
        values[i] = readInline(ref.id, entry.bytes) as T;
        continue;
      }
      if (this.isSpilled(ref.id)) await this.restoreWhenRoom(ref.id, false);
      values[i] = this.getSync(ref);
    }
    return values;
  }

  /** Resolves once the object is no longer pending (ready, failed or freed). */
  whenSettled(id: string): Promise<void> {
    return this.#objects.table.whenSettled(id);
  }

  /** Calls `callback` once the object is no longer pending (at once if it is not). */
  onSettled(id: string, callback: () => void): void {
    this.#objects.table.onSettled(id, callback);
  }

  /**
   * Resolves once `want` of `ids` are no longer pending, or after `timeoutMs`, with 1 for each
   * position settled by then and 0 for each still pending (see `ObjectTable.waitSettled`).
   */
  waitSettled(ids: readonly string[], want: number, timeoutMs: number | null): Promise<Uint8Array> {
    return this.#objects.table.waitSettled(ids, want, timeoutMs);
  }

  /**
   * Every object of this store, as `shoal memory` lists them: its size, state, whether it is
   * inline (in this process's memory) or spilled (on disk only), and its count of holds (refs
   * in this process, other processes' and tasks' holds, stored objects containing it).
   */
  list(): ObjectListing[] {
    const listing: ObjectListing[] = [];
    for (const [id, entry] of this.#objects.table.entries()) {
      listing.push({ id, size: entry.size, state: entry.state, inline: entry.bytes !== undefined, spilled: entry.spilled === true, holds: entry.count });
    }
    return listing;
  }

  /** Whether a task will still make `id` (a cheaper `status(id).state === 'pending'`). */
  isPending(id: string): boolean {
    return this.#objects.table.isPending(id);
  }

  /** What the store knows of `id`. */
  status(id: string): ObjectStatus {
    return this.#objects.table.status(id);
  }

  /** Declares an object that a task will produce; gets of it wait until it settles. */
  expect(id: string): void {
    this.#assertRunning('expect an object');
    this.#objects.table.expect(id);
  }

  /**
   * Records an object written by another process of this session (a worker's put or task
   * result): inline bytes, or a segment file it wrote into this session's directory, charged
   * with the room reserved for it (its grant, {@link ObjectStore.reserveRoom}, or what process
   * `writer` reserved in the capacity page); unreserved room must fit now, or the file is removed
   * and a pending object settles as ObjectStoreFullError (otherwise that error is thrown). Settles
   * a pending object of the same id; a finished {@link ObjectStore.acceptIncoming} is sealed.
   */
  register(id: string, payload: ObjectPayload, writer?: number): void {
    this.#assertRunning('register an object');
    this.#objects.register(id, payload, writer);
  }

  /** Moves the capacity's books to a page in the session directory, where the node's peers reserve room too. */
  shareCapacity(): void {
    this.#objects.capacity.share(this.#directory.path);
  }

  /** Process `pid` of the session is gone: room it had reserved and not used is given back. Returns the bytes. */
  releaseWriter(pid: number): number {
    return this.#state === 'running' ? this.#objects.releaseWriter(pid) : 0;
  }

  /**
   * Records an object that arrived as serialized bytes (from a program on another machine):
   * written into its own segment, as if put here. Capacity is checked.
   */
  registerBytes(id: string, bytes: Uint8Array, contains: readonly string[]): void {
    this.#assertRunning('register an object');
    const size = bytes.byteLength;
    this.#objects.reserve(size);
    try {
      this.#objects.writeSegment(id, size, (memory) => copyIntoMapping(memory, [bytes], [0]));
    } catch (error) {
      this.#objects.capacity.unreserve(size);
      throw error;
    }
    this.#objects.sealWritten(id, size, contains);
  }

  /**
   * Reserves room for a segment of `size` bytes another process is about to write as object `id`
   * (a task result): its charge once registered, given back by `releaseRoom`, `discardUnclaimed`
   * or `fail`. Asking again for the same id replaces the grant. Returns the name of the file the
   * store lent for it, when it has memory of a deleted object of about that size: a file in the
   * session directory of at least `size` bytes for the writer to fill
   * (`SessionSegments.writeEncodedLent`) rather than create; the store gives it the object's name
   * at `register`.
   * @throws ObjectStoreFullError when `size` does not fit, even after a collection.
   */
  reserveRoom(id: string, size: number, detail = ''): string | undefined {
    this.#assertRunning('reserve room for an object');
    return this.#objects.grant(id, size, detail);
  }

  /** Gives back the room reserved for `id` by {@link ObjectStore.reserveRoom} (its writer went away). */
  releaseRoom(id: string): void {
    if (this.#state === 'running') this.#objects.releaseGrant(id);
  }

  /**
   * Starts receiving object `id` of `size` bytes from elsewhere (another node): reserves its size
   * and creates its segment, to be written in order (IncomingObject), then sealed or discarded.
   * @param detail appended to the ObjectStoreFullError message (why the object was wanted).
   * @throws ObjectStoreFullError when `size` does not fit in the capacity left now.
   */
  acceptIncoming(id: string, size: number, detail = ''): IncomingObject {
    this.#assertRunning('accept an object');
    return this.#objects.accept(id, size, detail);
  }

  /**
   * Removes the segment file written for `id` that the store never registered: a task result
   * nobody wants any more (cancelled, or freed meanwhile), or an incoming object. A registered
   * object is left alone: it goes by reference counting only.
   */
  discardUnclaimed(id: string): void {
    if (this.#state === 'running') this.#objects.discardUnclaimed(id);
  }

  /**
   * Opens a stored segment object to send it elsewhere: a private mapping of its own, or, when it
   * is spilled, its spill file (read as it is sent, not read back into memory: see
   * OutgoingObject); either stays valid if the object is freed meanwhile. Close it once sent.
   * @throws ObjectFreedError when there is no such segment object; SharedMemoryError when its
   *   file cannot be mapped; SpillError when its spill file cannot be opened.
   */
  openForRead(id: string): OutgoingObject {
    if (!this.isSpilled(id)) this.#objects.use(id, false);
    return this.#objects.openForRead(id);
  }

  /**
   * Object `id` is about to be handed out (a task argument, another process's get): a spilled
   * one is read back into memory first, and either counts as used now (the last to be spilled).
   * Does nothing for an inline, pending or unknown object. `handedOut`: another process is told of
   * it now, to map it itself, so it is not spilled for a grace period (5 s) meanwhile; false for
   * this process's own use, or when it is pinned ({@link ObjectStore.pin}), which is the sure way.
   * @throws ObjectStoreFullError when a spilled object cannot be read back (no room, the disk failed).
   */
  restore(id: string, handedOut = true): void {
    this.#assertRunning('restore an object');
    this.#objects.use(id, handedOut);
  }

  /**
   * Resolves once `size` more bytes fit in the store, spilling least recently used objects to disk
   * and, when what fills the memory is mapped by processes that no longer view it or was handed to
   * one moments ago, collecting garbage here and in the node's other processes
   * ({@link ObjectStore.collectOthers}), waiting out the grace of a hand-out, and trying again. For a synchronous put or create of that size to follow (no room is held for it: a
   * put from elsewhere meanwhile may take it).
   * @throws ObjectStoreFullError naming the sizes when even that cannot make the room.
   */
  async makeRoom(size: number): Promise<void> {
    this.#assertRunning('make room');
    if (!Number.isSafeInteger(size) || size < 0) throw argumentError('ERR_OUT_OF_RANGE', `Expected a number of bytes (an integer ≥ 0), got \`${describe(size)}\``);
    for (let attempt = 1; ; attempt++) {
      const detail = this.#objects.makeRoom(size);
      const { capacity } = this.#objects;
      if (capacity.fits(size)) return;
      if (attempt >= RESTORE_ATTEMPTS || size > capacity.limit) return capacity.assertRoom(size, detail);
      await this.#awaitSpillable(size);
      // Closed meanwhile: its books are gone, so nothing fits any more.
      this.#assertRunning('make room');
    }
  }

  /**
   * Waits for objects to become spillable: this process collects garbage, the node's others are
   * asked to ({@link ObjectStore.collectOthers}: mappings of objects they no longer view go), and
   * objects handed out lately are waited for until their grace ends (at most 5 s).
   */
  async #awaitSpillable(size: number): Promise<void> {
    // In a job of its own: what the failed attempt looked at through a WeakRef lives to its end.
    await new Promise((resolve) => setImmediate(resolve));
    collectGarbage();
    const grace = this.#objects.graceLeft(size);
    await Promise.all([afterFinalizers(), this.collectOthers?.(), grace > 0 ? new Promise((resolve) => setTimeout(resolve, grace)) : undefined]);
  }

  /**
   * {@link ObjectStore.restore}, waiting for room when there is none: what fills the memory may be
   * mapped by processes that no longer view it (their mappings go when they collect garbage), so
   * this process collects, the node's others are asked to ({@link ObjectStore.collectOthers}), and
   * it is tried again, at most RESTORE_ATTEMPTS times in all.
   * @throws ObjectStoreFullError when it still cannot be read back; ObjectFreedError when a
   *   collection freed it.
   */
  async restoreWhenRoom(id: string, handedOut = true): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        return this.restore(id, handedOut);
      } catch (error) {
        if (!(error instanceof ObjectStoreFullError) || !this.isSpilled(id) || attempt >= RESTORE_ATTEMPTS) throw error;
        await this.#awaitSpillable(this.#objects.table.get(id)?.size ?? 0);
        this.#assertRunning('restore an object');
      }
    }
  }

  /**
   * Keeps object `id` in memory (never spilled) until as many {@link ObjectStore.unpin} calls:
   * for the arguments of a task sent to a worker, which maps them when it starts. A spilled
   * object is not read back by pinning ({@link ObjectStore.restore} does that; it then stays).
   */
  pin(id: string): void {
    this.#objects.pin(id);
  }

  /** Lets go of one pin of `id` (see {@link ObjectStore.pin}). */
  unpin(id: string): void {
    this.#objects.unpin(id);
  }

  /** Whether object `id` is spilled to disk now (its next use reads it back). */
  isSpilled(id: string): boolean {
    return this.#objects.isSpilled(id);
  }

  /**
   * The serialized bytes of a segment object, as a view of this process's mapping (no copy), for
   * sending them to a program that cannot map the segment itself.
   * @throws ObjectFreedError when there is no such segment object.
   */
  segmentBytes(id: string): Uint8Array {
    const entry = this.#objects.table.get(id);
    if (!entry || entry.state !== 'ready' || entry.bytes) throw new ObjectFreedError(id);
    this.#objects.use(id, false);
    return this.#segments.bytes(id, entry.size);
  }

  /** Settles a pending object as failed: gets of it throw `error`. */
  fail(id: string, error: Error): void {
    this.#objects.fail(id, error);
  }

  /** Counts a reference held outside this process's ObjectRefs (another process, a pending task). */
  hold(id: string): boolean {
    return this.#objects.refs.hold(id);
  }

  /** Drops a reference counted by {@link ObjectStore.hold}; the object goes when none is left. */
  release(id: string): void {
    this.#objects.refs.release(id);
  }

  /**
   * Frees the object now, whatever refs remain: its segment is unlinked and later gets fail with
   * `ObjectFreedError`. Views already returned stay valid (the kernel keeps their pages).
   * Returns false when the object was already freed or is not this store's.
   */
  free(ref: ObjectRef): boolean {
    if (!(ref instanceof ObjectRef)) throw argumentError('ERR_INVALID_ARGUMENT', `Expected an ObjectRef, got \`${describe(ref)}\``);
    if (ref.owner !== this.sessionId) return false;
    return this.freeId(ref.id);
  }

  /** {@link ObjectStore.free} by id (for frees requested by other processes of the session). */
  freeId(id: string): boolean {
    if (this.#state === 'closed') return false;
    return this.#objects.delete(id);
  }

  /** Whether the object is still held by this store. */
  has(ref: ObjectRef): boolean {
    return ref.owner === this.sessionId && this.#objects.table.has(ref.id);
  }

  stats(): StoreStats {
    const { table, capacity } = this.#objects;
    return {
      sessionId: this.sessionId,
      directory: this.#directory.path,
      objects: table.size,
      segments: capacity.segments,
      usedBytes: capacity.usedBytes,
      inlineBytes: capacity.inlineBytes,
      capacity: capacity.limit,
      cachedMappings: this.#segments.cachedMappings,
      reusableBytes: this.#objects.reusableBytes,
      spill: this.#objects.spillStats(),
    };
  }

  /**
   * Drops every object (and every incoming one) and removes the session directory. Views
   * already returned stay valid until collected. Idempotent.
   */
  close(): void {
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    this.#objects.clear();
    this.#segments.clear();
    this.#directory.remove();
    this.#removeRefHooks();
    debug('session %s closed', this.sessionId);
  }

  [Symbol.dispose](): void {
    this.close();
  }

  #assertRunning(operation: string): void {
    if (this.#state !== 'running') throw new StoreClosedError(operation);
  }
}
