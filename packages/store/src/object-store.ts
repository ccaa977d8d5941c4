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
  writeFrontBytes,
  type EncodedValue,
} from '@shoal/protocol';
import { sliceBuffer, unlinkSegment, writeSegment } from '@shoal/shm';
import { MappingCache } from './mapping-cache.js';
import { ObjectWriter, type TypedArrayKind, resolveCreateArguments } from './object-writer.js';
import { resolveStoreOptions, type ResolvedStoreOptions, type StoreOptions } from './options.js';
import { SessionDirectory, segmentPathOf } from './session-directory.js';

const debug = debuglog('shoal:store');

/** Lifecycle of a store. */
export type StoreState = 'running' | 'closed';

interface Entry {
  readonly size: number;
  /** The serialized object, for inline objects; undefined for segment objects. */
  readonly bytes: Uint8Array | undefined;
  /** Live ObjectRef instances in this process plus stored objects that contain a ref to it. */
  count: number;
  /** Ids of objects this one contains refs to, each counted once in that object's `count`. */
  readonly contains: readonly string[];
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
  #used = 0;
  #inlineBytes = 0;
  #segments = 0;

  constructor(options?: StoreOptions) {
    this.options = resolveStoreOptions(options);
    this.sessionId = this.options.sessionId ?? newSessionId();
    this.#directory = new SessionDirectory(this.options.shmRoot, this.sessionId, this.options.handleSignals);
    this.#mappings = new MappingCache(this.options.maxMappings);
    setObjectRefHooks({ track: (ref) => this.#track(ref), get: (ref) => this.get(ref) });
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
    const encoded = encodeValue(value);
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
    this.#objects.set(id, { size, bytes, count: 0, contains: this.#retainContained(encoded.refs) });
    return new ObjectRef<T>(id, this.sessionId, size, bytes !== undefined);
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
      reserve: (size) => this.#reserve(size),
      unreserve: (size) => {
        this.#used -= size;
      },
      publish: (size, mapping) => {
        this.#assertRunning('seal an object');
        this.#segments += 1;
        this.#mappings.adopt(id, mapping);
        this.#objects.set(id, { size, bytes: undefined, count: 0, contains: [] });
        return new ObjectRef(id, this.sessionId, size, false);
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
      if (entry.bytes) return decodeValue(entry.bytes, { copy: true, where }) as T;
      const mapping = this.#mappings.map(ref.id, this.#directory.segmentPath(ref.id), entry.size);
      return decodeValue(new Uint8Array(mapping), { copy: false, sliceArrayBuffer: sliceBuffer, where }) as T;
    }
    return this.#getForeign(ref, where);
  }

  /** The value of `ref` (see {@link ObjectStore.getSync}). */
  async get<T>(ref: ObjectRef<T>): Promise<T> {
    return this.getSync(ref);
  }

  /**
   * Frees the object now, whatever refs remain: its segment is unlinked and later gets fail with
   * `ObjectFreedError`. Views already returned stay valid (the kernel keeps their pages).
   * Returns false when the object was already freed or is not this store's.
   */
  free(ref: ObjectRef): boolean {
    if (!(ref instanceof ObjectRef)) throw new TypeError(`Expected an ObjectRef, got \`${describe(ref)}\``);
    if (ref.owner !== this.sessionId || this.#state === 'closed') return false;
    return this.#delete(ref.id);
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
    const { layout } = encoded;
    const views: (ArrayBufferView | ArrayBuffer)[] = [writeFrontBytes(encoded), ...encoded.buffers];
    const offsets = [0, ...layout.bufferOffsets];
    writeSegment(this.#directory.segmentPath(id), layout.totalSize, views, offsets);
  }

  #retainContained(refs: readonly ObjectRef[]): string[] {
    const contains: string[] = [];
    for (const ref of refs) {
      const entry = ref.owner === this.sessionId ? this.#objects.get(ref.id) : undefined;
      if (entry) {
        entry.count += 1;
        contains.push(ref.id);
      }
    }
    return contains;
  }

  #track(ref: ObjectRef): void {
    if (ref.owner !== this.sessionId) return;
    const entry = this.#objects.get(ref.id);
    if (!entry) return;
    entry.count += 1;
    this.#refsDropped.register(ref, ref.id);
  }

  #release(id: string): void {
    const entry = this.#objects.get(id);
    if (!entry) return;
    entry.count -= 1;
    if (entry.count <= 0) this.#delete(id);
  }

  #delete(id: string): boolean {
    const entry = this.#objects.get(id);
    if (!entry) return false;
    this.#objects.delete(id);
    if (entry.bytes) {
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
    for (const contained of entry.contains) this.#release(contained);
    return true;
  }

  #getForeign<T>(ref: ObjectRef<T>, where: string): T {
    if (ref.inline) {
      throw new ObjectNotFoundError(
        ref.id,
        `it is a small object held in the memory of session ${ref.owner}, and this process is not connected ` +
          'to that session. Pass small values by value, or read the ref from a process of its session.',
      );
    }
    const path = segmentPathOf(this.options.shmRoot, ref.owner, ref.id);
    try {
      // A mapping kept from before must not outlive the object: check the segment still exists.
      accessSync(path);
      const mapping = this.#mappings.map(ref.id, path, ref.size);
      return decodeValue(new Uint8Array(mapping), { copy: false, sliceArrayBuffer: sliceBuffer, where }) as T;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || (error instanceof SharedMemoryError && error.errnoCode === 'ENOENT')) {
        this.#mappings.forget(ref.id);
        throw new ObjectFreedError(ref.id, ` (or session ${ref.owner} ended)`, { cause: error });
      }
      throw error;
    }
  }
}

function describe(value: unknown): string {
  if (value === null || typeof value !== 'object') return String(value);
  return (value as { constructor?: { name?: string } }).constructor?.name ?? 'object';
}
