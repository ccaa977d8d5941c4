import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import {
  CLOSE_GOING_AWAY,
  CLOSE_PROTOCOL_ERROR,
  DRIVER_PATH,
  HeadListenError,
  MAX_CONNECTIONS,
  MAX_CONNECTIONS_PER_SOURCE,
  REMOTE_MAX_FRAME_BYTES,
  decodeToHead,
  encodeMessage,
  type HeadRole,
  type ToHead,
} from '@shoal/protocol';
import type { Logger } from '../../log.js';
import { ConnectionBudget, httpRefusal, type BudgetLimits } from '../../transport/connection-budget.js';
import { closeWith, guard, refusalResponse, upgradeRefusal } from '../../transport/guard.js';
import type { MemberLink } from './membership.js';
import { httpRoutes, type Route } from '../../transport/http-routes.js';

/**
 * How long `close()` lets peers answer the close handshake before dropping them: a peer that
 * vanished would otherwise hold the shutdown for ws's own 30 s, and `shoal stop` kills a daemon
 * that takes 15 s.
 */
const CLOSE_GRACE_MS = 1000;

/** An authenticated connection to the head's own protocol (a node or a CLI command). */
export interface HeadConnection extends MemberLink {
  /** The peer's address, for the log. */
  readonly remote: string;
  /** What it said it is in its hello. */
  readonly role: HeadRole;
  /** Closes it as a protocol error (4002), giving `reason` to the peer. */
  reject(reason: string): void;
  /** Calls `listener` once the connection closed, however it closed. */
  onClose(listener: () => void): void;
}

/** Options of a {@link HeadServer}. */
export interface HeadServerOptions {
  readonly host: string;
  readonly port: number;
  readonly token: string;
  readonly helloTimeoutMs: number;
  /** The message limit of a connection (only authenticated upgrades are accepted). */
  readonly maxPayload: number;
  /** `Origin` headers whose upgrades are accepted; an upgrade with any other is refused (403). */
  readonly allowedOrigins: readonly string[];
  /** Connections held at once, in total and per source address (defaults: 1024, 64). */
  readonly budget?: BudgetLimits;
  readonly clusterId: string;
  readonly logger: Logger;
  /** GET routes of the port (`/metrics`, the dashboard), behind the token. */
  readonly routes: Readonly<Record<string, Route>>;
  /** Where `/driver` connections go once their token is checked; without it they are refused. */
  readonly onDriver: ((socket: WebSocket) => void) | undefined;
  /** A connection authenticated: returns what handles each of its later messages. */
  readonly connect: (connection: HeadConnection) => (message: ToHead) => void;
}

/**
 * The head's HTTP and WebSocket server. Every upgrade carries the token in a header, checked
 * before the WebSocket is accepted (401 otherwise), so no message of an unauthenticated peer is
 * read. `/driver` goes to the node beside the head; every other connection speaks the head
 * protocol, starting with a hello (through the connection guard). Plain HTTP requests get 426.
 *
 * @example
 * ```ts
 * const server = new HeadServer({ ...settings, connect: (connection) => (message) => route(connection, message) });
 * await server.listen();
 * await server.close();
 * ```
 */
export class HeadServer {
  readonly #options: HeadServerOptions;
  readonly #http: Server;
  readonly #server: WebSocketServer;
  readonly #drivers: WebSocketServer;
  readonly #budget: ConnectionBudget;
  #state: 'idle' | 'listening' | 'closing' | 'closed' = 'idle';
  #closed: Promise<void> | undefined;

