// A flood of refused connections must not become a flood of log lines: the first of a kind is
// logged at once, the rest of its burst are counted and summed up in one line per window.

/** The warn of runtime's `Logger` (transport/ imports nothing of the runtime, so it is spelled out). */
export interface WarnLogger {
  readonly warn: (fields: Readonly<Record<string, unknown>>, message: string) => void;
}

/**
 * Logs a warning once per burst and kind (`key`): the first at once, then at most one line per
 * `windowMs` saying how many more there were.
 *
 * @example
 * ```ts
 * const log = new BurstLog(logger);
 * for (let i = 0; i < 1000; i++) log.warn('per source', { remote }, `refused a connection from ${remote}`);
 * // one line now, and 10 s later: "… (and 999 more like it in the last 10 s)"
 * ```
 */
export class BurstLog {
  readonly #logger: WarnLogger;
  readonly #windowMs: number;
  readonly #bursts = new Map<string, { more: number; last: string; fields: Readonly<Record<string, unknown>>; timer: NodeJS.Timeout }>();

  constructor(logger: WarnLogger, windowMs = 10_000) {
    this.#logger = logger;
    this.#windowMs = windowMs;
  }

  warn(key: string, fields: Readonly<Record<string, unknown>>, message: string): void {
    const burst = this.#bursts.get(key);
    if (burst) {
      burst.more += 1;
      burst.last = message;
      burst.fields = fields;
      return;
    }
    this.#logger.warn(fields, message);
    this.#open(key);
  }

  /** Stops the windows' timers (what is still counted is logged now). */
  close(): void {
    for (const key of [...this.#bursts.keys()]) this.#flush(key, false);
  }

  #open(key: string): void {
    const timer = setTimeout(() => this.#flush(key, true), this.#windowMs);
    timer.unref();
    this.#bursts.set(key, { more: 0, last: '', fields: {}, timer });
  }

  #flush(key: string, reopen: boolean): void {
    const burst = this.#bursts.get(key)!;
    clearTimeout(burst.timer);
    this.#bursts.delete(key);
    if (burst.more === 0) return;
    this.#logger.warn({ ...burst.fields, repeated: burst.more }, `${burst.last} (and ${burst.more - 1} more like it in the last ${this.#windowMs / 1000} s)`);
    // The burst goes on while lines keep coming: the next window counts again.
    if (reopen) this.#open(key);
  }
}
