import { createServer, type Server } from 'node:net';
import { debuglog } from 'node:util';
import { HELLO_TIMEOUT_MS, MAX_CONNECTIONS, REMOTE_MAX_FRAME_BYTES, decodeWorkerMessage, type NodeToWorker, type WorkerToNode } from '@shoal/protocol';
import { ConnectionBudget } from '../transport/connection-budget.js';
import { Connection, type MessageStream } from '../transport/connection.js';
import type { WorkerHandle } from '../workers/worker-handle.js';
import { ClientHandle, type Peer } from './peer.js';

const debug = debuglog('shoal:node');
const debugLog = { warn: (fields: Readonly<Record<string, unknown>>, message: string) => debug('%s %o', message, fields) };

/** What the server hands over once a connection said who it is. */
export interface PeerServerEvents {
  /** The worker process `pid`, if this node started it and it has no connection yet. */
  unclaimedWorker(pid: number): WorkerHandle | undefined;
  /** A worker connected: it takes tasks from now on. */
  workerConnected(worker: WorkerHandle): void;
  /** A program attached (it stores and gets, never runs tasks). */
  clientAttached(client: ClientHandle): void;
  /** A message from a process that said who it is. */
  message(peer: Peer, message: WorkerToNode): void;
  /** A process's connection closed. */
  closed(peer: Peer): void;
}

/**
 * The node's unix-socket server in the session directory, and the handshake on every connection:
 * the first message must be `attach` (any process of this user may attach: the socket lives in a
 * 0700 directory) or `ready` from one of this node's own worker processes; anything else closes it.
 * A connection that has not said who it is within HELLO_TIMEOUT_MS is closed, and at most
 * `maxWorkers` + MAX_CONNECTIONS are held at once (workers and attached programs together; more
 * are refused): a process of this user that opens connections and sends nothing cannot take the
 * node's descriptors, and the node's own workers, up to `maxBlockedWorkers` of them, always fit. Attached programs are long-lived drivers, so a connection that said who it is
 * is never closed for being idle.
 */
export class PeerServer {
  readonly socketPath: string;
  /** Connections it holds at once, workers and attached programs together. */
  readonly maxConnections: number;
  readonly #server: Server;
  readonly #events: PeerServerEvents;
  readonly #welcome: Extract<NodeToWorker, { type: 'welcome' }>;
  readonly #clients = new Set<ClientHandle>();
  readonly #budget: ConnectionBudget;

  /** `maxWorkers`: the most worker processes the node runs at once (its `maxBlockedWorkers`). */
  constructor(socketPath: string, welcome: Extract<NodeToWorker, { type: 'welcome' }>, events: PeerServerEvents, maxWorkers: number) {
    // Room for every worker the node may start (nested tasks: up to max(4 x maxWorkers, 64)),
    // beside the MAX_CONNECTIONS attached programs and strays get.
    this.maxConnections = maxWorkers + MAX_CONNECTIONS;
    this.#budget = new ConnectionBudget({
      kind: 'connection to the node socket',
      maxConnections: this.maxConnections,
      // Every peer of a unix socket is this machine's (and this user's): the total is the budget.
      maxConnectionsPerSource: Infinity,
      handshakeTimeoutMs: HELLO_TIMEOUT_MS,
      logger: debugLog,
    });
    this.socketPath = socketPath;
    this.#welcome = welcome;
    this.#events = events;
    this.#server = createServer();
    this.#budget.watch(this.#server, (socket) => this.accept(socket));
    this.#server.unref();
  }

  /** Attached programs connected now. */
  clients(): Iterable<ClientHandle> {
    return this.#clients;
  }

  /** Starts listening on the socket. */
  listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(this.socketPath, () => {
        this.#server.off('error', reject);
        resolve();
      });
    });
  }

  /** Whether the server keeps the process alive. */
  keepAlive(alive: boolean): void {
    if (alive) this.#server.ref();
    else this.#server.unref();
  }

  /**
   * Serves a connection: a local socket, or (`remote`) a WebSocket from a program on a machine
   * without a node, whose token the head checked. A remote program cannot map this machine's
   * memory: its objects travel as bytes, in frames up to REMOTE_MAX_FRAME_BYTES.
   */
  accept(socket: MessageStream, remote = false): void {
    let peer: Peer | undefined;
    const connection: Connection<WorkerToNode, NodeToWorker> = new Connection<WorkerToNode, NodeToWorker>(
      socket,
      {
        decode: decodeWorkerMessage,
        message: (message) => {
          if (peer) this.#events.message(peer, message);
          else peer = this.#handshake(connection, message, remote);
        },
        close: (error) => {
          if (error) debug('connection of process %d closed: %s', peer?.pid, error.message);
          if (peer instanceof ClientHandle) this.#clients.delete(peer);
          if (peer) this.#events.closed(peer);
        },
      },
      remote ? REMOTE_MAX_FRAME_BYTES : undefined,
    );
  }

  #handshake(connection: Connection<WorkerToNode, NodeToWorker>, message: WorkerToNode, remote: boolean): Peer | undefined {
    // Said who it is: the handshake deadline is lifted (a remote peer's socket is not counted here).
    this.#budget.settle(connection.socket);
    if (message.type === 'attach') {
      const client = new ClientHandle(message.pid, connection, remote, message.output ?? true);
      this.#clients.add(client);
      connection.socket.unref();
      client.send(this.#welcome);
      this.#events.clientAttached(client);
      return client;
    }
    // Otherwise the first message must name one of this node's own worker processes.
    const claimed = message.type === 'ready' && !remote ? this.#events.unclaimedWorker(message.pid) : undefined;
    if (!claimed) {
      connection.destroy(new Error('connection from an unknown process'));
      return undefined;
    }
    claimed.claim(connection);
    this.#events.workerConnected(claimed);
    return claimed;
  }

  /** Closes every attached program's connection and stops listening. */
  async close(): Promise<void> {
    for (const client of this.#clients) client.connection?.destroy();
    this.#clients.clear();
    this.#budget.close();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}
