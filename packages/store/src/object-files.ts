import { fstatSync, statSync } from 'node:fs';
import { basename } from 'node:path';
import { debuglog } from 'node:util';
import type { Capacity } from './capacity.js';
import { closeSegment, mapSegment, openSegment, removeQuietly, renameSegment, unmapNow } from './segment-files.js';
import { SegmentPool, type PoolFile } from './segment-pool.js';

/**
 * Writing mappings the store keeps of live objects' files at most (each is an entry of this
 * process's map count, which gets also need): beyond them a file is unmapped once written, and
 * mapped again (pages populated) when it is reused.
 */
const MAX_KEPT_MAPPINGS = 256;

const debug = debuglog('shoal:store');

interface Held {
  readonly file: PoolFile;
  /** Bytes charged beyond the object's size: the file's room past it. */
  readonly slack: number;
}

/** An object's file taken to be spilled (see {@link ObjectFiles.takeForSpill}). */
export interface SpillTaken {
  /** The object's bytes, in the file's memory. */
  readonly bytes: Uint8Array;
  /** The object is on disk: its file's memory is kept for reuse or removed. */
  commit(): void;
  /** The spill did not happen: the file is the object's again. */
  abort(): void;
}

/** A file being filled by an incoming object: its memory, then published or given back. */
export interface IncomingFile {
  readonly memory: ArrayBuffer;
  /** The object is whole: the file takes its name. */
  publish(id: string): void;
  /** The object will not be stored: the file goes back to the pool, its extra room is returned. */
  giveBack(): void;
  /**
   * A private (copy-on-write) mapping of the file's first `length` bytes for a reader that sends
   * them on as they are written (it sees the writes through the page cache). It holds the file's
   * shared lock: the pool reuses no file while such a mapping lives.
   */
  mapToRead(length: number): ArrayBuffer;
}

/**
 * The store's side of reusing memory (see SegmentPool): which object holds which reused file, the
 * files lent to workers for task results, and the room a reused file has beyond its object, which
 * is charged to the capacity (so `usedBytes` counts what the files take). Kept files count
 * against the capacity too: they are trimmed to what it leaves free.
 */
export class ObjectFiles {
  readonly #pool: SegmentPool;
  readonly #capacity: Capacity;
  readonly #pathOf: (id: string) => string;
  readonly #objects = new Map<string, Held>();
  readonly #lent = new Map<string, Held>();
  #kept = 0;

  constructor(directory: string, capacity: Capacity, pathOf: (id: string) => string) {
    this.#pool = new SegmentPool(directory);
    this.#capacity = capacity;
    this.#pathOf = pathOf;
  }

  /** Bytes of deleted objects' files kept for reuse. */
  get reusableBytes(): number {
    return this.#pool.heldBytes;
  }

  /**
   * Writes object `id` of `size` bytes (reserved by the caller) through `write` into a reused file
   * of about that size, or a new one, and publishes it under `id`. On failure the file goes back
   * to the pool and its extra room is returned (the size's reservation stays the caller's).
   */
  write(id: string, size: number, write: (memory: ArrayBuffer) => void): void {
    const incoming = this.incoming(size);
    try {
      write(incoming.memory);
    } catch (error) {
      incoming.giveBack();
      throw error;
    }
    incoming.publish(id);
  }

  /** A file for an object of `size` bytes (reserved by the caller) arriving in parts. */
  incoming(size: number): IncomingFile {
    const file = this.#pool.claim(size, this.#slackFor(size));
    let slack: number;
    try {
      slack = this.#chargeSlack(file, size);
    } catch (error) {
      this.#pool.release(file);
      throw error;
    }
    let done = false;
    return {
      memory: file.memory!,
      publish: (id) => {
        if (done) return;
        done = true;
        this.#pool.publish(file, id);
        this.#own(id, { file, slack });
      },
      giveBack: () => {
        if (done) return;
        done = true;
        this.#capacity.unreserve(slack);
        this.#pool.release(file);
      },
      mapToRead: (length) => {
        const path = this.#pool.pathOf(file);
        const fd = openSegment(path, 'read');
        try {
          return mapSegment(fd, length, { shared: false }, path);
        } finally {
          closeSegment(fd, path);
        }
      },
    };
  }

  /**
   * Lends an idle file of about `size` bytes for task result `id` (its size reserved by the
   * caller), for a worker to fill: its name in the session directory, or undefined when none
   * suits (the worker then writes a new file). A retry asking again keeps the file lent before.
   */
  lend(id: string, size: number): string | undefined {
    const earlier = this.#lent.get(id);
    if (earlier && earlier.file.capacity >= size && earlier.file.capacity - size === earlier.slack) return earlier.file.name;
    this.returnLent(id);
    const file = this.#pool.lend(size, this.#slackFor(size));
    if (!file) return undefined;
    let slack: number;
    try {
      slack = this.#chargeSlack(file, size);
    } catch {
      this.#pool.release(file);
      return undefined;
    }
    this.#lent.set(id, { file, slack });
    this.trim();
    return file.name;
  }

  /** Gives the file lent for result `id` back to the pool (it drains while a writer still holds it). Whether there was one. */
  returnLent(id: string): boolean {
    const held = this.#lent.get(id);
    if (!held) return false;
    this.#lent.delete(id);
    this.#capacity.unreserve(held.slack);
    this.#pool.release(held.file);
    return true;
  }

