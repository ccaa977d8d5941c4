import type { WebSocket } from 'ws';
import { HEAD_MAX_PAYLOAD_BYTES, HELLO_TIMEOUT_MS, HeadListenError, newSessionId, argumentError, type NodeStatus, type ToHead } from '@shoal/protocol';
import { debugLogger, type Logger } from '../../log.js';
import type { BudgetLimits } from '../../transport/connection-budget.js';
import { wsUrl } from '../../transport/guard.js';
import { HeadServer, type HeadConnection } from './head-server.js';
import { ActorDirectory } from './actor-directory.js';
import { exposureProblem } from './loopback.js';
import { Membership } from './membership.js';
import { ObjectDirectory } from './object-directory.js';
import { TaskForwarder } from './task-forwarder.js';
import { headMetrics } from './head-metrics.js';
import { clusterNodeLog, clusterObjects, clusterTasks, clusterTimeline } from './cluster-views.js';
import { DASHBOARD_PAGE } from './dashboard-page.js';
import { PROMETHEUS_TEXT, type Route } from '../../transport/http-routes.js';

/** Options of a {@link Head}. */
export interface HeadOptions {
  /** Interface to listen on. @default '127.0.0.1' */
  readonly host?: string;
  /** Port to listen on; 0 picks a free one. @default 6380 */
  readonly port?: number;
  /**
   * The cluster token every connection must present first: at least 8 characters, and at least
   * 16 when `host` is not a loopback address (`MIN_EXPOSED_TOKEN_LENGTH`).
   */
  readonly token: string;
  /** A node not heard from for this long is removed. @default 5000 */
  readonly heartbeatTimeoutMs?: number;
  /**
   * A node that does not acknowledge a task sent to it within this long is told to drop it, and
   * the task is placed elsewhere. @default 5000
   */
  readonly runAckTimeoutMs?: number;
  /** A connection that does not authenticate within this long is closed. @default 5000 */
  readonly helloTimeoutMs?: number;
  /** Larger messages close their connection. @default 16 MiB */
  readonly maxPayload?: number;
  /**
   * `Origin` headers (`'https://dashboard.example'`) whose WebSocket upgrades are accepted. A
   * browser sends one with every WebSocket it opens and Shoal's own clients send none, so by
   * default every upgrade with an `Origin` is refused (403): a web page must not reach the head.
   * @default []
   */
  readonly allowedOrigins?: readonly string[];
  /**
   * Connections the head holds at once, in total and per source address; more are refused (503).
   * @default { maxConnections: 1024, maxConnectionsPerSource: 64 }
   */
  readonly budget?: BudgetLimits;
  /**
   * Where the head reports rejected connections and membership changes (fields `nodeId`,
   * `remote`, `reason`). @default debugLogger('head'): `NODE_DEBUG=shoal:head`
   */
  readonly logger?: Logger;
  /**
   * A program joining from a machine without a node connected to `/driver` (its token already
   * checked): the node beside the head serves it. Without this, such connections are refused.
   */
  readonly onDriver?: (socket: WebSocket) => void;
}

/** Where a {@link Head} is in its life. */
export type HeadState = 'idle' | 'starting' | 'running' | 'closing' | 'closed';

/**
 * The head of a cluster: a WebSocket server that authenticates every connection with the cluster
 * token, keeps the membership (nodes register, then heartbeat with their resources and load; a
 * node silent for `heartbeatTimeoutMs` is removed), places the tasks nodes spill, keeps the object
 * directory and answers status queries. This class only wires those parts and routes each
 * message to the one it concerns.
 *
 * Bad input only ever closes the connection it came on: a wrong or missing token refuses the
 * upgrade (HTTP 401, before any message is read); a message that does not decode or is not
 * allowed, or a first message that is not a hello, closes with 4002, no hello in time with 4003,
 * a message above `maxPayload` with 1009.
 *
 * @example
 * ```ts
 * await using head = await Head.start({ port: 0, token });
 * console.log(head.url, head.nodes());
 * ```
 */
