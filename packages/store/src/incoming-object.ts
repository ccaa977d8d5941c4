import { watchPull, type CopyProgress } from './copy-progress.js';
import { OutgoingObject } from './outgoing-object.js';
import { copyIntoMapping } from './segment-files.js';

/** Where an {@link IncomingObject} is in its life. */
export type IncomingState = 'writing' | 'written' | 'sealed' | 'discarded';

/** What an incoming object needs from its store. */
export interface IncomingHost {
  /** Registers the written object (its reservation becomes the stored segment). */
  seal(incoming: IncomingObject, contains: readonly string[]): void;
  /** Gives back the reservation (and the file) of an object that will not be stored. */
  discarded(incoming: IncomingObject): void;
  /** A private mapping of the object's file, holding its lock (see {@link IncomingObject.openForRead}). */
  mapToRead(): ArrayBuffer;
}

/**
 * An object arriving from elsewhere (another node), written in order (copied, or read in place) into a segment of the
 * store's session directory (reused memory when the store has some of about its size), then
 * sealed (registered as ready) or discarded. Made by
 * `store.acceptIncoming(id, size)`, which reserved its size in the capacity: until sealed it is
 * counted but no get sees it.
 *
 * @example
 * ```ts
 * const incoming = store.acceptIncoming(id, size);
 * try {
 *   for await (const { offset, bytes } of chunks) incoming.write(bytes, offset);
 *   incoming.seal([]);
 * } catch (error) {
 *   incoming.discard();
 *   throw error;
 * }
 * ```
 */
export class IncomingObject {
  readonly id: string;
  /** Bytes the object takes (header included). */
  readonly size: number;
  readonly #memory: ArrayBuffer;
  readonly #host: IncomingHost;
  #written = 0;
  #state: IncomingState = 'writing';
  #onDiscard: (() => void)[] = [];
  /** Told of every write, and of the end (sealed or discarded): see {@link watch}. */
  #watchers: (() => void)[] = [];
  /** Told how far the object got, when someone watches big pulls (a progress bar on a terminal). */
  readonly #progress: CopyProgress | undefined;

  /** @internal Made by `store.acceptIncoming`, with the segment already made and mapped (`memory`, shared and writable). */
  constructor(id: string, size: number, memory: ArrayBuffer, host: IncomingHost) {
    this.id = id;
    this.size = size;
    this.#memory = memory;
    this.#host = host;
    this.#progress = watchPull(size);
  }

  get state(): IncomingState {
    return this.#state;
  }

  /** Bytes written so far. */
  get written(): number {
    return this.#written;
  }

  /**
   * Writes `chunk` at byte `offset` (one memcpy into the segment's memory). Chunks of a pull
   * arrive in order; once `size` bytes are written the object waits to be sealed.
   * @throws RangeError when the chunk reaches past `size`; Error when no longer writing.
   */
  write(chunk: ArrayBufferView, offset: number): void {
    this.#check(offset, chunk.byteLength);
    copyIntoMapping(this.#memory, [chunk], [offset]);
    this.#advance(chunk.byteLength);
  }

  /**
   * The next `length` bytes of the segment's memory after the {@link written} ones, writable, for
   * a reader that fills them in place (a socket reading straight into the object). Say how many
   * it filled with {@link wrote}; nothing counts as written before that.
   * @throws RangeError when that reaches past `size`; Error when no longer writing.
   */
  target(length: number): Uint8Array {
    this.#check(this.#written, length);
    return new Uint8Array(this.#memory, this.#written, length);
  }

  /** The reader of {@link target} filled its first `bytes` bytes. @throws as {@link target} does. */
  wrote(bytes: number): void {
    this.#check(this.#written, bytes);
    this.#advance(bytes);
  }

  #check(offset: number, length: number): void {
    if (this.#state !== 'writing') throw new Error(`Cannot write to incoming object ${this.id}: it is ${this.#state}.`);
    if (offset < 0 || length < 0 || offset + length > this.size) {
      throw new RangeError(`Expected a chunk within the ${this.size} bytes of object ${this.id}, got ${length} bytes at ${offset}`);
    }
  }

  #advance(bytes: number): void {
    this.#written += bytes;
    this.#progress?.advance(bytes);
    if (this.#written >= this.size) {
      this.#state = 'written';
      this.#progress?.done();
    }
    this.#tell();
  }

  #tell(): void {
    // A copy: a watcher may stop watching while it is told.
    if (this.#watchers.length > 0) for (const watcher of this.#watchers.slice()) watcher();
  }

  /**
   * Calls `watcher` after every write that adds bytes, and once more when the object is sealed
   * or discarded (look at {@link state} and {@link written}); never after that. Returns what
   * stops the watching. A reader sending the object on as it arrives (a relay to another node) waits this way.
   */
  watch(watcher: () => void): () => void {
    if (this.#state === 'sealed' || this.#state === 'discarded') return () => {};
    this.#watchers.push(watcher);
    return () => {
      const at = this.#watchers.indexOf(watcher);
      if (at >= 0) this.#watchers.splice(at, 1);
    };
  }

  /**
   * Opens the object to be sent on while it still arrives: a private mapping of its file, in
   * which the bytes appear as they are {@link written} (read only the first `written` bytes;
   * {@link watch} says when there are more). The mapping holds the file's lock, so its memory is
   * not reused for another object while it lives, even if this one is discarded. Close it once sent.
   * @throws Error when the object is sealed or discarded already (a sealed one is read from the store).
   */
  openForRead(): OutgoingObject {
    if (this.#state === 'sealed' || this.#state === 'discarded') throw new Error(`Cannot read incoming object ${this.id} as it arrives: it is already ${this.#state}.`);
    return new OutgoingObject(this.id, this.size, this.#host.mapToRead());
  }

  /**
   * Registers the object as ready in the store, holding the objects whose refs it contains;
   * gets of it (and of a pending entry of the same id) then see it.
   * @throws Error when not all `size` bytes were written, or when already sealed or discarded.
   */
  seal(contains: readonly string[]): void {
    if (this.#state === 'sealed' || this.#state === 'discarded') {
      throw new Error(`Cannot seal incoming object ${this.id}: it is already ${this.#state}.`);
    }
    if (this.#written < this.size) {
      throw new Error(`Cannot seal incoming object ${this.id}: ${this.#written} of its ${this.size} bytes were written.`);
    }
    this.#state = 'sealed';
    this.#host.seal(this, contains);
    this.#end();
  }

  #end(): void {
    const watchers = this.#watchers;
    this.#watchers = [];
    for (const watcher of watchers) watcher();
  }

  /** Gives back the file and the reservation. Idempotent; does nothing once sealed. */
  discard(): void {
    if (this.#state === 'sealed' || this.#state === 'discarded') return;
    this.#state = 'discarded';
    this.#progress?.done();
    // Before the memory goes back: a reader filling a {@link target} in place must stop first.
    for (const listener of this.#onDiscard.splice(0)) listener();
    this.#host.discarded(this);
    this.#end();
  }

  /**
   * Calls `listener` when the object is discarded, before its memory is given back (at once if
   * it is discarded already): a reader holding a {@link target} (a socket reading into it) stops there.
   */
  onDiscard(listener: () => void): void {
    if (this.#state === 'discarded') listener();
    else if (this.#state !== 'sealed') this.#onDiscard.push(listener);
  }
}
