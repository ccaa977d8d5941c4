import { accessSync } from 'node:fs';
import { debuglog } from 'node:util';
import {
  ObjectFreedError,
  ObjectNotFoundError,
  ObjectRef,
  ObjectStoreFullError,
  SharedMemoryError,
  StoreClosedError,
  decodeValue,
  encodeValue,
  newObjectId,
  newSessionId,
  setObjectRefHooks,
  writeInline,
  type EncodedValue,
} from '@shoal/protocol';
import { sliceBuffer, unlinkSegment, writeSegment } from './segment-files.js';
import { writeEncodedSegment } from './segment-io.js';
import { MappingCache } from './mapping-cache.js';
import { ObjectWriter, type TypedArrayKind, resolveCreateArguments } from './object-writer.js';
import { resolveStoreOptions, type ResolvedStoreOptions, type StoreOptions } from './options.js';
import { SessionDirectory, segmentPathOf } from './session-directory.js';

const debug = debuglog('shoal:store');

/** Lifecycle of a store. */
export type StoreState = 'running' | 'closed';

/** A stored object made elsewhere (by a worker): its size and, when inline, its bytes. */
export interface ObjectPayload {
  readonly size: number;
  /** The serialized object for inline objects; absent when its segment file was written. */
  readonly bytes?: Uint8Array | undefined;
  /** Ids of objects whose refs are nested in this one. */
  readonly contains: readonly string[];
}

/** What the store knows of an object id. */
export type ObjectStatus =
  | { readonly state: 'pending' }
  | {
      readonly state: 'ready';
      readonly size: number;
      readonly bytes: Uint8Array | undefined;
      /** Ids of the objects whose refs are nested in this one. */
      readonly contains: readonly string[];
    }
  | { readonly state: 'failed'; readonly error: Error }
  | { readonly state: 'freed' };

interface Entry {
  state: 'pending' | 'ready' | 'failed';
  size: number;
  /** The serialized object, for inline objects; undefined for segment objects. */
  bytes: Uint8Array | undefined;
  /** Why the object will never exist (the failure of the task that should have made it). */
  error: Error | undefined;
  /**
   * Live ObjectRef instances in this process, holds by other processes and by pending tasks,
   * plus stored objects that contain a ref to it.
   */
  count: number;
  /** Ids of objects this one contains refs to, each counted once in that object's `count`. */
  contains: readonly string[];
  /** Callbacks waiting for a pending object to settle. */
  waiters: (() => void)[] | undefined;
}

/** What a store holds right now. */
export interface StoreStats {
  readonly sessionId: string;
  readonly directory: string;
  /** Objects held (inline and in segments). */
  readonly objects: number;
  /** Objects held in segments. */
  readonly segments: number;
  /** Bytes of segments, plus those reserved by unsealed `create` writers. */
  readonly usedBytes: number;
  /** Bytes of inline objects (held in this process's memory, not counted against capacity). */
  readonly inlineBytes: number;
  readonly capacity: number;
  /** Segment mappings this process's cache holds. */
  readonly cachedMappings: number;
}

/**
 * The node-local object store: the authority over a session's objects.
 *
 * Small objects stay inline in memory; larger ones each get a segment file under
 * `/dev/shm/shoal-<session>/`, which every process on the machine maps copy-on-write to read
 * in place. Objects are reference-counted: each live {@link ObjectRef} in this process and each
 * stored object containing a ref counts once; at zero (or on {@link ObjectStore.free}) the
 * segment is unlinked. Pages stay alive for views still using them.
 *
 * @example
 * ```ts
 * const store = new ObjectStore();
 * const ref = store.put(new Float64Array(1_000_000).fill(1));
 * const array = store.getSync(ref); // a copy-on-write view of the segment
 * store.close();
 * ```
 */
export class ObjectStore {
  readonly options: ResolvedStoreOptions;
  readonly sessionId: string;
  readonly #directory: SessionDirectory;
  readonly #objects = new Map<string, Entry>();
  readonly #mappings: MappingCache;
  readonly #refsDropped = new FinalizationRegistry<string>((id) => this.#release(id));
  #state: StoreState = 'running';
  /** Told the id of every segment object deleted (so other processes can drop their mappings of it). */
  onDelete: ((id: string) => void) | undefined;
  /** Told the id and size of every segment object stored (a cluster's object directory). */
  onAdd: ((id: string, size: number) => void) | undefined;
  #used = 0;
  #inlineBytes = 0;
  #segments = 0;

