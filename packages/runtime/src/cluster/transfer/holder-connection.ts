// The puller's end of object transfer: one authenticated data connection to a holder's data
// server (data-server.ts), multiplexing this node's pulls from it. A holder's answer is either
// the object inline or its size, followed by chunks this end writes straight into a new segment
// file (pwrite at the chunk's offset) and acknowledges, which opens the holder's credit window.
import { WebSocket } from 'ws';
import {
  CLOSE_IDLE,
  HANDSHAKE_TIMEOUT_MS,
  PULLER_MAX_PAYLOAD_BYTES,
  PULL_WINDOW_BYTES,
  ShoalError,
  TOKEN_HEADER, decodeFromHolder, decodeMessage, encodeMessage, type FromHolder, type ToHolder } from '@shoal/protocol';
import type { IncomingObject } from '@shoal/store';
import { RequestTracker } from '../../transport/request-tracker.js';
import { PullFailure } from './pull-failure.js';

/** A holder that sends nothing, pongs included, for this long is taken for dead (its pulls fail over). */
const LIVENESS_MS = 10_000;

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

/** Where one pull stands between the holder's answer and its last chunk. */
interface Incoming {
  readonly id: string;
  file: IncomingObject | undefined;
  size: number;
  received: number;
  contains: readonly string[] | undefined;
  /** The pull failed here (no room for the file): its chunks are read and dropped. */
  discarding: boolean;
}

type Chunk = { readonly requestId: number; readonly offset: number; readonly length: number };

/**
 * One authenticated data connection to a holder. Requests are correlated by a
 * {@link RequestTracker} (which settles each pull's promise and fails them all when the
 * connection goes); the chunk state of each request sits beside it, keyed by the tracker's id.
 */
export class HolderConnection {
  readonly url: string;
  /** Resolves once the holder welcomed this connection; rejects with a {@link PullFailure}. */
  readonly ready: Promise<void>;
  readonly #socket: WebSocket;
  readonly #requests = new RequestTracker();
  readonly #incoming = new Map<number, Incoming>();
  /** The chunk header whose bytes are the next binary message. */
  #chunk: Chunk | undefined;
  readonly #pinger: NodeJS.Timeout;
  readonly #accept: (id: string, size: number) => IncomingObject;
  #closed = false;

