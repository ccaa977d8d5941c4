import { join } from 'node:path';
import { debuglog } from 'node:util';
import {
  closeSegment,
  createSegment,
  mapSegment,
  openSegment,
  reclaimSegment,
  removeQuietly,
  renameSegment,
  unmapNow,
} from './segment-files.js';

const debug = debuglog('shoal:store');

/** Files held for reuse at most (idle and draining each). */
const MAX_FILES = 64;

/** A segment file the pool made or keeps, under a name no object id can have until published. */
export interface PoolFile {
  /** The file's size: the largest object it can hold. */
  readonly capacity: number;
  /** Its name in the session directory (`pool.N`, `drain.N`, `new.N`, `lent.N`), or an object's id once published. */
  name: string;
  /** The store's MAP_SHARED read-write mapping of the whole file, if it keeps one (pages faulted once). */
  memory: ArrayBuffer | undefined;
}

/**
 * Memory the store reuses: segment files of deleted objects, so the next put, pull or result of
 * about their size writes into pages that are already there (fresh tmpfs pages cost ~6x a memcpy
 * to fault in).
 *
 * A file is reused only once **no process maps it**: every reading mapping holds a shared flock
 * on its file (taken in the addon; it lasts as long as the mapping, and goes when its process
 * dies), and {@link SegmentPool.release} renames a deleted object's file into the pool only if it
 * gets the exclusive lock (`reclaimSegment`). A file someone still maps is renamed `drain.N` (so
 * no get finds it under the object's id) and reclaimed later, when a claim finds nothing idle.
 * Until published under an object's id, a file has a name with a dot: no id has one, so no get
 * ever sees a file being written.
 */
export class SegmentPool {
  readonly #directory: string;
  readonly #idle: PoolFile[] = [];
  readonly #draining: PoolFile[] = [];
  #next = 0;

  constructor(directory: string) {
    this.#directory = directory;
  }