  /** Builds the server; nothing listens until {@link HeadServer.listen}. */
  constructor(options: HeadServerOptions) {
    this.#options = options;
    this.#http = createServer(
      httpRoutes({
        token: options.token,
        routes: options.routes,
        otherwise: { status: 426, type: 'text/plain', body: 'This is a Shoal head: connect with a WebSocket.\n' },
        internalError: (fields, message) => options.logger.error(fields, message),
        authenticated: (socket) => this.#budget.authenticated(socket),
      }),
    );
    this.#server = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: options.maxPayload });
    this.#drivers = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: REMOTE_MAX_FRAME_BYTES });
    this.#server.on('connection', (socket: WebSocket, request: IncomingMessage) => this.#accept(socket, request.socket.remoteAddress ?? 'unknown'));
    // A connection must have upgraded (with the token) within the hello timeout, or it is closed;
    // then the guard's hello deadline applies.
    this.#budget = new ConnectionBudget({
      kind: 'connection to the head',
      maxConnections: options.budget?.maxConnections ?? MAX_CONNECTIONS,
      maxConnectionsPerSource: options.budget?.maxConnectionsPerSource ?? MAX_CONNECTIONS_PER_SOURCE,
      handshakeTimeoutMs: options.helloTimeoutMs,
      logger: options.logger,
      refusal: httpRefusal,
    });
    this.#budget.watch(this.#http);
    this.#http.on('upgrade', (request: IncomingMessage, socket: Socket, head: Buffer) => this.#upgrade(request, socket, head));
  }

  /**
   * Listens on `host:port`; resolves once it does.
   * @throws ShoalError `ERR_HEAD_LISTEN` saying why it cannot (port in use, not an address of
   *   this machine, privileged port).
   */
  async listen(): Promise<void> {
    const { host, port, logger } = this.#options;
    await new Promise<void>((resolve, reject) => {
      const failed = (error: NodeJS.ErrnoException) => {
        const why =
          error.code === 'EADDRINUSE'
            ? `port ${port} is in use (another head? \`shoal status\` tells); pick another with --port`
            : error.code === 'EADDRNOTAVAIL'
              ? `${host} is not an address of this machine; give one of its interfaces with --host`
              : error.code === 'EACCES'
                ? `port ${port} needs privileges; use a port above 1023`
                : error.message;
        reject(new HeadListenError(host, port, why, { cause: error }));
      };
      this.#http.once('error', failed);
      this.#http.listen(port, host, () => {
        this.#http.off('error', failed);
        resolve();
      });
    });
    this.#state = 'listening';
    this.#http.on('error', (error: NodeJS.ErrnoException) => {
      // Out of descriptors on accept is the budget's to report (once per burst).
      if (error.code !== 'EMFILE' && error.code !== 'ENFILE') logger.error({ err: error }, `the head's server failed: ${error.message}`);
    });
  }

  /** The port it listens on (before it listens, the one it was asked for). */
  get port(): number {
    return (this.#http.address() as AddressInfo | null)?.port ?? this.#options.port;
  }

  /**
   * Stops accepting connections, closes the open ones with a close handshake (dropping those
   * that do not answer within a second) and resolves once every connection is gone. Idempotent.
   */
  close(): Promise<void> {
    return this.#shutDown(false);
  }

  /** Like {@link HeadServer.close}, but drops every connection at once. Idempotent. */
  destroy(): Promise<void> {
    return this.#shutDown(true);
  }

  #shutDown(abort: boolean): Promise<void> {
    if (abort) this.#terminateAll();
    if (this.#closed) return this.#closed;
    const wasListening = this.#state === 'listening';
    this.#state = 'closing';
    // Resolves when the listener and every socket it accepted (upgraded ones too) are closed.
    const closed = wasListening ? new Promise<void>((resolve) => this.#http.close(() => resolve())) : Promise.resolve();
    this.#http.closeIdleConnections();
    if (!abort) {
      for (const socket of this.#sockets()) socket.close(CLOSE_GOING_AWAY, 'head closing');
      const grace = setTimeout(() => this.#terminateAll(), CLOSE_GRACE_MS);
      void closed.then(() => clearTimeout(grace));
    }
    this.#closed = closed.then(() => {
      this.#server.close();
      this.#drivers.close();
      this.#budget.close();
      this.#state = 'closed';
    });
    return this.#closed;
  }

  *#sockets(): Iterable<WebSocket> {
    yield* this.#server.clients;
    yield* this.#drivers.clients;
  }

  #terminateAll(): void {
    for (const socket of this.#sockets()) socket.terminate();
    this.#http.closeAllConnections();
  }

  /** Routes a WebSocket upgrade: `/driver` to the node beside the head, the rest to the head protocol. */
  #upgrade(request: IncomingMessage, socket: Socket, head: Buffer): void {
    if (this.#state !== 'listening') {
      // A keep-alive connection asking to upgrade while the head shuts down.
      socket.destroy();
      return;
    }
    const { logger, onDriver } = this.#options;
    const path = (request.url ?? '/').split('?')[0];
    const remote = request.socket.remoteAddress ?? 'unknown';
    const refuse = (status: string, reason: string) => {
      this.#budget.logRefusal(reason, { remote, reason }, `refused a ${path === DRIVER_PATH ? 'driver ' : ''}connection from ${remote}: ${reason}`);
      // The client may reset the connection before it reads the answer.
      socket.on('error', () => socket.destroy());
      socket.end(refusalResponse({ status, reason }));
    };
    const refusal = upgradeRefusal(request, this.#options.token, this.#options.allowedOrigins);
    if (refusal) {
      refuse(refusal.status, refusal.reason);
      return;
    }
    if (path === DRIVER_PATH && !onDriver) {
      refuse('503 Service Unavailable', 'no node runs beside this head');
      return;
    }
    // Authenticated: it counts against the total budget only from here on.
    this.#budget.authenticated(socket);
    if (path !== DRIVER_PATH) {
      this.#server.handleUpgrade(request, socket, head, (ws) => this.#server.emit('connection', ws, request));
      return;
    }
    this.#drivers.handleUpgrade(request, socket, head, (ws) => {
      logger.info({ remote }, `a driver joined from ${remote}`);
      onDriver!(ws);
    });
  }

  /** A connection whose upgrade carried the token: it says hello, then speaks the head protocol. */
  #accept(socket: WebSocket, remote: string): void {
    const { logger, clusterId } = this.#options;
    let handle: ((message: ToHead) => void) | undefined;
    guard<ToHead>(socket, {
      remote,
      kind: 'connection',
      helloTimeoutMs: this.#options.helloTimeoutMs,
      logger,
      internalError: logger.error,
      decode: decodeToHead,
      welcome: (hello) => {
        socket.send(encodeMessage({ type: 'welcome', clusterId }));
        handle = this.#options.connect(connectionOver(socket, remote, hello.role));
      },
      message: (message) => handle!(message),
    });
  }
}

function connectionOver(socket: WebSocket, remote: string, role: HeadRole): HeadConnection {
  return {
    remote,
    role,
    send: (message) => {
      if (socket.readyState !== socket.OPEN) return false;
      socket.send(encodeMessage(message));
      return true;
    },
    reject: (reason) => closeWith(socket, CLOSE_PROTOCOL_ERROR, reason),
    terminate: () => socket.terminate(),
    onClose: (listener) => void socket.once('close', listener),
  };
}
