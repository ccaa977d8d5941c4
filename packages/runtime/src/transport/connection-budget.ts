// What a listener lets a peer hold before it has proved anything: a descriptor per connection is
// the daemon's, and 1,100 connections that send nothing once filled a daemon's table under
// `ulimit -n 1024`, failing its tasks. Every listener (the head, each data server, the attach
// socket) counts its connections in total and per source address, refuses those past a budget at
// once (a reason the peer can read, then closed), and closes any that has not finished its
// handshake within a deadline. The peer cannot raise any of these. An authenticated connection
// counts against the total only: it proved it holds the token, and many legitimate drivers may
// share one address (a NAT).
import type { Server, Socket } from 'node:net';
import { DescriptorsExhaustedError } from '@shoal/protocol';
import { BurstLog, type WarnLogger } from './burst-log.js';

/** The limits of a listener's {@link ConnectionBudget}. */
export interface BudgetLimits {
  /** Connections held at once, authenticated or not. @default MAX_CONNECTIONS (1024) */
  readonly maxConnections?: number;
  /** Connections held at once from one source address (TCP listeners). @default MAX_CONNECTIONS_PER_SOURCE (64) */
  readonly maxConnectionsPerSource?: number;
}

/** Options of a {@link ConnectionBudget}. */
export interface ConnectionBudgetOptions {
  /** What the listener's connections are, for the log: 'connection to the head', 'data connection'. */
  readonly kind: string;
  readonly maxConnections: number;
  /** Infinity on a unix socket, whose peers have no address. */
  readonly maxConnectionsPerSource: number;
  /** A connection not {@link ConnectionBudget.settle}d within this long is closed. */
  readonly handshakeTimeoutMs: number;
  readonly logger: WarnLogger;
  /** Bytes the peer gets before a refused connection closes (an HTTP answer on HTTP listeners). */
  readonly refusal?: (reason: string) => string;
}

