/**
 * `@shoal/shm`: segment files in `/dev/shm`, mapped shared (for writing a new object) or
 * copy-on-write (for reading one), as ArrayBuffers that unmap themselves when collected.
 *
 * This is the only place Shoal touches the native addon. Every failure is a
 * {@link SharedMemoryError} naming the syscall, errno and path, with advice for the errors a user
 * can do something about (ENOSPC, EMFILE, ENOMEM, EACCES).
 *
 * @example
 * ```ts
 * const fd = createSegment('/dev/shm/demo', 1 << 20);
 * try {
 *   const memory = mapSegment(fd, 1 << 20, { shared: true });
 *   new Uint8Array(memory).fill(7);
 * } finally { closeSegment(fd, '/dev/shm/demo'); }
 * unlinkSegment('/dev/shm/demo');
 * ```
 */
export {
  closeSegment,
  createSegment,
  fillSegment,
  mapSegment,
  openSegment,
  remapPrivate,
  segmentSize,
  setParentDeathSignal,
  shmStats,
  sliceBuffer,
  unlinkSegment,
  writeSegment,
  type MapOptions,
  type OpenMode,
  type ShmStats,
} from './segment.js';
