// The head's directory of actors: where each actor of the cluster runs, the node that holds its
// lifetime (its creator's, its `origin`), its name, and why it died. It places the actors their
// creator's node cannot fit, answers where an actor runs (a call then goes straight there),
// restarts on another node an actor whose node left (within its maxRestarts), and ends the actors
// of a node that left unless they are detached. See docs/internals.md ("Actors in a cluster").
import { ActorDiedError, toWireFailure, type ActorDeathReason, type ActorEnd, type ClusterActor, type LocatedActor, type WireFailure } from '@shoal/protocol';
import type { Logger } from '../../log.js';
import { describeResources, fits, type Resources } from '../../scheduling/resources.js';
import type { Membership } from './membership.js';
import { roomOf } from './placement-policy.js';

/** Dead actors remembered (to say why a call on one fails), the oldest forgotten first. */
const DEAD_MEMORY = 4096;

/** Dead actors the dashboard lists, newest first. */
const DIED_LISTED = 20;

/** An actor as the dashboard lists it (`/api/actors` on the head). */
export interface ActorListing {
  readonly id: string;
  readonly className: string;
  readonly name: string | null;
  /** `placing`: on its way to a node; `dead`: for good (`reason` says why). */
  readonly state: 'alive' | 'placing' | 'dead';
  /** The node running it (or it is placed on, or it last ran on); null: none yet. */
  readonly node: string | null;
  /** The node that made it, which holds its lifetime. */
  readonly origin: string;
  readonly detached: boolean;
  readonly restarts: number;
  readonly reason?: string;
  /** `Date.now()` when it died. */
  readonly at?: number;
}

/** The answer to a locate: where it runs, or why it is dead; neither: no such actor. */
export interface ActorAnswer {
  readonly actor?: LocatedActor;
  readonly failure?: WireFailure;
}

interface Entry {
  readonly actor: ClusterActor;
  /** The node holding its lifetime: its creator's. */
  readonly origin: string;
  /** The node running it, once that node said so. */
  host: string | undefined;
  /** The node it was sent to (`actor-host`), until that node says it runs it. */
  placedOn: string | undefined;
  /** Times it was restarted on another node. */
  restarts: number;
  /** Locates waiting for it to run somewhere. */
  readonly waiting: ((answer: ActorAnswer) => void)[];
}

/** What the directory needs of the head. */
export interface ActorDirectoryParts {
  readonly membership: Membership;
  readonly logger: Logger;
}

/**
 * The actors of the cluster, as the head knows them from what nodes tell it (`actor-hosted`,
 * `actor-ended`, `actor-place`, `actor-end`) and from the membership (a node that left).
 */
export class ActorDirectory {
  readonly #membership: Membership;
  readonly #logger: Logger;
  readonly #live = new Map<string, Entry>();
  /** Live actors by name: a name is the cluster's, one live actor each. */
  readonly #names = new Map<string, string>();
  readonly #dead = new Map<string, WireFailure>();
  /** Actors given up because their node left (by id: that node); if it comes back with them alive, they live on. */
  readonly #lostWith = new Map<string, string>();
  /** The last actors that died, newest first. */
  readonly #lastDead: ActorListing[] = [];

  constructor(parts: ActorDirectoryParts) {
    this.#membership = parts.membership;
    this.#logger = parts.logger;
  }

