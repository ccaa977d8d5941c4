// A node's membership of a cluster: the control link to the head, the data server other nodes
// pull this node's objects from, the puller that fetches the objects this node needs, and the
// hooks through which the node manager spills tasks it cannot start and fetches arguments it lacks.
import { connect } from 'node:net';
import { hostname } from 'node:os';
import { debuglog } from 'node:util';
import { ActorDiedError, HeadUnreachableError, fromWireFailure, toWireFailure, type ClusterResult, type ClusterTask, type FromHead, type NodeReport, type ToHead } from '@shoal/protocol';
import type { ActorWhereabouts } from '../../node/cluster-actors.js';
import { debugLogger, type Logger } from '../../log.js';
import { nodeLog } from '../../log-file.js';
import type { NodeManager } from '../../node/node-manager.js';
import type { Task } from '../../scheduling/task.js';
import { RequestTracker } from '../../transport/request-tracker.js';
import { backoffDelay } from './backoff.js';
import { HeadLink } from './head-link.js';
import { PeerView } from './peer-view.js';
import { DataServer } from '../transfer/data-server.js';
import { ObjectArrival, type Locations } from '../transfer/object-arrival.js';
import { ObjectPuller } from '../transfer/object-puller.js';
import { PROMETHEUS_TEXT } from '../../transport/http-routes.js';

const debug = debuglog('shoal:cluster');

/** How long a node waits for the head to say where an object is before taking it for lost. */
const LOCATE_TIMEOUT_MS = 10_000;

/** Options of a {@link ClusterNode}. */
export interface ClusterNodeOptions {
  /** The head's address, `ws://HOST:PORT`. */
  readonly headUrl: string;
  readonly token: string;
  /** The IP this node's data server listens on and other nodes reach it at. @default the address this machine reaches the head from */
  readonly nodeIp?: string;
  /** Port of the data server. @default 0 (any free port) */
  readonly dataPort?: number;
  /** Browser `Origin`s the data server accepts upgrades from (any other is refused, 403). @default [] */
  readonly allowedOrigins?: readonly string[];
  /** Where the node reports what an operator should see. @default debugLogger('cluster') (NODE_DEBUG=shoal:cluster) */
  readonly logger?: Logger;
  /** The file this node's process logs to (a daemon's `$SHOAL_HOME/daemon.log`): served as `/api/logs` on the data port. */
  readonly logFile?: string;
  /** Called when membership can never work (a refused token): the daemon stops. */
  /** Keep trying a head not reachable yet at start for this long (nodes started with their head). @default 0 */
  readonly joinTimeoutMs?: number;
  readonly onFatal: (error: Error) => void;
}

/** Lifecycle of a {@link ClusterNode}. */
export type ClusterNodeState = 'idle' | 'starting' | 'running' | 'closing' | 'closed';

/** The local address this machine uses to reach `url`'s host (the IP other nodes can reach it at). */
export function localAddressToward(url: string): Promise<string> {
  const { hostname: host, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: host.replace(/^\[|\]$/g, ''), port: Number(port) || 80 }, () => {
      const address = socket.localAddress ?? '127.0.0.1';
      socket.destroy();
      resolve(address.replace(/^::ffff:/, ''));
    });
    socket.once('error', reject);
    socket.setTimeout(5000, () => socket.destroy(new Error(`timed out connecting to ${url}`)));
  });
}

/**
 * Makes a {@link NodeManager} a member of a cluster: starts its data server, registers it with
 * the head (and keeps it registered), tells the head which objects it holds, spills the tasks it
 * cannot start, runs the tasks the head sends it, and pulls the objects those need.
 *
 * @example
 * ```ts
 * const node = new NodeManager({ numCpus: 2 });
 * await node.ready();
 * await using member = await ClusterNode.start(node, { headUrl, token, logger: pino(), onFatal: console.error });
 * ```
 */
