// The holder side of object transfer: other nodes connect to a node's data server and pull its
// objects. Bulk bytes travel as independent chunk messages (1 MiB by default) on a WebSocket of
// their own, from the holder (the server side, so frames are not masked) within the credit
// window each puller grants; see holder-connection.ts for the other end.
import { createServer, type Server } from 'node:http';
import { type AddressInfo } from 'node:net';
import { debuglog } from 'node:util';
import { WebSocket, WebSocketServer } from 'ws';
import {
  CHUNK_BYTES,
  CLOSE_GOING_AWAY,
  CLOSE_IDLE,
  DATA_IDLE_TIMEOUT_MS,
  DATA_SERVER_MAX_PAYLOAD_BYTES,
  MAX_CONNECTIONS,
  MAX_CONNECTIONS_PER_SOURCE,
  HELLO_TIMEOUT_MS,
  decodeToHolder,
  encodeMessage,
  toWireFailure,
  type FromHolder,
  type ToHolder,
} from '@shoal/protocol';
import type { ObjectStore, OutgoingObject } from '@shoal/store';
import { debugLogger, type Logger } from '../../log.js';
import { ConnectionBudget, httpRefusal, type BudgetLimits } from '../../transport/connection-budget.js';
import { guard, upgradeRefusal, wsUrl } from '../../transport/guard.js';

const debug = debuglog('shoal:transfer');

/** Options of a {@link DataServer}. */
export interface DataServerOptions {
  readonly host: string;
  /** 0 picks a free port. @default 0 */
  readonly port?: number;
  readonly token: string;
  readonly nodeId: string;
  /** Where rejected connections are reported. @default debugLogger('transfer') (NODE_DEBUG=shoal:transfer) */
  readonly logger?: Logger;
  /** A puller released these ids (it has its own copy of a task result kept for it). */
  readonly onRelease?: (ids: readonly string[]) => void;
  /** How long {@link DataServer.close} lets transfers in flight finish before it cuts them. @default 10000 */
  readonly drainTimeoutMs?: number;
  /**
   * `Origin` headers whose WebSocket upgrades are accepted; any other is refused (403), so a web
   * page cannot reach the data port (Shoal's pullers send none). @default []
   */
  readonly allowedOrigins?: readonly string[];
  /**
   * Connections held at once, in total and per source address; more are refused (503).
   * @default { maxConnections: 1024, maxConnectionsPerSource: 64 }
   */
  readonly budget?: BudgetLimits;
  /**
   * An authenticated connection with no message and nothing in flight for this long is closed
   * (4004): its puller connects again on its next pull. @default 300000 (5 min)
   */
  readonly idleTimeoutMs?: number;
}

/** Lifecycle of a {@link DataServer}. */
export type DataServerState = 'idle' | 'starting' | 'running' | 'closing' | 'closed';

/** One object streaming to a puller. */
interface Outgoing {
  readonly requestId: number;
  readonly object: OutgoingObject;
  readonly size: number;
  sent: number;
  acked: number;
  window: number;
}

/** One puller's connection and the objects streaming on it. */
interface Puller {
  readonly socket: WebSocket;
  readonly outgoing: Map<number, Outgoing>;
  /** Pulls waiting for their object to settle (a long task's result): not idle while any wait. */
  waiting: number;
  /** When its last message came (Date.now()). */
  lastMessage: number;
}

/**
 * Serves this node's objects to other nodes: accepts only upgrades carrying the cluster token
 * (TOKEN_HEADER), then answers `pull`s from the store. A pending object is answered once it settles; a
 * segment object is mapped (privately, read only in effect) and streamed within the puller's
 * credit window. Bad input closes only the connection it came on.
 *
 * @example
 * ```ts
 * await using data = await DataServer.start(store, { host: '127.0.0.1', token, nodeId: store.sessionId, logger: pino() });
 * console.log(data.url); // ws://127.0.0.1:PORT, what other nodes pull from
 * ```
 */
export class DataServer implements AsyncDisposable {
  readonly #store: ObjectStore;
  readonly #options: DataServerOptions;
  readonly #logger: Logger;
  readonly #pullers = new Set<Puller>();
  #server: WebSocketServer | undefined;
  #http: Server | undefined;
  #budget: ConnectionBudget | undefined;
  #idleSweep: NodeJS.Timeout | undefined;
  #state: DataServerState = 'idle';
  #starting: Promise<void> | undefined;
  #closing: Promise<void> | undefined;
  /** Resolves the drain of {@link close} once no puller is left. */
  #drained: (() => void) | undefined;

  constructor(store: ObjectStore, options: DataServerOptions) {
    this.#store = store;
    this.#options = options;
    this.#logger = options.logger ?? debugLogger('transfer');
  }

