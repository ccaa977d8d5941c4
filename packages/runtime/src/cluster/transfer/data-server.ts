// The holder side of object transfer: other nodes connect to a node's data server and pull its
// objects. Pulls and their answers go on a WebSocket (the data connection); the bytes of a
// segment object go raw on a bulk connection the puller opened to the same port and named in its
// pull, written from a mapping of the object's segment without a copy (data-protocol.ts); see
// holder-connection.ts and bulk-stream.ts for the other end.
import { randomInt } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { type AddressInfo, type Socket } from 'node:net';
import { debuglog } from 'node:util';
import { WebSocket, WebSocketServer } from 'ws';
import {
  BULK_CONNECTION_HEADER,
  BULK_STREAM_HEADER,
  BULK_UPGRADE,
  CLOSE_GOING_AWAY,
  CLOSE_PROTOCOL_ERROR,
  CLOSE_IDLE,
  DATA_IDLE_TIMEOUT_MS,
  DATA_SERVER_MAX_PAYLOAD_BYTES,
  MAX_BULK_STREAMS_PER_CONNECTION,
  MAX_CONNECTIONS,
  MAX_CONNECTIONS_PER_SOURCE,
  HELLO_TIMEOUT_MS,
  RELAY_MIN_BYTES,
  ObjectStoreFullError,
  SpillError,
  decodeToHolder,
  encodeMessage,
  toWireFailure,
  ActorDiedError,
  type ClusterResult,
  type FromHolder,
  type ToHolder,
} from '@shoal/protocol';
import type { ObjectStore, OutgoingObject } from '@shoal/store';
import { debugLogger, type Logger } from '../../log.js';
import { ConnectionBudget, httpRefusal, type BudgetLimits } from '../../transport/connection-budget.js';
import { guard, refusalResponse, upgradeRefusal, wsUrl, type UpgradeRefusal } from '../../transport/guard.js';
import { httpRoutes, type Route } from '../../transport/http-routes.js';
import { RelayChains, sendArriving, type Arriving } from './relay.js';

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
  /**
   * A puller calls a method of an actor of this node (`actor-call`); `answer` once with how it
   * ended. Without this, every call fails as not here.
   */
  readonly onActorCall?: (call: Extract<ToHolder, { type: 'actor-call' }>, answer: (result: ClusterResult) => void, connection: object) => void;
  /** A data connection closed: what was kept for calls made on it (`connection`, as onActorCall gave it) will not be pulled. */
  readonly onConnectionClosed?: (connection: object) => void;
  /** GET routes served beside the WebSocket upgrades (the node's `/metrics`), behind the token. */
  readonly routes?: Readonly<Record<string, Route>>;
  /**
   * The object `id` while it arrives at this node from another (see relay.ts): a pull of it is
   * answered at once and its bytes are sent on as they come, instead of waiting for it to settle.
   * A promise while this node's own pull of it waits for its answer: the pull waits for it.
   */
  readonly arriving?: (id: string) => Arriving | Promise<Arriving | undefined> | undefined;
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

/** Bytes of one write of an object on its stream (each a view of the mapping: no copy). */
const WRITE_BYTES = 64 << 20;
/** Bytes of a spilled object read from its spill file per write (one read ahead of the write in flight). */
const DISK_READ_BYTES = 8 << 20;

/** A bulk connection of a puller: idle, or carrying one pull's object (`busy`: from the pull to its last byte). */
interface Stream {
  readonly socket: Socket;
  busy: boolean;
}

/** One puller's data connection, its bulk streams and the pulls streaming on them. */
interface Puller {
  readonly socket: WebSocket;
  readonly number: number;
  /** Where it serves what it pulls to later pullers (its hello's `relay`), if it does. */
  relayUrl: string | undefined;
  readonly streams: Map<number, Stream>;
  /** Pulls whose object is being written on a stream, by request id. */
  readonly outgoing: Map<number, Stream>;
  /** Pulls waiting for their object to settle (a long task's result): not idle while any wait. */
  waiting: number;
  /** When its last message came (Date.now()). */
  lastMessage: number;
}

/** What a {@link DataServer} sent. */
export interface DataServerStats {
  /** Bytes of segment objects handed to bulk streams (from the store, a spill file, or passed on as they arrived). */
  sentBytes: number;
  /** Pulls answered with `relay` (sent to another puller of the object). */
  relayed: number;
  /** Pulls served from an object still arriving here (this node was a relay). */
  passedOn: number;
  /** Pulls waiting now for this node's own pull of their object to be answered, to pass it on. */
  awaitingArrival: number;
}

