import { ObjectCorruptError } from './errors.js';

/**
 * The byte layout of a stored object, the same for a segment file and for an inline object:
 *
 * ```
 * 0      prefix (64 bytes): magic, version, buffer count, header length, total size
 * 64     buffer table: per out-of-band buffer, its offset and length (u32 lo/hi pairs)
 * ...    msgpackr header (the value with every binary replaced by a buffer index)
 * ...    out-of-band buffers, each starting on a 64-byte boundary
 * ```
 *
 * Every buffer starts 64-byte aligned so any TypedArray can view it in place (and a cache line
 * never straddles two buffers).
 */
export const MAGIC = 0x4c4f4853; // "SHOL" little-endian
export const LAYOUT_VERSION = 1;
export const ALIGNMENT = 64;
export const PREFIX_BYTES = 64;
export const TABLE_ENTRY_BYTES = 16;

/** Where everything goes in an object of this shape. */
export interface Layout {
  readonly totalSize: number;
  readonly headerOffset: number;
  readonly headerLength: number;
  readonly bufferOffsets: readonly number[];
  readonly bufferLengths: readonly number[];
}

export function alignUp(value: number, alignment = ALIGNMENT): number {
  return Math.ceil(value / alignment) * alignment;
}

/** Plans the layout for a header of `headerLength` bytes and buffers of the given lengths. */
export function planLayout(headerLength: number, bufferLengths: readonly number[]): Layout {
  const headerOffset = PREFIX_BYTES + TABLE_ENTRY_BYTES * bufferLengths.length;
  let cursor = alignUp(headerOffset + headerLength);
  const bufferOffsets: number[] = [];
  for (const length of bufferLengths) {
    bufferOffsets.push(cursor);
    cursor = alignUp(cursor + length);
  }
  const last = bufferLengths.length - 1;
  const totalSize = last >= 0 ? bufferOffsets[last]! + bufferLengths[last]! : headerOffset + headerLength;
  return { totalSize, headerOffset, headerLength, bufferOffsets, bufferLengths };
}

function setU64(view: DataView, at: number, value: number): void {
  view.setUint32(at, value % 0x1_0000_0000, true);
  view.setUint32(at + 4, Math.floor(value / 0x1_0000_0000), true);
}

function getU64(view: DataView, at: number): number {
  return view.getUint32(at, true) + view.getUint32(at + 4, true) * 0x1_0000_0000;
}

/**
 * Writes prefix, buffer table and header into `target`, which must be at least
 * `layout.headerOffset + layout.headerLength` bytes long (the part of the object before its
 * buffers).
 */
export function writeFront(target: Uint8Array, layout: Layout, header: Uint8Array): void {
  const view = new DataView(target.buffer, target.byteOffset, target.byteLength);
  view.setUint32(0, MAGIC, true);
  view.setUint16(4, LAYOUT_VERSION, true);
  view.setUint16(6, 0, true);
  view.setUint32(8, layout.bufferOffsets.length, true);
  view.setUint32(12, layout.headerLength, true);
  setU64(view, 16, layout.totalSize);
  for (let i = 0; i < layout.bufferOffsets.length; i++) {
    setU64(view, PREFIX_BYTES + i * TABLE_ENTRY_BYTES, layout.bufferOffsets[i]!);
    setU64(view, PREFIX_BYTES + i * TABLE_ENTRY_BYTES + 8, layout.bufferLengths[i]!);
  }
  target.set(header, layout.headerOffset);
}

/** Bytes needed in front of the buffers, i.e. what {@link writeFront} writes. */
export function frontLength(layout: Layout): number {
  return layout.headerOffset + layout.headerLength;
}

/** Reads and checks the layout of a stored object; `where` names it in errors. */
export function readLayout(bytes: Uint8Array, where: string): Layout {
  if (bytes.byteLength < PREFIX_BYTES) throw new ObjectCorruptError(where, `only ${bytes.byteLength} bytes`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(0, true) !== MAGIC) throw new ObjectCorruptError(where, 'bad magic number');
  const version = view.getUint16(4, true);
  if (version !== LAYOUT_VERSION) {
    throw new ObjectCorruptError(where, `layout version ${version}, this Shoal reads version ${LAYOUT_VERSION}`);
  }
  const count = view.getUint32(8, true);
  const headerLength = view.getUint32(12, true);
  const totalSize = getU64(view, 16);
  const headerOffset = PREFIX_BYTES + TABLE_ENTRY_BYTES * count;
  if (totalSize > bytes.byteLength || headerOffset + headerLength > totalSize) {
    throw new ObjectCorruptError(where, `sizes exceed the ${bytes.byteLength} bytes available`);
  }
  const bufferOffsets: number[] = [];
  const bufferLengths: number[] = [];
  for (let i = 0; i < count; i++) {
    const offset = getU64(view, PREFIX_BYTES + i * TABLE_ENTRY_BYTES);
    const length = getU64(view, PREFIX_BYTES + i * TABLE_ENTRY_BYTES + 8);
    if (offset % ALIGNMENT !== 0 || offset < headerOffset + headerLength || offset + length > totalSize) {
      throw new ObjectCorruptError(where, `buffer ${i} lies outside the object or is misaligned`);
    }
    bufferOffsets.push(offset);
    bufferLengths.push(length);
  }
  return { totalSize, headerOffset, headerLength, bufferOffsets, bufferLengths };
}
