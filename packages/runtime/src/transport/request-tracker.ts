/** Options of {@link RequestTracker.request}. */
export interface RequestOptions {
  /** Aborts the request: it rejects with the signal's reason (a `TimeoutError` for `AbortSignal.timeout`). */
  readonly signal?: AbortSignal | undefined;
}

interface Pending {
  resolve(value: unknown): void;
  reject(error: unknown): void;
  cleanup(): void;
}

/**
 * Request/response correlation over a message connection: each request gets a fresh id, and the
 * answer that carries the id settles its promise. The one place where requests wait, time out
 * (through an `AbortSignal`) and fail together when their connection goes away.
 *
 * @example
 * ```ts
 * const requests = new RequestTracker();
 * const answer = requests.request<Locations>((requestId) => link.send({ type: 'locate', requestId, ids }), {
 *   signal: AbortSignal.timeout(10_000),
 * });
 * // on each answer: requests.answer(message.requestId, message.holders);
 * // when the connection drops: requests.failAll(new HeadLostError());
 * ```
 */
export class RequestTracker {
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;

  /** Requests sent and not answered yet. */
  get size(): number {
    return this.#pending.size;
  }

  /**
   * Sends a request (`send` receives its id) and resolves with its answer. If `send` throws, the
   * request is forgotten and the promise rejects with that error.
   */
  request<T>(send: (requestId: number) => void, options: RequestOptions = {}): Promise<T> {
    const { signal } = options;
    if (signal?.aborted) return Promise.reject(signal.reason);
    const requestId = this.#nextId++;
    return new Promise<T>((resolve, reject) => {
      const onAbort = () => {
        this.#pending.delete(requestId);
        reject(signal!.reason);
      };
      const pending: Pending = {
        resolve: resolve as (value: unknown) => void,
        reject,
        cleanup: () => signal?.removeEventListener('abort', onAbort),
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#pending.set(requestId, pending);
      try {
        send(requestId);
      } catch (error) {
        this.#settle(requestId)?.reject(error);
      }
    });
  }

  /**
   * Settles request `requestId` with `value` (an `Error` value rejects). Returns false for an id
   * that is not pending: answered already, aborted, or never sent.
   */
  answer(requestId: number, value: unknown): boolean {
    const pending = this.#settle(requestId);
    if (!pending) return false;
    if (value instanceof Error) pending.reject(value);
    else pending.resolve(value);
    return true;
  }

  /** Rejects every pending request with `error` (the connection closed). */
  failAll(error: unknown): void {
    const all = [...this.#pending.keys()];
    for (const requestId of all) this.#settle(requestId)?.reject(error);
  }

  #settle(requestId: number): Pending | undefined {
    const pending = this.#pending.get(requestId);
    if (!pending) return undefined;
    this.#pending.delete(requestId);
    pending.cleanup();
    return pending;
  }
}