  /**
   * Result `id` was written into its lent file: the file takes its name and becomes the object's.
   * Returns the file's size (what it must hold), or undefined when nothing was lent for `id`.
   */
  publishLent(id: string): number | undefined {
    const held = this.#lent.get(id);
    if (!held) return undefined;
    this.#lent.delete(id);
    this.#pool.publish(held.file, id);
    this.#own(id, held);
    return held.file.capacity;
  }

  /**
   * Object `id` (`size` bytes) is deleted: its file is kept for reuse when the capacity leaves
   * room for it (a file another process wrote is adopted), else removed. Never throws.
   */
  deleted(id: string, size: number): void {
    if (!this.#release(id)) {
      const path = this.#pathOf(id);
      let capacity = 0;
      try {
        capacity = statSync(path).size;
      } catch {
        // Gone already: nothing to keep.
      }
      if (capacity >= size && capacity > 0 && this.#free() - this.#pool.heldBytes >= capacity) {
        this.#pool.release({ capacity, name: id, memory: undefined });
      } else {
        removeQuietly(-1, path);
      }
    }
    this.trim();
  }

  /**
   * Takes object `id`'s file (`size` bytes of object) to be spilled, if no process maps it: the
   * file leaves the object's name (gets find it gone), `bytes` shows the object, and then either
   * `commit` (the object is on disk: its memory is kept for reuse, within what the capacity leaves
   * free, else removed) or `abort` (the file gets the object's name back). Undefined while a
   * process maps it.
   */
  takeForSpill(id: string, size: number): SpillTaken | undefined {
    const path = this.#pathOf(id);
    const taken = this.#pool.takeFromObject(path);
    if (taken === undefined) return undefined;
    const name = basename(taken);
    const held = this.#objects.get(id);
    let memory = held?.file.memory;
    const mapped = memory === undefined;
    let capacity = held?.file.capacity ?? size;
    try {
      if (memory === undefined) {
        const fd = openSegment(taken, 'write');
        try {
          capacity = fstatSync(fd).size;
          memory = mapSegment(fd, capacity, { shared: true }, taken);
        } finally {
          closeSegment(fd, taken);
        }
      }
    } catch (error) {
      renameSegment(taken, path);
      throw error;
    }
    const mapping = memory;
    let settled = false;
    return {
      bytes: new Uint8Array(mapping, 0, size),
      commit: () => {
        if (settled) return;
        settled = true;
        if (held) {
          this.#objects.delete(id);
          this.#capacity.unreserve(held.slack);
          // The store's writing mapping stays with the file if it had one; a mapping made here goes.
          if (held.file.memory) this.#kept--;
          else unmapNow(mapping);
          held.file.name = name;
          this.#pool.adopt(held.file);
        } else if (capacity >= size && this.#free() - this.#pool.heldBytes >= capacity) {
          this.#pool.adopt({ capacity, name, memory: mapping });
        } else {
          unmapNow(mapping);
          removeQuietly(-1, taken);
        }
        this.trim();
      },
      abort: () => {
        if (settled) return;
        settled = true;
        if (mapped) unmapNow(mapping);
        try {
          renameSegment(taken, path);
        } catch (error) {
          // Cannot happen short of the directory going (ids are unique, RENAME_NOREPLACE): the
          // object's bytes are gone with it.
          debug('could not give %s its name back: %o', id, error);
        }
      },
    };
  }

  /** A file written for `id` that will not be its object (refused at registration): removed or given back. */
  discard(id: string): void {
    if (!this.#release(id) && !this.returnLent(id)) removeQuietly(-1, this.#pathOf(id));
  }

  /** Kept files take at most what the capacity leaves free. */
  trim(): void {
    if (this.#pool.heldFiles > 0) this.#pool.trim(this.#free());
  }

  /** Lets go of every mapping (the store closes; the files go with its directory). */
  clear(): void {
    for (const { file } of [...this.#objects.values(), ...this.#lent.values()]) this.#pool.unmap(file);
    this.#objects.clear();
    this.#lent.clear();
    this.#kept = 0;
    this.#pool.clear();
  }

  #own(id: string, held: Held): void {
    if (held.file.memory) {
      if (this.#kept >= MAX_KEPT_MAPPINGS) this.#pool.unmap(held.file);
      else this.#kept++;
    }
    this.#objects.set(id, held);
    this.trim();
  }

  #release(id: string): boolean {
    const held = this.#objects.get(id);
    if (!held) return false;
    this.#objects.delete(id);
    if (held.file.memory) this.#kept--;
    this.#capacity.unreserve(held.slack);
    this.#pool.release(held.file);
    return true;
  }

  #free(): number {
    return Math.max(0, this.#capacity.limit - this.#capacity.usedBytes);
  }

  /** Room a reused file may have beyond `size`: an eighth of it at most, and only what is free now. */
  #slackFor(size: number): number {
    return Math.min(Math.floor(size / 8), this.#free());
  }

  /** Charges a claimed file's room beyond `size`. @throws ObjectStoreFullError when another writer took it meanwhile. */
  #chargeSlack(file: PoolFile, size: number): number {
    const slack = file.capacity - size;
    if (slack > 0) this.#capacity.reserve(slack);
    return slack;
  }
}
