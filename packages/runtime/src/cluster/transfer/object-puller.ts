// Fetches the objects a node needs from the nodes that hold them: pull-based and direct (the
// head only says where objects are), one data connection per holder (holder-connection.ts).
import { debuglog } from 'node:util';
import PQueue from 'p-queue';
import { CONCURRENT_PULLS, ObjectLostError, ShoalError, type ClusterResult, type WireFailure } from '@shoal/protocol';
import type { IncomingObject } from '@shoal/store';
import { ActorCallNotSent } from '../../node/cluster-actors.js';
import { HolderConnection, type PulledObject, type Relayed } from './holder-connection.js';
import { PullFailure } from './pull-failure.js';
import { Arrivals, type Arriving } from './relay.js';
import { objectTransferChannel, type ObjectTransferMessage } from '../../diagnostics.js';

export type { PulledObject } from './holder-connection.js';

const debug = debuglog('shoal:transfer');


/** Counts of what a {@link ObjectPuller} fetched. */
export interface PullStats {
  pulls: number;
  pulledBytes: number;
}

/** Counts of a {@link ObjectPuller}'s relayed pulls (see relay.ts). */
export interface RelayStats {
  /** Pulls a holder sent to another puller of the object, and that came from there. */
  relayed: number;
  /** Pulls a holder sent to another puller that could not give it: pulled from the holder after all. */
  relayFailed: number;
}

/** Options of an {@link ObjectPuller}. */
export interface ObjectPullerOptions {
  /**
   * This node's data URL, when its data server passes on what this node is receiving
   * (`DataServerOptions.arriving` given {@link ObjectPuller.arriving}): holders may then send
   * later pullers of an object here. Undefined: no relaying.
   */
  readonly relayUrl?: () => string | undefined;
}

/**
 * Fetches objects from other nodes into this node's session directory. Concurrent pulls of one
 * object are merged into one; at most {@link CONCURRENT_PULLS} objects stream at once; a pull that
 * fails at one holder is retried at the next, and fails with ObjectLostError when none is left
 * (or with the object's own failure when its task failed).
 *
 * @example
 * ```ts
 * const puller = new ObjectPuller(token, (id, size) => store.acceptIncoming(id, size));
 * const object = await puller.pull(id, ['ws://10.0.0.2:7001'], fromWireFailure);
 * puller.close();
 * ```
 */
export class ObjectPuller {
  readonly stats: PullStats = { pulls: 0, pulledBytes: 0 };
  readonly relayStats: RelayStats = { relayed: 0, relayFailed: 0 };
  readonly #token: string;
  readonly #accept: (id: string, size: number) => IncomingObject;
  readonly #relayUrl: () => string | undefined;
  readonly #arrivals = new Arrivals();
  readonly #connections = new Map<string, HolderConnection>();
  readonly #inflight = new Map<string, Promise<PulledObject>>();
  readonly #queue = new PQueue({ concurrency: CONCURRENT_PULLS });
  #closed = false;

  /** `accept` starts an object arriving in this node's store (`store.acceptIncoming`); it throws when there is no room. */
  /** Told of each pull that succeeded (the node's metrics and timeline), when it is sealed here. */
  onPulled: ((pull: { readonly id: string; readonly size: number; readonly from: string; readonly startedAt: number }) => void) | undefined;

  constructor(token: string, accept: (id: string, size: number) => IncomingObject, options: ObjectPullerOptions = {}) {
    this.#token = token;
    this.#accept = accept;
    this.#relayUrl = options.relayUrl ?? (() => undefined);
  }

  /**
   * Object `id` while it arrives here from another node (its bytes so far can be passed on); a
   * promise of it while this node's pull of it waits for its answer; else undefined.
   */
  arriving(id: string): Arriving | Promise<Arriving | undefined> | undefined {
    return this.#arrivals.whenArriving(id);
  }

  /** Whether a pull of `id` is queued or under way here. */
  isPulling(id: string): boolean {
    return this.#inflight.has(id);
  }

  /** Fetches object `id` from the first of `sources` (data URLs) that has it. */
  pull(id: string, sources: readonly string[], failure: (failure: WireFailure) => Error): Promise<PulledObject> {
    const existing = this.#inflight.get(id);
    if (existing) return existing;
    const pulling = this.#queue
      .add(() => this.#pullFrom(id, [...new Set(sources)], failure), { throwOnTimeout: true })
      .finally(() => this.#inflight.delete(id));
    this.#inflight.set(id, pulling);
    return pulling;
  }

  /** Tells the holder at `url` it may drop the copies it kept for this node. */
  release(url: string, ids: readonly string[]): void {
    void this.#connection(url)
      .then((connection) => connection.release(ids))
      .catch((error: unknown) => debug('release at %s failed: %o', url, error));
  }

  /**
   * Calls a method of an actor that runs on the node at `url` (calls to one node go on one
   * connection, in the order made); resolves with how it ended.
   * @throws PullFailure when the connection closed before the answer (the node left, or cut it).
   */
  async callActor(url: string, call: Parameters<HolderConnection['callActor']>[0]): Promise<ClusterResult> {
    // A connection that cannot be made means the call never went out (the node is gone).
    const connect = () => this.#connection(url).catch((error: unknown) => {
      throw new ActorCallNotSent(`no connection to ${url}: ${(error as Error).message}`, { cause: error });
    });
    try {
      return await (await connect()).callActor(call);
    } catch (error) {
      // Closed as idle just as the call went out: the holder never read it; ask again.
      if (!(error instanceof PullFailure) || error.code !== 'idle') throw error;
      return (await connect()).callActor(call);
    }
  }

