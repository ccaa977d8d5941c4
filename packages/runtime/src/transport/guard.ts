// What every cluster WebSocket server does before it trusts a peer (the head's control
// connections and each node's data server): the upgrade must carry the cluster token in
// TOKEN_HEADER and no disallowed Origin ({@link upgradeRefusal}, checked before the WebSocket is
// accepted, so nothing an unauthenticated peer sends is ever decoded); then the first message
// must be a hello, in time; every message must be binary and decode; bad input closes that
// connection only, with a reason, and is logged.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { WebSocket } from 'ws';
import { CLOSE_INTERNAL_ERROR, CLOSE_PROTOCOL_ERROR, CLOSE_TIMEOUT, TOKEN_HEADER, decodeMessage } from '@shoal/protocol';

/**
 * Compares tokens in constant time, their lengths too: both are hashed first (SHA-256), so how
 * long a wrong guess takes says nothing of the token's length.
 */
export function sameToken(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b) && given === expected;
}

/** `ws://host:port`, with an IPv6 host in brackets. */
export function wsUrl(host: string, port: number): string {
  return `ws://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

/** The most bytes a WebSocket close reason may have (RFC 6455: a 125-byte control payload less the code). */
export const CLOSE_REASON_MAX_BYTES = 123;

/**
 * Closes `socket` with `reason` cut to {@link CLOSE_REASON_MAX_BYTES} of UTF-8 (on a character
 * boundary): ws throws a RangeError for a longer one, and a reason may carry what a peer sent.
 */
export function closeWith(socket: WebSocket, code: number, reason: string): void {
  let cut = reason;
  while (Buffer.byteLength(cut) > CLOSE_REASON_MAX_BYTES) cut = cut.slice(0, -1);
  // A lone high surrogate left by the cut would be sent as U+FFFD's three bytes.
  if (/[\uD800-\uDBFF]$/.test(cut)) cut = cut.slice(0, -1);
  socket.close(code, cut);
}

/**
 * Whether a WebSocket upgrade may go on, by its `Origin` header: a browser sends one with every
 * WebSocket it opens, Shoal's own clients (Node's ws) send none. Refusing the ones not allowed
 * keeps a web page the user opens from reaching a head or data server on loopback.
 */
export function originAllowed(request: IncomingMessage, allowedOrigins: readonly string[]): boolean {
  const origin = request.headers.origin;
  return origin === undefined || allowedOrigins.includes(origin);
}

/** A refused upgrade: the HTTP status line, and why (for the log and the short body). */
export interface UpgradeRefusal {
  readonly status: string;
  readonly reason: string;
}

/**
 * Whether a WebSocket upgrade of a guarded server may go on, checked before the WebSocket is
 * accepted: a web page's `Origin` (see {@link originAllowed}) and the cluster token in
 * TOKEN_HEADER (in constant time). Refusing here means no frame of an unauthenticated peer is
 * ever read, so the server can be created with its real message limit.
 */
export function upgradeRefusal(request: IncomingMessage, token: string, allowedOrigins: readonly string[]): UpgradeRefusal | undefined {
  if (!originAllowed(request, allowedOrigins)) {
    return { status: '403 Forbidden', reason: `its Origin \`${request.headers.origin}\` is not allowed (a web page; allow it with \`allowedOrigins\`)` };
  }
  const given = request.headers[TOKEN_HEADER];
  if (typeof given !== 'string' || !sameToken(given, token)) return { status: '401 Unauthorized', reason: 'wrong or missing token' };
  return undefined;
}

/** The HTTP answer to a refused upgrade: the status and a one-line reason, then the connection closes. */
export function refusalResponse(refusal: UpgradeRefusal): string {
  const body = `${refusal.reason}\n`;
  return `HTTP/1.1 ${refusal.status}\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
}

/** The hello among a boundary's messages. */
type HelloOf<M> = Extract<M, { readonly type: 'hello' }>;

export interface GuardOptions<M extends { readonly type: string }> {
  /** The peer's address, for the log. */
  readonly remote: string;
  /** What the connection is, for the log: 'connection', 'data connection'. */
  readonly kind: string;
  readonly helloTimeoutMs: number;
  /**
   * Where closed and rejected connections are reported (warn, with `remote`, `kind` and `reason`).
   * The warn of runtime's `Logger` (transport/ imports nothing of the runtime, so it is spelled out).
   */
  readonly logger: { readonly warn: (fields: Readonly<Record<string, unknown>>, message: string) => void };
  /** Validates a decoded message. @throws TypeError saying what is wrong. */
  readonly decode: (raw: unknown) => M;
  /** The peer's first message, its hello. */
  readonly welcome: (hello: HelloOf<M>) => void;
  /** Any later message. */
  readonly message: (message: M) => void;
  /**
   * Where a `welcome` or `message` handler that threw is reported (it is a bug of ours, not of the
   * peer's; that connection is closed with 1011). Defaults to `logger.warn`.
   */
  readonly internalError?: (fields: Readonly<Record<string, unknown>>, message: string) => void;
}

/** Guards a freshly accepted socket: see the file's comment. */
export function guard<M extends { readonly type: string }>(socket: WebSocket, options: GuardOptions<M>): void {
  const { remote, kind, logger } = options;
  const log = (reason: string, message: string) => logger.warn({ remote, kind, reason }, message);
  let welcomed = false;
  const timer = setTimeout(() => {
    log('no hello', `closed a ${kind} from ${remote}: no hello within ${options.helloTimeoutMs} ms`);
    socket.close(CLOSE_TIMEOUT, 'say hello first');
  }, options.helloTimeoutMs);
  // ws emits 'error' for what the peer sent (a frame over maxPayload, a bad frame) and has
  // already started the closing handshake with the matching code (1009, 1002), cutting the
  // connection itself if the peer does not answer in time. Terminating here would drop the close
  // frame before it is written, and the peer would see 1006 instead of the reason.
  socket.on('error', (error: Error & { code?: string }) => {
    if (error.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') log('message too large', `closed a ${kind} from ${remote}: message too large`);
  });
  socket.on('close', () => clearTimeout(timer));
  socket.on('message', (data, isBinary) => {
    let message: M;
    try {
      if (!isBinary) throw new TypeError('text frames are not part of the protocol');
      message = options.decode(decodeMessage(data as Buffer));
    } catch (error) {
      log('malformed message', `closed a ${kind} from ${remote}: ${(error as Error).message}`);
      socket.close(CLOSE_PROTOCOL_ERROR, 'malformed message');
      return;
    }
    if (welcomed) {
      handled(() => options.message(message));
      return;
    }
    if (message.type !== 'hello') {
      log('no hello', `closed a ${kind} from ${remote}: its first message was \`${message.type}\`, not a hello`);
      socket.close(CLOSE_PROTOCOL_ERROR, 'say hello first');
      return;
    }
    welcomed = true;
    clearTimeout(timer);
    handled(() => options.welcome(message as HelloOf<M>));
  });
  // A throw out of a 'message' listener is an uncaught exception: it would end the whole process
  // (every other peer's connection with it) for what one connection sent.
  function handled(handle: () => void): void {
    try {
      handle();
    } catch (error) {
      const report = options.internalError ?? logger.warn;
      report({ remote, kind, reason: 'internal error', error }, `closed a ${kind} from ${remote}: handling its message failed: ${(error as Error).stack ?? String(error)}`);
      closeWith(socket, CLOSE_INTERNAL_ERROR, 'internal error');
    }
  }
}
