// Property-based tests of every decoder at the protocol's boundaries (issue 18, "a fuzz suite that
// stays"): the message schemas of the local, head and data boundaries, the message decoder, the
// hello decoder, the frame decoder and the object deserializer. Each property feeds mostly
// structurally valid messages with wrong field values, plus raw garbage, and allows exactly one
// outcome besides success: the decoder's documented error. Counts and the seed are printed.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import fc from 'fast-check';
import { BadMessageError, FrameError, ObjectCorruptError } from './errors.js';
import { FROM_HOLDER, TO_HOLDER, decodeFromHolder, decodeToHolder } from './data-protocol.js';
import { FrameDecoder, decodeMessage, encodeFrame, encodeMessage } from './framing.js';
import { FuzzCounts, arbitraryOf, fuzzParameters, garbage, messagesOf } from './fuzz.test-helpers.js';
import { FROM_HEAD, TO_HEAD, decodeFromHead, decodeToHead } from './head-protocol.js';
import { FROM_NODE, TO_NODE, decodeNodeMessage, decodeWorkerMessage } from './local-protocol.js';
import { decodeValue, encodeValue, writeInline } from './serialize/index.js';
import type { Messages } from './schema.js';

const counts = new FuzzCounts();
after(() => console.log(counts.report()));

/** Runs `decode` and fails the property unless it returns or throws an instance of `expected`. */
function only(boundary: string, expected: abstract new (...args: never[]) => Error, decode: () => unknown): boolean {
  counts.tried(boundary);
  try {
    decode();
    return true;
  } catch (error) {
    if (error instanceof expected) return true;
    counts.crashed(boundary);
    throw error;
  }
}

const schemas: [string, Messages, (raw: unknown) => unknown][] = [
  ['local: worker -> node', TO_NODE, decodeWorkerMessage],
  ['local: node -> worker', FROM_NODE, decodeNodeMessage],
  ['head: client -> head', TO_HEAD, decodeToHead],
  ['head: head -> client', FROM_HEAD, decodeFromHead],
  ['data: puller -> holder', TO_HOLDER, decodeToHolder],
  ['data: holder -> puller', FROM_HOLDER, decodeFromHolder],
];

for (const [boundary, messages, decode] of schemas) {
  test(`${boundary}: every valid message decodes; a wrong field is a BadMessageError, never another error`, () => {
    for (const [type, schema] of Object.entries(messages)) {
      // Each type's valid messages come through (the schema and its arbitrary agree)...
      fc.assert(
        fc.property(arbitraryOf(schema), (message) => {
          counts.tried(boundary);
          decode(decodeMessage(encodeMessage(message)));
        }),
        fuzzParameters(20),
      );
      // ...and its wrong ones are refused with the documented error only.
      fc.assert(
        fc.property(messagesOf({ [type]: schema }), (message) => {
          const raw = decodeMessage(encodeMessage(message));
          only(boundary, BadMessageError, () => decode(raw));
        }),
        fuzzParameters(60),
      );
    }
    fc.assert(
      fc.property(garbage, (bytes) => {
        let raw: unknown;
        if (!only(`${boundary} (bytes)`, FrameError, () => (raw = decodeMessage(bytes)))) return;
        only(boundary, BadMessageError, () => decode(raw));
      }),
      fuzzParameters(300),
    );
  });
}

test('decodeMessage: msgpack of any value decodes or is a FrameError, and an accepted message holds plain values only', () => {
  fc.assert(
    fc.property(fc.oneof(garbage, fc.anything({ maxDepth: 4 }).map((value) => encodeMessage(value))), (bytes) => {
      let raw: unknown;
      only('decodeMessage', FrameError, () => (raw = decodeMessage(bytes)));
      const plain = (value: unknown): boolean =>
        value === null ||
        value === undefined ||
        // msgpack's own int64 decodes to a bigint past 2^53: a plain value (the schemas refuse it
        // where a count is due), not something an extension built.
        ['string', 'number', 'boolean', 'bigint'].includes(typeof value) ||
        value instanceof Uint8Array ||
        (Array.isArray(value) && value.every(plain)) ||
        (Object.getPrototypeOf(value) === Object.prototype && Object.values(value as object).every(plain));
      assert.ok(raw === undefined || plain(raw), 'a decoded message holds no class instance an extension made');
    }),
    fuzzParameters(1000),
  );
});

test('FrameDecoder: any split of valid frames reassembles them in order', () => {
  const value = fc.dictionary(fc.string({ maxLength: 6 }), fc.oneof(fc.integer(), fc.string({ maxLength: 30 }), fc.constant(Buffer.alloc(300, 7))), { maxKeys: 4 });
  fc.assert(
    fc.property(fc.array(value, { minLength: 1, maxLength: 6 }), fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1, maxLength: 40 }), (messages, cuts) => {
      counts.tried('FrameDecoder (split)');
      const stream = Buffer.concat(messages.map((message) => encodeFrame(message)));
      const decoder = new FrameDecoder();
      const out: unknown[] = [];
      let at = 0;
      for (let i = 0; at < stream.length; i++) {
        const size = cuts[i % cuts.length]!;
        out.push(...decoder.push(stream.subarray(at, at + size)));
        at += size;
      }
      assert.deepEqual(out, messages.map((message) => decodeMessage(encodeMessage(message))));
    }),
    fuzzParameters(300),
  );
});

test('FrameDecoder: garbage is a FrameError, and what it holds never exceeds its cap', () => {
  const cap = 1024;
  fc.assert(
    fc.property(fc.array(fc.oneof(garbage, fc.uint8Array({ maxLength: 2048 })), { minLength: 1, maxLength: 10 }), (chunks) => {
      const decoder = new FrameDecoder(cap);
      let held = 0;
      for (const chunk of chunks) {
        let failed = false;
        only('FrameDecoder (garbage)', FrameError, () => {
          try {
            decoder.push(Buffer.from(chunk));
          } catch (error) {
            failed = true;
            throw error;
          }
        });
        // A refused frame ends the connection: what it pushed after that does not count.
        if (failed) return;
        held = Math.max(held, decoder.bufferedBytes);
        assert.ok(held <= cap + 4, `the decoder holds ${held} bytes, over its cap of ${cap} (+4 for a prefix)`);
      }
    }),
    fuzzParameters(500),
  );
});

test('decodeValue: a corrupted inline object is an ObjectCorruptError, never a crash or a hang', () => {
  const value = fc.anything({ maxDepth: 3, withTypedArray: true, withMap: true, withSet: true, withDate: true, withBigInt: true, withSparseArray: true, withBoxedValues: true });
  fc.assert(
    fc.property(value, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }), (input, flips) => {
      const bytes = writeInline(encodeValue(input));
      for (const [at, byte] of flips) bytes[at % bytes.length] = byte;
      only('decodeValue (corrupted)', ObjectCorruptError, () => decodeValue(bytes, { copy: true }));
    }),
    fuzzParameters(1000),
  );
  fc.assert(
    fc.property(garbage, (bytes) => {
      const object = new Uint8Array(64 + bytes.length);
      new DataView(object.buffer).setUint32(0, 0x4c4f4853, true);
      object[4] = 1;
      object.set(bytes, 64);
      only('decodeValue (garbage)', ObjectCorruptError, () => decodeValue(object, { copy: false }));
    }),
    fuzzParameters(500),
  );
});
