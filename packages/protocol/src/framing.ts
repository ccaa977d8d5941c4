import { Packr } from 'msgpackr';
import { FrameError } from './errors.js';
import { DEFAULT_MAX_FRAME_BYTES } from './limits.js';
import { checkMessageBytes } from './message-check.js';


/**
 * Length-prefixed msgpackr frames for local sockets: `[u32 little-endian length][payload]`.
 * Binary fields travel as msgpack bin and decode as Buffers that view the received bytes.
 */
const packr = new Packr({ useRecords: false, moreTypes: false, bundleStrings: false });

const PREFIX = 4;

/** Encodes one message as a frame. */
export function encodeFrame(message: unknown): Buffer {
  const payload = packr.pack(message);
  const frame = Buffer.allocUnsafe(PREFIX + payload.length);
  frame.writeUInt32LE(payload.length, 0);
  payload.copy(frame, PREFIX);
  return frame;
}

/**
 * Reassembles frames from a byte stream. `push` returns the messages completed by a chunk.
 *
 * A frame split over many chunks is copied once, when its last byte arrives: the chunks wait in
 * a list until then (joining them at every chunk made a 200 MiB frame in 64 KiB pieces cost
 * quadratic time, a 10 s stall for every other peer of the node). What waits is at most one
 * frame, so a connection's buffer is capped by `maxFrameBytes`.
 *
 * @throws FrameError for a frame above `maxFrameBytes` or one that does not decode.
 */
export class FrameDecoder {
  readonly maxFrameBytes: number;
  /** Chunks of an incomplete frame (the first may be the tail of an earlier chunk). */
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  /** The incomplete frame's total size with its prefix, once its prefix has arrived. */
  #needed = 0;

  constructor(maxFrameBytes = DEFAULT_MAX_FRAME_BYTES) {
    this.maxFrameBytes = maxFrameBytes;
  }

  /** Bytes held for an incomplete frame: at most `maxFrameBytes` plus its 4-byte prefix. */
  get bufferedBytes(): number {
    return this.#pendingBytes;
  }

  push(chunk: Buffer): unknown[] {
    let buffer = chunk;
    if (this.#pendingBytes > 0) {
      this.#pending.push(chunk);
      this.#pendingBytes += chunk.length;
      if (this.#needed === 0 && this.#pendingBytes >= PREFIX) this.#needed = this.#frameSize(this.#prefix());
      if (this.#needed === 0 || this.#pendingBytes < this.#needed) return [];
      buffer = Buffer.concat(this.#pending, this.#pendingBytes);
      this.#pending = [];
      this.#pendingBytes = 0;
      this.#needed = 0;
    }
    const messages: unknown[] = [];
    let offset = 0;
    while (buffer.length - offset >= PREFIX) {
      const size = this.#frameSize(buffer.readUInt32LE(offset));
      if (buffer.length - offset < size) {
        this.#needed = size;
        break;
      }
      messages.push(decodePayload(buffer.subarray(offset + PREFIX, offset + size)));
      offset += size;
    }
    if (offset < buffer.length) {
      this.#pending.push(buffer.subarray(offset));
      this.#pendingBytes = buffer.length - offset;
    }
    return messages;
  }

  /** The pending frame's length prefix, which may span the first few chunks. */
  #prefix(): number {
    const first = this.#pending[0]!;
    return (first.length >= PREFIX ? first : Buffer.concat(this.#pending, this.#pendingBytes)).readUInt32LE(0);
  }

  #frameSize(length: number): number {
    if (length > this.maxFrameBytes) {
      throw new FrameError(`a frame of ${length} bytes exceeds the limit of ${this.maxFrameBytes}`);
    }
    return PREFIX + length;
  }
}

function decodePayload(payload: Uint8Array): unknown {
  // Before msgpackr: its extensions and records would build what no Shoal message holds.
  checkMessageBytes(payload);
  try {
    return packr.unpack(payload);
  } catch (error) {
    throw new FrameError(`its payload does not decode (${(error as Error).message})`, { cause: error });
  }
}

/** Encodes one message for a transport that keeps message boundaries itself (WebSocket). */
export function encodeMessage(message: unknown): Buffer {
  return packr.pack(message);
}

/**
 * Decodes one message from a transport that keeps message boundaries (WebSocket).
 * @throws FrameError when the bytes do not decode.
 */
export function decodeMessage(bytes: Uint8Array): unknown {
  return decodePayload(bytes);
}