  /** Bytes of files held for reuse (idle, and still mapped by a reader). */
  get heldBytes(): number {
    let bytes = 0;
    for (const file of this.#idle) bytes += file.capacity;
    for (const file of this.#draining) bytes += file.capacity;
    return bytes;
  }

  /** Files held for reuse. */
  get heldFiles(): number {
    return this.#idle.length + this.#draining.length;
  }

  /** The path of a file the pool made or keeps. */
  pathOf(file: PoolFile): string {
    return join(this.#directory, file.name);
  }

  /**
   * A file for a new object of `size` bytes, with the store's mapping of it: an idle one of
   * `size` to `size + slack` bytes, else a new one of exactly `size` (its pages reserved now: a
   * full /dev/shm is ENOSPC here, never a SIGBUS). Named `pool.N` / `new.N` until published.
   * @throws SharedMemoryError when the file cannot be made.
   */
  claim(size: number, slack: number): PoolFile {
    // An idle file keeps its `pool.N` name until published: no rename on the put path.
    const reused = this.#take(size, slack);
    if (reused) {
      try {
        // Mapped with its pages populated (they are in memory already): no fault per page later.
        reused.memory ??= this.#map(reused, true);
        return reused;
      } catch (error) {
        this.#drop(reused);
        throw error;
      }
    }
    const file: PoolFile = { capacity: size, name: `new.${this.#next++}`, memory: undefined };
    const path = this.pathOf(file);
    const fd = createSegment(path, size);
    try {
      file.memory = mapSegment(fd, size, { shared: true }, path);
      return file;
    } catch (error) {
      removeQuietly(-1, path);
      throw error;
    } finally {
      closeSegment(fd, path);
    }
  }

  /**
   * An idle file of `size` to `size + slack` bytes taken out of the pool and renamed `lent.N`, for
   * another process to fill, or undefined when none suits. Never throws.
   */
  lend(size: number, slack: number): PoolFile | undefined {
    const file = this.#take(size, slack);
    if (!file) return undefined;
    // Its own name: once given back (renamed into the pool), a late writer finds it gone.
    const name = `lent.${this.#next++}`;
    try {
      renameSegment(this.pathOf(file), join(this.#directory, name));
      file.name = name;
      return file;
    } catch (error) {
      debug('could not take %s from the pool: %o', file.name, error);
      this.#drop(file);
      return undefined;
    }
  }

  /** Gives a claimed or lent file its object's name: from now on gets find it. */
  publish(file: PoolFile, id: string): void {
    renameSegment(this.pathOf(file), join(this.#directory, id));
    file.name = id;
  }

  /**
   * The file is no longer an object's (deleted, or never published): it becomes idle if no
   * process maps it or writes it, else it drains until none does. Never throws (a file that
   * cannot be kept is removed).
   */
  release(file: PoolFile): void {
    const from = this.pathOf(file);
    const name = `pool.${this.#next++}`;
    try {
      if (reclaimSegment(from, join(this.#directory, name))) {
        file.name = name;
        this.#idle.push(file);
      } else {
        const draining = `drain.${this.#next++}`;
        renameSegment(from, join(this.#directory, draining));
        file.name = draining;
        this.#draining.push(file);
      }
    } catch (error) {
      debug('could not keep %s for reuse: %o', from, error);
      this.#drop(file);
      return;
    }
    while (this.#idle.length > MAX_FILES) this.#drop(this.#idle.shift()!);
    while (this.#draining.length > MAX_FILES) this.#drop(this.#draining.shift()!);
  }

  /**
   * Removes held files until they take at most `bytes`: those still mapped by a reader first
   * (their pages stay for that reader until it lets go), then the largest idle ones.
   */
  trim(bytes: number): void {
    let held = this.heldBytes;
    while (held > bytes && this.#draining.length > 0) {
      const file = this.#draining.shift()!;
      held -= file.capacity;
      this.#drop(file);
    }
    if (held <= bytes) return;
    this.#idle.sort((a, b) => a.capacity - b.capacity);
    while (held > bytes && this.#idle.length > 0) {
      const file = this.#idle.pop()!;
      held -= file.capacity;
      this.#drop(file);
    }
  }

  /**
   * Takes the file of a live object `path` out of its hands if no process maps it (the exclusive
   * lock, then a rename to a `pool.N` name while locked, as {@link release} does): readers
   * opening it by the object's id find it gone from now on. Returns the new path, or undefined
   * while a process maps it (nothing changed). The caller {@link adopt}s it or renames it back.
   */
  takeFromObject(path: string): string | undefined {
    const to = join(this.#directory, `pool.${this.#next++}`);
    try {
      return reclaimSegment(path, to) ? to : undefined;
    } catch (error) {
      debug('could not take %s: %o', path, error);
      return undefined;
    }
  }

  /** A file taken with {@link takeFromObject} (named by its path there) becomes idle: the next object of about its size reuses it. */
  adopt(file: PoolFile): void {
    this.#idle.push(file);
    while (this.#idle.length > MAX_FILES) this.#drop(this.#idle.shift()!);
  }

  /** Lets go of the store's mapping of `file` now (it keeps its pages; a claim maps it again). */
  unmap(file: PoolFile): void {
    if (file.memory) unmapNow(file.memory);
    file.memory = undefined;
  }

  /** Unmaps and removes a file. */
  remove(file: PoolFile): void {
    this.#drop(file);
  }

  /** Gives every held file up (the store closes; the files go with its directory). */
  clear(): void {
    for (const file of [...this.#idle, ...this.#draining]) this.unmap(file);
    this.#idle.length = 0;
    this.#draining.length = 0;
  }

  /**
   * The smallest idle file of `size` to `size + slack` bytes, taken out of the pool (the newest of
   * equals: warmest); when none suits, draining files that would suit are tried first.
   */
  #take(size: number, slack: number): PoolFile | undefined {
    const suits = (file: PoolFile) => file.capacity >= size && file.capacity - size <= slack;
    let best = this.#smallest(suits);
    if (best < 0 && this.#draining.some(suits)) {
      this.#reclaimDrained(suits);
      best = this.#smallest(suits);
    }
    return best < 0 ? undefined : this.#idle.splice(best, 1)[0];
  }

  #smallest(suits: (file: PoolFile) => boolean): number {
    let best = -1;
    for (let i = 0; i < this.#idle.length; i++) {
      const file = this.#idle[i]!;
      if (suits(file) && (best < 0 || file.capacity <= this.#idle[best]!.capacity)) best = i;
    }
    return best;
  }

  /**
   * Moves the draining files that `suit` and no process maps any more to the idle ones (only
   * those: each try is an open, a flock and a close, and a put must not pay for files it cannot use).
   */
  #reclaimDrained(suit: (file: PoolFile) => boolean): void {
    for (let i = this.#draining.length - 1; i >= 0; i--) {
      const file = this.#draining[i]!;
      if (!suit(file)) continue;
      const name = `pool.${this.#next++}`;
      try {
        if (!reclaimSegment(this.pathOf(file), join(this.#directory, name))) continue;
      } catch (error) {
        debug('could not reclaim %s: %o', file.name, error);
        this.#draining.splice(i, 1);
        this.#drop(file);
        continue;
      }
      this.#draining.splice(i, 1);
      file.name = name;
      this.#idle.push(file);
    }
  }

  #map(file: PoolFile, populate: boolean): ArrayBuffer {
    const path = this.pathOf(file);
    const fd = openSegment(path, 'write');
    try {
      return mapSegment(fd, file.capacity, { shared: true, populate }, path);
    } finally {
      closeSegment(fd, path);
    }
  }

  #drop(file: PoolFile): void {
    this.unmap(file);
    removeQuietly(-1, this.pathOf(file));
  }
}