  /** Node `origin` made an actor that none of its resources fit: it is placed on a node that fits. */
  place(origin: string, actor: ClusterActor): void {
    if (this.#live.has(actor.id) || this.#dead.has(actor.id)) return;
    const entry: Entry = { actor, origin, host: undefined, placedOn: undefined, restarts: 0, waiting: [] };
    if (!this.#claimName(entry, undefined)) return;
    this.#live.set(actor.id, entry);
    this.#placeOn(entry, [origin], false);
  }

  /** Node `nodeId` runs the actor (made there for `origin`, or placed there). */
  hosted(nodeId: string, origin: string, actor: ClusterActor): void {
    if (this.#lostWith.get(actor.id) === nodeId) {
      // Its node was taken for gone, and it is back with the actor alive: it lives on.
      this.#lostWith.delete(actor.id);
      this.#dead.delete(actor.id);
    }
    const dead = this.#dead.get(actor.id);
    if (dead) {
      // Ended while it was on its way there (killed, its creator left): it ends there too.
      this.#membership.send(nodeId, { type: 'actor-end', actorId: actor.id, failure: dead, restart: false });
      return;
    }
    let entry = this.#live.get(actor.id);
    if (entry && entry.host !== undefined && entry.host !== nodeId) {
      // Restarted elsewhere while this node was out of touch: that copy is the actor now.
      const failure = toWireFailure(new ActorDiedError(actor.cls.name, { kind: 'node-died', nodeId }, entry.restarts));
      this.#membership.send(nodeId, { type: 'actor-end', actorId: actor.id, failure, restart: false });
      return;
    }
    if (!entry) {
      entry = { actor, origin, host: undefined, placedOn: undefined, restarts: 0, waiting: [] };
      if (!this.#claimName(entry, nodeId)) return;
      this.#live.set(actor.id, entry);
    }
    entry.host = nodeId;
    entry.placedOn = undefined;
    const answer = this.#answerFor(entry);
    for (const waiter of entry.waiting.splice(0)) waiter(answer);
  }

  /** An actor that ran on `nodeId` is dead for good there. */
  ended(nodeId: string, actorId: string, failure: WireFailure): void {
    const entry = this.#live.get(actorId);
    if (!entry || (entry.host !== nodeId && entry.placedOn !== nodeId)) return;
    this.#died(entry, failure, nodeId);
  }

  /** Node `from` asks to end an actor (it made it, or holds a handle to it): see ActorEnd. */
  end(from: string, actorId: string, why: ActorEnd): void {
    const entry = this.#live.get(actorId);
    if (!entry) return;
    const at = entry.host ?? entry.placedOn;
    if (why === 'restart') {
      const failure = toWireFailure(new ActorDiedError(entry.actor.cls.name, { kind: 'killed' }, entry.restarts, false));
      if (at !== undefined) this.#membership.send(at, { type: 'actor-end', actorId, failure, restart: true });
      return;
    }
    const reason: ActorDeathReason = { kind: why };
    const failure = toWireFailure(new ActorDiedError(entry.actor.cls.name, reason, entry.restarts));
    if (at !== undefined) this.#membership.send(at, { type: 'actor-end', actorId, failure, restart: false });
    this.#died(entry, failure, from);
  }

  /** Where an actor runs, by id or by name: answered once it runs somewhere, or is known dead. */
  locate(by: { readonly actorId?: string; readonly name?: string }, answer: (answer: ActorAnswer) => void): void {
    const id = by.actorId ?? (by.name !== undefined ? this.#names.get(by.name) : undefined);
    if (id === undefined) return answer({});
    const entry = this.#live.get(id);
    if (entry) {
      if (entry.host !== undefined) answer(this.#answerFor(entry));
      else entry.waiting.push(answer);
      return;
    }
    const failure = this.#dead.get(id);
    // By name, only a live actor is found.
    answer(failure && by.actorId !== undefined ? { failure } : {});
  }

  /**
   * Node `nodeId` left the cluster: the actors it made die with it unless detached (their hosts
   * end them); the ones it ran restart on another node that fits, within their maxRestarts.
   */
  departed(nodeId: string): void {
    for (const entry of [...this.#live.values()]) {
      const { actor } = entry;
      const ranThere = entry.host === nodeId || entry.placedOn === nodeId;
      if (entry.origin === nodeId && !actor.options.detached) {
        const failure = toWireFailure(new ActorDiedError(actor.cls.name, { kind: 'creator-exited' }, entry.restarts));
        const at = entry.host ?? entry.placedOn;
        if (!ranThere && at !== undefined) this.#membership.send(at, { type: 'actor-end', actorId: actor.id, failure, restart: false });
        this.#died(entry, failure, nodeId);
        continue;
      }
      if (!ranThere) continue;
      entry.host = undefined;
      entry.placedOn = undefined;
      if (entry.restarts >= actor.options.maxRestarts) {
        this.#died(entry, toWireFailure(new ActorDiedError(actor.cls.name, { kind: 'node-died', nodeId }, entry.restarts)), nodeId);
        this.#lostWith.set(actor.id, nodeId);
        continue;
      }
      entry.restarts += 1;
      this.#logger.info({ nodeId, actorId: actor.id }, `actor ${actor.cls.name} (${actor.id}) ran on node ${nodeId}, which left: restarting it elsewhere (restart ${entry.restarts} of ${actor.options.maxRestarts})`);
      this.#placeOn(entry, [nodeId], true);
    }
  }

  /** Sends the actor to a member that fits it (one with room now first), avoiding `avoid`; dies when none does. */
  #placeOn(entry: Entry, avoid: readonly string[], restart: boolean): void {
    const { actor } = entry;
    const demand: Resources = { CPU: Math.max(1, actor.options.numCpus), ...actor.options.resources };
    const members = this.#membership.snapshot().filter((member) => !avoid.includes(member.nodeId) && fits(demand, member.resources));
    const chosen = members.find((member) => fits(demand, roomOf(member))) ?? members[0];
    if (!chosen) {
      const reason: ActorDeathReason = restart
        ? { kind: 'node-died', nodeId: avoid[0] ?? '' }
        : { kind: 'infeasible', detail: `it needs ${describeResources(demand)}, and no node of the cluster offers that` };
      this.#died(entry, toWireFailure(new ActorDiedError(actor.cls.name, reason, entry.restarts)), undefined);
      return;
    }
    entry.placedOn = chosen.nodeId;
    // A node that cannot be sent to is leaving: its departure places the actor again.
    this.#membership.send(chosen.nodeId, { type: 'actor-host', origin: entry.origin, actor, restarts: entry.restarts });
  }

  /** Takes the actor's name; false (and it is dead, its maker told) when another live actor has it. */
  #claimName(entry: Entry, host: string | undefined): boolean {
    const name = entry.actor.options.name;
    if (name === undefined) return true;
    const other = this.#names.get(name);
    if (other !== undefined && other !== entry.actor.id && this.#live.has(other)) {
      const failure = toWireFailure(new ActorDiedError(entry.actor.cls.name, { kind: 'name-taken', name }, 0));
      this.#remember(entry.actor.id, failure);
      if (host !== undefined) this.#membership.send(host, { type: 'actor-end', actorId: entry.actor.id, failure, restart: false });
      if (host !== entry.origin) this.#membership.send(entry.origin, { type: 'actor-died', actorId: entry.actor.id, failure });
      return false;
    }
    this.#names.set(name, entry.actor.id);
    return true;
  }

  /** The actor is dead for good: locates say why, its name is free, its maker is told (unless it is `told`). */
  #died(entry: Entry, failure: WireFailure, told: string | undefined): void {
    const { actor } = entry;
    this.#live.delete(actor.id);
    const name = actor.options.name;
    if (name !== undefined && this.#names.get(name) === actor.id) this.#names.delete(name);
    this.#remember(actor.id, failure);
    this.#lastDead.unshift({ ...this.#listing(entry), state: 'dead', reason: failure.message, at: Date.now() });
    if (this.#lastDead.length > DIED_LISTED) this.#lastDead.pop();
    for (const waiter of entry.waiting.splice(0)) waiter({ failure });
    if (entry.origin !== told) this.#membership.send(entry.origin, { type: 'actor-died', actorId: actor.id, failure });
  }

  /** The live actors, then the last that died (newest first): the dashboard's table. */
  list(): ActorListing[] {
    return [...[...this.#live.values()].map((entry) => this.#listing(entry)), ...this.#lastDead];
  }

  #listing(entry: Entry): ActorListing {
    const { actor } = entry;
    const node = entry.host ?? entry.placedOn ?? null;
    return { id: actor.id, className: actor.cls.name, name: actor.options.name ?? null, state: entry.host === undefined ? 'placing' : 'alive', node, origin: entry.origin, detached: actor.options.detached, restarts: entry.restarts };
  }

  #remember(actorId: string, failure: WireFailure): void {
    this.#dead.set(actorId, failure);
    for (const oldest of this.#dead.keys()) {
      if (this.#dead.size <= DEAD_MEMORY) break;
      this.#dead.delete(oldest);
      this.#lostWith.delete(oldest);
    }
  }

  #answerFor(entry: Entry): ActorAnswer {
    const nodeId = entry.host!;
    const { actor } = entry;
    return { actor: { id: actor.id, className: actor.cls.name, methods: actor.methods, nodeId, dataUrl: this.#membership.dataUrl(nodeId) ?? '' } };
  }
}
