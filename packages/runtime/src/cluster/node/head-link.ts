import { WebSocket } from 'ws';
import {
  BadTokenError,
  CLOSE_PROTOCOL_ERROR,
  HANDSHAKE_TIMEOUT_MS,
  HeadClosedError,
  HeadProtocolError,
  HeadUnreachableError,
  ShoalError,
  TOKEN_HEADER,
  decodeFromHead,
  decodeMessage,
  encodeMessage,
  type FromHead,
  type NodeReport,
  type NodeStatus,
  type ToHead,
} from '@shoal/protocol';
import { backoffDelay } from './backoff.js';

/** How often a node reports to the head. */
export const HEARTBEAT_INTERVAL_MS = 1000;


/**
 * Opens an authenticated connection to the head: resolves once the head welcomed it.
 * @throws ShoalError ERR_BAD_TOKEN, ERR_HEAD_UNREACHABLE, ERR_HEAD_PROTOCOL (the head refused the upgrade) or ERR_HEAD_CLOSED.
 */
export function connectToHead(url: string, token: string, role: 'node' | 'cli'): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    // The token goes in the upgrade: the head accepts no WebSocket without it.
    const socket = new WebSocket(url, { perMessageDeflate: false, handshakeTimeout: HANDSHAKE_TIMEOUT_MS, headers: { [TOKEN_HEADER]: token } });
    const fail = (error: Error) => {
      socket.removeAllListeners();
      socket.on('error', () => {});
      socket.terminate();
      reject(error);
    };
    socket.once('open', () => socket.send(encodeMessage({ type: 'hello', role })));
    // A refused upgrade: 401 is a wrong token, the error a user always saw for one (and final for
    // a HeadLink); any other status is what ws itself would have reported.
    socket.once('unexpected-response', (_request, response) => {
      const { statusCode = 0 } = response;
      response.destroy();
      fail(statusCode === 401 ? new BadTokenError(url, '--token or SHOAL_TOKEN') : new HeadProtocolError(url, `refused the connection (HTTP ${statusCode}${statusCode === 503 ? ': too many connections, see its log' : ''})`));
    });
    socket.once('message', (data) => {
      let message: FromHead;
      try {
        message = decodeFromHead(decodeMessage(data as Buffer));
      } catch (error) {
        fail(new HeadProtocolError(url, 'sent something unexpected', { cause: error }));
        return;
      }
      if (message.type !== 'welcome') {
        fail(new HeadProtocolError(url, 'did not welcome this connection'));
        return;
      }
      socket.removeAllListeners('close');
      socket.removeAllListeners('error');
      resolve(socket);
    });
    socket.once('close', (code, reason) => fail(new HeadClosedError(url, code, reason.toString())));
    socket.once('error', (error) =>
      fail(new HeadUnreachableError(url, (error as NodeJS.ErrnoException).code ?? error.message, { cause: error })),
    );
  });
}

/** How long `shoal status` waits for the head's answer once connected. */
const STATUS_TIMEOUT_MS = 10_000;

/** Asks the head for the cluster's nodes (what `shoal status` prints). */
export async function queryStatus(url: string, token: string): Promise<{ clusterId: string; nodes: NodeStatus[] }> {
  const socket = await connectToHead(url, token, 'cli');
  try {
    return await new Promise((resolve, reject) => {
      // A head that takes the question but never answers must not hang `shoal status`.
      const timer = setTimeout(() => reject(new HeadProtocolError(url, `did not answer a status query within ${STATUS_TIMEOUT_MS / 1000} s`)), STATUS_TIMEOUT_MS);
      const settle = () => clearTimeout(timer);
      socket.once('message', (data) => {
        settle();
        try {
          const message = decodeFromHead(decodeMessage(data as Buffer));
          if (message.type !== 'status') throw new HeadProtocolError(url, `answered a status query with ${message.type}`);
          resolve({ clusterId: message.clusterId, nodes: [...message.nodes] });
        } catch (error) {
          reject(error as Error);
        }
      });
      socket.once('close', (code, reason) => {
        settle();
        reject(new HeadClosedError(url, code, reason.toString()));
      });
      socket.once('error', (error) => {
        settle();
        reject(new HeadUnreachableError(url, (error as NodeJS.ErrnoException).code ?? error.message, { cause: error }));
      });
      socket.send(encodeMessage({ type: 'status' }));
    });
  } finally {
    socket.terminate();
  }
}

