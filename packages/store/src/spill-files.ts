import { closeSync, lstatSync, openSync, readSync, unlinkSync, writevSync } from 'node:fs';
import { join } from 'node:path';
import { debuglog } from 'node:util';
import { SpillError } from '@shoal/protocol';
import { SessionDirectory } from './session-directory.js';

const debug = debuglog('shoal:store');

/** Bytes of one write or read system call at most: large and sequential, the disk's best case. */
const IO_BYTES = 64 << 20;
/** Views one writev takes at most (IOV_MAX is 1024 on Linux). */
const IO_VIEWS = 1024;

/** An object to spill: its id and its serialized bytes (a view of its segment's memory). */
export interface SpillSource {
  readonly id: string;
  readonly bytes: Uint8Array;
}

/** Where a spilled object's bytes are: a batch file and the range in it. */
interface Spilled {
  readonly batch: Batch;
  readonly offset: number;
  readonly size: number;
  /** Read back into memory (the copy here is kept: spilling it again writes nothing). */
  inMemory: boolean;
}

/** One spill file: the objects written together, deleted once none of them is left. */
interface Batch {
  readonly path: string;
  live: number;
}

/** What {@link SpillFiles} has on disk and has done (cumulative counts since the store opened). */
export interface SpillStats {
  /** Bytes of objects on disk only now (their memory went). */
  readonly spilledBytes: number;
  /** Objects on disk only now. */
  readonly spilledObjects: number;
  /**
   * Bytes of objects the spill files hold now: the spilled objects, and the copies kept of objects
   * read back (an object is immutable, so spilling it again only lets its memory go). A batch
   * file's space goes back to the disk when the last object in it goes.
   */
  readonly diskBytes: number;
  /** Objects written to disk, and their bytes. */
  readonly spills: number;
  readonly spillBytesTotal: number;
  /** Milliseconds spent writing them (the spill throughput is bytes over time). */
  readonly spillMs: number;
  /** Objects read back from disk, and their bytes. */
  readonly restores: number;
  readonly restoreBytesTotal: number;
  readonly restoreMs: number;
}

/** The stats of a store that never spilled (or has spilling off). */
export const NO_SPILLS: SpillStats = { spilledBytes: 0, spilledObjects: 0, diskBytes: 0, spills: 0, spillBytesTotal: 0, spillMs: 0, restores: 0, restoreBytesTotal: 0, restoreMs: 0 };

/**
 * The spill directory of one session: objects written out of memory, a batch of them per file
 * (small ones together, so the disk sees large sequential writes), read back on use. The
 * directory is a session directory like the one in `/dev/shm` (`<root>/shoal-<sessionId>` with
 * an owner file): made on the first spill, removed by {@link close} or at exit, and swept by the
 * next session under the same root when its process died. Synchronous, as the store is.
 *
 * @example
 * ```ts
 * const spill = new SpillFiles('/var/tmp/shoal-spill', sessionId, true);
 * spill.write([{ id, bytes: new Uint8Array(segment) }]); // then the segment's memory may go
 * spill.read(id, new Uint8Array(newSegment));           // restore
 * spill.restored(id);                                   // in memory again; the copy stays
 * spill.respilled(id);                                  // its memory may go again: nothing written
 * spill.delete(id);                                     // freed: the batch file goes with its last object
 * ```
 */
export class SpillFiles {
  /** The root under which the session's spill directory is made. */
  readonly root: string;
  readonly #sessionId: string;
  readonly #handleSignals: boolean;
  #directory: SessionDirectory | undefined;
  readonly #objects = new Map<string, Spilled>();
  #next = 0;
  #diskBytes = 0;
  /** Bytes and number of the objects on disk that are in memory too. */
  #inMemoryBytes = 0;
  #inMemory = 0;
  /** The cumulative counts (the spilled-now ones are kept above). */
  #stats = { ...NO_SPILLS };

  constructor(root: string, sessionId: string, handleSignals: boolean) {
    this.root = root;
    this.#sessionId = sessionId;
    this.#handleSignals = handleSignals;
  }

  /** The session's spill directory (made on the first spill). */
  get directory(): string {
    return this.#directory?.path ?? join(this.root, `shoal-${this.#sessionId}`);
  }

  /** Whether object `id` is on disk (spilled, or read back with its copy kept). */
  has(id: string): boolean {
    return this.#objects.has(id);
  }

  /** Bytes of object `id` on disk, or undefined when it is not. */
  sizeOf(id: string): number | undefined {
    return this.#objects.get(id)?.size;
  }

