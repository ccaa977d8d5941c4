import type { ObjectRef } from '@shoal/runtime';
import type { NamedVersion, Storable } from '@shoal/runtime';
import type { ObjectWriter, StoreStats, TypedArrayKind } from '@shoal/runtime';
import { runtime } from './session.js';
import { get, type GetOptions } from './tasks.js';

/** The object store API of this process's Shoal session. */
export interface Store {
  /**
   * Stores `value` and returns a ref, synchronously. Large values (100 KiB and up) are written
   * once into their own shared-memory segment; every process on the machine then reads them in
   * place. Values follow structured clone: primitives, plain objects, arrays, Map, Set, Date,
   * RegExp, Error, BigInt, ArrayBuffer, every TypedArray, DataView, Buffer and nested ObjectRefs.
   *
   * @example
   * ```ts
   * const ref = store.put({ weights: new Float32Array(64e6), version: 3 });
   * ```
   * Its type refuses what cannot be stored (functions, symbols, promises, class instances with
   * methods: see {@link Storable}).
   *
   * @throws TypeError naming the path of a value that cannot be stored.
   * @throws ObjectStoreFullError when the object does not fit.
   */
  put<T>(value: T & Storable<T>): ObjectRef<T>;
  /**
   * The value of a ref, once its object is ready (a task result may still be running). Arrays of
   * large objects come back as copy-on-write views of shared memory: no copy, whatever their
   * size. Each get shows the object as stored: a write through a view stays in that view (and
   * views from gets made before the write), never in later gets, here or anywhere. `await ref`
   * and `get(ref)` do the same.
   *
   * @example
   * ```ts
   * const { weights } = await store.get(ref);
   * ```
   * With `timeoutMs` or `signal` the wait can end first, as for {@link get}.
   */
  get<T>(ref: ObjectRef<T>, options?: GetOptions): Promise<T>;
  /** {@link Store.get}, synchronously: for ready objects on this machine. */
  getSync<T>(ref: ObjectRef<T>): T;
  /**
   * Resolves once `bytes` more fit in this machine's store: objects nobody maps are spilled to
   * disk, and the node's processes let go of mappings they no longer view (which a synchronous
   * `put` or `create` cannot wait for). Call it before a put or create that may not fit; no room
   * is held for it (another process may take it first). `bytes` is what the object will take in
   * shared memory: its data and a header (add a few KiB). In a program attached from a machine
   * without a node it does nothing.
   *
   * @example
   * ```ts
   * await store.makeRoom(items * dim * 4 + 4096); // the data and its header
   * const writer = store.create(Float32Array, items * dim);
   * ```
   * @throws ObjectStoreFullError naming the sizes when even spilling cannot make the room.
   */
  makeRoom(bytes: number): Promise<void>;
  /**
   * A new TypedArray in shared memory to fill in place; `seal()` publishes it and returns the
   * ref: a put with no copy at all. `create(byteLength)` makes a Uint8Array.
   *
   * @example
   * ```ts
   * const writer = store.create(Float64Array, 200_000_000);
   * for (let i = 0; i < writer.array.length; i++) writer.array[i] = Math.random();
   * const ref = writer.seal();
   * ```
   */
  create<K extends TypedArrayKind>(type: K, length: number): ObjectWriter<InstanceType<K>>;
  create(byteLength: number): ObjectWriter<Uint8Array>;
  /**
   * Frees an object now, whatever refs remain (views already returned stay valid). Objects are
   * also freed on their own once no ref to them remains. Returns false if it was already freed.
   */
  free(ref: ObjectRef): boolean;
  /** What the store holds (in the process that runs the node). */
  stats(): StoreStats;
  /**
   * Publishes `value` (or the object of a ref) under `name`, atomically replacing what the name
   * was bound to. The name holds its object; the previous one is freed once no process holds it
   * any more (readers in the middle of a request keep theirs). Resolves with the new version.
   *
   * @example
   * ```ts
   * await store.putNamed('items', writer.seal());
   * ```
   */
  putNamed<T>(name: string, value: ObjectRef<T> | (T & Storable<T>)): Promise<NamedVersion<T>>;
  /**
   * The value currently published under `name`.
   * @throws ObjectNotFoundError when nothing is published under it.
   */
  getNamed<T>(name: string): Promise<T>;
  /**
   * The versions of `name` as they are published: the current one first (if any), then each
   * replacement. A slow reader skips to the newest. `break` (or `return()`) stops watching.
   *
   * @example
   * ```ts
   * for await (const { version, ref } of store.watch<Float32Array>('items')) current = { version, items: await ref };
   * ```
   */
  watch<T>(name: string): AsyncIterableIterator<NamedVersion<T>>;
}

/** This process's object store (starts Shoal with the defaults on first use). */
export const store: Store = {
  put: (value) => runtime().put(value),
  get: (ref, options) => (options === undefined ? runtime().get(ref) : get(ref, options)),
  getSync: (ref) => runtime().getSync(ref),
  makeRoom: (bytes) => runtime().makeRoom(bytes),
  create: ((typeOrBytes: TypedArrayKind | number, length?: number) => runtime().create(typeOrBytes, length)) as Store['create'],
  free: (ref) => runtime().free(ref),
  stats: () => runtime().stats(),
  putNamed: (name, value) => runtime().putNamed(name, value),
  getNamed: async (name) => (await runtime().getNamed(name)).value as never,
  watch: (name) => runtime().watch(name),
};
