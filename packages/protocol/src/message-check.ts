/**
 * The check every message's bytes pass before msgpackr decodes them (framing.ts). msgpackr's
 * extensions are registered process-wide and no Unpackr option turns them off: its Error
 * extension (0x65) builds an Error, with a captured stack, from 4 bytes (about 180 bytes of
 * heap per byte of input, and ~4 µs each: a 16 MiB message of them held the head for 26 s),
 * its record extension (0x72) defines structures, and Shoal's own 0x53 (serialize/) builds tag
 * nodes that only the object deserializer should see. Shoal's messages carry plain MessagePack
 * (serialized values travel as binary data), so every extension but `undefined` (type 0, one
 * fixext, as msgpackr writes an `undefined` field) is refused here, as is nesting deeper than
 * {@link MESSAGE_MAX_DEPTH} and an array or map that claims more elements than it has bytes.
 * What is left costs at most tens of bytes of heap per byte (an empty map: bench/src/
 * message-amplification.ts). The walk allocates nothing and skips strings and binary data
 * whole, so it is linear in the number of values, not in the bytes.
 */
import { FrameError } from './errors.js';
import { MESSAGE_MAX_DEPTH } from './limits.js';

/** msgpack's `fixext 1` of type 0 with one zero byte: msgpackr's `undefined`. */
const FIXEXT1 = 0xd4;
/** Bytes after the type byte of the fixed-size numbers, 0xca (float 32) to 0xd3 (int 64). */
const NUMBER_BYTES = [4, 8, 1, 2, 4, 8, 1, 2, 4, 8];
/**
 * Bytes of the length field of the types 0xc4 to 0xdf that have one: bin, str, array and map
 * (8, 16, 32 bits); 0 for extensions (0xc7-0xc9, 0xd4-0xd8: refused) and the fixed-size numbers.
 */
const LENGTH_BYTES = [1, 2, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 4, 2, 4, 2, 4];

/** The big-endian unsigned integer of `size` bytes at `at` (a pure function: a closure over the walk's position made every step slower). */
function uintAt(bytes: Uint8Array, at: number, size: number): number {
  if (at + size > bytes.length) refuse('ends in the middle of a value');
  let value = 0;
  for (let i = 0; i < size; i++) value = value * 256 + bytes[at + i]!;
  return value;
}

function refuse(detail: string): never {
  throw new FrameError(`its payload ${detail}`);
}

/**
 * Checks that `bytes` hold one message of plain MessagePack values a Shoal peer sends.
 * @throws FrameError naming what is wrong (an extension type, the depth, a count past the end).
 */
export function checkMessageBytes(bytes: Uint8Array, maxDepth = MESSAGE_MAX_DEPTH): void {
  const end = bytes.length;
  /** Values still to read at each open array or map, outermost first. */
  const open: number[] = [];
  let left = 1;
  let at = 0;
  for (;;) {
    while (left === 0) {
      if (open.length === 0) return;
      left = open.pop()!;
    }
    left--;
    if (at >= end) refuse('ends in the middle of a value');
    const byte = bytes[at++]!;
    let skip = 0;
    let values = 0;
    if (byte <= 0x7f || byte >= 0xe0 || byte === 0xc0 || byte === 0xc2 || byte === 0xc3) continue;
    else if (byte <= 0x8f) values = (byte & 0x0f) * 2;
    else if (byte <= 0x9f) values = byte & 0x0f;
    else if (byte <= 0xbf) skip = byte & 0x1f;
    else if (byte >= 0xca && byte <= 0xd3) skip = NUMBER_BYTES[byte - 0xca]!;
    else if (byte === FIXEXT1 && bytes[at] === 0 && bytes[at + 1] === 0) skip = 2;
    else {
      // bin, str, array and map with a length field of 1, 2 or 4 bytes; extensions; 0xc1.
      const lengthBytes = LENGTH_BYTES[byte - 0xc4] ?? 0;
      if (lengthBytes === 0) {
        if (byte === 0xc1) refuse('has the byte 0xc1, which msgpack never uses');
        // ext 8/16/32 (0xc7-0xc9) put their length before the type byte, fixext (0xd4-0xd8) do not.
        const type = byte >= 0xd4 ? bytes[at] : bytes[at + [1, 2, 4][byte - 0xc7]!];
        refuse(`has a value of msgpack extension type ${type === undefined ? '(cut off)' : `0x${type.toString(16)}`}, which Shoal's messages never carry (they carry plain values and binary data)`);
      }
      const length = uintAt(bytes, at, lengthBytes);
      at += lengthBytes;
      if (byte >= 0xdc) values = byte >= 0xde ? length * 2 : length;
      else skip = length;
    }
    if (skip > end - at) refuse('ends in the middle of a value');
    at += skip;
    if (values === 0) continue;
    // Every value takes at least a byte: a count past the end is a lie that would preallocate.
    if (values > end - at) refuse(`claims ${values} values in ${end - at} bytes`);
    if (open.length >= maxDepth) refuse(`nests deeper than ${maxDepth} arrays and maps`);
    open.push(left);
    left = values;
  }
}
