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
  segmentSize,
  unmapNow,
} from './segment-files.js';

const debug = debuglog('shoal:store');

const PAGE = 4096;
/** Files held for reuse at most (idle and draining each): every one keeps a writing mapping. */
const MAX_FILES = 64;

/** A segment file the store writes through its own shared mapping, kept across the objects it holds. */
export interface SegmentMemory {
  /** The file's size: the largest object it can hold (page-rounded, at least the object's size). */
  readonly capacity: number;
  /** The store's MAP_SHARED read-write mapping of the whole file, its pages faulted once. */
  readonly memory: ArrayBuffer;
}

interface HeldFile extends SegmentMemory {
  /** Its name in the session directory while the pool holds it (`pool.N` or `drain.N`). */
  name: string;
}

/** Whether a file of `capacity` bytes may hold an object of `size`: not too much room left over. */
function suits(capacity: number, size: number): boolean {
  return capacity >= size && capacity - size <= Math.max(Math.floor(size / 8), 1 << 20);
}

/**
 * Memory the store reuses: segment files of deleted objects, kept with the store's own writing
 * mapping, so the next put, pull or result of about their size is a memcpy into pages that are
 * already there (fresh tmpfs pages cost ~6x a memcpy to fault in).
 *
 * A file is reused only once **no process maps it**: every reading mapping holds a shared flock
 * on its file (taken in the addon, dropped by the kernel when the mapping goes or its process
 * dies), and {@link SegmentPool.release} renames a deleted object's file into the pool only if it
 * gets the exclusive lock (`reclaimSegment`). A file someone still maps is renamed `drain.N` (so
 * no get finds it under the object's id) and reclaimed later, when a claim finds nothing idle.
 * Names with a dot are never object ids.
 *
 * @example
 * ```ts
 * const file = pool.claim(path, size);          // renamed to `path`, or created there
 * new Uint8Array(file.memory).set(bytes);       // memcpy into faulted pages
 * pool.release(path, file);                     // the object was deleted
 * ```
 */
export class SegmentPool {
  readonly #directory: string;
  readonly #idle: HeldFile[] = [];
  readonly #draining: HeldFile[] = [];
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

  /**
   * A file named `path` for a new object of `size` bytes: an idle one of about that size renamed,
   * else a new one (its pages reserved now: a full /dev/shm is ENOSPC here, never a SIGBUS).
   * @throws SharedMemoryError when the file cannot be made.
   */
  claim(path: string, size: number): SegmentMemory {
    const reused = this.lend(path, size);
    if (reused) return reused;
    const capacity = Math.max(PAGE, Math.ceil(size / PAGE) * PAGE);
    const fd = createSegment(path, capacity);
    try {
      return { capacity, memory: mapSegment(fd, capacity, { shared: true }, path) };
    } catch (error) {
      removeQuietly(-1, path);
      throw error;
    } finally {
      closeSegment(fd, path);
    }
  }

  /**
   * An idle file of about `size` bytes renamed to `path`, for another process to write object
   * `size` into (a task result), or undefined when none suits: a new file is then the writer's to
   * make. Never throws.
   */
  lend(path: string, size: number): SegmentMemory | undefined {
    let file = this.#takeIdle(size);
    if (!file && this.#draining.length > 0) {
      this.#reclaimDrained();
      file = this.#takeIdle(size);
    }
    if (!file) return undefined;
    try {
      renameSegment(join(this.#directory, file.name), path);
      return file;
    } catch (error) {
      debug('could not lend %s: %o', file.name, error);
      this.#drop(file);
      return undefined;
    }
  }

  /**
   * The object in file `path` is gone: the file becomes idle if no process maps it, else it
   * drains until none does. Never throws (a file that cannot be kept is removed).
   */
  release(path: string, file: SegmentMemory): void {
    const held: HeldFile = { ...file, name: `pool.${this.#next++}` };
    try {
      if (reclaimSegment(path, join(this.#directory, held.name))) {
        this.#idle.push(held);
      } else {
        held.name = `drain.${this.#next++}`;
        renameSegment(path, join(this.#directory, held.name));
        this.#draining.push(held);
      }
    } catch (error) {
      debug('could not keep %s for reuse: %o', path, error);
      this.#drop(held, path);
      return;
    }
    while (this.#idle.length > MAX_FILES) this.#drop(this.#idle.shift()!);
    while (this.#draining.length > MAX_FILES) this.#drop(this.#draining.shift()!);
  }

  /**
   * The object in file `path`, written by another process (a worker's result or put, a sealed
   * `create`), is gone: like {@link SegmentPool.release}, with a writing mapping made now (its
   * pages are faulted into it by the first reuse). Never throws: a file that cannot be kept is
   * removed.
   */
  adopt(path: string): void {
    let file: SegmentMemory;
    try {
      const fd = openSegment(path, 'write');
      try {
        const capacity = segmentSize(fd, path);
        if (capacity === 0) throw new RangeError('an empty segment file');
        file = { capacity, memory: mapSegment(fd, capacity, { shared: true }, path) };
      } finally {
        closeSegment(fd, path);
      }
    } catch (error) {
      debug('could not keep %s for reuse: %o', path, error);
      removeQuietly(-1, path);
      return;
    }
    this.release(path, file);
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

  /** Gives every held file up (the store closes; the files go with its directory). */
  clear(): void {
    for (const file of [...this.#idle, ...this.#draining]) unmapNow(file.memory);
    this.#idle.length = 0;
    this.#draining.length = 0;
  }

  /** Unmaps a claimed file the store will not keep, and removes it. */
  discard(path: string, file: SegmentMemory): void {
    unmapNow(file.memory);
    removeQuietly(-1, path);
  }

  /** The smallest idle file that suits `size`, taken out of the pool. */
  #takeIdle(size: number): HeldFile | undefined {
    let best = -1;
    for (let i = 0; i < this.#idle.length; i++) {
      const capacity = this.#idle[i]!.capacity;
      if (suits(capacity, size) && (best < 0 || capacity < this.#idle[best]!.capacity)) best = i;
    }
    return best < 0 ? undefined : this.#idle.splice(best, 1)[0];
  }

  /** Moves every draining file no process maps any more to the idle ones. */
  #reclaimDrained(): void {
    for (let i = this.#draining.length - 1; i >= 0; i--) {
      const file = this.#draining[i]!;
      const name = `pool.${this.#next++}`;
      try {
        if (!reclaimSegment(join(this.#directory, file.name), join(this.#directory, name))) continue;
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

  #drop(file: HeldFile, path = join(this.#directory, file.name)): void {
    this.discard(path, file);
  }
}
