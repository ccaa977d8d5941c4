// Object transfer between nodes: each node runs a data server other nodes pull its objects from,
// and a puller that fetches objects it needs into its own session directory. Pull-based and
// direct: the head only says where objects are. Bulk bytes travel as independent chunk messages
// (1 MiB by default) on a WebSocket of their own, from the holder (the server side, so frames are
// not masked) straight into a new segment file on the puller (pwrite at the chunk's offset).
import { type AddressInfo } from 'node:net';
import { debuglog } from 'node:util';
import PQueue from 'p-queue';
import { WebSocket, WebSocketServer } from 'ws';
import {
  ObjectLostError,
  ShoalError,
  decodeFromHolder,
  decodeMessage,
  decodeToHolder,
  encodeMessage,
  type FromHolder,
  type ToHolder,
  type WireFailure,
} from '@shoal/protocol';
import type { IncomingObject, ObjectStore, OutgoingObject } from '@shoal/store';
import { toWireFailure } from '../../thrown.js';
import { guard, wsUrl } from '../../transport/guard.js';

const debug = debuglog('shoal:transfer');

/** Bytes per chunk message. */
export const CHUNK_BYTES = 1 << 20;
/** Bytes a puller lets a holder send ahead of what it has written (per pull). */
export const PULL_WINDOW_BYTES = 16 << 20;
/** Objects pulled at once; further pulls queue (the cap on bytes in flight is this x the window). */
export const CONCURRENT_PULLS = 4;

/** Options of a {@link DataServer}. */
export interface DataServerOptions {
  readonly host: string;
  /** 0 picks a free port. */
  readonly port?: number;
  readonly token: string;
  readonly nodeId: string;
  /** Where rejected connections are reported. */
  readonly log: (line: string) => void;
  /** A puller released these ids (it has its own copy of a task result kept for it). */
  readonly onRelease?: (ids: readonly string[]) => void;
}

interface Outgoing {
  readonly requestId: number;
  readonly object: OutgoingObject;
  readonly size: number;
  sent: number;
  acked: number;
  window: number;
}

/**
 * Serves this node's objects to other nodes: authenticates each connection with the cluster
 * token, then answers `pull`s from the store. A pending object is answered once it settles; a
 * segment object is mapped (privately, read only in effect) and streamed within the puller's
 * credit window. Bad input closes only the connection it came on.
 */
export class DataServer {
  readonly #server: WebSocketServer;
  readonly #store: ObjectStore;
  readonly #options: DataServerOptions;

