const NOBODY: ReadonlySet<string> = new Set();

/**
 * The head's object directory: which nodes hold a copy of each segment object, as the nodes
 * report it (`objects` messages). Placement prefers nodes holding a task's arguments; `locate`
 * and the sources of a forwarded task list the holders. An object nobody holds is forgotten.
 *
 * @example
 * ```ts
 * const directory = new ObjectDirectory();
 * directory.record('nodeA', [['object1', 4096]], []);
 * directory.holds('object1', 'nodeA'); // true
 * directory.forget('nodeA'); // it left: it holds nothing any more
 * ```
 */
export class ObjectDirectory {
  readonly #holders = new Map<string, Set<string>>();

  /** `nodeId` now holds the `added` objects (id, size) and no longer the `removed` ones. */
  record(nodeId: string, added: readonly (readonly [string, number])[], removed: readonly string[]): void {
    for (const [id] of added) {
      let holders = this.#holders.get(id);
      if (!holders) this.#holders.set(id, (holders = new Set()));
      holders.add(nodeId);
    }
    for (const id of removed) this.#drop(id, nodeId);
  }

  /** `nodeId` left the cluster: its copies are gone with it. */
  forget(nodeId: string): void {
    // Deleting the entry being visited is safe in a Map iteration.
    for (const id of this.#holders.keys()) this.#drop(id, nodeId);
  }

  /** Whether `nodeId` holds a copy of `objectId`. */
  holds(objectId: string, nodeId: string): boolean {
    return this.#holders.get(objectId)?.has(nodeId) ?? false;
  }

  /** The nodes holding a copy of `objectId`, in the order they reported it. */
  holders(objectId: string): ReadonlySet<string> {
    return this.#holders.get(objectId) ?? NOBODY;
  }

  /** How many objects at least one node holds. */
  get size(): number {
    return this.#holders.size;
  }

  #drop(objectId: string, nodeId: string): void {
    const holders = this.#holders.get(objectId);
    if (!holders) return;
    holders.delete(nodeId);
    if (holders.size === 0) this.#holders.delete(objectId);
  }
}
