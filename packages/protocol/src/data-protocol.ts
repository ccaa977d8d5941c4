/**
 * The node <-> node data boundary: object pulls on a WebSocket of their own, separate from the
 * control connection to the head. The puller connects to the holder's data server, says `hello`
 * with the cluster token, then asks for objects with `pull`. The holder answers each with
 * `object` (the size, and the bytes themselves when the object is inline) and streams a segment
 * object as independent chunks: a `chunk` header message, then the chunk's bytes as the next
 * binary message, so neither side ever copies a chunk into a framing buffer. The puller grants
 * `window` bytes of credit and returns it with `ack` as it writes chunks out: that caps the bytes
 * in flight per pull.
 */
import type { WireFailure } from './head-protocol.js';

export type ToHolder =
  | { readonly type: 'hello'; readonly token: string }
  | { readonly type: 'pull'; readonly requestId: number; readonly id: string; readonly window: number }
  | { readonly type: 'ack'; readonly requestId: number; readonly bytes: number }
  /** The puller has its own copy now: the holder drops the hold it kept for it (task results). */
  | { readonly type: 'release'; readonly ids: readonly string[] };

export type FromHolder =
  | { readonly type: 'welcome'; readonly nodeId: string }
  | {
      readonly type: 'object';
      readonly requestId: number;
      readonly size: number;
      /** The serialized object, when it is inline (no chunks follow). */
      readonly bytes?: Uint8Array;
      /** Ids of the objects whose refs are nested in this one (the holder has them too). */
      readonly contains?: readonly string[];
    }
  /** The next binary message holds `length` bytes of the object at `offset`. */
  | { readonly type: 'chunk'; readonly requestId: number; readonly offset: number; readonly length: number }
  /** The holder does not have the object (`freed`), or it is the failure of its task. */
  | { readonly type: 'missing'; readonly requestId: number; readonly reason: string; readonly failure?: WireFailure };

const TO_HOLDER = new Set(['hello', 'pull', 'ack', 'release']);
const FROM_HOLDER = new Set(['welcome', 'object', 'chunk', 'missing']);

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

const isCount = (value: unknown): value is number => typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;

/** Validates a message received by a holder. @throws TypeError saying what is wrong. */
export function decodeToHolder(message: unknown): ToHolder {
  if (!isRecord(message) || !TO_HOLDER.has(message.type as string)) throw new TypeError('unknown data message');
  const ok =
    (message.type === 'hello' && typeof message.token === 'string') ||
    (message.type === 'pull' && isCount(message.requestId) && typeof message.id === 'string' && isCount(message.window) && message.window > 0) ||
    (message.type === 'ack' && isCount(message.requestId) && isCount(message.bytes)) ||
    (message.type === 'release' && Array.isArray(message.ids) && message.ids.every((id) => typeof id === 'string'));
  if (!ok) throw new TypeError(`malformed ${String(message.type)}`);
  return message as ToHolder;
}

/** Validates a message received by a puller. @throws TypeError saying what is wrong. */
export function decodeFromHolder(message: unknown): FromHolder {
  if (!isRecord(message) || !FROM_HOLDER.has(message.type as string)) throw new TypeError('unknown data message');
  const ok =
    (message.type === 'welcome' && typeof message.nodeId === 'string') ||
    (message.type === 'object' &&
      isCount(message.requestId) &&
      isCount(message.size) &&
      (message.contains === undefined || (Array.isArray(message.contains) && message.contains.every((id) => typeof id === 'string')))) ||
    (message.type === 'chunk' && isCount(message.requestId) && isCount(message.offset) && isCount(message.length)) ||
    (message.type === 'missing' && isCount(message.requestId) && typeof message.reason === 'string');
  if (!ok) throw new TypeError(`malformed ${String(message.type)}`);
  return message as FromHolder;
}
