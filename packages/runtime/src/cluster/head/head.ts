import { createServer, type IncomingMessage, type Server } from 'node:http';
import { type AddressInfo, type Socket } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { guard, sameToken, wsUrl } from '../../transport/guard.js';
import { acquire, demandOf, describeResources, fits } from '../../scheduling/resources.js';
import {
  CLOSE_PROTOCOL_ERROR,
  ShoalError,
  decodeToHead,
  encodeMessage,
  newSessionId,
  type ClusterResult,
  type ClusterTask,
  type FromHead,
  type HeadRole,
  type NodeReport,
  type PeerView,
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
  /**
   * A program joining from a machine without a node connected to `/driver` (its token already
   * checked): the node beside the head serves it. Without this, such connections are refused.
   */
  readonly onDriver?: (socket: WebSocket) => void;
}

/** Path drivers on machines without a node connect to; they send the token in this header. */
export const DRIVER_PATH = '/driver';
export const TOKEN_HEADER = 'x-shoal-token';
/** Largest message of a driver connection: objects travel whole in one (up to 1 GiB). */
export const DRIVER_MAX_PAYLOAD = 1024 ** 3 + (1 << 20);

interface Member {
  report: NodeReport;
  lastSeen: number;
  socket: WebSocket;
  /** Tasks sent to the node that its last report did not account for yet (by `run` seq). */
  sinceReport: { seq: number; demand: Record<string, number> }[];
  /** The seq of the last `run` sent to it. */
  runs: number;
}

/** A task the head placed on a node other than its submitter's. */
interface Forwarded {
  readonly task: ClusterTask;
  readonly origin: string;
  target: string;
  /** Nodes it was sent to that died under it. */
  lost: number;
}


/** A node's (or CLI's) connection to the head. */
interface NodePeer {
  readonly socket: WebSocket;
  readonly remote: string;
  /** Set by its first register or heartbeat. */
  nodeId: string | undefined;
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
  readonly #http: Server;
  readonly #server: WebSocketServer;
  readonly #drivers: WebSocketServer;
  readonly #options: Required<Omit<HeadOptions, 'host' | 'port' | 'onDriver'>>;
  readonly #members = new Map<string, Member>();
  /** The object directory: segment objects and the nodes holding a copy. */
  readonly #objects = new Map<string, { size: number; holders: Set<string> }>();
  readonly #forwarded = new Map<string, Forwarded>();
  readonly #sweeper: NodeJS.Timeout;
  #closed = false;

  private constructor(http: Server, host: string, options: HeadOptions) {
    this.#http = http;
    this.#server = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: options.maxPayload ?? 16 * 1024 * 1024 });
    this.#drivers = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: DRIVER_MAX_PAYLOAD });
    this.host = host;
    this.#options = {
      token: options.token,
      heartbeatTimeoutMs: options.heartbeatTimeoutMs ?? 5000,
      helloTimeoutMs: options.helloTimeoutMs ?? 5000,
      maxPayload: options.maxPayload ?? 16 * 1024 * 1024,
      log: options.log ?? ((line) => process.stderr.write(`${new Date().toISOString()} head: ${line}\n`)),
    };
    this.#onDriver = options.onDriver;
    this.#server.on('connection', (socket, request: IncomingMessage) => this.#accept(socket, request.socket.remoteAddress ?? 'unknown'));
    http.on('upgrade', (request: IncomingMessage, socket: Socket, head: Buffer) => this.#upgrade(request, socket, head));
    this.#sweeper = setInterval(() => this.#sweep(), Math.min(1000, this.#options.heartbeatTimeoutMs / 2));
  }

  /** Starts a head listening on `host:port`; resolves once it listens. */
  static async start(options: HeadOptions): Promise<Head> {
    if (typeof options.token !== 'string' || options.token.length < 8) {
      throw new TypeError('Expected `token` to be a string of at least 8 characters');
    }
    const host = options.host ?? '127.0.0.1';
    const http = createServer((_request, response) => {
      response.writeHead(426, { 'content-type': 'text/plain' }).end('This is a Shoal head: connect with a WebSocket.\n');
    });
    const port = options.port ?? 6380;
    await new Promise<void>((resolve, reject) => {
      http.once('error', (error: NodeJS.ErrnoException) => {
        const why =
          error.code === 'EADDRINUSE'
            ? `port ${port} is in use (another head? \`shoal status\` tells); pick another with --port`
            : error.code === 'EADDRNOTAVAIL'
              ? `${host} is not an address of this machine; give one of its interfaces with --host`
              : error.code === 'EACCES'
                ? `port ${port} needs privileges; use a port above 1023`
                : error.message;
        reject(new ShoalError('ERR_HEAD_LISTEN', `The head cannot listen on ${host}:${port}: ${why}.`, { cause: error }));
      });
      http.listen(port, host, () => {
        http.off('error', reject);
        resolve();
      });
    });
    return new Head(http, host, options);
  }

