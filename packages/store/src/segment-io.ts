import { writeFrontBytes, type EncodedValue } from '@shoal/protocol';
import { writeSegment } from './segment-files.js';

/**
 * Writes an encoded value as a new segment file at `path`: front (prefix, table, header) and each
 * out-of-band buffer straight from the caller's memory, one pwrite each.
 */
export function writeEncodedSegment(path: string, encoded: EncodedValue): void {
  const views: (ArrayBufferView | ArrayBuffer)[] = [writeFrontBytes(encoded), ...encoded.buffers];
  writeSegment(path, encoded.layout.totalSize, views, [0, ...encoded.layout.bufferOffsets]);
}

/** Writes already serialized bytes as a new segment file at `path` (one pwrite). */
export function writeEncodedBytes(path: string, bytes: Uint8Array): void {
  writeSegment(path, bytes.byteLength, [bytes], [0]);
}
