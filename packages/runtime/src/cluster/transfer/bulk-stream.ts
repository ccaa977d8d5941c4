// The puller's end of a bulk connection (data-protocol.ts): a TCP connection to a holder's data
// port, upgraded with the cluster token to BULK_UPGRADE, on which the holder writes the raw bytes
// of the segment objects this end's pulls name it for, one object at a time. The socket reads
// straight into the arriving object's segment (net's `onread` with a buffer per read: each read
// lands at the next offset of the segment's shared mapping), so the bytes are copied once, by the
// kernel, as a raw TCP receiver's are.
import { connect, type Socket } from 'node:net';
import { BULK_CONNECTION_HEADER, BULK_STREAM_HEADER, BULK_UPGRADE, HANDSHAKE_TIMEOUT_MS, TOKEN_HEADER } from '@shoal/protocol';
import type { IncomingObject } from '@shoal/store';
import { PullFailure } from './pull-failure.js';

/** Bytes of a holder's answer to the upgrade this end reads at most (status, headers, a short reason). */
const ANSWER_MAX_BYTES = 4096;
/** Bytes that may arrive for a pull before its answer on the data connection says where they go. */
const EARLY_BYTES = 64 * 1024;
/** The longest view of a segment one read is offered (a typed array's length has a limit). */
const MAX_READ_BYTES = 1 << 30;

/** Why a holder refused an upgrade, for the pull's failure. */
export function refusedUpgrade(url: string, status: number, reason = ''): PullFailure {
  const why =
    status === 401
      ? 'refused this node’s cluster token (401): start every node of the cluster with the same token (`shoal start --token`, or $SHOAL_HOME/token)'
      : `refused the connection (HTTP ${status}${status === 503 ? ': too many connections, see its log' : ''}${reason ? `: ${reason}` : ''})`;
  return new PullFailure('unreachable', `the data server at ${url} ${why}`);
}

type State =
  /** Reading the holder's answer to the upgrade. */
  | { readonly kind: 'upgrading'; read: number }
  /** No pull uses it: the holder may send nothing. */
  | { readonly kind: 'free' }
  /** A pull named it; its answer has not come: bytes that arrive wait in the early buffer (reading paused). */
  | { readonly kind: 'expecting'; early: number; readonly failed: (error: Error) => void }
  /** Reading `incoming`'s bytes in place. */
  | { readonly kind: 'receiving'; readonly incoming: IncomingObject; readonly done: () => void; readonly failed: (error: Error) => void }
  | { readonly kind: 'closed'; readonly error: Error };

/**
 * One bulk connection to a holder, serving the data connection numbered `connection` there. A
 * pull takes it while {@link free} with {@link expect} (in the same turn: nothing else can take
 * it then) before sending the `pull` that names its {@link number}, then {@link receive} (a
 * segment object: resolves once every byte is in) or {@link release} (the answer carried no bytes).
 *
 * @example
 * ```ts
 * const stream = new BulkStream(url, token, welcome.connection, () => pool.delete(stream));
 * await stream.ready;
 * stream.expect((error) => failPull(error)); // the stream closed before the answer
 * send({ type: 'pull', requestId, id, stream: stream.number });
 * // the answer: `object` with a size and no bytes
 * await stream.receive(store.acceptIncoming(id, size));
 * ```
 */
export class BulkStream {
  readonly url: string;
  /** Resolves once the holder accepted the upgrade; rejects with a {@link PullFailure}. */
  readonly ready: Promise<void>;
  /** The stream's number at the holder (a `pull` names it); set once {@link ready}. */
  number = -1;
  /** When its last bytes came (Date.now()): a receiving stream silent for long is stalled. */
  lastRead = Date.now();
  readonly #socket: Socket;
  readonly #answer = Buffer.alloc(ANSWER_MAX_BYTES);
  readonly #early = Buffer.alloc(EARLY_BYTES);
  /**
   * Where the first read after an early one lands: the buffer for a read is chosen when the read
   * before it is handled, so once paused with early bytes the next read has no better place (it
   * is copied where it belongs). Never a buffer of no room: libuv fails such a read (ENOBUFS).
   */
  readonly #spare = Buffer.alloc(EARLY_BYTES);
  readonly #onClose: () => void;
  #state: State = { kind: 'upgrading', read: 0 };
  /** The last view of an object's segment offered to a read. */
  #target: Uint8Array | undefined;
  #upgraded!: () => void;
  #refused!: (error: Error) => void;

