import { constants as osConstants } from 'node:os';
import { native } from './native.js';

/**
 * How to open an existing segment: `'lent'` is read-write holding a shared lock, for a writer
 * filling a file the store lent it (the store reclaims no file while it is open that way).
 */
export type OpenMode = 'read' | 'write' | 'lent';

/** Options for {@link mapSegment}. */
export interface MapOptions {
  /**
   * Map shared read-write: writes go to the segment and every process sees them. Otherwise the
   * mapping is private copy-on-write: readable in place, and a write copies that page into this
   * process only (the mapping is write-protected until its first write, which
   * {@link mappingWritten} then reports).
   * @default false
   */
  readonly shared?: boolean;
  /** Pre-fault every page now (MAP_POPULATE) instead of on first touch. @default false */
  readonly populate?: boolean;
}

/** Live mappings made by this process through the addon. */
export interface ShmStats {
  /** Mappings not yet collected (each is one entry in the kernel's per-process map count). */
  readonly mappings: number;
  /** Bytes those mappings cover (address space, not resident memory). */
  readonly mappedBytes: number;
  /** The system page size. */
  readonly pageSize: number;
}

interface NativeError extends Error {
  code?: string;
  errno?: number;
  syscall?: string;
}

/**
 * A failed system call on a segment file: which call, its errno and the path. Shm depends on no
 * other package, so this is its own small error; `@shoal/store` turns it into the
 * `SharedMemoryError` users see (with advice on what to do).
 */
export class ShmError extends Error {
  /** The system error code, e.g. `'ENOSPC'`. */
  readonly code: string;
  /** The numeric errno. */
  readonly errno: number;
  /** The failed system call, e.g. `'mmap'`. */
  readonly syscall: string;
  /** The segment file the call was about. */
  readonly path: string;

  constructor(details: { code: string; errno: number; syscall: string; path: string }, options?: { cause?: unknown }) {
    super(`${details.syscall} failed for ${details.path} (${details.code})`, options);
    this.name = 'ShmError';
    this.code = details.code;
    this.errno = details.errno;
    this.syscall = details.syscall;
    this.path = details.path;
  }
}

function fail(error: unknown, path: string): never {
  const e = error as NativeError;
  if (typeof e?.code !== 'string' || typeof e.syscall !== 'string') throw error;
  throw new ShmError({ code: e.code, errno: e.errno ?? 0, syscall: e.syscall, path }, { cause: error });
}

/**
 * Creates a new segment file (exclusive, mode 0600) and runs `prepare` on its descriptor; if that
 * fails, the file is closed and removed, so nothing is left behind. Returns the descriptor.
 */
function createWith(path: string, prepare: (fd: number) => void): number {
  let fd: number;
  try {
    fd = native.open(path, 0);
  } catch (error) {
    fail(error, path);
  }
  try {
    prepare(fd);
    return fd;
  } catch (error) {
    safely(() => native.close(fd));
    safely(() => native.unlink(path));
    fail(error, path);
  }
}

/**
 * Creates a new segment file of `size` bytes (exclusive, mode 0600) with its pages reserved, so a
 * full /dev/shm is an ENOSPC error here, never a SIGBUS later. Returns the open descriptor.
 * On failure nothing is left behind.
 */
export function createSegment(path: string, size: number): number {
  return createWith(path, (fd) => native.allocate(fd, size));
}

/** Opens an existing segment for reading (`'read'`), writing (`'write'`) or filling a lent file (`'lent'`). */
export function openSegment(path: string, mode: OpenMode = 'read'): number {
  try {
    return native.open(path, mode === 'read' ? 1 : mode === 'write' ? 2 : 3);
  } catch (error) {
    fail(error, path);
  }
}

/** Closes a segment descriptor; mappings made from it stay valid. */
export function closeSegment(fd: number, path: string): void {
  try {
    native.close(fd);
  } catch (error) {
    fail(error, path);
  }
}

/**
 * Writes a new segment file of `size` bytes (exclusive, mode 0600) holding each view at its byte
 * offset, then closes it. Uses pwrite: no mapping is made, and a full /dev/shm is a clean
 * ENOSPC. On failure nothing is left behind.
 */
export function writeSegment(
  path: string,
  size: number,
  views: readonly (ArrayBufferView | ArrayBuffer)[],
  offsets: readonly number[],
): void {
  writeSegmentWith(path, size, (fill) => fill(views, offsets));
}

/**
 * Like {@link writeSegment}, with the views given in parts: `write` calls `fill` once per part
 * (views and their offsets), e.g. to report progress between them. On failure nothing is left.
 */
export function writeSegmentWith(
  path: string,
  size: number,
  write: (fill: (views: readonly (ArrayBufferView | ArrayBuffer)[], offsets: readonly number[]) => void) => void,
): void {
  const fd = createWith(path, (created) => write((views, offsets) => native.fill(created, size, views, offsets)));
  closeSegment(fd, path);
}

