// What every cluster WebSocket server does before it trusts a peer (the head's control
// connections and each node's data server): the first message must be a hello with the cluster
// token, in time; every message must be binary and decode; bad input closes that connection only,
// with a reason, and is logged. Nothing but the hello is parsed before the token is checked: the
// server accepts at most HELLO_MAX_BYTES per message until then (ws refuses a larger frame from
// its header, 1009), the hello is read by the strict decoder (no extensions, no records), and
// only an authenticated connection gets its real message limit and the full codec.
import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { WebSocket } from 'ws';
import { CLOSE_BAD_TOKEN, CLOSE_INTERNAL_ERROR, CLOSE_PROTOCOL_ERROR, CLOSE_TIMEOUT, HELLO_MAX_BYTES, decodeHello, decodeMessage } from '@shoal/protocol';

/** Compares tokens in constant time. */
export function sameToken(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
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

/**
 * The WebSocket server option every guarded server starts its connections with: nothing larger
 * than a hello before the token is checked ({@link guard} raises it once it is).
 */
export const PRE_AUTH_MAX_PAYLOAD = HELLO_MAX_BYTES;

/**
 * Raises the message limit of an accepted socket. ws takes `maxPayload` once per server and has
 * no public way to change it per connection, so this sets its receiver's limit, which it reads
 * at every frame header; it fails loudly (rather than leaving authenticated peers at the hello's
 * limit) if a ws upgrade changed that shape.
 */
function raiseMaxPayload(socket: WebSocket, maxPayload: number): void {
  const receiver = (socket as unknown as { _receiver?: { _maxPayload?: unknown } })._receiver;
  if (!receiver || typeof receiver._maxPayload !== 'number') {
    throw new Error('ws no longer keeps its message limit in `_receiver._maxPayload`: update raiseMaxPayload in transport/guard.ts');
  }
  receiver._maxPayload = maxPayload;
}

/** The hello among a boundary's messages: its schema guarantees the token is a string. */
type HelloOf<M> = Extract<M, { readonly type: 'hello'; readonly token: string }>;

export interface GuardOptions<M extends { readonly type: string }> {
  /** The peer's address, for the log. */
  readonly remote: string;
  /** What the connection is, for the log: 'connection', 'data connection'. */
  readonly kind: string;
  readonly token: string;
  readonly helloTimeoutMs: number;
  /**
   * The message limit once the peer authenticated (the server itself was created with
   * {@link PRE_AUTH_MAX_PAYLOAD}).
   */
  readonly maxPayload: number;
  /**
   * Where closed and rejected connections are reported (warn, with `remote`, `kind` and `reason`).
   * The warn of runtime's `Logger` (transport/ imports nothing of the runtime, so it is spelled out).
   */
  readonly logger: { readonly warn: (fields: Readonly<Record<string, unknown>>, message: string) => void };
  /** Validates a decoded message. @throws TypeError saying what is wrong. */
  readonly decode: (raw: unknown) => M;
  /** The peer authenticated with this hello. */
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
  let authenticated = false;
  const timer = setTimeout(() => {
    log('no hello', `closed a ${kind} from ${remote}: no hello within ${options.helloTimeoutMs} ms`);
    socket.close(CLOSE_TIMEOUT, 'authenticate first');
  }, options.helloTimeoutMs);
  // ws emits 'error' for what the peer sent (a frame over maxPayload, a bad frame) and has
  // already started the closing handshake with the matching code (1009, 1002), cutting the
  // connection itself if the peer does not answer in time. Terminating here would drop the close
  // frame before it is written, and the peer would see 1006 instead of the reason.
  socket.on('error', (error: Error & { code?: string }) => {
    if (error.code !== 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') return;
    if (authenticated) log('message too large', `closed a ${kind} from ${remote}: message too large`);
    else log('hello too large', `closed a ${kind} from ${remote}: a first message above ${HELLO_MAX_BYTES} bytes (authenticate first)`);
  });
  socket.on('close', () => clearTimeout(timer));
  socket.on('message', (data, isBinary) => {
    let message: M;
    try {
      if (!isBinary) throw new TypeError('text frames are not part of the protocol');
      const bytes = data as Buffer;
      message = options.decode(authenticated ? decodeMessage(bytes) : decodeHello(bytes));
    } catch (error) {
      log('malformed message', `closed a ${kind} from ${remote}: ${(error as Error).message}`);
      socket.close(CLOSE_PROTOCOL_ERROR, 'malformed message');
      return;
    }
    if (authenticated) {
      handled(() => options.message(message));
      return;
    }
    if (message.type !== 'hello' || !sameToken((message as HelloOf<M>).token, options.token)) {
      const reason = message.type === 'hello' ? 'wrong token' : 'no hello';
      log(reason, `rejected a ${kind} from ${remote}: ${reason}`);
      socket.close(CLOSE_BAD_TOKEN, 'wrong or missing token');
      return;
    }
    authenticated = true;
    clearTimeout(timer);
    raiseMaxPayload(socket, options.maxPayload);
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
