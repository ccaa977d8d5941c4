import { writeFrontBytes, type EncodedValue } from '@shoal/protocol';
import { closeSegment, copyIntoMapping, mapSegment, openSegment, unmapNow, writeSegment } from './segment-files.js';

/**
 * Writes an encoded value as a new segment file at `path`: front (prefix, table, header) and each
 * out-of-band buffer straight from the caller's memory, one pwrite each.
 */
export function writeEncodedSegment(path: string, encoded: EncodedValue): void {
  const views: (ArrayBufferView | ArrayBuffer)[] = [writeFrontBytes(encoded), ...encoded.buffers];
  writeSegment(path, encoded.layout.totalSize, views, [0, ...encoded.layout.bufferOffsets]);
}

/**
 * Writes an encoded value into the segment file at `path` the store lent for it (memory of a
 * deleted object, already faulted): opened holding the writer's lock, mapped shared with its
 * pages populated, copied into, unmapped and closed.
 * @throws SharedMemoryError (ENOENT when the store took the file back meanwhile).
 */
export function writeEncodedLent(path: string, encoded: EncodedValue): void {
  const size = encoded.layout.totalSize;
  const fd = openSegment(path, 'lent');
  try {
    const memory = mapSegment(fd, size, { shared: true, populate: true }, path);
    try {
      copyEncoded(memory, encoded);
    } finally {
      unmapNow(memory);
    }
  } finally {
    closeSegment(fd, path);
  }
}

/** Writes already serialized bytes as a new segment file at `path` (one pwrite). */
export function writeEncodedBytes(path: string, bytes: Uint8Array): void {
  writeSegment(path, bytes.byteLength, [bytes], [0]);
}

/**
 * Copies an encoded value into `memory` (a writing mapping of a reused segment file): front and
 * each out-of-band buffer at its offset. A memcpy into pages that are already there.
 */
export function copyEncoded(memory: ArrayBuffer, encoded: EncodedValue): void {
  copyIntoMapping(memory, [writeFrontBytes(encoded), ...encoded.buffers], [0, ...encoded.layout.bufferOffsets]);
}