  /** The port the head listens on. */
  get port(): number {
    return (this.#http.address() as AddressInfo).port;
  }

  /** The address nodes, drivers and CLI commands connect to. */
  get url(): string {
    return wsUrl(this.host, this.port);
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
    for (const client of this.#drivers.clients) client.terminate();
    this.#server.close();
    this.#drivers.close();
    this.#http.closeAllConnections();
    await new Promise<void>((resolve) => this.#http.close(() => resolve()));
  }

  /**
   * Routes a WebSocket upgrade: `/driver` (token checked in the request, before any message can
   * be sent, because a driver's messages may be large) to the node beside the head; anything else
   * to the head's own protocol, which authenticates with its first message.
   */
  #upgrade(request: IncomingMessage, socket: Socket, head: Buffer): void {
    const remote = request.socket.remoteAddress ?? 'unknown';
    const path = (request.url ?? '/').split('?')[0];
    if (path !== DRIVER_PATH) {
      this.#server.handleUpgrade(request, socket, head, (ws) => this.#server.emit('connection', ws, request));
      return;
    }
    const token = request.headers[TOKEN_HEADER];
    const refuse = (status: string, why: string) => {
      this.#options.log(`refused a driver connection from ${remote}: ${why}`);
      // The client may reset the connection before it reads the answer.
      socket.on('error', () => socket.destroy());
      socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    };
    if (typeof token !== 'string' || !sameToken(token, this.#options.token)) {
      refuse('401 Unauthorized', 'wrong or missing token');
      return;
    }
    const onDriver = this.#onDriver;
    if (!onDriver) {
      refuse('503 Service Unavailable', 'no node runs beside this head');
      return;
    }
    this.#drivers.handleUpgrade(request, socket, head, (ws) => {
      this.#options.log(`a driver joined from ${remote}`);
      onDriver(ws);
    });
  }

  readonly #onDriver: ((socket: WebSocket) => void) | undefined;

  #accept(socket: WebSocket, remote: string): void {
    let role: HeadRole | undefined;
    const peer: NodePeer = { socket, remote, nodeId: undefined };
    const send = (message: FromHead) => socket.send(encodeMessage(message));
    guard<ToHead>(socket, {
      remote,
      kind: 'connection',
      token: this.#options.token,
      helloTimeoutMs: this.#options.helloTimeoutMs,
      log: this.#options.log,
      decode: decodeToHead,
      welcome: (hello) => {
        role = hello.role;
        send({ type: 'welcome', clusterId: this.clusterId });
      },
      message: (message) => {
        if (message.type === 'status') {
          send({ type: 'status', clusterId: this.clusterId, nodes: this.nodes() });
          return;
        }
        if (role === 'node' && this.#fromNode(peer, message, send)) return;
        this.#options.log(`closed a connection from ${remote}: unexpected ${message.type}`);
        socket.close(CLOSE_PROTOCOL_ERROR, `unexpected ${message.type}`);
      },
    });
  }

  /** A message on a node's connection; false when a node may not send it now. */
  #fromNode(peer: NodePeer, message: ToHead, send: (message: FromHead) => void): boolean {
    if (message.type === 'register' || message.type === 'heartbeat') {
      const report = message.node;
      if (peer.nodeId !== undefined && peer.nodeId !== report.nodeId) return false;
      if (peer.nodeId === undefined) {
        const nodeId = (peer.nodeId = report.nodeId);
        this.#options.log(`node ${nodeId} joined from ${peer.remote} (${report.hostname}, pid ${report.pid})`);
        peer.socket.once('close', () => this.#leave(nodeId, peer.socket, 'disconnected'));
      }
      const previous = this.#members.get(report.nodeId);
      this.#members.set(report.nodeId, {
        report,
        lastSeen: Date.now(),
        socket: peer.socket,
        // Runs the node had not received when it reported still count against its room.
        sinceReport: (previous?.sinceReport ?? []).filter((sent) => sent.seq > report.runsSeen),
        runs: previous?.runs ?? 0,
      });
      if (message.type === 'register') send({ type: 'registered', nodeId: report.nodeId });
      else send({ type: 'view', nodes: this.#viewFor(report.nodeId) });
      return true;
    }
    const nodeId = peer.nodeId;
    // Everything else comes from a registered node.
    if (nodeId === undefined) return false;
    switch (message.type) {
      case 'spill':
        this.#place(nodeId, message.task, false);
        return true;
      case 'result':
        this.#finished(nodeId, message.returnId, message.result);
        return true;
      case 'cancel': {
        const forwarded = this.#forwarded.get(message.returnId);
        if (forwarded?.origin !== nodeId) return true;
        this.#forwarded.delete(message.returnId);
        this.#sendTo(forwarded.target, { type: 'cancel', returnId: message.returnId });
        return true;
      }
      case 'objects':
        this.#recordObjects(nodeId, message.added, message.removed);
        return true;
      case 'locate': {
        const holders: Record<string, string[]> = {};
        for (const id of message.ids) holders[id] = this.#holderUrls(id);
        send({ type: 'located', requestId: message.requestId, holders });
        return true;
      }
      default:
        return false;
    }
  }

  #leave(nodeId: string, socket: WebSocket, why: string): void {
    const member = this.#members.get(nodeId);
    if (!member || member.socket !== socket) return;
    this.#members.delete(nodeId);
    this.#options.log(`node ${nodeId} left: ${why}`);
    this.#departed(nodeId);
  }

