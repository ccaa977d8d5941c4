import { ObjectFreedError } from '@shoal/protocol';

/** What the store knows of an object id. */
export type ObjectStatus =
  | { readonly state: 'pending' }
  | {
      readonly state: 'ready';
      readonly size: number;
      readonly bytes: Uint8Array | undefined;
      /** Ids of the objects whose refs are nested in this one. */
      readonly contains: readonly string[];
    }
  | { readonly state: 'failed'; readonly error: Error }
  | { readonly state: 'freed' };

/** One object the store knows: where it is in its life, and what holds it. */
export interface Entry {
  state: 'pending' | 'ready' | 'failed';
  size: number;
  /** The serialized object, for inline objects; undefined for segment objects. */
  bytes: Uint8Array | undefined;
  /** Why the object will never exist (the failure of the task that should have made it). */
  error: Error | undefined;
  /**
   * Live ObjectRef instances in this process, holds by other processes and by pending tasks,
   * plus stored objects that contain a ref to it (see ref-counts.ts).
   */
  count: number;
  /** Ids of objects this one contains refs to, each counted once in that object's `count`. */
  contains: readonly string[];
  /**
   * Callbacks waiting for a pending object to settle: one function or a list (most pending
   * objects have one waiter at most, and a million queued tasks would pay ~100 bytes each for a
   * list of one).
   */
  waiters: Waiter | Waiter[] | undefined;
  /** A ready segment object written to the spill directory: not in memory until restored. */
  spilled?: boolean;
}

/** Called once the entry settles (ready or failed: a pending entry removed fails as freed). */
export type Waiter = (entry: Readonly<Entry>) => void;

/** Waiters taken from a settled entry, for {@link wake}. */
export interface Woken {
  readonly entry: Entry;
  readonly waiters: Waiter | Waiter[];
}

// Shared by every entry that contains no refs (most of them): never changed, only replaced.
const NO_IDS: readonly string[] = Object.freeze([]);

/**
 * The store's objects by id and the state machine of each: `pending` (a task will make it) →
 * `ready` or `failed`; an id absent from the table is freed. The table decides nothing about
 * counts, capacity or files: the store does, around it.
 */
export class ObjectTable {
  readonly #entries = new Map<string, Entry>();

  /** Number of objects known (pending, ready or failed). */
  get size(): number {
    return this.#entries.size;
  }

  get(id: string): Entry | undefined {
    return this.#entries.get(id);
  }

  /** Every object known, with its entry (for listings: `shoal memory`). */
  entries(): IterableIterator<[string, Readonly<Entry>]> {
    return this.#entries.entries();
  }

  has(id: string): boolean {
    return this.#entries.has(id);
  }

