// A node's membership of a cluster: the control link to the head, the data server other nodes
// pull this node's objects from, the puller that fetches the objects this node needs, and the
// hooks through which the node manager spills tasks it cannot start and fetches arguments it lacks.
import { connect } from 'node:net';
import { hostname } from 'node:os';
import { debuglog } from 'node:util';
import { isValidId, type ClusterResult, type ClusterTask, type FromHead, type NodeReport, type PeerView } from '@shoal/protocol';
import type { NodeManager } from '../../node/node-manager.js';
import type { Resources, Task } from '../../scheduling/task.js';
import { fromWireFailure } from '../../thrown.js';
import { HeadLink } from './head-link.js';
import { acquire, fits } from '../../scheduling/resources.js';
import { DataServer, ObjectPuller, type PulledObject } from '../transfer/transfer.js';

const debug = debuglog('shoal:cluster');

/** Options of {@link ClusterNode.start}. */
export interface ClusterNodeOptions {
  /** The head's address, `ws://HOST:PORT`. */
  readonly headUrl: string;
  readonly token: string;
  /** The IP this node's data server listens on and other nodes reach it at. @default the address this machine reaches the head from */
  readonly nodeIp?: string;
  /** Port of the data server. @default 0 (any free port) */
  readonly dataPort?: number;
  readonly log: (line: string) => void;
  /** Called when membership can never work (a refused token): the daemon stops. */
  readonly onFatal: (error: Error) => void;
}

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

export class ClusterNode {
  readonly node: NodeManager;
  readonly link: HeadLink;
  readonly data: DataServer;
  readonly #puller: ObjectPuller;
  readonly #options: ClusterNodeOptions;
  /** The other nodes, as of the head's last view. */
  #view = new Map<string, PeerView>();
  /** The head declined a spill since its last view: do not spill again until the next. */
  #spillBlocked = false;
  #added: [string, number][] = [];
  #removed: string[] = [];
  #flushTimer: NodeJS.Timeout | undefined;
  readonly #locates = new Map<number, (holders: Readonly<Record<string, readonly string[]>>) => void>();
  #nextLocate = 1;
  /** The seq of the last `run` the head sent here. */
  #runsSeen = 0;
  readonly #arriving = new Map<string, Promise<void>>();

