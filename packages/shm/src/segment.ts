import { readFileSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { SharedMemoryError, ShoalError } from '@shoal/protocol';
import { native } from './native.js';

/** How to open an existing segment. */
export type OpenMode = 'read' | 'write';

/** Options for {@link mapSegment}. */
export interface MapOptions {
  /**
   * Map shared read-write: writes go to the segment and every process sees them. Otherwise the
   * mapping is private copy-on-write: readable in place, and a write copies that page into this
   * process only.
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

function maxMapCount(): string {
  try {
    return readFileSync('/proc/sys/vm/max_map_count', 'utf8').trim();
  } catch {
    return 'unknown';
  }
}

// Half of the kernel's per-process map count: the rest is for V8, libraries and the allocator.
// Reaching the kernel limit would make V8's own allocations fail and abort the process, so Shoal
// refuses new segment mappings well before it.
const MAPPING_LIMIT = Math.floor((Number(maxMapCount()) || 65530) / 2);

function advice(code: string): string {
  switch (code) {
    case 'ENOSPC':
      return (
        'Shared memory (/dev/shm) is full. Free objects you no longer need, remove stale files ' +
        "from /dev/shm, or enlarge it (`mount -o remount,size=16G /dev/shm`; in Docker `--shm-size`)."
      );
    case 'EMFILE':
      return (
        'This process has too many open files. Shoal closes segment files right after mapping them, ' +
        'so something else holds descriptors: raise the limit (`ulimit -n 65536`) or close files.'
      );
    case 'ENFILE':
      return 'The system-wide open-file table is full; close files in other processes or raise fs.file-max.';
    case 'ENOMEM':
      return (
        `The process cannot map more memory: it hit vm.max_map_count (${maxMapCount()}) or ran out of ` +
        'address space. Drop refs and views you no longer use so their mappings are collected, lower ' +
        'the store\'s `maxMappings`, or raise the limit (`sysctl -w vm.max_map_count=262144`).'
      );
    case 'EACCES':
    case 'EPERM':
      return 'Permission denied: segments are private to the user that created them; run every Shoal process as that user.';
    case 'ENOENT':
      return 'The segment does not exist: the object was freed or its session ended.';
    case 'EEXIST':
      return 'A segment with this name already exists; object ids must be unique (this is a bug: please report it).';
    case 'EFBIG':
    case 'EINVAL':
      return 'The size or mapping request was refused by the kernel; objects are limited by the size of /dev/shm and of address space.';
    default:
      return 'See the cause for the system error.';
  }
}

function fail(error: unknown, path: string): never {
  const e = error as NativeError;
  if (typeof e?.code !== 'string' || typeof e.syscall !== 'string') throw error;
  throw new SharedMemoryError(
    { errnoCode: e.code, errno: e.errno ?? 0, syscall: e.syscall, path, advice: advice(e.code) },
    { cause: error },
  );
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

/** Opens an existing segment for reading (`'read'`) or writing (`'write'`). */
export function openSegment(path: string, mode: OpenMode = 'read'): number {
  try {
    return native.open(path, mode === 'read' ? 1 : 2);
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
  const fd = createWith(path, (created) => native.fill(created, size, views, offsets));
  closeSegment(fd, path);
}

/** Writes views at their offsets into an open segment, growing it to `size` bytes if needed. */
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
 */
export function mapSegment(fd: number, length: number, options: MapOptions, path: string): ArrayBuffer {
  const live = native.stats().mappings;
  if (live >= MAPPING_LIMIT) {
    throw new ShoalError(
      'ERR_TOO_MANY_MAPPINGS',
      `Cannot map ${path}: this process already has ${live} segment mappings alive (the limit is ${MAPPING_LIMIT}, ` +
        `half of vm.max_map_count). Mappings of objects no longer in use are released by garbage collection, ` +
        'which runs between event-loop turns: a long synchronous loop over many distinct objects keeps them ' +
        'all alive. Await something now and then inside such a loop, drop views you no longer need, or raise ' +
        'vm.max_map_count (`sysctl -w vm.max_map_count=262144`).',
    );
  }
  try {
    return native.map(fd, length, options.shared === true, options.populate === true);
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