  /**
   * Connects (the one connection this class makes: pullers create it when they first need the
   * holder). `onClose` is told when it closed; `accept` starts an object arriving in this node's
   * store (`store.acceptIncoming`) and throws when it does not fit here.
   */
  constructor(url: string, token: string, onClose: () => void, accept: (id: string, size: number) => IncomingObject) {
    this.url = url;
    this.#accept = accept;
    // The token goes in the upgrade: a data server accepts no WebSocket without it.
    this.#socket = new WebSocket(url, {
      perMessageDeflate: false,
      handshakeTimeout: HANDSHAKE_TIMEOUT_MS,
      maxPayload: PULLER_MAX_PAYLOAD_BYTES,
      headers: { [TOKEN_HEADER]: token },
    });
    this.ready = new Promise((resolve, reject) => {
      this.#socket.once('open', () => this.#send({ type: 'hello' }));
      this.#socket.once('error', (error) => reject(new PullFailure('unreachable', `cannot reach ${url}: ${error.message}`, { cause: error })));
      // A refused upgrade (with a listener here, ws reports it nowhere else): say why, not only the status.
      this.#socket.once('unexpected-response', (_request, response) => {
        const status = response.statusCode ?? 0;
        response.destroy();
        this.#socket.terminate();
        const why =
          status === 401
            ? 'refused this node’s cluster token (401): start every node of the cluster with the same token (`shoal start --token`, or $SHOAL_HOME/token)'
            : `refused the connection (HTTP ${status}${status === 503 ? ': too many connections, see its log' : ''})`;
        reject(new PullFailure('unreachable', `the data server at ${url} ${why}`));
      });
      this.#socket.once('close', (code, reason) => reject(new PullFailure('closed', `${url} closed the connection (${code} ${reason.toString()})`)));
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
    let lastHeard = Date.now();
    // Anything from the holder shows it alive (a pong may queue behind the chunks of a slow link).
    this.#socket.on('pong', () => (lastHeard = Date.now()));
    this.#socket.on('message', () => (lastHeard = Date.now()));
    this.#pinger = setInterval(() => {
      if (Date.now() - lastHeard > LIVENESS_MS) {
        this.#fail(new PullFailure('unresponsive', `${url} stopped answering (no pong for ${LIVENESS_MS} ms)`));
        this.#socket.terminate();
      } else if (this.#socket.readyState === WebSocket.OPEN) {
        this.#socket.ping();
      }
    }, LIVENESS_MS / 4);
    this.#pinger.unref();
    this.#socket.on('error', () => this.#socket.terminate());
    this.#socket.on('close', (code, reason) => {
      this.#closed = true;
      this.#fail(new PullFailure(code === CLOSE_IDLE ? 'idle' : 'closed', `the connection to ${url} closed (${code}${reason.length ? ` ${reason.toString()}` : ''})`));
      onClose();
    });
  }

  /** Whether the connection closed (a new one is needed). */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Pulls object `id` into this node's store.
   * @throws PullFailure when this holder cannot give it; the store's error when it does not fit here.
   */
  pull(id: string): Promise<PulledObject> {
    return this.#requests.request<PulledObject>((requestId) => {
      this.#incoming.set(requestId, { id, file: undefined, size: 0, received: 0, contains: undefined, discarding: false });
      this.#send({ type: 'pull', requestId, id, window: PULL_WINDOW_BYTES });
    });
  }

  release(ids: readonly string[]): void {
    if (!this.#closed) this.#send({ type: 'release', ids });
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
    const request = this.#incoming.get(message.requestId);
    if (!request) throw new PullFailure('protocol', `a reply to unknown request ${message.requestId}`);
    if (message.type === 'missing') {
      this.#incoming.delete(message.requestId);
      this.#abandon(request);
      this.#requests.answer(message.requestId, new PullFailure('missing', `${this.url} does not have it (${message.reason})`, { failure: message.failure }));
      return;
    }
    if (request.file !== undefined || request.discarding) throw new PullFailure('protocol', `a second answer to request ${message.requestId}`);
    // 'object': inline bytes, or the size of the segment about to stream.
    if (message.bytes) {
      this.#incoming.delete(message.requestId);
      this.#requests.answer(message.requestId, { size: message.size, bytes: message.bytes, ...(message.contains ? { contains: message.contains } : {}) });
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
      this.#requests.answer(message.requestId, error as Error);
      if (message.size === 0) this.#incoming.delete(message.requestId);
      return;
    }
    if (message.size === 0) this.#finish(message.requestId, request);
  }

  /** Discards a partly written object. */
  #abandon(request: Incoming): void {
    request.file?.discard();
    request.file = undefined;
  }

  #write(chunk: Chunk, data: Buffer): void {
    const request = this.#incoming.get(chunk.requestId);
    if (!request || (request.file === undefined && !request.discarding)) throw new PullFailure('protocol', `a chunk for unknown request ${chunk.requestId}`);
    // Chunks come in order, each right after the last: anything else would leave holes.
    if (data.length !== chunk.length || chunk.length === 0 || chunk.offset !== request.received || chunk.offset + chunk.length > request.size) {
      throw new PullFailure('protocol', 'a chunk out of order or out of bounds');
    }
    if (!request.discarding) request.file!.write(data, chunk.offset);
    request.received += data.length;
    this.#send({ type: 'ack', requestId: chunk.requestId, bytes: data.length });
    if (request.received < request.size) return;
    if (request.discarding) this.#incoming.delete(chunk.requestId);
    else this.#finish(chunk.requestId, request);
  }

  #finish(requestId: number, request: Incoming): void {
    this.#incoming.delete(requestId);
    const incoming = request.file!;
    request.file = undefined;
    this.#requests.answer(requestId, { size: request.size, incoming, ...(request.contains ? { contains: request.contains } : {}) });
  }

  /**
   * Fails every pull on this connection. A ShoalError is this node's own trouble (no room to
   * write a chunk) and stays what it is; anything else (a message that does not decode) is
   * the holder's fault.
   */
  #fail(error: Error): void {
    if (!(error instanceof PullFailure) && !(error instanceof ShoalError)) error = new PullFailure('protocol', error.message, { cause: error });
    clearInterval(this.#pinger);
    for (const request of this.#incoming.values()) this.#abandon(request);
    this.#incoming.clear();
    this.#requests.failAll(error);
  }
}
