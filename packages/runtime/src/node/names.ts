import { ObjectFreedError, ObjectNotFoundError } from '@shoal/protocol';
import type { ObjectStore } from '@shoal/store';
import type { Peer } from './peer.js';

/** What a name is bound to now. */
export interface Binding {
  readonly id: string;
  readonly version: number;
}

type Listener = (binding: Binding) => void;

/**
 * Named objects of this node: each name is bound to one object at a time (held while bound),
 * with a version that counts rebindings, and watchers told of every new binding.
 */
export class NameRegistry {
  readonly #store: ObjectStore;
  readonly #names = new Map<string, Binding>();
  readonly #watchers = new Map<string, Set<Listener>>();
  /** Each peer's watches, by name: how to stop them. */
  readonly #peerWatches = new WeakMap<Peer, Map<string, () => void>>();

  constructor(store: ObjectStore) {
    this.#store = store;
  }

  /** The names bound to each object that has any. */
  namesById(): Map<string, string[]> {
    const byId = new Map<string, string[]>();
    for (const [name, binding] of this.#names) byId.set(binding.id, [...(byId.get(binding.id) ?? []), name]);
    return byId;
  }

  /** The current binding of `name`. */
  get(name: string): Binding | undefined {
    return this.#names.get(name);
  }

  /** The binding of `name`, or the ObjectNotFoundError a get of it is. */
  require(name: string): Binding {
    const binding = this.#names.get(name);
    if (!binding) {
      throw new ObjectNotFoundError(name, `no object is published under the name "${name}"; publish one with store.putNamed().`);
    }
    return binding;
  }

  /** Binds `name` to object `id` (holding it) and releases the object it was bound to; returns the new version. */
  bind(name: string, id: string): number {
    if (!this.#store.hold(id)) throw new ObjectFreedError(id, ` before it could be published as "${name}"`);
    const previous = this.#names.get(name);
    const binding = { id, version: (previous?.version ?? 0) + 1 };
    this.#names.set(name, binding);
    // Readers in the middle of a request keep the old version through their own refs and views.
    if (previous) this.#store.release(previous.id);
    for (const listener of [...(this.#watchers.get(name) ?? [])]) listener(binding);
    return binding.version;
  }

  /** Calls `listener` with every new binding of `name`; returns how to stop. */
  watch(name: string, listener: Listener): () => void {
    let listeners = this.#watchers.get(name);
    if (!listeners) this.#watchers.set(name, (listeners = new Set()));
    listeners.add(listener);
    return () => {
      listeners.delete(listener);
      if (listeners.size === 0) this.#watchers.delete(name);
    };
  }

  /** `peer` watches `name`: `send` gets the current binding (if any) now and every later one. */
  watchFor(peer: Peer, name: string, send: Listener): void {
    if (peer.watching.has(name)) return;
    peer.watching.add(name);
    const current = this.#names.get(name);
    if (current) send(current);
    let stops = this.#peerWatches.get(peer);
    if (!stops) this.#peerWatches.set(peer, (stops = new Map()));
    stops.set(name, this.watch(name, send));
  }

  unwatchFor(peer: Peer, name: string): void {
    peer.watching.delete(name);
    const stops = this.#peerWatches.get(peer);
    stops?.get(name)?.();
    stops?.delete(name);
  }

  /** The peer went away: its watches stop. */
  forget(peer: Peer): void {
    for (const name of peer.watching) this.unwatchFor(peer, name);
  }

  /** Unbinds every name, releasing the objects (the node is closing). */
  clear(): void {
    for (const { id } of this.#names.values()) this.#store.release(id);
    this.#names.clear();
  }
}