/** Writes views at their offsets into an open segment, growing it to `size` bytes if shorter (never shrinking it). */
export function fillSegment(
  fd: number,
  size: number,
  views: readonly (ArrayBufferView | ArrayBuffer)[],
  offsets: readonly number[],
  path: string,
): void {
  try {
    native.fill(fd, size, views, offsets);
  } catch (error) {
    fail(error, path);
  }
}

/**
 * Copies each view into `buffer` (a mapping made by {@link mapSegment}) at its offset: streaming
 * stores for large views, which keep memory speed whatever the two addresses' alignment (glibc's
 * memcpy drops to a third when the destination is a few cache lines ahead within a page).
 * @throws RangeError when a view does not fit, before anything is copied.
 */
export function copyIntoMapping(
  buffer: ArrayBuffer,
  views: readonly (ArrayBufferView | ArrayBuffer)[],
  offsets: readonly number[],
): void {
  native.copy(buffer, views, offsets);
}

/** The segment's size in bytes. */
export function segmentSize(fd: number, path: string): number {
  try {
    return native.size(fd);
  } catch (error) {
    fail(error, path);
  }
}

/**
 * Maps the first `length` bytes of the segment. The returned ArrayBuffer is backed by the mapping
 * and unmaps it when garbage-collected (after every view of it is gone).
 *
 * A copy-on-write mapping holds a shared lock on the file for as long as it lives, which is how
 * {@link reclaimSegment} knows nobody maps the file; it is taken after `fd` was opened, so the
 * file is checked to still be the one named `path`: ENOENT when it was recycled in between.
 */
export function mapSegment(fd: number, length: number, options: MapOptions, path: string): ArrayBuffer {
  try {
    return native.map(fd, length, options.shared === true, options.populate === true, path);
  } catch (error) {
    fail(error, path);
  }
}

/**
 * Turns a shared mapping made by {@link mapSegment} into a private copy-on-write mapping of the
 * same file, in place: existing views keep their contents, and their writes no longer reach the
 * segment.
 */
export function remapPrivate(buffer: ArrayBuffer, fd: number, path: string): void {
  try {
    native.remapPrivate(buffer, fd);
  } catch (error) {
    fail(error, path);
  }
}

/**
 * Whether a copy-on-write mapping made by {@link mapSegment} (not shared) or {@link remapPrivate}
 * has been written since it was made. Such mappings are write-protected: the first write from
 * this process is caught (a SIGSEGV the addon handles), makes the mapping writable and marks it,
 * so reading a mapping never pays. Writes by system calls into a protected mapping (`fs.readSync`
 * into a view) fail with EFAULT instead: write to it from JavaScript first, or copy it.
 */
export function mappingWritten(buffer: ArrayBuffer): boolean {
  return native.written(buffer);
}

/**
 * Renames the segment file `from` to `to` if no process maps it to read (holds its shared lock):
 * returns whether it did. Once renamed, the file's memory may be written for another object:
 * every reader that opened it before finds its name gone when it locks.
 */
export function reclaimSegment(from: string, to: string): boolean {
  try {
    return native.reclaim(from, to);
  } catch (error) {
    fail(error, from);
  }
}

/** Renames the segment file `from` to `to` (replacing nothing: `to` must not exist). */
export function renameSegment(from: string, to: string): void {
  try {
    native.rename(from, to);
  } catch (error) {
    fail(error, from);
  }
}

/**
 * Unmaps a mapping made by {@link mapSegment} now rather than when collected: `buffer` is
 * detached (every view of it becomes empty). For mappings only their maker uses.
 */
export function unmapNow(buffer: ArrayBuffer): void {
  native.unmap(buffer);
}

/** Removes the segment's name. Pages stay alive while any process still maps them. */
export function unlinkSegment(path: string): void {
  try {
    native.unlink(path);
  } catch (error) {
    fail(error, path);
  }
}

/** A new ArrayBuffer over `[offset, offset + length)` of `buffer`, sharing its memory (no copy). */
export function sliceBuffer(buffer: ArrayBuffer, offset: number, length: number): ArrayBuffer {
  return native.slice(buffer, offset, length);
}

/** Counts of this process's live mappings. */
export function shmStats(): ShmStats {
  return native.stats();
}

function safely(action: () => void): void {
  try {
    action();
  } catch {
    // Already failing with a more useful error.
  }
}

/**
 * Has the kernel kill this process with `signal` when its parent process dies, even by SIGKILL
 * (Linux `PR_SET_PDEATHSIG`). Returns the parent's pid as seen right after the request: if it
 * is not the expected parent, the parent already died and the caller should exit.
 */
export function setParentDeathSignal(signal: NodeJS.Signals | number = 'SIGKILL'): number {
  const number = typeof signal === 'number' ? signal : osConstants.signals[signal];
  return native.setParentDeathSignal(number);
}