  constructor(url: string, token: string, connection: number, onClose: () => void) {
    this.url = url;
    this.#onClose = onClose;
    this.ready = new Promise((resolve, reject) => {
      this.#upgraded = resolve;
      this.#refused = reject;
    });
    this.ready.catch(() => {});
    const { hostname, port } = new URL(url);
    const host = hostname.startsWith('[') ? hostname.slice(1, -1) : hostname;
    this.#socket = connect({
      host,
      port: Number(port),
      noDelay: true,
      onread: { buffer: () => this.#bufferOrClose(), callback: (bytes: number, buffer: Uint8Array) => this.#read(bytes, buffer) },
    });
    this.#socket.setTimeout(HANDSHAKE_TIMEOUT_MS, () => this.#close(new PullFailure('unreachable', `${url} did not answer the bulk upgrade within ${HANDSHAKE_TIMEOUT_MS} ms`)));
    this.#socket.once('connect', () => {
      this.#socket.write(
        `GET / HTTP/1.1\r\nHost: ${hostname}:${port}\r\nConnection: Upgrade\r\nUpgrade: ${BULK_UPGRADE}\r\n` +
          `${TOKEN_HEADER}: ${token}\r\n${BULK_CONNECTION_HEADER}: ${connection}\r\n\r\n`,
      );
    });
    this.#socket.on('error', (error) => this.#close(new PullFailure(this.#state.kind === 'upgrading' ? 'unreachable' : 'closed', `bulk connection to ${url}: ${error.message}`, { cause: error })));
    this.#socket.on('close', () => this.#close(new PullFailure('closed', `the bulk connection to ${url} closed`)));
  }

  /** Whether a pull may take it now. */
  get free(): boolean {
    return this.#state.kind === 'free';
  }

  get closed(): boolean {
    return this.#state.kind === 'closed';
  }

  /** Whether it is reading an object's bytes (the liveness check looks at those). */
  get receiving(): boolean {
    return this.#state.kind === 'receiving';
  }

  /**
   * A pull takes this stream: bytes may come before its answer. `failed` is told if the stream
   * closes before the answer comes (the pull fails then, not when the answer comes).
   * @throws Error when not free.
   */
  expect(failed: (error: Error) => void): void {
    if (this.#state.kind !== 'free') throw new Error(`bulk stream ${this.number} to ${this.url} is ${this.#state.kind}, not free`);
    this.#state = { kind: 'expecting', early: 0, failed };
  }

  /**
   * The pull's answer is a segment object of `incoming.size` bytes: they are read into it, the
   * ones that came early first. Resolves once all are in (the stream is free again); rejects
   * with a {@link PullFailure} when the stream fails first, or more came early than the object has.
   */
  receive(incoming: IncomingObject): Promise<void> {
    const state = this.#state;
    if (state.kind === 'closed') return Promise.reject(state.error);
    if (state.kind !== 'expecting') return Promise.reject(new Error(`bulk stream ${this.number} is ${state.kind}, not expecting`));
    if (state.early > incoming.size) {
      const error = this.#protocol(`sent ${state.early} bytes for an object of ${incoming.size}`);
      this.#close(error);
      return Promise.reject(error);
    }
    if (state.early > 0) incoming.write(this.#early.subarray(0, state.early), 0);
    if (incoming.written === incoming.size) {
      this.#state = { kind: 'free' };
      this.#resume();
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      const receiving: State = {
        kind: 'receiving',
        incoming,
        done: () => {
          this.#state = { kind: 'free' };
          resolve();
        },
        failed: reject,
      };
      this.#state = receiving;
      // Discarded here (the store closes, the pull is abandoned): the socket must stop reading
      // into memory the store may give to another object at once.
      incoming.onDiscard(() => {
        if (this.#state === receiving) this.#close(new PullFailure('closed', `object ${incoming.id} was discarded while it arrived from ${this.url}`));
      });
      this.lastRead = Date.now();
      this.#resume();
    });
  }

  /** The pull's answer carried no bytes (inline, or missing): the stream is free again. @throws PullFailure when bytes came for it. */
  release(): void {
    const state = this.#state;
    if (state.kind === 'closed') return;
    if (state.kind === 'expecting' && state.early > 0) {
      const error = this.#protocol(`sent ${state.early} bytes for a pull answered without any`);
      this.#close(error);
      throw error;
    }
    this.#state = { kind: 'free' };
    this.#resume();
  }

  /** Fails what it is receiving with `error` (a stalled holder) and closes. Idempotent. */
  close(error: Error = new PullFailure('closed', `the bulk connection to ${this.url} was closed`)): void {
    this.#close(error);
  }

  /** {@link #nextBuffer}, or the early buffer after closing the stream if that threw (net calls it outside any handler of ours). */
  #bufferOrClose(): Uint8Array {
    try {
      return this.#nextBuffer();
    } catch (error) {
      this.#close(error as Error);
      return this.#early;
    }
  }

  /** Where the next read lands: the answer buffer, the early buffer or the object's next bytes. */
  #nextBuffer(): Uint8Array {
    const state = this.#state;
    switch (state.kind) {
      case 'upgrading':
        return this.#answer.subarray(state.read);
      case 'expecting':
        return state.early === 0 ? this.#early : this.#spare;
      case 'receiving': {
        const { incoming } = state;
        this.#target = incoming.target(Math.min(incoming.size - incoming.written, MAX_READ_BYTES));
        return this.#target;
      }
      default:
        // Free or closed: anything read is an error; a small buffer bounds it.
        return this.#early;
    }
  }

  /**
   * `bytes` were read into `buffer`. That is the buffer {@link #nextBuffer} gave after the read
   * before, for the state of then: a read after a pause lands where the state before the pause
   * said (the early buffer), so bytes not read in place are copied where they belong. Returns
   * false to pause reading.
   */
  #read(bytes: number, buffer: Uint8Array): boolean {
    try {
      const state = this.#state;
      switch (state.kind) {
        case 'upgrading':
          state.read += bytes;
          return this.#answered(state.read);
        case 'expecting': {
          // Early: keep them and wait for the answer (reading pauses, so they are not overwritten).
          if (buffer !== this.#early || state.early > 0) {
            if (state.early + bytes > EARLY_BYTES) throw this.#protocol(`sent more than ${EARLY_BYTES} bytes before the pull was answered`);
            this.#early.set(buffer.subarray(0, bytes), state.early);
          }
          state.early += bytes;
          return false;
        }
        case 'receiving': {
          this.lastRead = Date.now();
          const { incoming } = state;
          if (buffer === this.#target) incoming.wrote(bytes);
          else incoming.write(buffer.subarray(0, bytes), incoming.written);
          this.#target = undefined;
          if (incoming.written === incoming.size) state.done();
          return true;
        }
        case 'free':
          throw this.#protocol(`sent ${bytes} bytes no pull asked for`);
        case 'closed':
          return false;
      }
    } catch (error) {
      this.#close(error as Error);
      return false;
    }
  }

  /** Parses the holder's answer once its headers are in; true to read on. */
  #answered(read: number): boolean {
    const text = this.#answer.toString('latin1', 0, read);
    const end = text.indexOf('\r\n\r\n');
    if (end < 0) {
      if (read >= ANSWER_MAX_BYTES) throw this.#protocol('answered the bulk upgrade with more than 4 KiB of headers');
      return true;
    }
    const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(text)?.[1] ?? 0);
    if (status !== 101) {
      // The refusal's reason is its body (one line), read as far as it came.
      const reason = text.slice(end + 4).split('\n')[0]?.trim() ?? '';
      const error = refusedUpgrade(this.url, status, reason);
      this.#refused(error);
      this.#close(error);
      return false;
    }
    if (read > end + 4) throw this.#protocol('sent bytes right after accepting the bulk upgrade');
    const number = Number(new RegExp(`^${BULK_STREAM_HEADER}: *(\\d+) *$`, 'im').exec(text)?.[1]);
    if (!Number.isSafeInteger(number)) throw this.#protocol(`accepted the bulk upgrade without a ${BULK_STREAM_HEADER}`);
    this.number = number;
    this.#socket.setTimeout(0);
    this.#state = { kind: 'free' };
    this.#upgraded();
    return true;
  }

  #protocol(what: string): PullFailure {
    return new PullFailure('protocol', `${this.url} ${what} on a bulk connection`);
  }

  /** Reads on after a pause (in `onread` mode, net's resume starts the handle reading again if it stopped). */
  #resume(): void {
    if (!this.#socket.destroyed) this.#socket.resume();
  }

  #close(error: Error): void {
    const state = this.#state;
    if (state.kind === 'closed') return;
    this.#state = { kind: 'closed', error };
    this.#refused(error);
    this.#socket.destroy();
    if (state.kind === 'receiving' || state.kind === 'expecting') state.failed(error);
    this.#onClose();
  }
}
