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

/** An item of a stream as {@link ObjectStream.refs} gives it: its ref (wrapped: a ref is a thenable). */
export interface StreamItem<T> {
  readonly ref: ObjectRef<T>;
  /** Its position in the stream, from 0. */
  readonly index: number;
}

/**
 * The items of a streaming task or actor method (an async generator), each available as soon as
 * it is yielded: `for await (const value of stream)` gives the values (a large one as a zero-copy
 * view, as `get` does); `for await (const { ref } of stream.refs())` gives their refs, to pass to
 * other tasks without reading them here. The producer runs at most `streamWindow` items ahead of
 * the consumer, then waits at its `yield`. An error in the generator ends the stream with that
 * error (a TaskError) after the items before it. Leaving the loop early (`break`, `return`, a
 * throw) or calling {@link ObjectStream.return} stops the producer.
 *
 * @example
 * ```ts
 * const chunks = remote(async function* (n: number) { for (let i = 0; i < n; i++) yield new Float64Array(1e6).fill(i); });
 * for await (const chunk of chunks(10)) console.log(chunk[0]);
 * for await (const { ref } of chunks(10).refs()) await sum(ref); // the chunks never come here
 * ```
 */
export class ObjectStream<T = unknown> implements AsyncIterableIterator<T> {
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

  /** The next item's value, once the producer yielded it. */
  async next(): Promise<IteratorResult<T, undefined>> {
    const item = await this.nextRef();
    if (item === undefined) return { done: true, value: undefined };
    return { done: false, value: await this.#runtime.get(item.ref) };
  }

  /** The next item's ref (wrapped), once the producer yielded it; undefined after the last. */
  async nextRef(): Promise<StreamItem<T> | undefined> {
    if (this.#done) return undefined;
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
      return undefined;
    }
    return { ref: item.ref as ObjectRef<T>, index };
  }

  /** The items as refs: `for await (const { ref } of stream.refs())`. Leaving that loop stops the stream too. */
  refs(): AsyncIterableIterator<StreamItem<T>> {
    const iterator: AsyncIterableIterator<StreamItem<T>> = {
      [Symbol.asyncIterator]: () => iterator,
      next: async () => {
        const item = await this.nextRef();
        return item === undefined ? { done: true, value: undefined } : { done: false, value: item };
      },
      return: async () => {
        await this.return();
        return { done: true, value: undefined };
      },
    };
    return iterator;
  }

  /** Stops the stream: the producer ends at its next `yield`, items not taken are dropped. */
  async return(): Promise<IteratorResult<T, undefined>> {
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
