export { MappingCache } from './mapping-cache.js';
export { ObjectStore, type ObjectPayload, type ObjectStatus, type StoreState, type StoreStats } from './object-store.js';
export { ObjectWriter, type TypedArrayKind } from './object-writer.js';
export { freeSpace, maxMapCount, resolveStoreOptions, type ResolvedStoreOptions, type StoreOptions } from './options.js';
export { SESSION_PREFIX, SessionDirectory, segmentPathOf, sweepStaleSessions } from './session-directory.js';
export { writeEncodedSegment } from './segment-io.js';