export class Head implements AsyncDisposable {
  readonly clusterId = newSessionId();
  readonly host: string;
  readonly #logger: Logger;
  readonly #heartbeatTimeoutMs: number;
  readonly #server: HeadServer;
  readonly #membership: Membership;
  readonly #directory = new ObjectDirectory();
  readonly #forwarder: TaskForwarder;
  readonly #actors: ActorDirectory;
  readonly #token: string;
  #state: HeadState = 'idle';
  #started: Promise<void> | undefined;
  #stopped: Promise<void> | undefined;
  #sweeper: NodeJS.Timeout | undefined;
  /** Nodes whose connection closed, waited for before their actors are given up (see #departed). */
  readonly #graces = new Map<string, NodeJS.Timeout>();

  /** Builds a head; nothing listens until {@link Head.start}. @throws TypeError on a bad token. */
  constructor(options: HeadOptions) {
    if (typeof options.token !== 'string' || options.token.length < 8) {
      throw argumentError('ERR_INVALID_ARGUMENT', 'Expected `token` to be a string of at least 8 characters');
    }
    this.host = options.host ?? '127.0.0.1';
    this.#token = options.token;
    this.#logger = options.logger ?? debugLogger('head');
    this.#heartbeatTimeoutMs = options.heartbeatTimeoutMs ?? 5000;
    this.#membership = new Membership({
      heartbeatTimeoutMs: this.#heartbeatTimeoutMs,
      logger: this.#logger,
      departed: (nodeId, silent) => this.#departed(nodeId, silent),
    });
    this.#forwarder = new TaskForwarder(this.#membership, this.#directory, this.#logger, options.runAckTimeoutMs);
    this.#actors = new ActorDirectory({ membership: this.#membership, logger: this.#logger });
    this.#server = new HeadServer({
      host: this.host,
      port: options.port ?? 6380,
      token: options.token,
      helloTimeoutMs: options.helloTimeoutMs ?? HELLO_TIMEOUT_MS,
      maxPayload: options.maxPayload ?? HEAD_MAX_PAYLOAD_BYTES,
      allowedOrigins: options.allowedOrigins ?? [],
      ...(options.budget ? { budget: options.budget } : {}),
      clusterId: this.clusterId,
      logger: this.#logger,
      onDriver: options.onDriver,
      connect: (connection) => this.#connect(connection),
      routes: this.#routes(),
    });
  }

  /** Builds a head and starts it (see {@link Head.start}). */
  static async start(options: HeadOptions): Promise<Head> {
    const head = new Head(options);
    await head.start();
    return head;
  }

  /**
   * Listens on `host:port`; resolves once it does. Calling it again returns the same promise.
   * @throws ShoalError `ERR_HEAD_LISTEN` saying why it cannot listen (the head is then closed),
   * among them a non-loopback `host` with a token shorter than 16 characters.
   */
  start(): Promise<void> {
    if (this.#state === 'starting' || this.#state === 'running') return this.#started!;
    if (this.#state !== 'idle') return Promise.reject(new Error(`The head cannot start: it is ${this.#state}.`));
    // Here rather than in the CLI, so that a head started from the API follows the rule too.
    const problem = exposureProblem(this.host, this.#token);
    if (problem) {
      this.#state = 'closed';
      this.#started = Promise.reject(new HeadListenError(this.host, this.port, problem));
      return this.#started;
    }
    this.#state = 'starting';
    this.#started = this.#server.listen().then(
      () => {
        if (this.#state !== 'starting') return;
        this.#state = 'running';
        this.#sweeper = setInterval(() => this.#membership.sweep(), Math.min(1000, this.#heartbeatTimeoutMs / 2));
      },
      (error: unknown) => {
        this.#state = 'closed';
        throw error;
      },
    );
    return this.#started;
  }

  /** Where the head is in its life. */
  get state(): HeadState {
    return this.#state;
  }

  /** The port the head listens on (before it listens, the one it was asked for). */
  get port(): number {
    return this.#server.port;
  }

  /** The address nodes, drivers and CLI commands connect to. */
  get url(): string {
    return wsUrl(this.host, this.port);
  }

  /** The nodes in the cluster now. */
  nodes(): NodeStatus[] {
    return this.#membership.nodes();
  }

  /**
   * The GET routes of the head's port: the dashboard, its metrics, the cluster's status, and its
   * tasks, objects and timeline (asked of every node) as JSON.
   */
  #routes(): Record<string, Route> {
    const metrics = headMetrics(() => this.nodes(), this.clusterId);
    const json = (value: unknown) => ({ type: 'application/json', body: JSON.stringify(value) });
    return {
      '/': () => ({ type: 'text/html; charset=utf-8', body: DASHBOARD_PAGE }),
      '/metrics': async () => ({ type: PROMETHEUS_TEXT, body: await metrics.metrics() }),
      '/api/status': () => json({ clusterId: this.clusterId, nodes: this.nodes() }),
      '/api/tasks': async () => json(await clusterTasks(this.nodes(), this.#token)),
      '/api/objects': async () => json(await clusterObjects(this.nodes(), this.#token)),
      '/api/actors': () => json({ actors: this.#actors.list() }),
      // ?node=ID (or host name), with ?after= / ?lines= as a node's /api/logs takes them.
      '/api/logs': async (url) => {
        const which = url.searchParams.get('node') ?? '';
        const log = await clusterNodeLog(this.nodes(), this.#token, which, url.searchParams);
        if (log === undefined) return { status: 404, type: 'application/json', body: JSON.stringify({ error: `no node ${JSON.stringify(which)} in the cluster (its members: ${this.nodes().map((node) => `${node.nodeId} on ${node.hostname}`).join(', ') || 'none'})` }) };
        if (typeof log === 'string') return { status: 502, type: 'application/json', body: JSON.stringify({ error: `node ${which} did not answer: ${log}` }) };
        return json(log);
      },
      // ?since=EPOCH_MS: what ended since then (default: all the nodes kept).
      '/api/timeline': async (url) => json(await clusterTimeline(this.nodes(), this.#token, Number(url.searchParams.get('since')) || 0)),
    };
  }

  /**
   * Stops accepting connections, closes the open ones with a close handshake and resolves once
   * they are gone. Idempotent; after a start that is still under way, it waits for it first.
   */
  close(): Promise<void> {
    return this.#stop(false);
  }

  /** Like {@link Head.close}, but drops every connection at once. Idempotent. */
  destroy(): Promise<void> {
    return this.#stop(true);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  #stop(abort: boolean): Promise<void> {
    if (this.#stopped) {
      // After a start under way has settled, so that its listener is there to close.
      if (abort) void this.#started?.catch(() => {}).then(() => this.#server.destroy());
      return this.#stopped;
    }
    const wasStarting = this.#state === 'starting';
    if (this.#state !== 'closed') this.#state = 'closing';
    clearInterval(this.#sweeper);
    for (const grace of this.#graces.values()) clearTimeout(grace);
    this.#graces.clear();
    this.#forwarder.close();
    this.#stopped = (async () => {
      // A failed start is already closed; a start under way finishes first so its listener closes.
      if (wasStarting) await this.#started!.catch(() => {});
      await (abort ? this.#server.destroy() : this.#server.close());
      this.#state = 'closed';
    })();
    return this.#stopped;
  }

  /** Routes the messages of an authenticated connection: see the head protocol. */
  #connect(connection: HeadConnection): (message: ToHead) => void {
    // The node this connection speaks for, set by its first register or heartbeat.
    const peer: { nodeId: string | undefined } = { nodeId: undefined };
    return (message) => {
      if (message.type === 'status') {
        connection.send({ type: 'status', clusterId: this.clusterId, nodes: this.nodes() });
        return;
      }
      if (connection.role === 'node') {
        if (message.type === 'register' || message.type === 'heartbeat') {
          if (this.#reported(peer, connection, message)) return;
        } else if (peer.nodeId !== undefined && this.#fromMember(peer.nodeId, connection, message)) {
          return;
        }
      }
      const reason = `unexpected ${message.type}`;
      this.#logger.warn({ remote: connection.remote, reason }, `closed a connection from ${connection.remote}: ${reason}`);
      connection.reject(reason);
    };
  }

  /** A node's register or heartbeat; false if the connection already speaks for another node. */
  #reported(peer: { nodeId: string | undefined }, connection: HeadConnection, message: Extract<ToHead, { type: 'register' | 'heartbeat' }>): boolean {
    const report = message.node;
    const nodeId = report.nodeId;
    if (peer.nodeId !== undefined && peer.nodeId !== nodeId) return false;
    if (peer.nodeId === undefined) {
      if (this.#membership.has(nodeId)) {
        // The id is bound to the connection that registered it while that one lives: a token
        // holder must not take over a live node's tasks. A node whose old connection is only
        // half-open retries (backoff) and gets in once heartbeats time the old one out.
        // The reason names no id: the node knows its own, and a close reason has at most 123 bytes.
        const reason = 'that node id is taken by a live connection; retry once it closed or missed heartbeats';
        this.#logger.warn(
          { nodeId, remote: connection.remote, reason },
          `refused a registration of ${nodeId} from ${connection.remote}: that node is connected (it may register again once its connection closed or missed heartbeats for ${this.#heartbeatTimeoutMs} ms)`,
        );
        connection.reject(reason);
        return true;
      }
      peer.nodeId = nodeId;
      const { remote } = connection;
      this.#logger.info({ nodeId, remote, hostname: report.hostname, pid: report.pid }, `node ${nodeId} joined from ${remote} (${report.hostname}, pid ${report.pid})`);
      connection.onClose(() => this.#membership.leave(nodeId, connection, 'disconnected'));
    }
    this.#membership.report(report, connection);
    if (message.type === 'register') connection.send({ type: 'registered', nodeId });
    else connection.send({ type: 'view', nodes: this.#membership.viewFor(nodeId) });
    return true;
  }

  /** A message from a registered node; false when a node may not send it. */
  #fromMember(nodeId: string, connection: HeadConnection, message: ToHead): boolean {
    switch (message.type) {
      case 'spill':
        this.#forwarder.spilled(nodeId, message.task);
        return true;
      case 'accepted':
        this.#forwarder.accepted(nodeId, message.returnId, message.seq);
        return true;
      case 'result':
        this.#forwarder.finished(nodeId, message.returnId, message.result);
        return true;
      case 'cancel':
        this.#forwarder.cancelled(nodeId, message.returnId);
        return true;
      case 'output':
        // Printed by the origin's driver; nobody's once the origin left.
        this.#membership.send(message.origin, { type: 'output', returnId: message.returnId, stream: message.stream, text: message.text });
        return true;
      case 'objects':
        this.#directory.record(nodeId, message.added, message.removed);
        return true;
      case 'locate': {
        const holders: Record<string, string[]> = {};
        for (const id of message.ids) holders[id] = this.#membership.dataUrls(this.#directory.holders(id));
        connection.send({ type: 'located', requestId: message.requestId, holders });
        return true;
      }
      case 'actor-place':
        this.#actors.place(nodeId, message.actor);
        return true;
      case 'actor-hosted':
        this.#actors.hosted(nodeId, message.origin, message.actor);
        return true;
      case 'actor-ended':
        this.#actors.ended(nodeId, message.actorId, message.failure);
        return true;
      case 'actor-end':
        this.#actors.end(nodeId, message.actorId, message.why);
        return true;
      case 'actor-locate':
        this.#actors.locate(message, (answer) => connection.send({ type: 'actor-located', requestId: message.requestId, ...answer }));
        return true;
      default:
        return false;
    }
  }

  #departed(nodeId: string, silent: boolean): void {
    this.#directory.forget(nodeId);
    // While the head shuts down, every node leaves: nothing is placed again.
    if (this.#state !== 'running') return;
    this.#forwarder.departed(nodeId);
    if (silent) {
      this.#actors.departed(nodeId);
      return;
    }
    // A node whose connection closed may be back at once (a network blip, a head that was busy):
    // its actors, which hold state, are given up only if it stays away for a heartbeat timeout.
    clearTimeout(this.#graces.get(nodeId));
    const grace = setTimeout(() => {
      this.#graces.delete(nodeId);
      if (this.#state === 'running' && !this.#membership.has(nodeId)) this.#actors.departed(nodeId);
    }, this.#heartbeatTimeoutMs);
    grace.unref();
    this.#graces.set(nodeId, grace);
  }
}
