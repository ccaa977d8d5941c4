// The puller's end of object transfer: one authenticated data connection to a holder's data
// server (data-server.ts), multiplexing this node's pulls from it, and the bulk streams their
// bytes come on (bulk-stream.ts). A holder's answer is either the object inline or its size;
// then its bytes arrive on the stream the pull named, read straight into a segment of this
// node's store.
import { WebSocket } from 'ws';
import {
  CLOSE_IDLE,
  HANDSHAKE_TIMEOUT_MS,
  PULLER_MAX_PAYLOAD_BYTES,
  ShoalError,
  TOKEN_HEADER, decodeFromHolder, decodeMessage, encodeMessage, type ClusterArg, type ClusterResult, type FromHolder, type ToHolder } from '@shoal/protocol';
import type { IncomingObject } from '@shoal/store';
import { RequestTracker } from '../../transport/request-tracker.js';
import { ActorCallNotSent } from '../../node/cluster-actors.js';
import { BulkStream, refusedUpgrade } from './bulk-stream.js';
import { PullFailure } from './pull-failure.js';

/** A holder that sends nothing, pongs included, for this long is taken for dead (its pulls fail over); so is a stream receiving nothing. */
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

/** A holder's answer that the object is to be pulled from another puller of it, at `relay` (see relay.ts). */
export interface Relayed {
  readonly relay: string;
}

/** How a node's data server takes in an object that starts arriving: `store.acceptIncoming`, and the node keeps it as arriving. */
export type AcceptIncoming = (id: string, size: number, contains: readonly string[] | undefined) => IncomingObject;

/** Where one pull stands between its request and its last byte. */
interface Incoming {
  readonly id: string;
  readonly stream: BulkStream;
  /** The answer came (a second one breaks the protocol). */
  answered: boolean;
  /** The pull failed before its answer (its stream closed): the answer is dropped when it comes. */
  failed: boolean;
  file: IncomingObject | undefined;
}

/**
 * One authenticated data connection to a holder. Requests are correlated by a
 * {@link RequestTracker} (which settles each pull's promise and fails them all when the
 * connection goes); each request's stream and file sit beside it, keyed by the tracker's id.
 */
export class HolderConnection {
  readonly url: string;
  /** Resolves once the holder welcomed this connection; rejects with a {@link PullFailure}. */
  readonly ready: Promise<void>;
  readonly #token: string;
  readonly #socket: WebSocket;
  readonly #requests = new RequestTracker();
  readonly #incoming = new Map<number, Incoming>();
  /** Actor calls sent and not answered, by request id (answered by `actor-result`). */
  readonly #calls = new Set<number>();
  /** Bulk streams to the holder, each free or used by one pull. */
  readonly #streams = new Set<BulkStream>();
  readonly #pinger: NodeJS.Timeout;
  readonly #accept: AcceptIncoming;
  /** The number the holder's welcome gave this connection (bulk upgrades name it). */
  #number = -1;
  /** Why it closed, once it did. */
  #closed: PullFailure | undefined;

