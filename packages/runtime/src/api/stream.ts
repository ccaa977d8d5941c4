import { ObjectRef } from '@shoal/protocol';
import type { Runtime } from './runtime.js';

/** Streams dropped without being read to their end or closed: their producers are stopped. */
const dropped = new FinalizationRegistry<{ runtime: Runtime; returnId: string }>(({ runtime, returnId }) => {
  try {
    runtime.closeStream(returnId);
  } catch {
    // The runtime is gone already: so is the stream.
  }
});

/**
 * The items of a streaming task or actor method (an async generator), as refs, each available as
 * soon as it is yielded: consume them with `for await`. The producer runs at most `streamWindow`
 * items ahead of the consumer, then waits at its `yield`. An error in the generator ends the
 * stream with that error (a TaskError) after the items before it. Leaving the loop early
 * (`break`, `return`, a throw) or calling {@link ObjectRefStream.return} stops the producer.
 *
 * @example
 * ```ts
 * const chunks = remote(async function* (n: number) { for (let i = 0; i < n; i++) yield new Float64Array(1e6).fill(i); });
 * for await (const ref of chunks(10)) console.log((await ref)[0]);
 * ```
 */
export class ObjectRefStream<T = unknown> implements AsyncIterableIterator<ObjectRef<T>> {
  /** Settles when the producer ends: its value is the number of items yielded (or the generator's error). */
  readonly completed: ObjectRef<number>;
  readonly #runtime: Runtime;
  #index = 0;
  #done = false;
  readonly #token = {};

  /** @internal Made by a streaming remote function or actor method. */
  constructor(runtime: Runtime, completed: ObjectRef<number>) {
    this.#runtime = runtime;
    this.completed = completed;
    dropped.register(this, { runtime, returnId: completed.id }, this.#token);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  /** The next item's ref, once the producer yielded it. */
  async next(): Promise<IteratorResult<ObjectRef<T>, undefined>> {
    if (this.#done) return { done: true, value: undefined };
    const index = this.#index++;
    let item: { readonly ref: ObjectRef } | null;
    try {
      item = await this.#runtime.streamNext(this.completed.id, index);
    } catch (error) {
      this.#finish();
      throw error;
    }
    if (item === null) {
      this.#finish();
      return { done: true, value: undefined };
    }
    return { done: false, value: item.ref as ObjectRef<T> };
  }

  /** Stops the stream: the producer ends at its next `yield`, items not taken are dropped. */
  async return(): Promise<IteratorResult<ObjectRef<T>, undefined>> {
    if (!this.#done) {
      this.#finish();
      this.#runtime.closeStream(this.completed.id);
    }
    return { done: true, value: undefined };
  }

  #finish(): void {
    this.#done = true;
    dropped.unregister(this.#token);
  }
}

/** Whether `fn` is an async generator function (its calls stream). */
export function isAsyncGeneratorFunction(fn: unknown): boolean {
  return typeof fn === 'function' && Object.prototype.toString.call(fn) === '[object AsyncGeneratorFunction]';
}
