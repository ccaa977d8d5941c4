import type { TimelineSpan } from '@shoal/protocol';

/** Spans a node keeps by default: at ~60 bytes each, a few MB however long it runs. */
export const TIMELINE_KEPT = 50_000;

/**
 * What ran on a node and when: its last task runs and pulls, in a ring of fixed size (the oldest
 * go first), for `shoal timeline`. Kept as columns of numbers beside the strings the task already
 * has, so recording a task run allocates nothing. Times are `performance.now()` values, turned
 * into milliseconds since the epoch when read.
 */
export class Timeline {
  readonly #capacity: number;
  readonly #start: Float64Array;
  readonly #duration: Float64Array;
  readonly #pid: Int32Array;
  /** Bit 0: a pull (else a task run); bit 1: failed. */
  readonly #flags: Uint8Array;
  readonly #bytes: Float64Array;
  readonly #name: string[];
  readonly #id: string[];
  readonly #from: (string | undefined)[];
  /** Spans recorded so far: the next goes at `#count % capacity`. */
  #count = 0;

  constructor(capacity = TIMELINE_KEPT) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`expected the timeline's capacity to be a positive integer, got ${capacity}`);
    this.#capacity = capacity;
    this.#start = new Float64Array(capacity);
    this.#duration = new Float64Array(capacity);
    this.#pid = new Int32Array(capacity);
    this.#flags = new Uint8Array(capacity);
    this.#bytes = new Float64Array(capacity);
    this.#name = new Array<string>(capacity);
    this.#id = new Array<string>(capacity);
    this.#from = new Array<string | undefined>(capacity);
  }

  /** A task run of `name` (its return `id`) on worker `pid`, from `startedAt` (`performance.now()`) to now. */
  taskRan(name: string, id: string, pid: number, startedAt: number, failed: boolean): void {
    const at = this.#next();
    this.#name[at] = name;
    this.#id[at] = id;
    this.#from[at] = undefined;
    this.#start[at] = startedAt;
    this.#duration[at] = performance.now() - startedAt;
    this.#pid[at] = pid;
    this.#flags[at] = failed ? 2 : 0;
    this.#bytes[at] = 0;
  }

  /** A pull of object `id` (`bytes`) from the data server `from`, from `startedAt` to now. */
  pulled(id: string, bytes: number, from: string, startedAt: number): void {
    const at = this.#next();
    this.#name[at] = 'pull';
    this.#id[at] = id;
    this.#from[at] = from;
    this.#start[at] = startedAt;
    this.#duration[at] = performance.now() - startedAt;
    this.#pid[at] = 0;
    this.#flags[at] = 1;
    this.#bytes[at] = bytes;
  }

  /** The spans kept that ended at or after `sinceEpochMs` (milliseconds since the epoch), oldest first. */
  since(sinceEpochMs = 0): TimelineSpan[] {
    const origin = performance.timeOrigin;
    const spans: TimelineSpan[] = [];
    const kept = Math.min(this.#count, this.#capacity);
    for (let n = this.#count - kept; n < this.#count; n++) {
      const at = n % this.#capacity;
      const start = origin + this.#start[at]!;
      const duration = this.#duration[at]!;
      if (start + duration < sinceEpochMs) continue;
      const flags = this.#flags[at]!;
      const span = { kind: flags & 1 ? 'pull' : 'task', name: this.#name[at]!, id: this.#id[at]!, start, duration, pid: this.#pid[at]!, failed: (flags & 2) !== 0 } as const;
      spans.push(flags & 1 ? { ...span, bytes: this.#bytes[at]!, from: this.#from[at]! } : span);
    }
    return spans;
  }

  #next(): number {
    const at = this.#count % this.#capacity;
    this.#count += 1;
    return at;
  }
}