/** The answer an HTTP listener gives a refused connection: 503 with the reason as its body. */
export function httpRefusal(reason: string): string {
  const body = `${reason}\n`;
  return `HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
}

/** How long a refused peer has to read its answer before the socket is destroyed anyway. */
const REFUSAL_LINGER_MS = 1000;

/**
 * Counts a listener's connections and enforces its budget: see the file's comment.
 *
 * @example
 * ```ts
 * const budget = new ConnectionBudget({ kind: 'data connection', maxConnections: 1024, maxConnectionsPerSource: 64, handshakeTimeoutMs: 5000, logger });
 * budget.watch(httpServer);                 // every accepted socket is admitted or refused
 * wss.on('connection', (ws, request) => budget.settle(request.socket)); // upgraded: the hello deadline takes over
 * ```
 */
export class ConnectionBudget {
  readonly #options: ConnectionBudgetOptions;
  readonly #log: BurstLog;
  #total = 0;
  readonly #perSource = new Map<string, number>();
  readonly #deadlines = new Map<object, NodeJS.Timeout>();
  /** The source each connection counts against, until it closes or authenticates. */
  readonly #sourceOf = new Map<object, string>();

  constructor(options: ConnectionBudgetOptions) {
    this.#options = options;
    this.#log = new BurstLog(options.logger);
  }

  /** Connections held now. */
  get size(): number {
    return this.#total;
  }

  /**
   * Admits or refuses every connection `server` accepts, and reports running out of descriptors
   * on accept (EMFILE/ENFILE: the kernel keeps the connection queued) as a
   * {@link DescriptorsExhaustedError}, once per burst, instead of an error nobody listens to.
   * `admitted` is called with each connection the budget lets in (an HTTP server has its own
   * listener, which sees the refused ones destroyed).
   */
  watch(server: Server, admitted?: (socket: Socket) => void): void {
    server.on('connection', (socket: Socket) => {
      if (this.admit(socket)) admitted?.(socket);
    });
    server.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code !== 'EMFILE' && error.code !== 'ENFILE') return;
      const exhausted = new DescriptorsExhaustedError({ what: `accept on the ${this.#options.kind} listener`, errnoCode: error.code }, { cause: error });
      this.#log.warn('exhausted', { kind: this.#options.kind, err: exhausted }, exhausted.message);
    });
  }

  /**
   * Logs an upgrade refused for `reason` (a wrong token, an Origin not allowed) once per burst,
   * like the budget's own refusals: a flood of bad upgrades must not flood the log.
   */
  logRefusal(reason: string, fields: Readonly<Record<string, unknown>>, message: string): void {
    this.#log.warn(`refused: ${reason}`, fields, message);
  }

  /** Counts `socket` in, or refuses it (and returns false) when a budget is used up. */
  admit(socket: Socket): boolean {
    const { kind, maxConnections, maxConnectionsPerSource, handshakeTimeoutMs } = this.#options;
    const source = sourceOf(socket);
    const fromSource = this.#perSource.get(source) ?? 0;
    if (this.#total >= maxConnections) {
      this.#refuse(socket, 'total', source, `the listener holds ${this.#total} connections, its limit (maxConnections ${maxConnections}); retry later`);
      return false;
    }
    if (fromSource >= maxConnectionsPerSource) {
      this.#refuse(socket, `source ${source}`, source, `${source} holds ${fromSource} connections, the limit per source address (maxConnectionsPerSource ${maxConnectionsPerSource}); close some and retry`);
      return false;
    }
    this.#total += 1;
    this.#perSource.set(source, fromSource + 1);
    const deadline = setTimeout(() => {
      this.#log.warn('handshake', { remote: source, kind, reason: 'handshake timeout' }, `closed a ${kind} from ${source}: no handshake within ${handshakeTimeoutMs} ms`);
      socket.destroy();
    }, handshakeTimeoutMs);
    deadline.unref();
    this.#deadlines.set(socket, deadline);
    this.#sourceOf.set(socket, source);
    socket.once('close', () => {
      this.authenticated(socket);
      this.#total -= 1;
    });
    return true;
  }

  /**
   * The connection proved it holds the token: it is settled (see {@link settle}) and no longer
   * counts against its source's limit, only the total. Unknown sockets, and a second call, are ignored.
   */
  authenticated(socket: object): void {
    this.settle(socket);
    const source = this.#sourceOf.get(socket);
    if (source === undefined) return;
    this.#sourceOf.delete(socket);
    const left = (this.#perSource.get(source) ?? 1) - 1;
    if (left === 0) this.#perSource.delete(source);
    else this.#perSource.set(source, left);
  }

  /**
   * The connection finished its handshake (it authenticated, or upgraded to a WebSocket whose
   * guard has its own hello deadline): its handshake deadline is lifted. Unknown sockets are ignored.
   */
  settle(socket: object): void {
    clearTimeout(this.#deadlines.get(socket));
    this.#deadlines.delete(socket);
  }

  /** Stops every timer (the listener is closing). */
  close(): void {
    for (const timer of this.#deadlines.values()) clearTimeout(timer);
    this.#deadlines.clear();
    this.#log.close();
  }

  #refuse(socket: Socket, key: string, source: string, why: string): void {
    const { kind, refusal } = this.#options;
    this.#log.warn(`refused ${key}`, { remote: source, kind, reason: 'over budget' }, `refused a ${kind} from ${source}: ${why}`);
    // The peer may reset first; and one that never reads must not keep the descriptor.
    socket.on('error', () => socket.destroy());
    const linger = setTimeout(() => socket.destroy(), REFUSAL_LINGER_MS);
    linger.unref();
    socket.once('close', () => clearTimeout(linger));
    if (refusal) socket.end(refusal(`Refused: ${why}.`), () => socket.destroy());
    else socket.destroy();
  }
}

/** A socket's source address (an IPv4 peer of a dual-stack listener as plain IPv4); 'local' on a unix socket. */
function sourceOf(socket: Socket): string {
  const address = socket.remoteAddress;
  if (address === undefined) return 'local';
  return address.startsWith('::ffff:') ? address.slice(7) : address;
}
