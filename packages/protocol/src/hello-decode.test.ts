import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Packr } from 'msgpackr';
import { FrameError } from './errors.js';
import { encodeMessage } from './framing.js';
import { decodeHello } from './hello-decode.js';
import { HELLO_MAX_BYTES } from './limits.js';

test('decodeHello reads what encodeMessage writes for a hello, and plain values', () => {
  const hello = { type: 'hello', token: 't'.repeat(64), role: 'node' };
  assert.deepEqual(decodeHello(encodeMessage(hello)), hello);
  const plain = { a: [1, -1, 200, -200, 70_000, 2 ** 40, -(2 ** 40), 0.5, null, true, false], s: 'é'.repeat(100), long: 'x'.repeat(300) };
  assert.deepEqual(decodeHello(encodeMessage(plain)), plain);
  const proto = decodeHello(Buffer.from([0x81, 0xa9, ...Buffer.from('__proto__'), 0x01])) as Record<string, unknown>;
  assert.equal(Object.getPrototypeOf(proto), Object.prototype, 'a __proto__ key is a field, not the prototype');
  assert.equal(Object.getOwnPropertyDescriptor(proto, '__proto__')?.value, 1);
});

test('decodeHello refuses extensions, records, binary data, lies and anything past its limits', () => {
  const refused = (bytes: Uint8Array, pattern: RegExp) => assert.throws(() => decodeHello(bytes), (error: Error) => error instanceof FrameError && pattern.test(error.message));
  refused(new Packr({ moreTypes: true, useRecords: false }).pack({ type: 'hello', token: new Error('x') }), /type 0xd4/);
  refused(new Packr({ moreTypes: true, useRecords: false }).pack(new Set([1])), /type 0x/);
  refused(new Packr({ useRecords: true }).pack({ type: 'hello', token: 'x' }), /type 0x/);
  refused(encodeMessage({ type: 'hello', token: Buffer.from('x') }), /type 0xc4/);
  refused(Buffer.alloc(HELLO_MAX_BYTES + 1, 0xc0), /exceeds the 4096 bytes/);
  refused(Buffer.from([0xdd, 0xff, 0xff, 0xff, 0xff, 0xc0]), /claims more elements/);
  refused(Buffer.from([0xdf, 0x00, 0x01, 0x00, 0x00]), /claims more elements/);
  refused(Buffer.from([0x91, 0x91, 0x91, 0x91, 0x91, 0xc0]), /nests deeper/);
  refused(Buffer.from([0xc0, 0xc0]), /bytes after its end/);
  refused(Buffer.from([0xa3, 0x61]), /ends in the middle/);
  refused(Buffer.from([0xa1, 0xff]), /not UTF-8/);
  refused(Buffer.from([0x81, 0x01, 0x01]), /key that is not a string/);
});