export class ClusterNode implements AsyncDisposable {
  readonly node: NodeManager;
  readonly #options: ClusterNodeOptions;
  readonly #logger: Logger;
  readonly #puller: ObjectPuller;
  readonly #arrival: ObjectArrival;
  /** The other nodes, as of the head's last view. */
  readonly #peers = new PeerView();
  readonly #locates = new RequestTracker();
  #state: ClusterNodeState = 'idle';
  #data: DataServer | undefined;
  #link: HeadLink | undefined;
  #starting: Promise<void> | undefined;
  #closing: Promise<void> | undefined;
  #added: [string, number][] = [];
  #removed: string[] = [];
  #flushTimer: NodeJS.Timeout | undefined;
  /** The seq of the last `run` the head sent here. */
  #runsSeen = 0;

  constructor(node: NodeManager, options: ClusterNodeOptions) {
    this.node = node;
    this.#options = options;
    this.#logger = options.logger ?? debugLogger('cluster');
    this.#puller = new ObjectPuller(
      options.token,
      (id, size) => node.store.acceptIncoming(id, size, ', so an object from another node cannot be pulled here'),
      // Holders may send later pullers of what this node receives here: its data server passes it on.
      { relayUrl: () => (this.#data?.state === 'running' ? this.#data.url : undefined) },
    );
    this.#puller.onPulled = node.metrics.transfers(this.#puller.stats);
    this.#arrival = new ObjectArrival({
      store: node.store,
      puller: this.#puller,
      locate: (ids) => this.#locate(ids),
      ownUrl: () => this.data.url,
    });
  }

  /** A started member: its data server listens and the head registered it. */
  static async start(node: NodeManager, options: ClusterNodeOptions): Promise<ClusterNode> {
    const member = new ClusterNode(node, options);
    await member.start();
    return member;
  }

  get state(): ClusterNodeState {
    return this.#state;
  }

  /** Ids of the other nodes of the cluster, as of the head's last view (sent with each heartbeat's answer). */
  get peers(): readonly string[] {
    return this.#peers.nodeIds;
  }

  /** The server other nodes pull this node's objects from. */
  get data(): DataServer {
    if (!this.#data) throw new Error('the cluster node is not started (call start() first)');
    return this.#data;
  }

  /** The control link to the head. */
  get link(): HeadLink {
    if (!this.#link) throw new Error('the cluster node is not started (call start() first)');
    return this.#link;
  }

  /** Starts the data server and joins the head; resolves once registered. Idempotent. */
  start(): Promise<void> {
    this.#starting ??= this.#start();
    return this.#starting;
  }

  /**
   * The local address toward the head: the first thing that reaches it, so a head not up yet is
   * tried again for `joinTimeoutMs` (then the link waits for it as long).
   */
  async #addressTowardHead(): Promise<string> {
    const { headUrl, joinTimeoutMs = 0 } = this.#options;
    const deadline = Date.now() + joinTimeoutMs;
    for (let attempt = 0; ; attempt++) {
      try {
        return await localAddressToward(headUrl);
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
        if (Date.now() >= deadline || this.#closing) throw new HeadUnreachableError(headUrl, code, { cause: error });
        if (attempt === 0) this.#logger.info({ head: headUrl, code }, `the head at ${headUrl} cannot be reached yet (${code}): trying again for ${Math.round((deadline - Date.now()) / 1000)} s`);
        await new Promise((resolve) => setTimeout(resolve, Math.min(backoffDelay(attempt, { minMs: 200 }), Math.max(0, deadline - Date.now()))));
      }
    }
  }

  async #start(): Promise<void> {
    const { node } = this;
    const options = this.#options;
    this.#state = 'starting';
    const host = options.nodeIp ?? (await this.#addressTowardHead());
    this.#data = new DataServer(node.store, {
      host,
      port: options.dataPort ?? 0,
      token: options.token,
      nodeId: node.store.sessionId,
      logger: this.#logger,
      onRelease: (ids) => node.cluster.releaseKept(ids),
      arriving: (id) => this.#puller.arriving(id),
      onActorCall: (call, answer, connection) => {
        if (node.cluster.joined) node.cluster.actors.serve(call, answer, connection);
        else answer({ ok: false, failure: toWireFailure(new ActorDiedError(call.actorId, { kind: 'not-here' }, 0)) });
      },
      onConnectionClosed: (connection) => {
        if (node.cluster.joined) node.cluster.actors.dropFor(connection);
      },
      ...(options.allowedOrigins ? { allowedOrigins: options.allowedOrigins } : {}),
      routes: {
        '/metrics': async () => ({ type: PROMETHEUS_TEXT, body: await node.metrics.text() }),
        '/api/tasks': () => ({ type: 'application/json', body: JSON.stringify(node.metrics.summary()) }),
        '/api/objects': () => ({ type: 'application/json', body: JSON.stringify(node.objects()) }),
        // ?since=EPOCH_MS: the spans that ended since then (default: all those kept).
        // ?after=OFFSET: the lines from there on; else ?lines=N, the last N (default 200).
        '/api/logs': (url) => ({ type: 'application/json', body: JSON.stringify(nodeLog(options.logFile, url)) }),
        '/api/timeline': (url) => ({ type: 'application/json', body: JSON.stringify(node.metrics.timeline.since(Number(url.searchParams.get('since')) || 0)) }),
      },
    });
    await this.#data.start();
    if (this.#closing) return;
    this.#link = new HeadLink(options.headUrl, options.token, () => this.report(), {
      onFatal: options.onFatal,
      ...(options.joinTimeoutMs === undefined ? {} : { joinTimeoutMs: options.joinTimeoutMs }),
      onMessage: (message) => this.#onHead(message),
      // A head that restarted knows no actors: the ones running here say so again.
      onRegistered: () => node.cluster.announceActors(),
      onRefused: (error) => this.#logger.warn({ err: error }, `the head refused this node's registration (retrying): ${error.message}`),
      // The head forgets what it placed for us and on us when we drop: take our tasks back, and
      // stop keeping results nobody will ask for.
      onDisconnect: () => {
        node.cluster.reclaimSpilled();
        node.cluster.dropForeign();
        // The head forgets this node: its runs are numbered from 0 again, and questions in
        // flight will not be answered (#locate answers them as "nobody knows").
        this.#runsSeen = 0;
        this.#locates.failAll(new Error('the head connection dropped'));
      },
    });
    node.store.on('delete', (id) => {
      this.#removed.push(id);
      this.#scheduleFlush();
    });
    node.store.on('add', (id, size) => {
      this.#added.push([id, size]);
      this.#scheduleFlush();
    });
    node.cluster.join({
      reserveElsewhere: (demand) => this.#peers.reserve(demand),
      spill: (task, args) => this.#spill(task, args),
      fetch: (id, owner) => this.#fetch(id, this.#peers.sourcesOf(owner)),
      finished: (origin, returnId, result) => {
        this.link.send({ type: 'result', origin, returnId, result });
      },
      cancel: (returnId) => {
        this.link.send({ type: 'cancel', returnId });
      },
      output: (origin, returnId, stream, text) => {
        this.link.send({ type: 'output', origin, returnId, stream, text });
      },
      actors: {
        tell: (message) => this.link.send(message),
        locate: (by) => this.#locateActor(by),
        callActor: (url, call) => this.#puller.callActor(url, call),
        receive: (returnId, holderUrl, result, finish, fail) => this.#receiveResult(returnId, holderUrl, result, finish, fail),
      },
    });
    await this.#link.registered;
    if (this.#state === 'starting') this.#state = 'running';
  }

  /** What this node reports to the head with every heartbeat. */
  report(): NodeReport {
    return {
      nodeId: this.node.store.sessionId,
      hostname: hostname(),
      pid: process.pid,
      address: this.node.address,
      dataUrl: this.data.url,
      ...this.node.load(),
      ...this.#puller.stats,
      runsSeen: this.#runsSeen,
    };
  }

  /**
   * Leaves the cluster: tells the head which objects went, closes the link, stops pulling, and
   * lets the objects other nodes are pulling from here finish streaming. Idempotent. The node
   * manager itself is the caller's to shut down.
   */
  close(): Promise<void> {
    this.#closing ??= this.#close(false);
    return this.#closing;
  }

  /** Leaves the cluster now: transfers from and to this node are cut. Idempotent. */
  async destroy(): Promise<void> {
    await this.#data?.destroy();
    this.#closing ??= this.#close(true);
    await this.#closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  async #close(abort: boolean): Promise<void> {
    this.#state = 'closing';
    await this.#starting?.catch(() => {});
    if (this.#flushTimer) clearTimeout(this.#flushTimer);
    if (!abort) this.#flush();
    this.#link?.close();
    this.#puller.close();
    await (abort ? this.#data?.destroy() : this.#data?.close());
    this.#state = 'closed';
  }

  // ---- spilling ----------------------------------------------------------------------------

  #spill(task: Task, args: ClusterTask['args']): void {
    const wire: ClusterTask = {
      returnId: task.returnId,
      fn: { hash: task.fn.hash, name: task.fn.name, source: task.fn.source },
      args,
      options: task.options,
    };
    // Without a head the task stays here (or fails as infeasible there).
    if (!this.link.send({ type: 'spill', task: wire })) this.node.cluster.declined(task.returnId);
  }

  // ---- objects -----------------------------------------------------------------------------

  /** Fetches `id` into the store (which expects it), from `sources` or wherever the head says. */
  #fetch(id: string, sources: readonly string[]): void {
    void this.#arrival.arrive(id, sources).catch((error: unknown) => this.node.store.fail(id, error as Error));
  }

  /** Where the head says an actor runs (by id or name); `{ unreachable: true }` when it cannot say (no head now, no answer in time). */
  #locateActor(by: { readonly actorId: string } | { readonly name: string }): Promise<ActorWhereabouts> {
    return this.#askHead<ActorWhereabouts>((requestId) => ({ type: 'actor-locate', requestId, ...by }), { unreachable: true });
  }

  /** Where the head says copies of `ids` are; `{}` when it cannot say (no head now, or no answer in time). */
  #locate(ids: string[]): Promise<Locations> {
    return this.#askHead<Locations>((requestId) => ({ type: 'locate', requestId, ids }), {});
  }

  /** Asks the head (`question` numbered by its request id); `unanswered` when there is no head connection or no answer in time. */
  #askHead<T>(question: (requestId: number) => ToHead, unanswered: T): Promise<T> {
    return this.#locates
      .request<T>(
        (requestId) => {
          if (!this.link.send(question(requestId))) throw new Error('no head connection');
        },
        { signal: AbortSignal.timeout(LOCATE_TIMEOUT_MS) },
      )
      .catch((error: unknown) => {
        debug('%o: no answer from the head (%s)', question(0), (error as Error).message);
        return unanswered;
      });
  }

  #scheduleFlush(): void {
    if (this.#flushTimer) return;
    this.#flushTimer = setTimeout(() => {
      this.#flushTimer = undefined;
      this.#flush();
    }, 20);
    this.#flushTimer.unref();
  }

  #flush(): void {
    if (this.#added.length === 0 && this.#removed.length === 0) return;
    this.#link?.send({ type: 'objects', added: this.#added, removed: this.#removed });
    this.#added = [];
    this.#removed = [];
  }

  // ---- messages from the head ------------------------------------------------------------------

  #onHead(message: FromHead): void {
    try {
      this.#handleHead(message);
    } catch (error) {
      // A message that does not fit this node's state must not take the node down.
      this.#logger.warn({ type: message.type, err: error }, `ignored a ${message.type} from the head: ${(error as Error).message}`);
    }
  }

  #handleHead(message: FromHead): void {
    switch (message.type) {
      case 'view':
        for (const peer of this.#peers.update(message.nodes)) {
          // A node that left: results kept for it will never be pulled, its tasks here are moot,
          // and pulls from it will not finish.
          this.node.cluster.dropForeign((_, origin) => origin === peer.nodeId);
          this.node.cluster.actors.nodeLeft(peer.nodeId);
          this.#puller.forget(peer.dataUrl);
        }
        return;
      case 'run':
        this.#runsSeen = Math.max(this.#runsSeen, message.seq);
        // Acknowledged only if taken (a closing node takes none, and the head then places the run
        // elsewhere after its ack timeout, or once this node left), and before it runs.
        this.node.cluster.runForeign(
          message.origin,
          message.task,
          (id) => this.#fetch(id, message.sources[id] ?? []),
          () => this.link.send({ type: 'accepted', seq: message.seq, returnId: message.task.returnId }),
        );
        return;
      case 'declined':
        this.#peers.blockSpills();
        this.node.cluster.declined(message.returnId);
        return;
      case 'result':
        void this.#receiveResult(
          message.returnId,
          message.holderUrl,
          message.result,
          (payload) => this.node.cluster.finishSpilled(message.returnId, payload),
          (error) => this.node.cluster.failSpilled(message.returnId, error),
        );
        return;
      case 'cancel':
        this.node.cluster.dropForeign((returnId) => returnId === message.returnId);
        return;
      case 'output':
        this.node.cluster.receiveOutput(message.returnId, message.stream, message.text);
        return;
      case 'located':
        this.#locates.answer(message.requestId, message.holders);
        return;
      case 'actor-located':
        this.#locates.answer(message.requestId, { ...(message.actor ? { actor: message.actor } : {}), ...(message.failure ? { failure: message.failure } : {}) });
        return;
      case 'actor-host':
        this.node.cluster.actors.host(message.origin, message.actor, message.restarts);
        return;
      case 'actor-end':
      case 'actor-died': {
        const death = fromWireFailure(message.failure);
        const error = death instanceof ActorDiedError ? death : new ActorDiedError(message.actorId, { kind: 'killed' }, 0);
        this.node.cluster.actorEnded(message.actorId, error, message.type === 'actor-end' && message.restart);
        return;
      }
      default:
        return;
    }
  }

  /**
   * A task this node spilled, or a call it made on an actor of another node, ended. Its result,
   * and the objects made on the other node that it refers to (recursively), are pulled here and
   * given to `finish` (false: nobody wants it now); then the other node may drop its copies.
   * `fail` is told of a failed result, or one that could not be fetched.
   */
  async #receiveResult(
    returnId: string,
    holderUrl: string,
    result: ClusterResult,
    finish: (payload: { size: number; bytes?: Uint8Array; contains: string[] }) => boolean,
    fail: (error: Error) => void,
  ): Promise<void> {
    if (!result.ok) {
      fail(fromWireFailure(result.failure));
      return;
    }
    // Pulled objects are held here until the result holds them (or the pull failed).
    const held: string[] = [];
    try {
      const contains: string[] = [];
      for (const { id, owner } of result.contains) {
        if (this.node.store.status(id).state === 'freed') await this.#arrival.arrive(id, [holderUrl, ...this.#peers.sourcesOf(owner)]);
        if (this.node.store.hold(id)) held.push(id);
        contains.push(id);
      }
      if (result.bytes) {
        finish({ size: result.size, bytes: result.bytes, contains });
        return;
      }
      await this.#arrival.pull(returnId, [holderUrl]);
      if (!finish({ size: result.size, contains })) this.#arrival.discard(returnId);
    } catch (error) {
      debug('result %s could not be fetched: %o', returnId, error);
      fail(error as Error);
    } finally {
      for (const id of held) this.node.store.release(id);
      if (holderUrl) this.#puller.release(holderUrl, [returnId]);
    }
  }
}
