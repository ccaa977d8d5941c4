// The store's only door to @shoal/shm. Each call is the addon's, unchanged (same syscalls); a
// failure comes back as the SharedMemoryError users see, with advice, and new mappings are
// refused before the process nears the kernel's map count.
import { statSync } from 'node:fs';
import * as shm from '@shoal/shm';
import { DescriptorsExhaustedError, ObjectCorruptError, SharedMemoryError, TooManyMappingsError } from '@shoal/protocol';
import { readMaxMapCount } from './options.js';
import { copiesWatched, copyInParts } from './copy-progress.js';

export { addToCounter, exchangeCounter, loadCounter, reserveOnCounter, takeFromCounter } from '@shoal/shm';
export { descriptorUsage, raiseDescriptorLimit, setParentDeathSignal, shmStats, sliceBuffer, type DescriptorUsage, type MapOptions, type OpenMode } from '@shoal/shm';

// Half of the kernel's per-process map count: the rest is for V8, libraries and the allocator.
// Reaching the kernel limit would make V8's own allocations fail and abort the process, so Shoal
// refuses new segment mappings well before it.
const MAPPING_LIMIT = Math.floor((readMaxMapCount() ?? 65530) / 2);

function advice(code: string): string {
  switch (code) {
    case 'ENOSPC':
      return (
        'Shared memory (/dev/shm) is full. Free objects you no longer need, remove stale files ' +
        "from /dev/shm, or enlarge it (`mount -o remount,size=16G /dev/shm`; in Docker `--shm-size`)."
      );
    case 'ENOMEM':
      return (
        `The process cannot map more memory: it hit vm.max_map_count (${readMaxMapCount() ?? 'unknown'}) or ran out of ` +
        'address space. Drop refs and views you no longer use so their mappings are collected, lower ' +
        'the store\'s `maxMappings`, or raise the limit (`sysctl -w vm.max_map_count=262144`).'
      );
    case 'EACCES':
    case 'EPERM':
      return 'Permission denied: segments are private to the user that created them; run every Shoal process as that user.';
    case 'ENOENT':
      return (
        'The segment does not exist: the object was freed, its session ended, or its node spilled it to disk ' +
        '(a process told of it mapped it too late): `await get(ref)` asks the node, which reads it back.'
      );
    case 'EEXIST':
      return 'A segment with this name already exists; object ids must be unique (this is a bug: please report it).';
    case 'EFBIG':
    case 'EINVAL':
      return 'The size or mapping request was refused by the kernel; objects are limited by the size of /dev/shm and of address space.';
    default:
      return 'See the cause for the system error.';
  }
}

/** Shm's own error as the SharedMemoryError users know (code `ERR_SHM_<errno>`, the native error as cause). */
export function toSharedMemoryError(error: unknown): unknown {
  if (!(error instanceof shm.ShmError)) return error;
  // Out of descriptors is the process's trouble, not the segment's: its own error says what to raise.
  if (error.code === 'EMFILE' || error.code === 'ENFILE') {
    const { open, limit } = shm.descriptorUsage();
    return new DescriptorsExhaustedError({ what: `${error.syscall} ${error.path}`, errnoCode: error.code, open, limit }, { cause: error.cause });
  }
  return new SharedMemoryError(
    { errnoCode: error.code, errno: error.errno, syscall: error.syscall, path: error.path, advice: advice(error.code) },
    { cause: error.cause },
  );
}

/** `fn` with shm's errors turned into SharedMemoryErrors. */
function guarded<A extends unknown[], R>(fn: (...args: A) => R): (...args: A) => R {
  return (...args) => {
    try {
      return fn(...args);
    } catch (error) {
      throw toSharedMemoryError(error);
    }
  };
}

/** See `@shoal/shm`'s createSegment. */
export const createSegment = guarded(shm.createSegment);
/** See `@shoal/shm`'s openSegment. */
export const openSegment = guarded(shm.openSegment);
/** See `@shoal/shm`'s closeSegment. */
export const closeSegment = guarded(shm.closeSegment);
/** See `@shoal/shm`'s writeSegment; a big write that is watched goes in parts (copy-progress.ts). */
export const writeSegment = guarded((path: string, size: number, views: readonly (ArrayBufferView | ArrayBuffer)[], offsets: readonly number[]) =>
  copiesWatched() ? shm.writeSegmentWith(path, size, (fill) => copyInParts(views, offsets, fill)) : shm.writeSegment(path, size, views, offsets),
);
/** See `@shoal/shm`'s fillSegment. */
export const fillSegment = guarded(shm.fillSegment);
/** See `@shoal/shm`'s segmentSize. */
export const segmentSize = guarded(shm.segmentSize);
/** See `@shoal/shm`'s remapPrivate. */
export const remapPrivate = guarded(shm.remapPrivate);
/** See `@shoal/shm`'s mappingWritten (a plain lookup: it cannot fail). */
export const mappingWritten = shm.mappingWritten;
/** See `@shoal/shm`'s copyIntoMapping; a big copy that is watched goes in parts (copy-progress.ts). */
export function copyIntoMapping(memory: ArrayBuffer, views: readonly (ArrayBufferView | ArrayBuffer)[], offsets: readonly number[]): void {
  if (!copiesWatched()) shm.copyIntoMapping(memory, views, offsets);
  else copyInParts(views, offsets, (part, at) => shm.copyIntoMapping(memory, part, at));
}
/** See `@shoal/shm`'s reclaimSegment. */
export const reclaimSegment = guarded(shm.reclaimSegment);
/** See `@shoal/shm`'s renameSegment. */
export const renameSegment = guarded(shm.renameSegment);
/** See `@shoal/shm`'s unmapNow. */
export const unmapNow = shm.unmapNow;
/** See `@shoal/shm`'s unlinkSegment. */
export const unlinkSegment = guarded(shm.unlinkSegment);

/**
 * See `@shoal/shm`'s mapSegment.
 * @throws ShoalError `ERR_TOO_MANY_MAPPINGS` when this process already has half of
 *   vm.max_map_count segment mappings alive.
 */
export function mapSegment(fd: number, length: number, options: shm.MapOptions, path: string): ArrayBuffer {
  const live = shm.shmStats().mappings;
  if (live >= MAPPING_LIMIT) {
    throw new TooManyMappingsError(path, live, MAPPING_LIMIT);
  }
  try {
    return shm.mapSegment(fd, length, options, path);
  } catch (error) {
    throw toSharedMemoryError(error);
  }
}

/** Closes `fd` (if open) and removes `path`, ignoring failures: for cleanup while already failing or discarding. */
export function removeQuietly(fd: number, path: string): void {
  if (fd >= 0) {
    try {
      shm.closeSegment(fd, path);
    } catch {
      // The descriptor is gone either way.
    }
  }
  try {
    shm.unlinkSegment(path);
  } catch {
    // Already gone, or the session directory was removed.
  }
}

/**
 * Checks that segment file `path`, written by another process, holds exactly `size` bytes: the
 * size it is charged by is the writer's word, and a file longer than it would take memory nobody
 * counts (one stat per segment registered).
 * @throws ObjectCorruptError when it does not, or there is no such file.
 */
export function checkWrittenSize(path: string, size: number, where: string): void {
  let actual: number;
  try {
    actual = statSync(path).size;
  } catch (error) {
    throw new ObjectCorruptError(where, `its segment file cannot be read (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
  }
  if (actual !== size) throw new ObjectCorruptError(where, `its segment file holds ${actual} bytes, its writer said ${size}`);
}