/**
 * Serves this node's objects to other nodes: accepts only upgrades carrying the cluster token
 * (TOKEN_HEADER), then answers `pull`s from the store. A pending object is answered once it settles; a
 * segment object is mapped (privately, read only in effect) and written on the bulk stream the
 * pull named. Bad input closes only the connection it came on.
 *
 * @example
 * ```ts
 * await using data = await DataServer.start(store, { host: '127.0.0.1', token, nodeId: store.sessionId, logger: pino() });
 * console.log(data.url); // ws://127.0.0.1:PORT, what other nodes pull from
 * ```
 */
export class DataServer implements AsyncDisposable {
  readonly stats: DataServerStats = { sentBytes: 0, relayed: 0, passedOn: 0, awaitingArrival: 0 };
  readonly #store: ObjectStore;
  readonly #chains = new RelayChains();
  readonly #options: DataServerOptions;
  readonly #logger: Logger;
  readonly #pullers = new Set<Puller>();
  /** Pullers by the number their welcome gave (bulk upgrades name it). */
  readonly #byNumber = new Map<number, Puller>();
  #nextStream = 1;
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
    const http = createServer(
      httpRoutes({
        token: this.#options.token,
        routes: this.#options.routes ?? {},
        otherwise: { status: 426, type: 'text/plain', body: 'This is a Shoal data server: connect with a WebSocket.\n' },
        internalError: (fields, message) => this.#logger.error(fields, message),
        authenticated: (socket) => budget.authenticated(socket),
      }),
    );
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
      noServer: true,
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
    // Upgrades to a bulk connection are this server's own; WebSocket ones go to ws.
    http.on('upgrade', (request: IncomingMessage, socket: Socket, head: Buffer) => {
      if (request.headers.upgrade?.toLowerCase() === BULK_UPGRADE) this.#acceptBulk(request, socket, head);
      else server.handleUpgrade(request, socket, head, (ws) => server.emit('connection', ws, request));
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
    const address = this.#http?.address() as AddressInfo | null | undefined;
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
    for (const puller of this.#pullers) this.#cut(puller);
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
        for (const puller of this.#pullers) this.#cut(puller);
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

  /**
   * A number for a new data connection: random (48 bits), so that another holder of the token
   * cannot guess it and take the streams of someone else's connection.
   */
  #newNumber(): number {
    for (;;) {
      const number = randomInt(1, 2 ** 48);
      if (!this.#byNumber.has(number)) return number;
    }
  }

  /** Cuts a puller's data connection and its streams now. */
  #cut(puller: Puller): void {
    puller.socket.terminate();
    for (const stream of puller.streams.values()) stream.socket.destroy();
  }

  /**
   * An upgrade to a bulk connection: it must carry the token and name a data connection of this
   * server, which gets one more stream; the 101 gives its number. The puller then sends nothing:
   * any byte from it closes the stream.
   */
  #acceptBulk(request: IncomingMessage, socket: Socket, head: Buffer): void {
    const remote = socket.remoteAddress ?? 'unknown';
    const refuse = (refusal: UpgradeRefusal) => {
      this.#budget?.logRefusal(refusal.reason, { remote, kind: 'bulk connection', reason: refusal.reason }, `refused a bulk connection from ${remote}: ${refusal.reason}`);
      socket.end(refusalResponse(refusal));
    };
    socket.on('error', (error) => debug('bulk connection from %s: %o', remote, error));
    const refusal = upgradeRefusal(request, this.#options.token, this.#options.allowedOrigins ?? []);
    if (refusal) return refuse(refusal);
    if (this.#state !== 'running') return refuse({ status: '503 Service Unavailable', reason: 'the data server is closing' });
    const puller = this.#byNumber.get(Number(request.headers[BULK_CONNECTION_HEADER]));
    if (!puller) return refuse({ status: '400 Bad Request', reason: `names no data connection of this server in ${BULK_CONNECTION_HEADER}` });
    if (puller.streams.size >= MAX_BULK_STREAMS_PER_CONNECTION) {
      return refuse({ status: '429 Too Many Requests', reason: `a data connection has at most ${MAX_BULK_STREAMS_PER_CONNECTION} bulk streams` });
    }
    if (head.length > 0) return refuse({ status: '400 Bad Request', reason: 'bytes after the upgrade request' });
    const number = this.#nextStream++;
    const stream: Stream = { socket, busy: false };
    puller.streams.set(number, stream);
    this.#budget?.authenticated(socket);
    socket.setNoDelay(true);
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: ${BULK_UPGRADE}\r\n${BULK_STREAM_HEADER}: ${number}\r\n\r\n`);
    socket.on('data', () => {
      debug('closed a bulk connection from %s: it sent bytes', remote);
      socket.destroy();
    });
    // The HTTP server's sockets stay half-open at the peer's end: a puller gone is a stream gone.
    socket.on('end', () => socket.destroy());
    socket.on('close', () => {
      puller.streams.delete(number);
      // A pull writing on it is over (the puller fails it over to another holder).
      for (const [requestId, carrying] of puller.outgoing) if (carrying === stream) puller.outgoing.delete(requestId);
      this.#closeIfIdle(puller);
    });
  }

  /** A connection whose upgrade carried the token: it says hello, then pulls. */
  #accept(socket: WebSocket, remote: string): void {
    if (this.#state !== 'running') {
      socket.close(CLOSE_GOING_AWAY, 'data server closing');
      return;
    }
    const puller: Puller = { socket, number: this.#newNumber(), relayUrl: undefined, streams: new Map(), outgoing: new Map(), waiting: 0, lastMessage: Date.now() };
    this.#pullers.add(puller);
    this.#byNumber.set(puller.number, puller);
    const send = (message: FromHolder) => socket.send(encodeMessage(message));
    socket.on('close', () => {
      this.#options.onConnectionClosed?.(puller);
      puller.outgoing.clear();
      for (const stream of puller.streams.values()) stream.socket.destroy();
      this.#pullers.delete(puller);
      this.#byNumber.delete(puller.number);
      this.#checkDrained();
    });
    guard<ToHolder>(socket, {
      remote,
      kind: 'data connection',
      helloTimeoutMs: HELLO_TIMEOUT_MS,
      logger: this.#logger,
      internalError: this.#logger.error,
      decode: decodeToHolder,
      welcome: (hello) => {
        puller.relayUrl = hello.relay;
        send({ type: 'welcome', nodeId: this.#options.nodeId, connection: puller.number });
      },
      message: (message) => {
        puller.lastMessage = Date.now();
        switch (message.type) {
          case 'pull': {
            const stream = puller.streams.get(message.stream);
            if (!stream || stream.busy) {
              this.#logger.warn({ remote, kind: 'data connection', reason: 'bad stream' }, `closed a data connection from ${remote}: a pull named stream ${message.stream}, which is not an idle stream of it`);
              socket.close(CLOSE_PROTOCOL_ERROR, 'a pull must name an idle bulk stream of its connection');
              return;
            }
            // A closing server starts no new transfer: the puller asks another holder.
            if (this.#state !== 'running') {
              send({ type: 'missing', requestId: message.requestId, reason: 'closing' });
              return;
            }
            stream.busy = true;
            puller.waiting += 1;
            void this.#serve(message, puller, send, stream)
              .catch((error: unknown) => {
                this.#logger.error({ err: error }, `serving a pull failed: ${(error as Error).stack ?? String(error)}`);
                this.#cut(puller);
              })
              .finally(() => {
                if (!puller.outgoing.has(message.requestId)) stream.busy = false;
                puller.waiting -= 1;
                puller.lastMessage = Date.now();
              });
            return;
          }
          case 'release':
            this.#options.onRelease?.(message.ids);
            return;
          case 'actor-call': {
            // Waiting for its answer, the connection is not idle.
            puller.waiting += 1;
            let answered = false;
            const answer = (result: ClusterResult) => {
              if (answered) return;
              answered = true;
              puller.waiting -= 1;
              puller.lastMessage = Date.now();
              if (socket.readyState === socket.OPEN) send({ type: 'actor-result', requestId: message.requestId, result });
            };
            const onCall = this.#options.onActorCall;
            if (!onCall || this.#state !== 'running') {
              answer({ ok: false, failure: toWireFailure(new ActorDiedError(message.actorId, { kind: onCall ? 'node-closed' : 'not-here' }, 0)) });
              return;
            }
            onCall(message, answer, puller);
            return;
          }
          case 'hello':
            return;
        }
      },
    });
  }

  /**
   * Writes `object` on `stream`, in views of its mapping (written to the socket without a copy;
   * each view keeps the mapping alive until written). TCP paces it: the writes queue in the socket.
   */
  #write(puller: Puller, requestId: number, stream: Stream, object: OutgoingObject): void {
    const { socket } = stream;
    if (object.onDisk) {
      void this.#writeFromDisk(puller, requestId, stream, object);
      return;
    }
    if (object.size === 0 || socket.destroyed) return;
    puller.outgoing.set(requestId, stream);
    for (let offset = 0; offset < object.size; offset += WRITE_BYTES) {
      const length = Math.min(WRITE_BYTES, object.size - offset);
      const last = offset + length >= object.size;
      socket.write(object.chunk(offset, length), (error) => {
        if (error) return;
        this.stats.sentBytes += length;
        if (!last || puller.outgoing.get(requestId) !== stream) return;
        puller.outgoing.delete(requestId);
        stream.busy = false;
        this.#closeIfIdle(puller);
      });
    }
  }

  /**
   * Writes spilled `object` on `stream` from its spill file, a read ahead of the write in flight
   * (each buffer written once read; the next read waits for the last write to drain), then closes it.
   */
  async #writeFromDisk(puller: Puller, requestId: number, stream: Stream, object: OutgoingObject): Promise<void> {
    const { socket } = stream;
    puller.outgoing.set(requestId, stream);
    const carrying = () => !socket.destroyed && puller.outgoing.get(requestId) === stream;
    try {
      let written: Promise<void> = Promise.resolve();
      for (let offset = 0; offset < object.size && carrying(); ) {
        const length = Math.min(DISK_READ_BYTES, object.size - offset);
        const [chunk] = await Promise.all([object.read(offset, length), written]);
        if (!carrying()) return;
        written = new Promise<void>((resolve, reject) =>
          socket.write(chunk, (error) => {
            if (error) return reject(error);
            this.stats.sentBytes += chunk.length;
            resolve();
          }),
        );
        offset += length;
      }
      await written;
    } catch (error) {
      // The disk failed mid-object, or the stream broke: the puller sees its stream end early.
      if (!socket.destroyed) this.#logger.warn({ err: error }, `sending spilled object ${object.id} from its spill file failed: ${(error as Error).message}`);
      socket.destroy();
      return;
    } finally {
      object.close();
    }
    if (puller.outgoing.get(requestId) !== stream) return;
    puller.outgoing.delete(requestId);
    stream.busy = false;
    this.#closeIfIdle(puller);
  }

  /**
   * Answers a pull: an object arriving here is passed on as it comes; otherwise once the object
   * settles, inline, as a segment written on `stream`, or (a large one already being sent to a
   * puller that relays) with the puller to get it from instead.
   */
  async #serve(message: Extract<ToHolder, { type: 'pull' }>, puller: Puller, send: (message: FromHolder) => void, stream: Stream): Promise<void> {
    const { requestId, id } = message;
    let arriving = this.#options.arriving?.(id);
    if (arriving instanceof Promise) {
      this.stats.awaitingArrival += 1;
      arriving = await arriving.finally(() => (this.stats.awaitingArrival -= 1));
    }
    if (arriving && this.#passOn(message, puller, send, stream, arriving)) return;
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
    const relays = puller.relayUrl !== undefined && status.size >= RELAY_MIN_BYTES;
    const relay = relays && !message.direct ? this.#chains.next(id, puller.relayUrl!) : undefined;
    if (relay) {
      this.stats.relayed += 1;
      send({ type: 'relay', requestId, url: relay });
      return;
    }
    let object: OutgoingObject;
    try {
      object = this.#store.openForRead(id);
    } catch (error) {
      debug('cannot serve %s: %o', id, error);
      // No room to map it (the puller gets that, not a lost object), or its spill file cannot be
      // opened (said here; the puller tries another holder).
      if (error instanceof ObjectStoreFullError) send({ type: 'missing', requestId, reason: 'full', failure: toWireFailure(error) });
      else {
        if (error instanceof SpillError) this.#logger.warn({ err: error }, `cannot serve object ${id}: ${error.message}`);
        send({ type: 'missing', requestId, reason: 'freed' });
      }
      return;
    }
    send({ type: 'object', requestId, size: status.size, contains: status.contains });
    this.#write(puller, requestId, stream, object);
    // Later pullers of it go to this one while it receives it from here.
    if (relays) this.#chains.start(id, puller.relayUrl!, () => puller.outgoing.get(requestId) === stream);
  }

  /**
   * Serves a pull of an object still arriving here from another node (this node is a link of a
   * relay chain): answered now, its bytes written on `stream` as they come. False when it
   * cannot be read so (sealed or discarded meanwhile): the store's copy, if any, is served.
   */
  #passOn(message: Extract<ToHolder, { type: 'pull' }>, puller: Puller, send: (message: FromHolder) => void, stream: Stream, arriving: Arriving): boolean {
    const { requestId, id } = message;
    const { incoming } = arriving;
    let read: OutgoingObject;
    try {
      read = incoming.openForRead();
    } catch (error) {
      debug('cannot pass on %s as it arrives: %o', id, error);
      return false;
    }
    this.stats.passedOn += 1;
    send({ type: 'object', requestId, size: incoming.size, ...(arriving.contains ? { contains: [...arriving.contains] } : {}) });
    puller.outgoing.set(requestId, stream);
    sendArriving(
      stream.socket,
      incoming,
      read,
      (end) => {
        if (puller.outgoing.get(requestId) !== stream) return;
        puller.outgoing.delete(requestId);
        if (end !== 'sent') return;
        stream.busy = false;
        this.#closeIfIdle(puller);
      },
      (bytes) => (this.stats.sentBytes += bytes),
    );
    return true;
  }
}