  private constructor(server: WebSocketServer, store: ObjectStore, options: DataServerOptions) {
    this.#server = server;
    this.#store = store;
    this.#options = options;
    server.on('connection', (socket, request) => this.#accept(socket, request.socket.remoteAddress ?? 'unknown'));
  }

  static async start(store: ObjectStore, options: DataServerOptions): Promise<DataServer> {
    const server = new WebSocketServer({ host: options.host, port: options.port ?? 0, perMessageDeflate: false, maxPayload: 1 << 20 });
    await new Promise<void>((resolve, reject) => {
      server.once('listening', resolve);
      server.once('error', reject);
    });
    return new DataServer(server, store, options);
  }

  /** The address other nodes pull from. */
  get url(): string {
    const address = this.#server.address() as AddressInfo;
    return wsUrl(address.address, address.port);
  }

  async close(): Promise<void> {
    for (const client of this.#server.clients) client.terminate();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #accept(socket: WebSocket, remote: string): void {
    const outgoing = new Map<number, Outgoing>();
    const send = (message: FromHolder) => socket.send(encodeMessage(message));
    socket.on('close', () => outgoing.clear());
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
      if (transfer.sent >= transfer.size) outgoing.delete(transfer.requestId);
    };
    guard<ToHolder>(socket, {
      remote,
      kind: 'data connection',
      token: this.#options.token,
      helloTimeoutMs: 5000,
      log: this.#options.log,
      decode: decodeToHolder,
      welcome: () => send({ type: 'welcome', nodeId: this.#options.nodeId }),
      message: (message) => {
        switch (message.type) {
          case 'pull':
            void this.#serve(message, send, (transfer) => {
              outgoing.set(transfer.requestId, transfer);
              pump(transfer);
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

/** An object fetched from another node into this node's session directory. */
export interface PulledObject {
  readonly size: number;
  /** The serialized object when it is inline. */
  readonly bytes?: Uint8Array;
  /** Otherwise the segment, written: registered by `store.register` of its id, or discarded. */
  readonly incoming?: IncomingObject;
  /** Ids of the objects it refers to. */
  readonly contains?: readonly string[];
}

/** Why a pull from one holder did not give the object. */
class PullFailure extends Error {
  constructor(
    message: string,
    readonly failure?: WireFailure,
  ) {
    super(message);
  }
}

interface Incoming {
  readonly id: string;
  resolve(object: PulledObject): void;
  reject(error: Error): void;
  file: IncomingObject | undefined;
  size: number;
  received: number;
  contains: readonly string[] | undefined;
  /** The pull failed here (no room for the file): its chunks are read and dropped. */
  discarding: boolean;
}

/** A holder that answers no ping for this long is taken for dead (its pulls fail over). */
const LIVENESS_MS = 10_000;

/** One authenticated data connection to a holder, multiplexing this node's pulls from it. */
class HolderConnection {
  readonly url: string;
  readonly ready: Promise<void>;
  readonly #socket: WebSocket;
  readonly #requests = new Map<number, Incoming>();
  #nextRequest = 1;
  /** The chunk header whose bytes are the next binary message. */
  #chunk: { requestId: number; offset: number; length: number } | undefined;
  readonly #pinger: NodeJS.Timeout;
  closed = false;

  readonly #accept: (id: string, size: number) => IncomingObject;

  constructor(url: string, token: string, onClose: () => void, accept: (id: string, size: number) => IncomingObject) {
    this.url = url;
    this.#accept = accept;
    this.#socket = new WebSocket(url, { perMessageDeflate: false, handshakeTimeout: 5000, maxPayload: 64 << 20 });
    this.ready = new Promise((resolve, reject) => {
      this.#socket.once('open', () => this.#send({ type: 'hello', token }));
      this.#socket.once('error', (error) => reject(new Error(`cannot reach ${url}: ${error.message}`)));
      this.#socket.once('close', (code, reason) => reject(new Error(`${url} closed the connection (${code} ${reason.toString()})`)));
      this.#socket.on('message', (data: Buffer) => {
        try {
          if (this.#chunk) {
            this.#write(this.#chunk, data);
            this.#chunk = undefined;
            return;
          }
          const message = decodeFromHolder(decodeMessage(data));
          if (message.type === 'welcome') resolve();
          else this.#receive(message);
        } catch (error) {
          this.#fail(error as Error);
          this.#socket.terminate();
        }
      });
    });
    this.ready.catch(() => {});
    // A holder that stops answering (stopped, partitioned) must not hang its pulls forever.
    let lastPong = Date.now();
    // Anything from the holder shows it alive (a pong may queue behind the chunks of a slow link).
    this.#socket.on('pong', () => (lastPong = Date.now()));
    this.#socket.on('message', () => (lastPong = Date.now()));
    this.#pinger = setInterval(() => {
      if (Date.now() - lastPong > LIVENESS_MS) {
        this.#fail(new Error(`${url} stopped answering (no pong for ${LIVENESS_MS} ms)`));
        this.#socket.terminate();
      } else if (this.#socket.readyState === WebSocket.OPEN) {
        this.#socket.ping();
      }
    }, LIVENESS_MS / 4);
    this.#pinger.unref();
    this.#socket.on('error', () => this.#socket.terminate());
    this.#socket.on('close', (code, reason) => {
      this.closed = true;
      this.#fail(new Error(`the connection to ${url} closed (${code}${reason.length ? ` ${reason.toString()}` : ''})`));
      onClose();
    });
  }

  pull(id: string): Promise<PulledObject> {
    return new Promise((resolve, reject) => {
      const requestId = this.#nextRequest++;
      this.#requests.set(requestId, { id, resolve, reject, file: undefined, size: 0, received: 0, contains: undefined, discarding: false });
      this.#send({ type: 'pull', requestId, id, window: PULL_WINDOW_BYTES });
    });
  }

  release(ids: readonly string[]): void {
    if (!this.closed) this.#send({ type: 'release', ids });
  }

  close(): void {
    this.#socket.terminate();
  }

  #send(message: ToHolder): void {
    this.#socket.send(encodeMessage(message));
  }

  #receive(message: FromHolder): void {
    if (message.type === 'chunk') {
      this.#chunk = message;
      return;
    }
    if (message.type === 'welcome') return;
    const request = this.#requests.get(message.requestId);
    if (!request) throw new TypeError(`a reply to unknown request ${message.requestId}`);
    if (message.type === 'missing') {
      this.#requests.delete(message.requestId);
      this.#abandon(request);
      request.reject(new PullFailure(`${this.url} does not have it (${message.reason})`, message.failure));
      return;
    }
    if (request.file !== undefined || request.discarding) throw new TypeError(`a second answer to request ${message.requestId}`);
    // 'object': inline bytes, or the size of the segment about to stream.
    if (message.bytes) {
      this.#requests.delete(message.requestId);
      request.resolve({ size: message.size, bytes: message.bytes, ...(message.contains ? { contains: message.contains } : {}) });
      return;
    }
    request.size = message.size;
    request.contains = message.contains;
    try {
      request.file = this.#accept(request.id, message.size);
    } catch (error) {
      // No room here: this pull fails now; its chunks still come and are dropped, so the
      // other pulls on this connection go on.
      request.discarding = true;
      request.reject(error as Error);
      if (message.size === 0) this.#requests.delete(message.requestId);
      return;
    }
    if (message.size === 0) this.#finish(message.requestId, request);
  }

  /** Discards a partly written object. */
  #abandon(request: Incoming): void {
    request.file?.discard();
    request.file = undefined;
  }