  constructor(options?: StoreOptions) {
    this.options = resolveStoreOptions(options);
    this.sessionId = this.options.sessionId ?? newSessionId();
    this.#directory = new SessionDirectory(this.options.shmRoot, this.sessionId, this.options.handleSignals);
    this.#mappings = new MappingCache(this.options.maxMappings);
    setObjectRefHooks({
      track: (ref) => this.#track(ref),
      untrack: (ref) => {
        // Unregistering succeeds once: a ref released twice, or later collected, counts once.
        if (this.#refsDropped.unregister(ref)) this.#release(ref.id);
      },
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
    let bytes: Uint8Array | undefined;
    if (size < this.options.inlineThreshold) {
      bytes = writeInline(encoded);
      this.#inlineBytes += size;
    } else {
      this.#reserve(size);
      try {
        this.#writeSegment(id, encoded);
      } catch (error) {
        this.#used -= size;
        throw error;
      }
      this.#segments += 1;
    }
    this.#objects.set(id, ready(size, bytes, this.#retainContained(encoded.refs.map((ref) => ref.id))));
    if (!bytes) this.onAdd?.(id, size);
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
    return new ObjectWriter(kind, count, this.#directory.segmentPath(id), {
      inlineThreshold: this.options.inlineThreshold,
      publishInline: (array) => this.put(array),
      reserve: (size) => this.#reserve(size),
      unreserve: (size) => {
        this.#used -= size;
      },
      publish: (size, mapping) => {
        this.#assertRunning('seal an object');
        this.#segments += 1;
        this.#mappings.adopt(id, mapping);
        this.#objects.set(id, ready(size, undefined, []));
        this.onAdd?.(id, size);
        return new ObjectRef(id, this.sessionId);
      },
    });
  }

  /**
   * The value of `ref`, synchronously. Segment objects come back as copy-on-write views of the
   * segment, mapped once per process: no copy. Inline objects are decoded afresh each time.
   *
   * A write to a returned view changes only this process's copy of that page (and what later
   * gets of the same object in this process see); the stored object never changes.
   *
   * @throws ObjectFreedError when the object was freed.
   * @throws ObjectNotFoundError when the object lives in another session's memory, which this
   *   process cannot reach.
   */
  getSync<T>(ref: ObjectRef<T>): T {
    this.#assertRunning('get an object');
    if (!(ref instanceof ObjectRef)) {
      throw new TypeError(`Expected an ObjectRef, got \`${describe(ref)}\``);
    }
    const where = `object ${ref.id}`;
    if (ref.owner === this.sessionId) {
      const entry = this.#objects.get(ref.id);
      if (!entry) throw new ObjectFreedError(ref.id);
      if (entry.state === 'failed') throw entry.error!;
      if (entry.state === 'pending') {
        throw new ObjectNotFoundError(ref.id, 'it is not ready yet (its task is still running); use `await get(ref)`.');
      }
      if (entry.bytes) return decodeValue(entry.bytes, { copy: true, where }) as T;
      const mapping = this.#mappings.map(ref.id, this.#directory.segmentPath(ref.id), entry.size);
      return decodeValue(new Uint8Array(mapping), { copy: false, sliceArrayBuffer: sliceBuffer, where }) as T;
    }
    return this.#getForeign(ref, where);
  }

  /** The value of `ref`, once it is ready (see {@link ObjectStore.getSync}). */
  async get<T>(ref: ObjectRef<T>): Promise<T> {
    if (ref instanceof ObjectRef && ref.owner === this.sessionId) await this.whenSettled(ref.id);
    return this.getSync(ref);
  }

  /** Resolves once the object is no longer pending (ready, failed or freed). */
  whenSettled(id: string): Promise<void> {
    const entry = this.#objects.get(id);
    if (!entry || entry.state !== 'pending') return Promise.resolve();
    return new Promise((resolve) => (entry.waiters ??= []).push(resolve));
  }

  /** Calls `callback` once the object is no longer pending (at once if it is not). */
  onSettled(id: string, callback: () => void): void {
    const entry = this.#objects.get(id);
    if (!entry || entry.state !== 'pending') callback();
    else (entry.waiters ??= []).push(callback);
  }

  /** What the store knows of `id`. */
  status(id: string): ObjectStatus {
    const entry = this.#objects.get(id);
    if (!entry) return { state: 'freed' };
    if (entry.state === 'pending') return { state: 'pending' };
    if (entry.state === 'failed') return { state: 'failed', error: entry.error! };
    return { state: 'ready', size: entry.size, bytes: entry.bytes, contains: entry.contains };
  }

  /** Declares an object that a task will produce; gets of it wait until it settles. */
  expect(id: string): void {
    this.#assertRunning('expect an object');
    if (this.#objects.has(id)) throw new Error(`object ${id} already exists`);
    this.#objects.set(id, { state: 'pending', size: 0, bytes: undefined, error: undefined, count: 0, contains: [], waiters: undefined });
  }

  /**
   * Records an object written by another process of this session (a worker's put or task
   * result): inline bytes, or a segment file it wrote into this session's directory. Settles a
   * pending object of the same id.
   */
  register(id: string, payload: ObjectPayload): void {
    this.#assertRunning('register an object');
    const existing = this.#objects.get(id);
    if (existing && existing.state !== 'pending') throw new Error(`object ${id} already exists`);
    const contains = this.#retainContained(payload.contains);
    if (payload.bytes) {
      this.#inlineBytes += payload.size;
    } else {
      // Written already: account for it even beyond capacity, rather than lose a result.
      this.#used += payload.size;
      this.#segments += 1;
      this.onAdd?.(id, payload.size);
    }
    if (!existing) {
      this.#objects.set(id, ready(payload.size, payload.bytes, contains));
      return;
    }
    existing.state = 'ready';
    existing.size = payload.size;
    existing.bytes = payload.bytes;
    existing.contains = contains;
    this.#settle(id, existing);
  }

  /**
   * Records an object that arrived as serialized bytes (from a program on another machine):
   * written into its own segment, as if put here. Capacity is checked.
   */
  registerBytes(id: string, bytes: Uint8Array, contains: readonly string[]): void {
    this.#assertRunning('register an object');
    this.#reserve(bytes.byteLength);
    try {
      writeSegment(this.#directory.segmentPath(id), bytes.byteLength, [bytes], [0]);
    } finally {
      this.#used -= bytes.byteLength;
    }
    this.register(id, { size: bytes.byteLength, contains });
  }

  /**
   * Throws ObjectStoreFullError unless an object of `size` bytes fits in the capacity left now
   * (for objects written by others, such as pulls from other nodes, accounted when registered).
   */
  assertRoom(size: number, detail = ''): void {
    const capacity = this.options.objectStoreMemory;
    if (this.#used + size > capacity) throw new ObjectStoreFullError(size, this.#used, capacity, detail);
  }

  /**
   * The serialized bytes of a segment object, as a view of this process's mapping (no copy), for
   * sending them to a program that cannot map the segment itself.
   * @throws ObjectFreedError when there is no such segment object.
   */
  segmentBytes(id: string): Uint8Array {
    const entry = this.#objects.get(id);
    if (!entry || entry.state !== 'ready' || entry.bytes) throw new ObjectFreedError(id);
    return new Uint8Array(this.#mappings.map(id, this.#directory.segmentPath(id), entry.size));
  }

  /** Settles a pending object as failed: gets of it throw `error`. */
  fail(id: string, error: Error): void {
    const entry = this.#objects.get(id);
    if (!entry || entry.state !== 'pending') return;
    entry.state = 'failed';
    entry.error = error;
    this.#settle(id, entry);
  }

  /** Counts a reference held outside this process's ObjectRefs (another process, a pending task). */
  hold(id: string): boolean {
    const entry = this.#objects.get(id);
    if (!entry) return false;
    entry.count += 1;
    return true;
  }

  /** Drops a reference counted by {@link ObjectStore.hold}; the object goes when none is left. */
  release(id: string): void {
    this.#release(id);
  }

  /**
   * Frees the object now, whatever refs remain: its segment is unlinked and later gets fail with
   * `ObjectFreedError`. Views already returned stay valid (the kernel keeps their pages).
   * Returns false when the object was already freed or is not this store's.
   */
  free(ref: ObjectRef): boolean {
    if (!(ref instanceof ObjectRef)) throw new TypeError(`Expected an ObjectRef, got \`${describe(ref)}\``);
    if (ref.owner !== this.sessionId) return false;
    return this.freeId(ref.id);
  }

  /** {@link ObjectStore.free} by id (for frees requested by other processes of the session). */
  freeId(id: string): boolean {
    if (this.#state === 'closed') return false;
    return this.#delete(id);
  }

  /** Whether the object is still held by this store. */
  has(ref: ObjectRef): boolean {
    return ref.owner === this.sessionId && this.#objects.has(ref.id);
  }

  stats(): StoreStats {
    return {
      sessionId: this.sessionId,
      directory: this.#directory.path,
      objects: this.#objects.size,
      segments: this.#segments,
      usedBytes: this.#used,
      inlineBytes: this.#inlineBytes,
      capacity: this.options.objectStoreMemory,
      cachedMappings: this.#mappings.size,
    };
  }

  /**
   * Drops every object and removes the session directory. Views already returned stay valid
   * until collected. Idempotent.
   */
  close(): void {
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    this.#objects.clear();
    this.#mappings.clear();
    this.#used = 0;
    this.#inlineBytes = 0;
    this.#segments = 0;
    this.#directory.remove();
    setObjectRefHooks(undefined);
    debug('session %s closed', this.sessionId);
  }

  [Symbol.dispose](): void {
    this.close();
  }

  #assertRunning(operation: string): void {
    if (this.#state !== 'running') throw new StoreClosedError(operation);
  }

  #reserve(size: number): void {
    const capacity = this.options.objectStoreMemory;
    if (this.#used + size > capacity) throw new ObjectStoreFullError(size, this.#used, capacity);
    this.#used += size;
  }

  #writeSegment(id: string, encoded: EncodedValue): void {
    writeEncodedSegment(this.#directory.segmentPath(id), encoded);
  }

  #retainContained(ids: readonly string[]): string[] {
    const contains: string[] = [];
    for (const id of ids) {
      if (this.hold(id)) contains.push(id);
    }
    return contains;
  }

  #settle(id: string, entry: Entry): void {
    const waiters = entry.waiters;
    entry.waiters = undefined;
    if (entry.count <= 0) this.#delete(id);
    if (waiters) for (const wake of waiters) wake();
  }

  #track(ref: ObjectRef): void {
    if (ref.owner !== this.sessionId) return;
    const entry = this.#objects.get(ref.id);
    if (!entry) return;
    entry.count += 1;
    this.#refsDropped.register(ref, ref.id, ref);
  }

  #release(id: string): void {
    const entry = this.#objects.get(id);
    if (!entry) return;
    entry.count -= 1;
    // A pending object stays until its task settles it; #settle deletes it then if unreferenced.
    if (entry.count <= 0 && entry.state !== 'pending') this.#delete(id);
  }

  #delete(id: string): boolean {
    const entry = this.#objects.get(id);
    if (!entry) return false;
    this.#objects.delete(id);
    if (entry.state !== 'ready') {
      // Nothing was stored. A pending object freed now fails its waiters.
      if (entry.state === 'pending') {
        entry.state = 'failed';
        entry.error = new ObjectFreedError(id);
        const waiters = entry.waiters;
        entry.waiters = undefined;
        if (waiters) for (const wake of waiters) wake();
      }
    } else if (entry.bytes) {
      this.#inlineBytes -= entry.size;
    } else {
      this.#used -= entry.size;
      this.#segments -= 1;
      this.#mappings.forget(id);
      try {
        unlinkSegment(this.#directory.segmentPath(id));
      } catch (error) {
        debug('unlink of %s failed: %o', id, error);
      }
    }
    debug('freed %s (%d bytes)', id, entry.size);
    if (entry.state === 'ready' && !entry.bytes) this.onDelete?.(id);
    for (const contained of entry.contains) this.#release(contained);
    return true;
  }

  #getForeign<T>(ref: ObjectRef<T>, where: string): T {
    const path = segmentPathOf(this.options.shmRoot, ref.owner, ref.id);
    try {
      // A mapping kept from before must not outlive the object: check the segment still exists.
      accessSync(path);
      const mapping = this.#mappings.map(ref.id, path);
      return decodeValue(new Uint8Array(mapping), { copy: false, sliceArrayBuffer: sliceBuffer, where }) as T;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || (error instanceof SharedMemoryError && error.errnoCode === 'ENOENT')) {
        this.#mappings.forget(ref.id);
        throw new ObjectFreedError(
          ref.id,
          ` (or session ${ref.owner} ended, or it is a small object kept in that session's memory, which ` +
            'only processes connected to the session can read)',
          { cause: error },
        );
      }
      throw error;
    }
  }
}

function ready(size: number, bytes: Uint8Array | undefined, contains: readonly string[]): Entry {
  return { state: 'ready', size, bytes, error: undefined, count: 0, contains, waiters: undefined };
}

function describe(value: unknown): string {
  if (value === null || typeof value !== 'object') return String(value);
  return (value as { constructor?: { name?: string } }).constructor?.name ?? 'object';
}
