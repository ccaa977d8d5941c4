export { MappingCache } from './mapping-cache.js';
export { ObjectStore, type StoreState, type StoreStats } from './object-store.js';
export type { StoreEvents } from './object-lifecycle.js';
export type { ObjectStatus } from './object-table.js';
export { IncomingObject, type IncomingState } from './incoming-object.js';
export { OutgoingObject } from './outgoing-object.js';
export { SessionSegments } from './session-segments.js';
export { SegmentReservations } from './segment-reservations.js';
export { ObjectWriter, type TypedArrayKind, type WriterHost } from './object-writer.js';
export {
  STORE_OPTION_KEYS,
  defaultMaxMappings,
  freeSpace,
  maxMapCount,
  resolveStoreOptions,
  type ResolvedStoreOptions,
  type StoreOptions,
} from './options.js';
export {
  SESSION_PREFIX,
  SessionDirectory,
  nodeSocketPath,
  segmentPathOf,
  sessionOfSocket,
  sweepStaleSessions,
} from './session-directory.js';
export { SpillFiles, type SpillSource, type SpillStats } from './spill-files.js';
export { writeEncodedSegment } from './segment-io.js';
export { COPY_PART_BYTES, watchCopies, type CopyProgress, type CopyWatcher } from './copy-progress.js';
export { CollectionThrottle, afterFinalizers, collectGarbage } from './collect-garbage.js';
// Worker processes ask the kernel to end them with their node; the addon is reached only here.
export { descriptorUsage, raiseDescriptorLimit, setParentDeathSignal, type DescriptorUsage } from './segment-files.js';
export { objectFreeChannel, objectPutChannel, type ObjectFreeMessage, type ObjectPutMessage } from './diagnostics.js';