/** What a {@link HeadLink} tells its node. */
export interface HeadLinkHandlers {
  /** Membership can never work (a refused token, an unreachable head at first): stop. */
  readonly onFatal: (error: Error) => void;
  /** A message from the head other than `registered`. */
  readonly onMessage?: (message: FromHead) => void;
  /**
   * The head closed the connection before registering this node (another live connection holds
   * its id, or it did not accept a message): it is retried with backoff.
   */
  readonly onRefused?: (error: Error) => void;
  /** The connection dropped (it is retried): anything the head was doing for this node is lost. */
  readonly onDisconnect?: () => void;
  /** The head registered this node (first, and again after every reconnection). */
  readonly onRegistered?: () => void;
  /** How long a head not reached at all at start is tried again before `onFatal` (0: not at all). @default 0 */
  readonly joinTimeoutMs?: number;
}

/**
 * A node's membership: registers with the head, heartbeats its report every second, and
 * reconnects (and registers again) whenever the connection drops — a restarted head or a
 * network blip — until closed, waiting longer after each failed attempt ({@link backoffDelay}:
 * 100 ms doubling to 5 s, jittered) and starting over once registered again. A refused token is
 * final: `handlers.onFatal` is told and it stops.
 */
export class HeadLink {
  readonly url: string;
  readonly #token: string;
  readonly #report: () => NodeReport;
  readonly #handlers: HeadLinkHandlers;
  #socket: WebSocket | undefined;
  #heartbeat: NodeJS.Timeout | undefined;
  #retry: NodeJS.Timeout | undefined;
  #closed = false;
  #everConnected = false;
  /** Attempts since the last registration: how long the next wait is. */
  #failures = 0;
  /** Resolves on the first successful registration. */
  readonly registered: Promise<void>;
  #markRegistered: () => void = () => {};

  /** Until when a head not reached yet at start is tried again (Date.now() ms). */
  readonly #joinDeadline: number;

  constructor(
    url: string,
    token: string,
    report: () => NodeReport,
    handlers: HeadLinkHandlers,
  ) {
    this.url = url;
    this.#token = token;
    this.#report = report;
    this.#handlers = handlers;
    this.#joinDeadline = Date.now() + (handlers.joinTimeoutMs ?? 0);
    this.registered = new Promise((resolve) => (this.#markRegistered = resolve));
    void this.#connect();
  }

  async #connect(): Promise<void> {
    if (this.#closed) return;
    let socket: WebSocket;
    try {
      socket = await connectToHead(this.url, this.#token, 'node');
    } catch (error) {
      // A wrong token is final; so is a head that cannot be reached at all on the first try
      // (a typo in the address), unless the node was told to wait for it to come up (joinTimeoutMs:
      // nodes started with their head, as in Kubernetes). Later, a lost head is waited for.
      const joining = !this.#everConnected && Date.now() < this.#joinDeadline;
      if ((error instanceof ShoalError && error.code === 'ERR_BAD_TOKEN') || (!this.#everConnected && !joining)) {
        this.#handlers.onFatal(error as Error);
        return;
      }
      this.#reconnectLater();
      return;
    }
    if (this.#closed) {
      socket.terminate();
      return;
    }
    this.#socket = socket;
    this.#everConnected = true;
    let registered = false;
    socket.on('message', (data) => {
      let message: FromHead;
      try {
        message = decodeFromHead(decodeMessage(data as Buffer));
      } catch {
        socket.terminate();
        return;
      }
      if (message.type === 'registered') {
        registered = true;
        this.#failures = 0;
        this.#markRegistered();
        this.#handlers.onRegistered?.();
      } else this.#handlers.onMessage?.(message);
    });
    socket.on('error', () => socket.terminate());
    socket.on('close', (code, reason) => {
      if (!registered && code === CLOSE_PROTOCOL_ERROR) this.#handlers.onRefused?.(new HeadClosedError(this.url, code, reason.toString()));
      this.#handlers.onDisconnect?.();
      if (this.#heartbeat) clearInterval(this.#heartbeat);
      this.#socket = undefined;
      if (!this.#closed) this.#reconnectLater();
    });
    socket.send(encodeMessage({ type: 'register', node: this.#report() }));
    this.#heartbeat = setInterval(() => socket.send(encodeMessage({ type: 'heartbeat', node: this.#report() })), HEARTBEAT_INTERVAL_MS);
  }

  #reconnectLater(): void {
    this.#retry = setTimeout(() => void this.#connect(), backoffDelay(this.#failures++));
  }

  /** Sends a message to the head; false when the head is not connected right now. */
  send(message: ToHead): boolean {
    const socket = this.#socket;
    if (!socket || socket.readyState !== WebSocket.OPEN) return false;
    socket.send(encodeMessage(message));
    return true;
  }

  close(): void {
    this.#closed = true;
    if (this.#heartbeat) clearInterval(this.#heartbeat);
    if (this.#retry) clearTimeout(this.#retry);
    this.#socket?.close(1000, 'node stopping');
  }
}
