import { decodeValue, encodeValue, writeInline } from '@shoal/protocol';

// Errors thrown by tasks travel as encoded values: what a worker sends in `failed` and what the
// node sends for an object whose task failed.

/** Encodes an error (or anything thrown) for the wire, falling back to its name and message. */
export function encodeError(error: unknown): Uint8Array {
  try {
    return writeInline(encodeValue(error));
  } catch {
    const plain = error instanceof Error ? error : new Error(String(error));
    const fallback = new Error(plain.message);
    fallback.name = plain.name;
    fallback.stack = plain.stack;
    return writeInline(encodeValue(fallback));
  }
}

export function decodeThrown(bytes: Uint8Array): unknown {
  try {
    return decodeValue(bytes, { copy: true, where: 'a task error' });
  } catch (error) {
    return error;
  }
}
