import { Packr } from 'msgpackr';
import { FrameError } from './errors.js';
import { DEFAULT_MAX_FRAME_BYTES } from './limits.js';

// FrameError lives with the other errors; it stays importable from here, where it is thrown.
export { FrameError };
// Its limit lives with the others in limits.ts, and stays importable from here.
export { DEFAULT_MAX_FRAME_BYTES };

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
 * @throws FrameError for a frame above `maxFrameBytes` or one that does not decode.
 */
export class FrameDecoder {
  readonly maxFrameBytes: number;
  #pending: Buffer[] = [];
  #pendingBytes = 0;

  constructor(maxFrameBytes = DEFAULT_MAX_FRAME_BYTES) {
    this.maxFrameBytes = maxFrameBytes;
  }

  push(chunk: Buffer): unknown[] {
    let buffer: Buffer;
    if (this.#pendingBytes === 0) {
      buffer = chunk;
    } else {
      this.#pending.push(chunk);
      buffer = Buffer.concat(this.#pending, this.#pendingBytes + chunk.length);
      this.#pending = [];
      this.#pendingBytes = 0;
    }
    const messages: unknown[] = [];
    let offset = 0;
    while (buffer.length - offset >= PREFIX) {
      const length = buffer.readUInt32LE(offset);
      if (length > this.maxFrameBytes) {
        throw new FrameError(`a frame of ${length} bytes exceeds the limit of ${this.maxFrameBytes}`);
      }
      if (buffer.length - offset - PREFIX < length) break;
      const payload = buffer.subarray(offset + PREFIX, offset + PREFIX + length);
      try {
        messages.push(packr.unpack(payload));
      } catch (error) {
        throw new FrameError(`its payload does not decode (${(error as Error).message})`, { cause: error });
      }
      offset += PREFIX + length;
    }
    if (offset < buffer.length) {
      const rest = buffer.subarray(offset);
      this.#pending.push(rest);
      this.#pendingBytes = rest.length;
    }
    return messages;
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
  try {
    return packr.unpack(bytes);
  } catch (error) {
    throw new FrameError(`its payload does not decode (${(error as Error).message})`, { cause: error });
  }
}
