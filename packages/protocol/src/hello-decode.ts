/**
 * The decoder of the one message a peer may send before its token is checked (the hello of the
 * head and data-server protocols). It reads plain MessagePack only: nil, booleans, numbers,
 * strings, arrays and maps with string keys, nested at most {@link HELLO_MAX_DEPTH} deep, in at
 * most {@link HELLO_MAX_BYTES}. Extensions (msgpackr's Error, Set, RegExp, structured-clone and
 * record types among them) and binary data are refused, not decoded: msgpackr's Unpackr has no
 * option that turns its extensions off (they are registered process-wide), and one byte of an
 * extension can make it build kilobytes of heap, which is how an unauthenticated 16 MiB message
 * once held the head's event loop for 26 s. The work here is linear in the bytes, which are few.
 */
import { FrameError } from './errors.js';
import { HELLO_MAX_BYTES } from './limits.js';

/** How deep a hello may nest arrays and maps (a hello is one flat map). */
export const HELLO_MAX_DEPTH = 4;

const utf8 = new TextDecoder('utf-8', { fatal: true });

class Reader {
  readonly #bytes: Uint8Array;
  readonly #view: DataView;
  #at = 0;

  constructor(bytes: Uint8Array) {
    this.#bytes = bytes;
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  get done(): boolean {
    return this.#at === this.#bytes.length;
  }

  #take(length: number): number {
    const at = this.#at;
    if (length > this.#bytes.length - at) throw new FrameError('the hello ends in the middle of a value');
    this.#at = at + length;
    return at;
  }

  #uint(size: 1 | 2 | 4): number {
    const at = this.#take(size);
    return size === 1 ? this.#view.getUint8(at) : size === 2 ? this.#view.getUint16(at) : this.#view.getUint32(at);
  }

  #string(length: number): string {
    const at = this.#take(length);
    try {
      return utf8.decode(this.#bytes.subarray(at, at + length));
    } catch {
      throw new FrameError('the hello has a string that is not UTF-8');
    }
  }

  /** A count of elements, each at least one byte: more than the bytes left cannot be right. */
  #count(count: number, perElement: number): number {
    if (count * perElement > this.#bytes.length - this.#at) throw new FrameError('the hello claims more elements than it has bytes');
    return count;
  }

  value(depth: number): unknown {
    const byte = this.#uint(1);
    if (byte <= 0x7f) return byte;
    if (byte >= 0xe0) return byte - 0x100;
    if (byte >= 0xa0 && byte <= 0xbf) return this.#string(byte & 0x1f);
    if (byte >= 0x90 && byte <= 0x9f) return this.#array(byte & 0x0f, depth);
    if (byte >= 0x80 && byte <= 0x8f) return this.#map(byte & 0x0f, depth);
    switch (byte) {
      case 0xc0:
        return null;
      case 0xc2:
        return false;
      case 0xc3:
        return true;
      case 0xca:
        return this.#view.getFloat32(this.#take(4));
      case 0xcb:
        return this.#view.getFloat64(this.#take(8));
      case 0xcc:
        return this.#uint(1);
      case 0xcd:
        return this.#uint(2);
      case 0xce:
        return this.#uint(4);
      case 0xcf:
        return Number(this.#view.getBigUint64(this.#take(8)));
      case 0xd0:
        return this.#view.getInt8(this.#take(1));
      case 0xd1:
        return this.#view.getInt16(this.#take(2));
      case 0xd2:
        return this.#view.getInt32(this.#take(4));
      case 0xd3:
        return Number(this.#view.getBigInt64(this.#take(8)));
      case 0xd9:
        return this.#string(this.#uint(1));
      case 0xda:
        return this.#string(this.#uint(2));
      case 0xdb:
        return this.#string(this.#uint(4));
      case 0xdc:
        return this.#array(this.#uint(2), depth);
      case 0xdd:
        return this.#array(this.#uint(4), depth);
      case 0xde:
        return this.#map(this.#uint(2), depth);
      case 0xdf:
        return this.#map(this.#uint(4), depth);
      default:
        // 0xc1 (never used), bin (0xc4-0xc6), ext (0xc7-0xc9, 0xd4-0xd8).
        throw new FrameError(`the hello has a value of type 0x${byte.toString(16)}, which a hello never has (no extensions or binary data before the token is checked)`);
    }
  }

  #array(length: number, depth: number): unknown[] {
    if (depth >= HELLO_MAX_DEPTH) throw new FrameError(`the hello nests deeper than ${HELLO_MAX_DEPTH}`);
    const values = new Array<unknown>(this.#count(length, 1));
    for (let i = 0; i < length; i++) values[i] = this.value(depth + 1);
    return values;
  }

  #map(size: number, depth: number): Record<string, unknown> {
    if (depth >= HELLO_MAX_DEPTH) throw new FrameError(`the hello nests deeper than ${HELLO_MAX_DEPTH}`);
    this.#count(size, 2);
    const map: Record<string, unknown> = {};
    for (let i = 0; i < size; i++) {
      const key = this.value(depth + 1);
      if (typeof key !== 'string') throw new FrameError('the hello has a map key that is not a string');
      // defineProperty: a `__proto__` key is a plain field, not the object's prototype.
      Object.defineProperty(map, key, { value: this.value(depth + 1), enumerable: true, writable: true, configurable: true });
    }
    return map;
  }
}

/**
 * Decodes the message a peer sends before it is authenticated; the boundary's schema then checks it.
 * @throws FrameError when it is larger than {@link HELLO_MAX_BYTES}, has trailing bytes, or holds
 *   anything but plain MessagePack values.
 */
export function decodeHello(bytes: Uint8Array): unknown {
  if (bytes.length > HELLO_MAX_BYTES) {
    throw new FrameError(`a first message of ${bytes.length} bytes exceeds the ${HELLO_MAX_BYTES} bytes a hello may have`);
  }
  const reader = new Reader(bytes);
  const value = reader.value(0);
  if (!reader.done) throw new FrameError('the hello has bytes after its end');
  return value;
}