    /** Drops the connection to a holder that left the cluster: its pulls fail over to other holders. */
  forget(url: string): void {
    this.#connections.get(url)?.close();
    this.#connections.delete(url);
  }

  /** Drops queued pulls and cuts every connection (pulls in flight fail). Idempotent. */
  close(): void {
    this.#closed = true;
    this.#queue.clear();
    for (const connection of this.#connections.values()) connection.close();
    this.#connections.clear();
  }

  async #pullFrom(id: string, sources: string[], failure: (failure: WireFailure) => Error): Promise<PulledObject> {
    this.#arrivals.pulling(id);
    try {
      return await this.#pullFromEach(id, sources, failure);
    } finally {
      this.#arrivals.pulled(id);
    }
  }

  async #pullFromEach(id: string, sources: string[], failure: (failure: WireFailure) => Error): Promise<PulledObject> {
    const tried: string[] = [];
    for (const url of sources) {
      if (this.#closed) break;
      try {
        const started = performance.now();
        const object = await this.#pullVia(url, id);
        this.stats.pulls += 1;
        this.stats.pulledBytes += object.size;
        const durationMs = performance.now() - started;
        this.onPulled?.({ id, size: object.size, from: url, startedAt: started });
        if (objectTransferChannel.hasSubscribers) {
          objectTransferChannel.publish({ id, size: object.size, from: url, durationMs } satisfies ObjectTransferMessage);
        }
        return object;
      } catch (error) {
        if (error instanceof PullFailure && error.failure) throw failure(error.failure);
        // This node's own trouble (a full /dev/shm): another holder would not help.
        if (error instanceof ShoalError) throw error;
        tried.push(`${url}: ${(error as Error).message}`);
        debug('pull of %s from %s failed: %s', id, url, (error as Error).message);
      }
    }
    throw new ObjectLostError(
      id,
      sources.length === 0
        ? 'no node of the cluster holds it any more.'
        : `no node holding it could send it (${tried.join('; ')}).`,
    );
  }

  /**
   * Pulls `id` from the holder at `url`, or from the puller it names (a relay): from there
   * directly, and when that puller cannot give it, from the holder again, directly.
   */
  async #pullVia(url: string, id: string): Promise<PulledObject> {
    const answer = await this.#pullOnce(url, id, false);
    if (!('relay' in answer)) return answer;
    try {
      const relayed = await this.#pullDirect(answer.relay, id);
      this.relayStats.relayed += 1;
      return relayed;
    } catch (error) {
      // This node's own trouble (no room): the holder would not help. Anything the relay said
      // (a failure included: it may be the relay's own failed pull) is the relay's: the holder has it.
      if (error instanceof ShoalError) throw error;
      this.relayStats.relayFailed += 1;
      debug('pull of %s from relay %s (for %s) failed, pulling from the holder: %s', id, answer.relay, url, (error as Error).message);
      return this.#pullDirect(url, id);
    }
  }

  async #pullDirect(url: string, id: string): Promise<PulledObject> {
    const answer = await this.#pullOnce(url, id, true);
    if ('relay' in answer) throw new PullFailure('protocol', `${url} answered a direct pull with a relay`);
    return answer;
  }

  /**
   * Pulls `id` from `url`, asking once more on a new connection when the holder closed the
   * old one as idle just as the pull went out (the two crossed on the wire).
   */
  async #pullOnce(url: string, id: string, direct: boolean): Promise<PulledObject | Relayed> {
    try {
      return await (await this.#connection(url)).pull(id, direct);
    } catch (error) {
      if (!(error instanceof PullFailure) || error.code !== 'idle') throw error;
      return (await this.#connection(url)).pull(id, direct);
    }
  }

  async #connection(url: string): Promise<HolderConnection> {
    let connection = this.#connections.get(url);
    if (!connection || connection.closed) {
      const made = new HolderConnection(
        url,
        this.#token,
        () => {
          if (this.#connections.get(url) === made) this.#connections.delete(url);
        },
        (id, size, contains) => {
          const incoming = this.#accept(id, size);
          this.#arrivals.add(incoming, contains);
          return incoming;
        },
        this.#relayUrl(),
      );
      this.#connections.set(url, made);
      connection = made;
    }
    await connection.ready;
    return connection;
  }
}
