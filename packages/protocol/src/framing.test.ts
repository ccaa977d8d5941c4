import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FrameError } from './errors.js';
import { FrameDecoder, encodeFrame } from './framing.js';

/** Runs `body` counting the bytes Buffer.concat copies meanwhile (how the decoder joins chunks). */
function countingCopies<T>(body: () => T): { result: T; copied: number } {
  const concat = Buffer.concat;
  let copied = 0;
  Buffer.concat = (list: readonly Uint8Array[], totalLength?: number) => {
    const joined = concat(list, totalLength);
    copied += joined.length;
    return joined;
  };
  try {
    return { result: body(), copied };
  } finally {
    Buffer.concat = concat;
  }
}

function pieces(bytes: Buffer, size: number): Buffer[] {
  const list: Buffer[] = [];
  for (let offset = 0; offset < bytes.length; offset += size) list.push(bytes.subarray(offset, offset + size));
  return list;
}

test('a large frame in 64 KiB pieces is copied once, not once per piece', () => {
  const data = Buffer.alloc(16 * 1024 * 1024, 7);
  const frame = encodeFrame({ type: 'put', data });
  const decoder = new FrameDecoder();
  const { result, copied } = countingCopies(() => pieces(frame, 64 * 1024).flatMap((piece) => decoder.push(piece)));
  assert.equal(result.length, 1);
  assert.deepEqual((result[0] as { data: Buffer }).data.subarray(0, 4), data.subarray(0, 4));
  // Joining the pending bytes at every piece copies ~ pieces² / 2 x 64 KiB (2 GiB here).
  assert.ok(copied <= frame.length + 8, `copied ${copied} bytes for a frame of ${frame.length}`);
});

test('frames split anywhere, prefixes included, and several frames in one chunk decode in order', () => {
  const messages = Array.from({ length: 20 }, (_, i) => ({ type: 'm', i, pad: 'x'.repeat(i * 13) }));
  const stream = Buffer.concat(messages.map((message) => encodeFrame(message)));
  for (const size of [1, 3, 5, 64, stream.length]) {
    const decoder = new FrameDecoder();
    assert.deepEqual(pieces(stream, size).flatMap((piece) => decoder.push(piece)), messages, `in pieces of ${size}`);
  }
});

test('a frame above the limit is refused as soon as its length arrives, before its bytes are buffered', () => {
  const decoder = new FrameDecoder(1024);
  const frame = encodeFrame({ type: 'm', pad: 'x'.repeat(2000) });
  assert.deepEqual(decoder.push(frame.subarray(0, 2)), []);
  assert.throws(() => decoder.push(frame.subarray(2, 6)), (error: unknown) => error instanceof FrameError && /exceeds the limit of 1024/.test(error.message));
});