  #sweep(): void {
    const deadline = Date.now() - this.#options.heartbeatTimeoutMs;
    for (const [nodeId, member] of this.#members) {
      if (member.lastSeen >= deadline) continue;
      this.#members.delete(nodeId);
      member.socket.terminate();
      this.#options.log(`node ${nodeId} removed: no heartbeat for ${this.#options.heartbeatTimeoutMs} ms`);
      this.#departed(nodeId);
    }
  }

  // ---- cluster scheduling ------------------------------------------------------------------

  /** What a node may still take now: its last report minus what was sent to it since. */
  #effectiveAvailable(member: Member): Record<string, number> {
    const available = { ...member.report.available };
    for (const { demand } of member.sinceReport) {
      acquire(available, demand);
    }
    return available;
  }

  #viewFor(nodeId: string): PeerView[] {
    const view: PeerView[] = [];
    for (const [id, member] of this.#members) {
      if (id === nodeId) continue;
      view.push({ nodeId: id, dataUrl: member.report.dataUrl, total: member.report.resources, available: this.#effectiveAvailable(member) });
    }
    return view;
  }

  /** Bytes of the task's arguments that `nodeId` holds. */
  #localBytes(task: ClusterTask, nodeId: string): number {
    let bytes = 0;
    for (const arg of task.args) {
      if (!('ref' in arg)) continue;
      if (arg.owner === nodeId || this.#objects.get(arg.ref)?.holders.has(nodeId)) bytes += arg.size;
    }
    return bytes;
  }

  /**
   * Places a task its submitter could not start: on the node with room that holds most of its
   * argument bytes; with no room anywhere, back on the submitter if it could ever run it
   * (`declined`), else on the least loaded node that could; else it is infeasible.
   * `retry`: the node it ran on died, so the submitter is a candidate like any other.
   */
  #place(origin: string, task: ClusterTask, retry: boolean): void {
    const demand = demandOf(task.options);
    let best: { id: string; member: Member; bytes: number; cpu: number } | undefined;
    for (const [id, member] of this.#members) {
      if (id === origin && !retry) continue;
      const available = this.#effectiveAvailable(member);
      if (!fits(demand, available)) continue;
      const bytes = this.#localBytes(task, id);
      const cpu = available.CPU ?? 0;
      if (!best || bytes > best.bytes || (bytes === best.bytes && cpu > best.cpu)) best = { id, member, bytes, cpu };
    }
    if (best) {
      this.#forward(origin, task, best.id);
      return;
    }
    const originMember = this.#members.get(origin);
    if (originMember && fits(demand, originMember.report.resources)) {
      this.#forward(origin, task, origin);
      return;
    }
    let fallback: { id: string; queued: number } | undefined;
    for (const [id, member] of this.#members) {
      if (!fits(demand, member.report.resources)) continue;
      const queued = member.report.queuedTasks + member.sinceReport.length;
      if (!fallback || queued < fallback.queued) fallback = { id, queued };
    }
    if (fallback) {
      this.#forward(origin, task, fallback.id);
      return;
    }
    if (retry) {
      // The node that could run it left, and no other can: that is the node's death, not a
      // task that can never run.
      this.#failAtOrigin(
        origin,
        task.returnId,
        'ERR_NODE_DIED',
        `Task ${task.fn.name} failed: the node running it left the cluster, and no node there now offers ` +
          `${describeResources(demand)}. Start one (or restart the one that left) and submit it again.`,
      );
      return;
    }
    const offers = [...this.#members.values()].map((member) => `${member.report.hostname} (${member.report.nodeId}) offers ${describeResources(member.report.resources)}`);
    this.#failAtOrigin(
      origin,
      task.returnId,
      'ERR_TASK_INFEASIBLE',
      `Task ${task.fn.name} can never run: it needs ${describeResources(demand)}, and no node of the cluster offers that: ` +
        `${offers.join('; ') || 'no nodes'}. Start a node that does (\`shoal start --address ... --num-cpus N --resources '{...}'\`).`,
    );
  }

  /** The task is over without running: its submitter gets the failure as its result. */
  #failAtOrigin(origin: string, returnId: string, code: string, message: string): void {
    this.#forwarded.delete(returnId);
    this.#sendTo(origin, { type: 'result', returnId, holder: '', holderUrl: '', result: { ok: false, failure: { code, message } } });
  }

  #forward(origin: string, task: ClusterTask, target: string): void {
    if (target === origin) {
      // The submitter still has the task: it simply runs it itself.
      this.#forwarded.delete(task.returnId);
      this.#sendTo(origin, { type: 'declined', returnId: task.returnId });
      return;
    }
    const member = this.#members.get(target)!;
    member.runs += 1;
    member.sinceReport.push({ seq: member.runs, demand: demandOf(task.options) });
    const sources: Record<string, string[]> = {};
    for (const arg of task.args) {
      if ('ref' in arg && !arg.bytes) {
        const urls = this.#holderUrls(arg.ref);
        const ownerUrl = this.#members.get(arg.owner)?.report.dataUrl;
        sources[arg.ref] = ownerUrl && !urls.includes(ownerUrl) ? [ownerUrl, ...urls] : urls;
      }
    }
    const previous = this.#forwarded.get(task.returnId);
    this.#forwarded.set(task.returnId, { task, origin, target, lost: previous?.lost ?? 0 });
    this.#sendTo(target, { type: 'run', seq: member.runs, origin, task, sources });
  }

  #finished(target: string, returnId: string, result: ClusterResult): void {
    const forwarded = this.#forwarded.get(returnId);
    if (!forwarded || forwarded.target !== target) return;
    this.#forwarded.delete(returnId);
    const holderUrl = this.#members.get(target)?.report.dataUrl ?? '';
    if (!this.#sendTo(forwarded.origin, { type: 'result', returnId, holder: target, holderUrl, result })) {
      // Its submitter is gone: nobody will pull the result.
      this.#sendTo(target, { type: 'cancel', returnId });
    }
  }

  /** A node left: tasks running there are placed again (or fail), tasks it submitted stop. */
  #departed(nodeId: string): void {
    for (const [id, entry] of this.#objects) {
      entry.holders.delete(nodeId);
      if (entry.holders.size === 0) this.#objects.delete(id);
    }
    for (const [returnId, forwarded] of [...this.#forwarded]) {
      if (forwarded.origin === nodeId) {
        this.#forwarded.delete(returnId);
        this.#sendTo(forwarded.target, { type: 'cancel', returnId });
        continue;
      }
      if (forwarded.target !== nodeId) continue;
      forwarded.lost += 1;
      if (forwarded.lost <= forwarded.task.options.maxRetries) {
        this.#options.log(`task ${forwarded.task.fn.name} was running on ${nodeId}: placing it again (attempt ${forwarded.lost + 1})`);
        this.#place(forwarded.origin, forwarded.task, true);
        continue;
      }
      this.#failAtOrigin(
        forwarded.origin,
        returnId,
        'ERR_NODE_DIED',
        `Task ${forwarded.task.fn.name} failed: the node running it left the cluster on each of ${forwarded.lost} attempt(s). ` +
          'Raise `maxRetries` if nodes come and go.',
      );
    }
  }

  #recordObjects(nodeId: string, added: readonly (readonly [string, number])[], removed: readonly string[]): void {
    for (const [id, size] of added) {
      let entry = this.#objects.get(id);
      if (!entry) this.#objects.set(id, (entry = { size, holders: new Set() }));
      entry.holders.add(nodeId);
    }
    for (const id of removed) {
      const entry = this.#objects.get(id);
      if (!entry) continue;
      entry.holders.delete(nodeId);
      if (entry.holders.size === 0) this.#objects.delete(id);
    }
  }

  #holderUrls(id: string): string[] {
    const urls: string[] = [];
    for (const holder of this.#objects.get(id)?.holders ?? []) {
      const url = this.#members.get(holder)?.report.dataUrl;
      if (url) urls.push(url);
    }
    return urls;
  }

  #sendTo(nodeId: string, message: FromHead): boolean {
    const member = this.#members.get(nodeId);
    if (!member || member.socket.readyState !== member.socket.OPEN) return false;
    member.socket.send(encodeMessage(message));
    return true;
  }
}
