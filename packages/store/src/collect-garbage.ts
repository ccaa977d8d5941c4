import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

let gc: (() => void) | undefined;

/**
 * Runs a full garbage collection now, synchronously, without `--expose-gc` on the command line:
 * the flag is set at run time and `gc` taken from a fresh context (the known way; Node 20+). The
 * store calls it only when an object does not fit, as Java's direct-buffer allocator calls
 * `System.gc()` before failing: dropped refs then count out, and their objects go.
 */
export function collectGarbage(): void {
  if (!gc) {
    setFlagsFromString('--expose-gc');
    gc = runInNewContext('gc') as () => void;
  }
  gc();
}

/**
 * Resolves once the finalization callbacks a collection queued have run: V8 runs them in a task
 * after the collection (a timer turn, then a check turn here), not within it. Refs counted by
 * their finalizers count out by then.
 */
export async function afterFinalizers(): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, 0));
  await new Promise((resolve) => setImmediate(resolve));
}

/**
 * How often a collection may run while collections free nothing: each is a full GC (in every
 * process, for a collection round), so a store that is really full must not pay one per refused
 * put. One that freed something may run again at once.
 */
export class CollectionThrottle {
  readonly #intervalMs: number;
  #last = Number.NEGATIVE_INFINITY;
  #freed = false;

  constructor(intervalMs = 100) {
    this.#intervalMs = intervalMs;
  }

  /** Whether a collection may run now. */
  due(): boolean {
    return this.#freed || Date.now() - this.#last >= this.#intervalMs;
  }

  /** A collection ran now (or finished), and whether it freed anything. */
  ran(freed: boolean): void {
    this.#last = Date.now();
    this.#freed = freed;
  }
}