  stats(): SpillStats {
    return {
      ...this.#stats,
      spilledBytes: this.#diskBytes - this.#inMemoryBytes,
      spilledObjects: this.#objects.size - this.#inMemory,
      diskBytes: this.#diskBytes,
    };
  }

  /** Object `id`, read back, is in memory again; its copy stays here (see {@link SpillFiles.respilled}). */
  restored(id: string): void {
    const spilled = this.#objects.get(id);
    if (!spilled || spilled.inMemory) return;
    spilled.inMemory = true;
    this.#inMemoryBytes += spilled.size;
    this.#inMemory += 1;
  }

  /** Object `id`'s memory goes again: its kept copy is what is spilled (nothing is written). */
  respilled(id: string): void {
    const spilled = this.#objects.get(id);
    if (!spilled || !spilled.inMemory) return;
    spilled.inMemory = false;
    this.#inMemoryBytes -= spilled.size;
    this.#inMemory -= 1;
  }

  /** Ids of the objects in memory whose copies are kept here (to delete when the disk is full). */
  keptCopies(): string[] {
    return [...this.#objects].filter(([, spilled]) => spilled.inMemory).map(([id]) => id);
  }

  /**
   * Writes `objects` one after another into one new file, in writes of up to 64 MiB. Not
   * flushed: a spill file need only outlive its session, which a crash of the machine ends too,
   * and the file system reports a full disk at the write (the kernel writes the pages back, and
   * then may reclaim them). On failure the file is removed and nothing counts as spilled.
   * @throws SpillError with the disk's errno (ENOSPC: the disk is full) when it cannot.
   */
  write(objects: readonly SpillSource[]): void {
    if (objects.length === 0) return;
    for (const { id } of objects) if (this.#objects.has(id)) throw new Error(`object ${id} is spilled already`);
    const started = performance.now();
    const directory = this.#open();
    const path = join(directory.path, `batch.${this.#next++}`);
    const total = objects.reduce((sum, { bytes }) => sum + bytes.byteLength, 0);
    let fd: number;
    try {
      fd = openSync(path, 'wx', 0o600);
    } catch (error) {
      throw spillError(`create a spill file for ${total} bytes`, directory.path, error);
    }
    try {
      writeAll(fd, objects.map(({ bytes }) => bytes));
    } catch (error) {
      closeSync(fd);
      removeQuietly(path);
      throw spillError(`write ${total} bytes`, directory.path, error);
    }
    closeSync(fd);
    const batch: Batch = { path, live: objects.length };
    let offset = 0;
    for (const { id, bytes } of objects) {
      this.#objects.set(id, { batch, offset, size: bytes.byteLength, inMemory: false });
      offset += bytes.byteLength;
    }
    this.#diskBytes += total;
    this.#stats.spills += objects.length;
    this.#stats.spillBytesTotal += total;
    this.#stats.spillMs += performance.now() - started;
    debug('spilled %d objects (%d bytes) to %s', objects.length, total, path);
  }

  /**
   * Reads spilled object `id` into `into` (its whole size, in reads of up to 64 MiB). It stays on
   * disk until {@link delete}; {@link restored} says it is in memory again.
   * @throws RangeError when `into` is not its size; SpillError when the file cannot be read.
   */
  read(id: string, into: Uint8Array): void {
    const spilled = this.#objects.get(id);
    if (!spilled) throw new Error(`object ${id} is not spilled`);
    if (into.byteLength !== spilled.size) throw new RangeError(`Spilled object ${id} has ${spilled.size} bytes, not ${into.byteLength}`);
    const started = performance.now();
    let fd: number;
    try {
      fd = openSync(spilled.batch.path, 'r');
    } catch (error) {
      throw spillError(`open the spill file of object ${id}`, this.directory, error);
    }
    try {
      for (let done = 0; done < spilled.size; ) {
        const length = Math.min(IO_BYTES, spilled.size - done);
        const read = readSync(fd, into, done, length, spilled.offset + done);
        if (read === 0) throw Object.assign(new Error(`the spill file of object ${id} ends early`), { code: 'EIO' });
        done += read;
      }
    } catch (error) {
      throw spillError(`read object ${id} back`, this.directory, error);
    } finally {
      closeSync(fd);
    }
    this.#stats.restores += 1;
    this.#stats.restoreBytesTotal += spilled.size;
    this.#stats.restoreMs += performance.now() - started;
  }

  /**
   * Opens object `id`'s spill file to read its bytes as they are sent (see OutgoingObject): the
   * descriptor, which the caller closes, and the object's offset in the file. The bytes stay
   * readable through it even if the object is freed and its file deleted meanwhile.
   * @throws SpillError when the file cannot be opened.
   */
  openForRead(id: string): { fd: number; offset: number } {
    const spilled = this.#objects.get(id);
    if (!spilled) throw new Error(`object ${id} is not on disk`);
    try {
      return { fd: openSync(spilled.batch.path, 'r'), offset: spilled.offset };
    } catch (error) {
      throw spillError(`open the spill file of object ${id}`, this.directory, error);
    }
  }

  /** Forgets object `id` on disk (freed, or its kept copy given up); its file goes with the last object in it. Idempotent. */
  delete(id: string): void {
    const spilled = this.#objects.get(id);
    if (!spilled) return;
    this.respilled(id);
    this.#objects.delete(id);
    this.#diskBytes -= spilled.size;
    spilled.batch.live -= 1;
    if (spilled.batch.live === 0) removeQuietly(spilled.batch.path);
  }

  /** Removes the spill directory and everything in it. Idempotent. */
  close(): void {
    this.#objects.clear();
    this.#diskBytes = 0;
    this.#inMemoryBytes = 0;
    this.#inMemory = 0;
    this.#directory?.remove();
    this.#directory = undefined;
  }

  #checkRoot(): void {
    const refusal = rootRefusal(this.root);
    if (refusal) throw new SpillError({ what: `make a session directory: its root ${this.root} is refused (${refusal})`, directory: this.directory, errnoCode: 'EACCES' });
  }

  #open(): SessionDirectory {
    if (this.#directory) return this.#directory;
    this.#checkRoot();
    try {
      this.#directory = new SessionDirectory(this.root, this.#sessionId, this.#handleSignals, { createRoot: true });
    } catch (error) {
      throw spillError('make the spill directory', this.directory, (error as Error).cause ?? error);
    }
    return this.#directory;
  }
}

/**
 * The root must be this user's, or a sticky directory (as /tmp is): in a directory another user
 * owns, that user could move this session's spill directory aside and put files of theirs in its
 * place.
 */
function rootRefusal(root: string): string | undefined {
  let stats;
  try {
    stats = lstatSync(root);
  } catch {
    return undefined; // Made on the first spill, this user's.
  }
  if (stats.isSymbolicLink() || !stats.isDirectory()) return 'it is not a directory';
  const uid = process.getuid?.();
  if (uid !== undefined && stats.uid !== uid && uid !== 0 && (stats.mode & 0o1000) === 0) return `it belongs to another user (uid ${stats.uid})`;
  return undefined;
}

/** Writes `views` from the start of `fd`, in writev calls of up to {@link IO_BYTES} and {@link IO_VIEWS} views. */
function writeAll(fd: number, views: readonly Uint8Array[]): void {
  let position = 0;
  let batch: Uint8Array[] = [];
  let batchBytes = 0;
  const flush = () => {
    let pending = batch;
    while (pending.length > 0) {
      const written = writevSync(fd, pending, position);
      position += written;
      pending = advance(pending, written);
    }
    batch = [];
    batchBytes = 0;
  };
  for (const view of views) {
    for (let offset = 0; offset < view.byteLength; ) {
      const length = Math.min(IO_BYTES - batchBytes, view.byteLength - offset);
      batch.push(view.subarray(offset, offset + length));
      batchBytes += length;
      offset += length;
      if (batchBytes >= IO_BYTES || batch.length >= IO_VIEWS) flush();
    }
  }
  flush();
}

/** `views` without their first `bytes` bytes (what a short write left). */
function advance(views: Uint8Array[], bytes: number): Uint8Array[] {
  let skip = bytes;
  let index = 0;
  while (index < views.length && skip >= views[index]!.byteLength) skip -= views[index++]!.byteLength;
  const rest = views.slice(index);
  if (rest.length > 0 && skip > 0) rest[0] = rest[0]!.subarray(skip);
  return rest;
}

function spillError(what: string, directory: string, error: unknown): SpillError {
  const errnoCode = (error as NodeJS.ErrnoException | undefined)?.code ?? 'EIO';
  return new SpillError({ what, directory, errnoCode }, { cause: error });
}

function removeQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch (error) {
    debug('could not remove spill file %s: %o', path, error);
  }
}
