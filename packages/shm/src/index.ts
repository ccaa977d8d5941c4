/**
 * `@shoal/shm`: segment files in `/dev/shm`, mapped shared (for writing a new object) or
 * copy-on-write (for reading one), as ArrayBuffers that unmap themselves when collected.
 *
 * This is the only place Shoal touches the native addon, and it depends on no other package.
 * Every failed system call is a {@link ShmError} naming the syscall, errno and path;
 * `@shoal/store`, the only user, turns it into the `SharedMemoryError` users see, and applies the
 * per-process limit on mappings.
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
  copyIntoMapping,
  createSegment,
  fillSegment,
  mapSegment,
  mappingWritten,
  openSegment,
  reclaimSegment,
  remapPrivate,
  renameSegment,
  segmentSize,
  setParentDeathSignal,
  shmStats,
  sliceBuffer,
  unlinkSegment,
  unmapNow,
  writeSegment,
  writeSegmentWith,
  ShmError,
  type MapOptions,
  type OpenMode,
  type ShmStats,
} from './segment.js';
export { addToCounter, exchangeCounter, loadCounter, reserveOnCounter, takeFromCounter } from './counters.js';
export { descriptorUsage, raiseDescriptorLimit, type DescriptorUsage } from './descriptors.js';
