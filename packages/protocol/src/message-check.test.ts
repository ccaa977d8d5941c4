// The cap on what a message's bytes can make the decoder build (issue 18, finding 1: amplification
// of authenticated messages): msgpackr's extensions and records are refused before it runs, and
// what is left allocates tens of bytes of heap per byte at most, never kilobytes.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Packr } from 'msgpackr';
import { FrameError } from './errors.js';
import { FrameDecoder, decodeMessage, encodeFrame, encodeMessage } from './framing.js';
import { MESSAGE_MAX_DEPTH } from './limits.js';
import { encodeValue, writeInline } from './serialize/index.js';

const refused = (bytes: Uint8Array, pattern: RegExp) =>
  assert.throws(() => decodeMessage(bytes), (error: Error) => error instanceof FrameError && pattern.test(error.message));

/** `count` copies of `one` in a msgpack array32. */
function repeated(one: Uint8Array, count: number): Buffer {
  const bytes = Buffer.alloc(5 + one.length * count);
  bytes[0] = 0xdd;
  bytes.writeUInt32BE(count, 1);
  for (let i = 0; i < count; i++) bytes.set(one, 5 + i * one.length);
  return bytes;
}

test('legitimate messages decode: binary data, undefined fields, maps of any size, nesting as deep as the protocol has', () => {
  const value = Buffer.from(writeInline(encodeValue({ error: new Error('x'), set: new Set([1]), when: new Date(0), big: 2n ** 70n })));
  const message = { type: 'done', taskId: 1, result: { size: value.length, bytes: value, contains: [] }, none: undefined, wide: Object.fromEntries(Array.from({ length: 60_000 }, (_, i) => [`k${i}`, i])) };
  assert.deepEqual(decodeMessage(encodeMessage(message)), message);
  let deep: unknown = 1;
  for (let i = 0; i < MESSAGE_MAX_DEPTH; i++) deep = [deep];
  assert.deepEqual(decodeMessage(encodeMessage(deep)), deep);
  assert.deepEqual(new FrameDecoder().push(encodeFrame(message)), [message]);
});

test('msgpackr extensions, records, lying counts and deep nesting are refused before they are built', () => {
  const more = new Packr({ moreTypes: true, useRecords: false, structuredClone: true });
  refused(more.pack({ token: new Error('x') }), /extension type 0x65/);
  refused(more.pack(new Set([1])), /extension type 0x73/);
  refused(more.pack(/x/), /extension type 0x78/);
  refused(more.pack(new Float64Array(2)), /extension type 0x74/);
  refused(more.pack(new Date(0)), /extension type 0xff/);
  refused(more.pack(2n ** 70n), /extension type 0x42/);
  refused(new Packr({ useRecords: true }).pack({ type: 'hello' }), /extension type 0x72/);
  refused(Buffer.from([0xc7, 0x01, 0x53, 0xc0]), /extension type 0x53/);
  refused(Buffer.from([0xc9, 0x00, 0x00, 0x00, 0x01, 0x65, 0x90]), /extension type 0x65/);
  refused(Buffer.from([0xdd, 0x00, 0xff, 0xff, 0xff]), /claims 16777215 values in 0 bytes/);
  refused(Buffer.from([0xdf, 0x00, 0x00, 0xff, 0xff, 0xc0]), /claims 131070 values/);
  refused(Buffer.alloc(MESSAGE_MAX_DEPTH + 2, 0x91), /nests deeper than 32/);
  refused(Buffer.from([0xc1]), /0xc1/);
  refused(Buffer.from([0xdb, 0xff, 0xff, 0xff, 0xff]), /ends in the middle/);
});

test('no message makes the decoder build more than 100 bytes of heap per byte (16 MiB of Error extensions once took 2 GB)', () => {
  const gc = (globalThis as { gc?: () => void }).gc;
  assert.ok(gc, 'run with --expose-gc (scripts/run-tests.mjs does)');
  const cases: [string, Buffer][] = [
    ['Error extensions', repeated(Buffer.from([0xd4, 0x65, 0x00, 0x90]), 100_000)],
    ['empty maps', repeated(Buffer.from([0x80]), 100_000)],
    ['empty arrays', repeated(Buffer.from([0x90]), 100_000)],
    ['one-key maps', repeated(Buffer.from([0x81, 0xa0, 0xc0]), 100_000)],
  ];
  for (const [name, bytes] of cases) {
    gc();
    const before = process.memoryUsage().heapUsed;
    let kept: unknown;
    try {
      kept = decodeMessage(bytes);
    } catch (error) {
      assert.ok(error instanceof FrameError);
    }
    const perByte = (process.memoryUsage().heapUsed - before) / bytes.length;
    assert.ok(perByte < 100, `${name}: ${perByte.toFixed(0)} bytes of heap per byte of input`);
    // Read after the measure, so what it decoded was alive while heapUsed was taken.
    assert.ok(kept === undefined || Array.isArray(kept));
  }
});
