import { timingSafeEqual } from 'node:crypto';
import { type AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import {
  CLOSE_BAD_TOKEN,
  CLOSE_PROTOCOL_ERROR,
  CLOSE_TIMEOUT,
  decodeMessage,
  decodeToHead,
  encodeMessage,
  newSessionId,
  type FromHead,
  type NodeReport,
  type NodeStatus,
  type ToHead,
} from '@shoal/protocol';

/** Options of a {@link Head}. */
export interface HeadOptions {
  /** Interface to listen on. @default '127.0.0.1' */
  readonly host?: string;
  /** Port to listen on; 0 picks a free one. @default 6380 */
  readonly port?: number;
  /** The cluster token every connection must present first. */
  readonly token: string;
  /** A node not heard from for this long is removed. @default 5000 */
  readonly heartbeatTimeoutMs?: number;
  /** A connection that does not authenticate within this long is closed. @default 5000 */
  readonly helloTimeoutMs?: number;
  /** Larger messages close their connection. @default 16 MiB */
  readonly maxPayload?: number;
  /** Where the head reports rejected connections and membership changes. @default stderr */
  readonly log?: (line: string) => void;
}

interface Member {
  report: NodeReport;
  lastSeen: number;
  socket: WebSocket;
}

function sameToken(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * The head of a cluster: a WebSocket server that authenticates every connection with the cluster
 * token, keeps the membership (nodes register, then heartbeat with their resources and load; a
 * node silent for `heartbeatTimeoutMs` is removed) and answers status queries.
 *
 * Bad input only ever closes the connection it came on: a wrong or missing token (4001), a
 * message that does not decode or is not allowed (4002), no hello in time (4003), a message
 * above `maxPayload` (1009).
 */
export class Head {
  readonly clusterId = newSessionId();
  readonly host: string;
  readonly #server: WebSocketServer;
  readonly #options: Required<Omit<HeadOptions, 'host' | 'port'>>;
  readonly #members = new Map<string, Member>();
  readonly #sweeper: NodeJS.Timeout;
  #closed = false;

  private constructor(server: WebSocketServer, host: string, options: HeadOptions) {
    this.#server = server;
    this.host = host;
    this.#options = {
      token: options.token,
      heartbeatTimeoutMs: options.heartbeatTimeoutMs ?? 5000,
      helloTimeoutMs: options.helloTimeoutMs ?? 5000,
      maxPayload: options.maxPayload ?? 16 * 1024 * 1024,
      log: options.log ?? ((line) => process.stderr.write(`${new Date().toISOString()} head: ${line}\n`)),
    };
    server.on('connection', (socket, request) => this.#accept(socket, request.socket.remoteAddress ?? 'unknown'));
    this.#sweeper = setInterval(() => this.#sweep(), Math.min(1000, this.#options.heartbeatTimeoutMs / 2));
  }

  /** Starts a head listening on `host:port`; resolves once it listens. */
  static async start(options: HeadOptions): Promise<Head> {
    if (typeof options.token !== 'string' || options.token.length < 8) {
      throw new TypeError('Expected `token` to be a string of at least 8 characters');
    }
    const host = options.host ?? '127.0.0.1';
    const server = new WebSocketServer({
      host,
      port: options.port ?? 6380,
      perMessageDeflate: false,
      maxPayload: options.maxPayload ?? 16 * 1024 * 1024,
    });
    await new Promise<void>((resolve, reject) => {
      server.once('listening', resolve);
      server.once('error', reject);
    });
    return new Head(server, host, options);
  }

  /** The port the head listens on. */
  get port(): number {
    return (this.#server.address() as AddressInfo).port;
  }

  /** The address nodes, drivers and CLI commands connect to. */
  get url(): string {
    const host = this.host.includes(':') ? `[${this.host}]` : this.host;
    return `ws://${host}:${this.port}`;
  }

  /** The nodes in the cluster now. */
  nodes(): NodeStatus[] {
    const now = Date.now();
    return [...this.#members.values()].map((member) => ({ ...member.report, lastSeenMs: now - member.lastSeen }));
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#sweeper);
    for (const client of this.#server.clients) client.terminate();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #accept(socket: WebSocket, remote: string): void {
    let role: 'node' | 'cli' | undefined;
    let nodeId: string | undefined;
    const helloTimer = setTimeout(() => {
      this.#options.log(`closed a connection from ${remote}: no hello within ${this.#options.helloTimeoutMs} ms`);
      socket.close(CLOSE_TIMEOUT, 'authenticate first');
    }, this.#options.helloTimeoutMs);
    const send = (message: FromHead) => socket.send(encodeMessage(message));
    socket.on('error', () => socket.terminate());
    socket.on('close', (code) => {
      clearTimeout(helloTimer);
      if (code === 1009) this.#options.log(`closed a connection from ${remote}: message too large`);
    });
    socket.on('message', (data, isBinary) => {
      let message: ToHead;
      try {
        if (!isBinary) throw new TypeError('text frames are not part of the protocol');
        message = decodeToHead(decodeMessage(data as Buffer));
      } catch (error) {
        this.#options.log(`closed a connection from ${remote}: ${(error as Error).message}`);
        socket.close(CLOSE_PROTOCOL_ERROR, 'malformed message');
        return;
      }
      if (role === undefined) {
        if (message.type !== 'hello' || !sameToken(message.token, this.#options.token)) {
          this.#options.log(`rejected a connection from ${remote}: ${message.type === 'hello' ? 'wrong token' : 'no hello'}`);
          socket.close(CLOSE_BAD_TOKEN, 'wrong or missing token');
          return;
        }
        clearTimeout(helloTimer);
        role = message.role;
        send({ type: 'welcome', clusterId: this.clusterId });
        return;
      }
      switch (message.type) {
        case 'register':
        case 'heartbeat': {
          if (role !== 'node') break;
          if (nodeId !== undefined && nodeId !== message.node.nodeId) break;
          if (nodeId === undefined) {
            nodeId = message.node.nodeId;
            this.#options.log(`node ${nodeId} joined from ${remote} (${message.node.hostname}, pid ${message.node.pid})`);
            socket.once('close', () => this.#leave(nodeId!, socket, 'disconnected'));
          }
          this.#members.set(nodeId, { report: message.node, lastSeen: Date.now(), socket });
          if (message.type === 'register') send({ type: 'registered', nodeId });
          return;
        }
        case 'status':
          send({ type: 'status', clusterId: this.clusterId, nodes: this.nodes() });
          return;
        case 'hello':
          break;
      }
      this.#options.log(`closed a connection from ${remote}: unexpected ${message.type}`);
      socket.close(CLOSE_PROTOCOL_ERROR, `unexpected ${message.type}`);
    });
  }

  #leave(nodeId: string, socket: WebSocket, why: string): void {
    const member = this.#members.get(nodeId);
    if (!member || member.socket !== socket) return;
    this.#members.delete(nodeId);
    this.#options.log(`node ${nodeId} left: ${why}`);
  }

  #sweep(): void {
    const deadline = Date.now() - this.#options.heartbeatTimeoutMs;
    for (const [nodeId, member] of this.#members) {
      if (member.lastSeen >= deadline) continue;
      this.#members.delete(nodeId);
      member.socket.terminate();
      this.#options.log(`node ${nodeId} removed: no heartbeat for ${this.#options.heartbeatTimeoutMs} ms`);
    }
  }
}