  /** A started data server. */
  static async start(store: ObjectStore, options: DataServerOptions): Promise<DataServer> {
    const server = new DataServer(store, options);
    await server.start();
    return server;
  }

  get state(): DataServerState {
    return this.#state;
  }

  /** Listens; resolves once other nodes can connect. Idempotent. */
  start(): Promise<void> {
    if (this.#state === 'closing' || this.#state === 'closed') return Promise.reject(new Error('the data server was closed'));
    this.#starting ??= this.#listen();
    return this.#starting;
  }

  async #listen(): Promise<void> {
    this.#state = 'starting';
    const { host, port = 0, allowedOrigins = [], budget: limits } = this.#options;
    // Its own HTTP server, so that the budget sees every TCP connection, upgraded or not.
    const http = createServer((_request, response) => {
      response.writeHead(426, { 'content-type': 'text/plain' }).end('This is a Shoal data server: connect with a WebSocket.\n');
    });
    const budget = new ConnectionBudget({
      kind: 'data connection',
      maxConnections: limits?.maxConnections ?? MAX_CONNECTIONS,
      maxConnectionsPerSource: limits?.maxConnectionsPerSource ?? MAX_CONNECTIONS_PER_SOURCE,
      handshakeTimeoutMs: HELLO_TIMEOUT_MS,
      logger: this.#logger,
      refusal: httpRefusal,
    });
    budget.watch(http);
    const server = new WebSocketServer({
      server: http,
      perMessageDeflate: false,
      maxPayload: DATA_SERVER_MAX_PAYLOAD_BYTES,
      // Before the WebSocket is accepted: no frame of a peer without the token is ever read.
      verifyClient: ({ req }, accept) => {
        const refusal = upgradeRefusal(req, this.#options.token, allowedOrigins);
        if (!refusal) return accept(true);
        const remote = req.socket.remoteAddress;
        budget.logRefusal(refusal.reason, { remote, kind: 'data connection', reason: refusal.reason }, `refused a data connection from ${remote}: ${refusal.reason}`);
        // ws answers with the status and the reason as the body.
        accept(false, Number.parseInt(refusal.status, 10), refusal.reason);
      },
    });
    this.#server = server;
    this.#http = http;
    this.#budget = budget;
    await new Promise<void>((resolve, reject) => {
      http.once('error', reject);
      http.listen(port, host, () => {
        http.off('error', reject);
        resolve();
      });
    });
    server.on('connection', (socket, request) => {
      // Upgraded with the token: it counts against the total only, and the guard's hello deadline
      // takes over from the budget's.
      budget.authenticated(request.socket);
      this.#accept(socket, request.socket.remoteAddress ?? 'unknown');
    });
    const idleMs = this.#options.idleTimeoutMs ?? DATA_IDLE_TIMEOUT_MS;
    this.#idleSweep = setInterval(() => this.#closeIdle(idleMs), Math.max(10, Math.min(idleMs / 2, 30_000)));
    this.#idleSweep.unref();
    if (this.#state === 'starting') this.#state = 'running';
  }

  /** Closes authenticated connections that carried nothing for `idleMs` (see DataServerOptions.idleTimeoutMs). */
  #closeIdle(idleMs: number): void {
    const now = Date.now();
    for (const puller of this.#pullers) {
      if (puller.outgoing.size > 0 || puller.waiting > 0 || now - puller.lastMessage < idleMs) continue;
      if (puller.socket.readyState !== WebSocket.OPEN) continue;
      debug('closing a data connection idle for %d ms', now - puller.lastMessage);
      puller.socket.close(CLOSE_IDLE, 'idle: connect again when needed');
    }
  }

  /** The address other nodes pull from. */
  get url(): string {
    const address = this.#server?.address() as AddressInfo | undefined;
    if (!address) throw new Error('the data server is not listening (call start() first)');
    return wsUrl(address.address, address.port);
  }

  /**
   * Stops accepting connections and pulls, lets the objects already streaming finish (at most
   * `drainTimeoutMs`), then closes every connection. Idempotent.
   */
  close(): Promise<void> {
    this.#closing ??= this.#drain();
    return this.#closing;
  }

  /** Cuts every connection now, transfers in flight included (their pullers fail over). Idempotent. */
  destroy(): Promise<void> {
    for (const puller of this.#pullers) puller.socket.terminate();
    return this.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  async #drain(): Promise<void> {
    this.#state = 'closing';
    await this.#starting?.catch(() => {});
    clearInterval(this.#idleSweep);
    const server = this.#server;
    const http = this.#http;
    if (server && http) {
      const drained = new Promise<void>((resolve) => (this.#drained = resolve));
      for (const puller of this.#pullers) this.#closeIfIdle(puller);
      this.#checkDrained();
      const timer = setTimeout(() => {
        for (const puller of this.#pullers) puller.socket.terminate();
      }, this.#options.drainTimeoutMs ?? 10_000);
      timer.unref();
      await drained;
      clearTimeout(timer);
      await new Promise<void>((resolve) => server.close(() => resolve()));
      // Sockets that never upgraded (refused, or still in their handshake) go with the listener.
      http.closeAllConnections();
      await new Promise<void>((resolve) => http.close(() => resolve()));
      this.#budget?.close();
    }
    this.#state = 'closed';
  }

  #closeIfIdle(puller: Puller): void {
    if (this.#state === 'closing' && puller.outgoing.size === 0) puller.socket.close(CLOSE_GOING_AWAY, 'data server closing');
  }

  #checkDrained(): void {
    if (this.#pullers.size === 0) this.#drained?.();
  }

  /** A connection whose upgrade carried the token: it says hello, then pulls. */
  #accept(socket: WebSocket, remote: string): void {
    if (this.#state !== 'running') {
      socket.close(CLOSE_GOING_AWAY, 'data server closing');
      return;
    }
    const puller: Puller = { socket, outgoing: new Map(), waiting: 0, lastMessage: Date.now() };
    const { outgoing } = puller;
    this.#pullers.add(puller);
    const send = (message: FromHolder) => socket.send(encodeMessage(message));
    socket.on('close', () => {
      outgoing.clear();
      this.#pullers.delete(puller);
      this.#checkDrained();
    });
    const pump = (transfer: Outgoing) => {
      while (transfer.sent < transfer.size && transfer.sent - transfer.acked < transfer.window) {
        if (socket.readyState !== WebSocket.OPEN) return;
        const length = Math.min(CHUNK_BYTES, transfer.size - transfer.sent);
        send({ type: 'chunk', requestId: transfer.requestId, offset: transfer.sent, length });
        // A view of the mapping: ws writes it to the socket without copying (server frames are
        // not masked); the view keeps the mapping alive until written.
        socket.send(transfer.object.chunk(transfer.sent, length));
        transfer.sent += length;
      }
      if (transfer.sent >= transfer.size) {
        outgoing.delete(transfer.requestId);
        this.#closeIfIdle(puller);
      }
    };
    guard<ToHolder>(socket, {
      remote,
      kind: 'data connection',
      helloTimeoutMs: HELLO_TIMEOUT_MS,
      logger: this.#logger,
      internalError: this.#logger.error,
      decode: decodeToHolder,
      welcome: () => {
        send({ type: 'welcome', nodeId: this.#options.nodeId });
      },
      message: (message) => {
        puller.lastMessage = Date.now();
        switch (message.type) {
          case 'pull':
            // A closing server starts no new transfer: the puller asks another holder.
            if (this.#state !== 'running') {
              send({ type: 'missing', requestId: message.requestId, reason: 'closing' });
              return;
            }
            puller.waiting += 1;
            void this.#serve(message, send, (transfer) => {
              outgoing.set(transfer.requestId, transfer);
              pump(transfer);
            }).finally(() => {
              puller.waiting -= 1;
              puller.lastMessage = Date.now();
            });
            return;
          case 'ack': {
            const transfer = outgoing.get(message.requestId);
            if (!transfer) return;
            transfer.acked = Math.min(transfer.sent, transfer.acked + message.bytes);
            pump(transfer);
            return;
          }
          case 'release':
            this.#options.onRelease?.(message.ids);
            return;
          case 'hello':
            return;
        }
      },
    });
  }

  async #serve(
    message: Extract<ToHolder, { type: 'pull' }>,
    send: (message: FromHolder) => void,
    stream: (transfer: Outgoing) => void,
  ): Promise<void> {
    const { requestId, id } = message;
    await this.#store.whenSettled(id);
    const status = this.#store.status(id);
    if (status.state === 'failed') {
      send({ type: 'missing', requestId, reason: 'failed', failure: toWireFailure(status.error) });
      return;
    }
    if (status.state !== 'ready') {
      send({ type: 'missing', requestId, reason: 'freed' });
      return;
    }
    if (status.bytes) {
      send({ type: 'object', requestId, size: status.size, bytes: status.bytes, contains: status.contains });
      return;
    }
    let object: OutgoingObject;
    try {
      object = this.#store.openForRead(id);
    } catch (error) {
      debug('cannot serve %s: %o', id, error);
      send({ type: 'missing', requestId, reason: 'freed' });
      return;
    }
    send({ type: 'object', requestId, size: status.size, contains: status.contains });
    stream({ requestId, object, size: status.size, sent: 0, acked: 0, window: message.window });
  }
}
