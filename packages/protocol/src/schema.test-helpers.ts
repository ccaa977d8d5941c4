// Shared by the protocol's schema tests (not built into dist: see tsconfig.build.json).
import assert from 'node:assert/strict';
import { BadMessageError } from './errors.js';
import { decodeMessage, encodeMessage } from './framing.js';

/** Through msgpack and back, as on a socket. */
export const wire = (message: unknown): unknown => decodeMessage(encodeMessage(message));

/** Asserts that decoding `raw` (after the trip through msgpack) throws a BadMessageError matching `pattern`. */
export function rejects(decode: (raw: unknown) => unknown, raw: unknown, pattern: RegExp): void {
  assert.throws(() => decode(wire(raw)), (error: unknown) => error instanceof BadMessageError && pattern.test(error.message));
}