  /** Adds an object that a task will produce. */
  expect(id: string): void {
    if (this.#entries.has(id)) throw new Error(`object ${id} already exists`);
    this.#entries.set(id, { state: 'pending', size: 0, bytes: undefined, error: undefined, count: 0, contains: NO_IDS, waiters: undefined });
  }

  /**
   * Makes `id` ready: a new entry, or the pending `existing` one settled. Returns the waiters of
   * a settled entry, for the caller to wake once it has decided whether the object stays.
   */
  ready(id: string, existing: Entry | undefined, size: number, bytes: Uint8Array | undefined, contains: readonly string[]): Woken | undefined {
    if (!existing) {
      this.#entries.set(id, { state: 'ready', size, bytes, error: undefined, count: 0, contains, waiters: undefined });
      return undefined;
    }
    existing.state = 'ready';
    existing.size = size;
    existing.bytes = bytes;
    existing.contains = contains;
    return takeWaiters(existing);
  }

  /** Settles a pending entry as failed; returns its waiters (see {@link ObjectTable.ready}). */
  fail(entry: Entry, error: Error): Woken | undefined {
    entry.state = 'failed';
    entry.error = error;
    return takeWaiters(entry);
  }

  /** Resolves once the object is no longer pending (ready, failed or freed). */
  whenSettled(id: string): Promise<void> {
    const entry = this.#entries.get(id);
    if (!entry || entry.state !== 'pending') return Promise.resolve();
    return new Promise((resolve) => addWaiter(entry, () => resolve()));
  }

  /** Calls `callback` once the object is no longer pending (at once if it is not). */
  onSettled(id: string, callback: () => void): void {
    const entry = this.#entries.get(id);
    if (!entry || entry.state !== 'pending') callback();
    else addWaiter(entry, callback);
  }

  /**
   * Calls `waiter` with the entry once the pending object `id` settles, and returns true; false
   * (and no call) when `id` is not pending. One function may wait on many entries (a get of many
   * refs): nothing is made per entry but its place in the entry.
   */
  whenPending(id: string, waiter: Waiter): boolean {
    const entry = this.#entries.get(id);
    if (!entry || entry.state !== 'pending') return false;
    addWaiter(entry, waiter);
    return true;
  }

  /**
   * Resolves once `want` of `ids` are no longer pending (ready, failed or freed), or after
   * `timeoutMs`, with each position's state then: 1 settled, 0 still pending. An id given twice
   * counts twice. Enough settled already: at once, and nothing is registered. Otherwise one
   * function is put on each pending entry (once per position) and taken off every entry still
   * pending when the wait ends: nothing outlives the call. It wakes once, a microtask after the
   * `want`-th settles, so the rest of a batch of results settling in the same turn is in it.
   * The work is one table lookup per id and one waiter per pending id, whatever else waits.
   */
  waitSettled(ids: readonly string[], want: number, timeoutMs: number | null): Promise<Uint8Array> {
    const count = ids.length;
    // The pending entries by position (undefined: settled already); an entry never goes back
    // to pending (a new object of the same id is a new entry), so this also reads the result.
    const watched = new Array<Entry | undefined>(count);
    let settled = 0;
    for (let i = 0; i < count; i++) {
      const entry = this.#entries.get(ids[i]!);
      if (entry !== undefined && entry.state === 'pending') watched[i] = entry;
      else settled += 1;
    }
    if (settled >= want) return Promise.resolve(settledFlags(watched));
    return new Promise((resolve) => {
      let done = false;
      let timer: NodeJS.Timeout | undefined;
      const finish = (): void => {
        if (done) return;
        done = true;
        if (timer !== undefined) clearTimeout(timer);
        for (let i = 0; i < count; i++) {
          const entry = watched[i];
          if (entry !== undefined && entry.state === 'pending') removeWaiter(entry, waiter);
        }
        resolve(settledFlags(watched));
      };
      const waiter: Waiter = () => {
        if (!done && ++settled === want) queueMicrotask(finish);
      };
      for (let i = 0; i < count; i++) {
        const entry = watched[i];
        if (entry !== undefined) addWaiter(entry, waiter);
      }
      if (timeoutMs !== null) timer = setTimeout(finish, timeoutMs);
    });
  }

  isPending(id: string): boolean {
    return this.#entries.get(id)?.state === 'pending';
  }

  status(id: string): ObjectStatus {
    const entry = this.#entries.get(id);
    if (!entry) return { state: 'freed' };
    if (entry.state === 'pending') return { state: 'pending' };
    if (entry.state === 'failed') return { state: 'failed', error: entry.error! };
    return { state: 'ready', size: entry.size, bytes: entry.bytes, contains: entry.contains };
  }

  /**
   * Removes `id` and returns what it was. A pending object removed now fails its waiters with
   * ObjectFreedError (they are woken before this returns).
   */
  remove(id: string): Entry | undefined {
    const entry = this.#entries.get(id);
    if (!entry) return undefined;
    this.#entries.delete(id);
    if (entry.state === 'pending') wake(this.fail(entry, new ObjectFreedError(id)));
    return entry;
  }

  clear(): void {
    this.#entries.clear();
  }
}

function addWaiter(entry: Entry, waiter: Waiter): void {
  const waiters = entry.waiters;
  if (waiters === undefined) entry.waiters = waiter;
  else if (typeof waiters === 'function') entry.waiters = [waiters, waiter];
  else waiters.push(waiter);
}

/** Takes one `waiter` off a pending entry (the last one put there: one per position of a wait). */
function removeWaiter(entry: Entry, waiter: Waiter): void {
  const waiters = entry.waiters;
  if (waiters === waiter) entry.waiters = undefined;
  else if (waiters !== undefined && typeof waiters !== 'function') {
    const at = waiters.lastIndexOf(waiter);
    if (at < 0) return;
    waiters.splice(at, 1);
    // Back to the forms addWaiter makes: none, or one function.
    if (waiters.length <= 1) entry.waiters = waiters[0];
  }
}

/** 1 for each position of `watched` no longer pending (see {@link ObjectTable.waitSettled}). */
function settledFlags(watched: readonly (Entry | undefined)[]): Uint8Array {
  const flags = new Uint8Array(watched.length);
  for (let i = 0; i < watched.length; i++) {
    const entry = watched[i];
    if (entry === undefined || entry.state !== 'pending') flags[i] = 1;
  }
  return flags;
}

function takeWaiters(entry: Entry): Woken | undefined {
  const waiters = entry.waiters;
  if (waiters === undefined) return undefined;
  entry.waiters = undefined;
  return { entry, waiters };
}

/** Calls each waiter returned by {@link ObjectTable.ready} or {@link ObjectTable.fail}, in the order they came. */
export function wake(woken: Woken | undefined): void {
  if (woken === undefined) return;
  const { entry, waiters } = woken;
  if (typeof waiters === 'function') waiters(entry);
  else for (const waiter of waiters) waiter(entry);
}
