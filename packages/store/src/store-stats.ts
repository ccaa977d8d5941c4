import type { SpillStats } from './spill-files.js';

/** What a store holds right now. */
export interface StoreStats {
  readonly sessionId: string;
  readonly directory: string;
  /** Objects held (inline and in segments). */
  readonly objects: number;
  /** Objects held in segments. */
  readonly segments: number;
  /** Bytes of segments, plus those reserved by unsealed `create` writers and incoming objects. */
  readonly usedBytes: number;
  /** Bytes of inline objects (held in this process's memory, not counted against capacity). */
  readonly inlineBytes: number;
  readonly capacity: number;
  /** Segment mappings this process's cache holds. */
  readonly cachedMappings: number;
  /**
   * Bytes of deleted objects' memory kept for the next puts and pulls of about their size (never
   * more than the capacity leaves free; given back as objects need the room).
   */
  readonly reusableBytes: number;
  /** Objects written to disk to make room (see `spillDirectory`), what they take there, and what was done. */
  readonly spill: SpillStats;
}