  /**
   * Connects (the one connection this class makes: pullers create it when they first need the
   * holder). `onClose` is told when it closed; `accept` starts an object arriving in this node's
   * store (`store.acceptIncoming`) and throws when it does not fit here. `relayUrl`: this node's
   * data URL, when it passes objects it receives on to later pullers (the holder may send them there).
   */
  constructor(url: string, token: string, onClose: () => void, accept: AcceptIncoming, relayUrl?: string) {
    this.url = url;
    this.#token = token;
    this.#accept = accept;
    // The token goes in the upgrade: a data server accepts no WebSocket without it.
    this.#socket = new WebSocket(url, {
      perMessageDeflate: false,
      handshakeTimeout: HANDSHAKE_TIMEOUT_MS,
      maxPayload: PULLER_MAX_PAYLOAD_BYTES,
      headers: { [TOKEN_HEADER]: token },
    });
    this.ready = new Promise((resolve, reject) => {
      this.#socket.once('open', () => this.#send(relayUrl ? { type: 'hello', relay: relayUrl } : { type: 'hello' }));
      this.#socket.once('error', (error) => reject(new PullFailure('unreachable', `cannot reach ${url}: ${error.message}`, { cause: error })));
      // A refused upgrade (with a listener here, ws reports it nowhere else): say why, not only the status.
      this.#socket.once('unexpected-response', (_request, response) => {
        const status = response.statusCode ?? 0;
        response.destroy();
        this.#socket.terminate();
        reject(refusedUpgrade(url, status));
      });
      this.#socket.once('close', (code, reason) => reject(new PullFailure('closed', `${url} closed the connection (${code} ${reason.toString()})`)));
      this.#socket.on('message', (data: Buffer) => {
        try {
          const message = decodeFromHolder(decodeMessage(data));
          if (message.type === 'welcome') {
            this.#number = message.connection;
            resolve();
          } else this.#receive(message);
        } catch (error) {
          this.#fail(error as Error);
          this.#socket.terminate();
        }
      });
    });
    this.ready.catch(() => {});
    // A holder that stops answering (stopped, partitioned) must not hang its pulls forever.
    let lastHeard = Date.now();
    this.#socket.on('pong', () => (lastHeard = Date.now()));
    this.#socket.on('message', () => (lastHeard = Date.now()));
    this.#pinger = setInterval(() => {
      const now = Date.now();
      if (now - lastHeard > LIVENESS_MS) {
        this.#fail(new PullFailure('unresponsive', `${url} stopped answering (no pong for ${LIVENESS_MS} ms)`));
        this.#socket.terminate();
        return;
      }
      if (this.#socket.readyState === WebSocket.OPEN) this.#socket.ping();
      // A stream the holder stopped writing on (while its data connection still answers).
      for (const stream of this.#streams) {
        if (stream.receiving && now - stream.lastRead > LIVENESS_MS) stream.close(new PullFailure('unresponsive', `${url} stopped sending an object (nothing for ${LIVENESS_MS} ms)`));
      }
    }, LIVENESS_MS / 4);
    this.#pinger.unref();
    this.#socket.on('error', () => this.#socket.terminate());
    this.#socket.on('close', (code, reason) => {
      this.#closed = new PullFailure(code === CLOSE_IDLE ? 'idle' : 'closed', `the connection to ${url} closed (${code}${reason.length ? ` ${reason.toString()}` : ''})`);
      this.#fail(this.#closed);
      onClose();
    });
  }

  /** Whether the connection closed (a new one is needed). */
  get closed(): boolean {
    return this.#closed !== undefined;
  }

  /**
   * Pulls object `id` into this node's store, or learns from the holder which other puller of
   * it to pull it from ({@link Relayed}; never when `direct`).
   * @throws PullFailure when this holder cannot give it; the store's error when it does not fit here.
   */
  async pull(id: string, direct = false): Promise<PulledObject | Relayed> {
    let failed: ((error: Error) => void) | undefined;
    let early: Error | undefined;
    // Taken (expecting) as it is found: another pull of this turn cannot take it too.
    const stream = await this.#takeStream((error) => (failed ? failed(error) : (early = error)));
    if (early) throw early;
    return this.#requests.request<PulledObject | Relayed>((requestId) => {
      const request: Incoming = { id, stream, answered: false, failed: false, file: undefined };
      this.#incoming.set(requestId, request);
      // The stream closed before the answer came: the pull fails now; its answer, if it comes, is dropped.
      failed = (error) => {
        if (request.answered) return;
        request.failed = true;
        this.#requests.answer(requestId, error);
      };
      this.#send(direct ? { type: 'pull', requestId, id, stream: stream.number, direct } : { type: 'pull', requestId, id, stream: stream.number });
    });
  }

  release(ids: readonly string[]): void {
    if (!this.#closed) this.#send({ type: 'release', ids });
  }

  /**
   * Calls a method of an actor running on the holder's node; resolves with how the call ended
   * (a segment result stays there until pulled and released).
   * @throws PullFailure when the connection closed before the answer.
   */
  callActor(call: { readonly actorId: string; readonly returnId: string; readonly method: string; readonly args: ClusterArg[] }): Promise<ClusterResult> {
    if (this.#closed) return Promise.reject(new ActorCallNotSent(`the connection to ${this.url} closed: ${this.#closed.message}`, { cause: this.#closed }));
    return this.#requests.request<ClusterResult>((requestId) => {
      this.#calls.add(requestId);
      this.#send({ type: 'actor-call', requestId, ...call });
    });
  }

  close(): void {
    this.#socket.terminate();
    for (const stream of this.#streams) stream.close();
  }

  /**
   * A free bulk stream, opened when none is, taken for a pull (see `BulkStream.expect`).
   * @throws PullFailure when the connection closed or the holder refused the stream.
   */
  async #takeStream(failed: (error: Error) => void): Promise<BulkStream> {
    for (;;) {
      if (this.#closed) throw this.#closed;
      const free = [...this.#streams].find((stream) => stream.free);
      if (free) {
        free.expect(failed);
        return free;
      }
      const opened = new BulkStream(this.url, this.#token, this.#number, () => this.#streams.delete(opened));
      this.#streams.add(opened);
      await opened.ready;
      // Another pull may have taken it meanwhile: look again.
    }
  }

  #send(message: ToHolder): void {
    this.#socket.send(encodeMessage(message));
  }

  #receive(message: FromHolder): void {
    if (message.type === 'welcome') return;
    if (message.type === 'actor-result') {
      if (!this.#calls.delete(message.requestId)) throw new PullFailure('protocol', `an actor result for unknown request ${message.requestId}`);
      this.#requests.answer(message.requestId, message.result);
      return;
    }
    const request = this.#incoming.get(message.requestId);
    if (!request) throw new PullFailure('protocol', `a reply to unknown request ${message.requestId}`);
    if (request.answered) throw new PullFailure('protocol', `a second answer to request ${message.requestId}`);
    request.answered = true;
    if (request.failed) {
      this.#incoming.delete(message.requestId);
      return;
    }
    if (message.type === 'missing') {
      request.stream.release();
      this.#incoming.delete(message.requestId);
      this.#requests.answer(message.requestId, new PullFailure('missing', `${this.url} does not have it (${message.reason})`, { failure: message.failure }));
      return;
    }
    if (message.type === 'relay') {
      request.stream.release();
      this.#incoming.delete(message.requestId);
      this.#requests.answer(message.requestId, { relay: message.url } satisfies Relayed);
      return;
    }
    const contains = message.contains ? { contains: message.contains } : {};
    // 'object': inline bytes, or the size of the segment whose bytes come on the stream.
    if (message.bytes) {
      request.stream.release();
      this.#incoming.delete(message.requestId);
      this.#requests.answer(message.requestId, { size: message.size, bytes: message.bytes, ...contains });
      return;
    }
    let file: IncomingObject;
    try {
      file = this.#accept(request.id, message.size, message.contains);
    } catch (error) {
      // No room here: this pull fails now. Its bytes are on their way: closing the stream stops
      // them (the holder drops the transfer); the other pulls on this connection go on.
      request.stream.close();
      this.#incoming.delete(message.requestId);
      this.#requests.answer(message.requestId, error as Error);
      return;
    }
    request.file = file;
    request.stream.receive(file).then(
      () => {
        this.#incoming.delete(message.requestId);
        request.file = undefined;
        this.#requests.answer(message.requestId, { size: message.size, incoming: file, ...contains });
      },
      (error: Error) => {
        this.#incoming.delete(message.requestId);
        this.#abandon(request);
        this.#requests.answer(message.requestId, error);
      },
    );
  }

  /** Discards a partly written object. */
  #abandon(request: Incoming): void {
    request.file?.discard();
    request.file = undefined;
  }

  /**
   * Fails every pull on this connection and closes its streams. A ShoalError is this node's own
   * trouble (no room to write an object) and stays what it is; anything else (a message that
   * does not decode) is the holder's fault.
   */
  #fail(error: Error): void {
    if (!(error instanceof PullFailure) && !(error instanceof ShoalError)) error = new PullFailure('protocol', error.message, { cause: error });
    clearInterval(this.#pinger);
    for (const request of this.#incoming.values()) this.#abandon(request);
    this.#incoming.clear();
    this.#calls.clear();
    this.#requests.failAll(error);
    for (const stream of this.#streams) stream.close(error);
  }
}