  private constructor(node: NodeManager, data: DataServer, options: ClusterNodeOptions) {
    this.node = node;
    this.data = data;
    this.#options = options;
    this.#puller = new ObjectPuller(options.token, (id, size) =>
      node.store.acceptIncoming(id, size, ', so an object from another node cannot be pulled here'),
    );
    this.link = new HeadLink(options.headUrl, options.token, () => this.report(), {
      onFatal: options.onFatal,
      onMessage: (message) => this.#onHead(message),
      // The head forgets what it placed for us and on us when we drop: take our tasks back, and
      // stop keeping results nobody will ask for.
      onDisconnect: () => {
        node.reclaimSpilled();
        node.dropForeign();
        // The head forgets this node: its runs are numbered from 0 again, and questions in
        // flight will not be answered.
        this.#runsSeen = 0;
        for (const answer of this.#locates.values()) answer({});
        this.#locates.clear();
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
    node.joinCluster({
      hasRoomElsewhere: (demand) => this.#reserveElsewhere(demand),
      spill: (task, args) => this.#spill(task, args),
      fetch: (id, owner) => this.#fetch(id, this.#urlOf(owner)),
      finished: (origin, returnId, result) => {
        this.link.send({ type: 'result', origin, returnId, result });
      },
      cancel: (returnId) => {
        this.link.send({ type: 'cancel', returnId });
      },
    });
  }

  /** Starts the data server and joins the head; resolves once registered. */
  static async start(node: NodeManager, options: ClusterNodeOptions): Promise<ClusterNode> {
    const host = options.nodeIp ?? (await localAddressToward(options.headUrl));
    const data = await DataServer.start(node.store, {
      host,
      port: options.dataPort ?? 0,
      token: options.token,
      nodeId: node.store.sessionId,
      log: options.log,
      onRelease: (ids) => node.releaseKept(ids),
    });
    const member = new ClusterNode(node, data, options);
    await member.link.registered;
    return member;
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

  async close(): Promise<void> {
    if (this.#flushTimer) clearTimeout(this.#flushTimer);
    this.link.close();
    this.#puller.close();
    await this.data.close();
  }

  // ---- spilling ----------------------------------------------------------------------------

  /** Whether another node has room for `demand`; if so that room is counted as taken until the next view. */
  #reserveElsewhere(demand: Readonly<Resources>): boolean {
    if (this.#spillBlocked) return false;
    for (const peer of this.#view.values()) {
      if (!fits(demand, peer.available)) continue;
      const available = { ...peer.available };
      acquire(available, demand);
      this.#view.set(peer.nodeId, { ...peer, available });
      return true;
    }
    return false;
  }

  #spill(task: Task, args: ClusterTask['args']): void {
    const wire: ClusterTask = {
      returnId: task.returnId,
      fn: { hash: task.fn.hash, name: task.fn.name, source: task.fn.source },
      args,
      options: task.options,
    };
    // Without a head the task stays here (or fails as infeasible there).
    if (!this.link.send({ type: 'spill', task: wire })) this.node.declined(task.returnId);
  }

  // ---- objects -----------------------------------------------------------------------------

  #urlOf(nodeId: string): string[] {
    const url = this.#view.get(nodeId)?.dataUrl;
    return url ? [url] : [];
  }

  /** Fetches `id` into the store (which expects it), from `sources` or wherever the head says. */
  #fetch(id: string, sources: readonly string[]): void {
    void this.#arrive(id, sources, 0).catch((error: unknown) => this.node.store.fail(id, error as Error));
  }

  /**
   * Brings object `id` here: pulls it, then (children first) the objects it refers to, and
   * registers it — into the entry that expects it, or as a new one. Concurrent calls for one id
   * share one arrival, so the one file a merged pull wrote is registered once and never removed
   * from under another caller.
   */
  #arrive(id: string, sources: readonly string[], depth: number): Promise<void> {
    const existing = this.#arriving.get(id);
    if (existing) return existing;
    const arriving = (async () => {
      const object = await this.#pull(id, sources);
      const contains: string[] = [];
      try {
        for (const child of object.contains ?? []) {
          if (!isValidId(child) || this.node.store.status(child).state !== 'freed') {
            if (isValidId(child)) contains.push(child);
            continue;
          }
          if (depth >= 64) throw new Error(`objects nested more than 64 refs deep, at ${id}`);
          await this.#arrive(child, sources, depth + 1);
          contains.push(child);
        }
      } catch (error) {
        if (!object.bytes) this.#discard(id);
        throw error;
      }
      const state = this.node.store.status(id).state;
      if (state === 'pending' || state === 'freed') {
        this.node.store.register(id, { size: object.size, bytes: object.bytes, contains });
      } else if (!object.bytes) {
        // Settled meanwhile as a failure (freed while pending): nobody will read the file.
        this.#discard(id);
      }
    })().finally(() => this.#arriving.delete(id));
    this.#arriving.set(id, arriving);
    return arriving;
  }

  async #pull(id: string, sources: readonly string[]): Promise<PulledObject> {
    let urls = [...sources];
    try {
      if (urls.length > 0) return await this.#puller.pull(id, urls, fromWireFailure);
    } catch (error) {
      if ((error as { code?: string }).code !== 'ERR_OBJECT_LOST') throw error;
    }
    // The owner could not send it: any other node holding a copy?
    const located = await this.#locate([id]);
    urls = (located[id] ?? []).filter((url) => url !== this.data.url && !sources.includes(url));
    return this.#puller.pull(id, urls, fromWireFailure);
  }

  #locate(ids: string[]): Promise<Readonly<Record<string, readonly string[]>>> {
    const requestId = this.#nextLocate++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#locates.delete(requestId);
        resolve({});
      }, 10_000);
      timer.unref();
      this.#locates.set(requestId, (holders) => {
        clearTimeout(timer);
        resolve(holders);
      });
      if (!this.link.send({ type: 'locate', requestId, ids })) {
        this.#locates.get(requestId)!({});
        this.#locates.delete(requestId);
      }
    });
  }

  #discard(id: string): void {
    this.node.store.discardUnclaimed(id);
  }

  #scheduleFlush(): void {
    if (this.#flushTimer) return;
    this.#flushTimer = setTimeout(() => {
      this.#flushTimer = undefined;
      if (this.#added.length === 0 && this.#removed.length === 0) return;
      this.link.send({ type: 'objects', added: this.#added, removed: this.#removed });
      this.#added = [];
      this.#removed = [];
    }, 20);
    this.#flushTimer.unref();
  }

  // ---- messages from the head ------------------------------------------------------------------

  #onHead(message: FromHead): void {
    try {
      this.#handleHead(message);
    } catch (error) {
      // A message that does not fit this node's state must not take the node down.
      this.#options.log(`ignored a ${message.type} from the head: ${(error as Error).message}`);
    }
  }

  #handleHead(message: FromHead): void {
    switch (message.type) {
      case 'view': {
        const next = new Map(message.nodes.map((peer) => [peer.nodeId, peer]));
        for (const [id, peer] of this.#view) {
          if (next.has(id)) continue;
          // A node that left: results kept for it will never be pulled, its tasks here are moot,
          // and pulls from it will not finish.
          this.node.dropForeign((_, origin) => origin === id);
          this.#puller.forget(peer.dataUrl);
        }
        this.#view = next;
        this.#spillBlocked = false;
        return;
      }
      case 'run':
        this.#runsSeen = Math.max(this.#runsSeen, message.seq);
        this.node.runForeign(message.origin, message.task, (id) => this.#fetch(id, message.sources[id] ?? []));
        return;
      case 'declined':
        this.#spillBlocked = true;
        this.node.declined(message.returnId);
        return;
      case 'result':
        void this.#receiveResult(message.returnId, message.holderUrl, message.result);
        return;
      case 'cancel':
        this.node.dropForeign((returnId) => returnId === message.returnId);
        return;
      case 'located':
        this.#locates.get(message.requestId)?.(message.holders);
        this.#locates.delete(message.requestId);
        return;
      default:
        return;
    }
  }

  /**
   * A task this node spilled ended. Its result, and the objects made on the other node that it
   * refers to (recursively), are pulled here; then the other node may drop its copies.
   */
  async #receiveResult(returnId: string, holderUrl: string, result: ClusterResult): Promise<void> {
    if (!isValidId(returnId)) return;
    if (!result.ok) {
      this.node.failSpilled(returnId, fromWireFailure(result.failure));
      return;
    }
    // Pulled objects are held here until the result holds them (or the pull failed).
    const held: string[] = [];
    try {
      const contains: string[] = [];
      for (const { id, owner } of result.contains) {
        if (!isValidId(id)) continue;
        if (this.node.store.status(id).state === 'freed') await this.#arrive(id, [holderUrl, ...this.#urlOf(owner)], 0);
        if (this.node.store.hold(id)) held.push(id);
        contains.push(id);
      }
      if (result.bytes) {
        this.node.finishSpilled(returnId, { size: result.size, bytes: result.bytes, contains });
        return;
      }
      await this.#pull(returnId, [holderUrl]);
      if (!this.node.finishSpilled(returnId, { size: result.size, contains })) this.#discard(returnId);
    } catch (error) {
      debug('result %s could not be fetched: %o', returnId, error);
      this.node.failSpilled(returnId, error as Error);
    } finally {
      for (const id of held) this.node.store.release(id);
      if (holderUrl) this.#puller.release(holderUrl, [returnId]);
    }
  }

}