  #write(chunk: { requestId: number; offset: number; length: number }, data: Buffer): void {
    const request = this.#requests.get(chunk.requestId);
    if (!request || (request.file === undefined && !request.discarding)) throw new TypeError(`a chunk for unknown request ${chunk.requestId}`);
    // Chunks come in order, each right after the last: anything else would leave holes.
    if (data.length !== chunk.length || chunk.length === 0 || chunk.offset !== request.received || chunk.offset + chunk.length > request.size) {
      throw new TypeError('a chunk out of order or out of bounds');
    }
    if (!request.discarding) request.file!.write(data, chunk.offset);
    request.received += data.length;
    this.#send({ type: 'ack', requestId: chunk.requestId, bytes: data.length });
    if (request.received < request.size) return;
    if (request.discarding) this.#requests.delete(chunk.requestId);
    else this.#finish(chunk.requestId, request);
  }

  #finish(requestId: number, request: Incoming): void {
    this.#requests.delete(requestId);
    const incoming = request.file!;
    request.file = undefined;
    request.resolve({ size: request.size, incoming, ...(request.contains ? { contains: request.contains } : {}) });
  }

  #fail(error: Error): void {
    clearInterval(this.#pinger);
    for (const request of this.#requests.values()) {
      this.#abandon(request);
      request.reject(error);
    }
    this.#requests.clear();
  }
}

/** Counts of what a {@link ObjectPuller} fetched. */
export interface PullStats {
  pulls: number;
  pulledBytes: number;
}

/**
 * Fetches objects from other nodes into this node's session directory. Concurrent pulls of one
 * object are merged into one; at most {@link CONCURRENT_PULLS} objects stream at once; a pull that
 * fails at one holder is retried at the next, and fails with ObjectLostError when none is left
 * (or with the object's own failure when its task failed).
 */
export class ObjectPuller {
  readonly stats: PullStats = { pulls: 0, pulledBytes: 0 };
  readonly #token: string;
  readonly #connections = new Map<string, HolderConnection>();
  readonly #inflight = new Map<string, Promise<PulledObject>>();
  readonly #queue = new PQueue({ concurrency: CONCURRENT_PULLS });
  #closed = false;

  readonly #accept: (id: string, size: number) => IncomingObject;

  /** `accept` starts an object arriving in this node's store (`store.acceptIncoming`); it throws when there is no room. */
  constructor(token: string, accept: (id: string, size: number) => IncomingObject) {
    this.#token = token;
    this.#accept = accept;
  }

  /** Fetches object `id` from the first of `sources` (data URLs) that has it. */
  pull(id: string, sources: readonly string[], failure: (failure: WireFailure) => Error): Promise<PulledObject> {
    const existing = this.#inflight.get(id);
    if (existing) return existing;
    const pulling = this.#queue
      .add(() => this.#pullFrom(id, [...new Set(sources)], failure), { throwOnTimeout: true })
      .finally(() => this.#inflight.delete(id));
    this.#inflight.set(id, pulling);
    return pulling;
  }

  /** Tells the holder at `url` it may drop the copies it kept for this node. */
  release(url: string, ids: readonly string[]): void {
    void this.#connection(url)
      .then((connection) => connection.release(ids))
      .catch((error: unknown) => debug('release at %s failed: %o', url, error));
  }

  /** Drops the connection to a holder that left the cluster: its pulls fail over to other holders. */
  forget(url: string): void {
    this.#connections.get(url)?.close();
    this.#connections.delete(url);
  }

  close(): void {
    this.#closed = true;
    this.#queue.clear();
    for (const connection of this.#connections.values()) connection.close();
    this.#connections.clear();
  }

  async #pullFrom(id: string, sources: string[], failure: (failure: WireFailure) => Error): Promise<PulledObject> {
    const tried: string[] = [];
    for (const url of sources) {
      if (this.#closed) break;
      try {
        const connection = await this.#connection(url);
        const object = await connection.pull(id);
        this.stats.pulls += 1;
        this.stats.pulledBytes += object.size;
        return object;
      } catch (error) {
        if (error instanceof PullFailure && error.failure) throw failure(error.failure);
        // This node's own trouble (a full /dev/shm): another holder would not help.
        if (error instanceof ShoalError) throw error;
        tried.push(`${url}: ${(error as Error).message}`);
        debug('pull of %s from %s failed: %s', id, url, (error as Error).message);
      }
    }
    throw new ObjectLostError(
      id,
      sources.length === 0
        ? 'no node of the cluster holds it any more.'
        : `no node holding it could send it (${tried.join('; ')}).`,
    );
  }

  async #connection(url: string): Promise<HolderConnection> {
    let connection = this.#connections.get(url);
    if (!connection || connection.closed) {
      const made = new HolderConnection(
        url,
        this.#token,
        () => {
          if (this.#connections.get(url) === made) this.#connections.delete(url);
        },
        this.#accept,
      );
      this.#connections.set(url, made);
      connection = made;
    }
    await connection.ready;
    return connection;
  }
}
