import { newObjectId } from '@shoal/protocol';
import type { TaskIO } from './task-io.js';

/** Whether `value` is what an async generator function returned (an async iterator to drain). */
export function isAsyncIterator(value: unknown): value is AsyncIterator<unknown> & AsyncIterable<unknown> {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as AsyncIterable<unknown>)[Symbol.asyncIterator] === 'function' &&
    typeof (value as AsyncIterator<unknown>).next === 'function'
  );
}

/**
 * The streams a worker process produces: each streaming task (or actor method) drains its async
 * generator, storing every item as an object of its own and reporting it (`stream-item`) as soon
 * as it is yielded; at most `window` items run ahead of what the consumer took (the node sends
 * `credit` as it takes them), so a slow consumer pauses the producer. A `credit` with `stop`
 * ends the generator (its `finally` blocks run).
 */
export class StreamProducers {
  readonly #io: TaskIO;
  readonly #streams = new Map<number, { upTo: number; stop: boolean; wake: (() => void) | undefined }>();

  constructor(io: TaskIO) {
    this.#io = io;
  }

  /** The node's `credit` for stream `taskId`. */
  credit(taskId: number, upTo: number, stop: boolean): void {
    const stream = this.#streams.get(taskId);
    if (!stream) return;
    stream.upTo = Math.max(stream.upTo, upTo);
    stream.stop ||= stop;
    const wake = stream.wake;
    stream.wake = undefined;
    wake?.();
  }

  /**
   * Drains `iterator` for task `taskId`, then reports its end: `done` with the count of items
   * (its return value is not kept), or `failed` with its error after the items before it.
   */
  async produce(taskId: number, returnId: string, iterator: AsyncIterator<unknown>, window: number): Promise<void> {
    const stream = { upTo: window, stop: false, wake: undefined as (() => void) | undefined };
    this.#streams.set(taskId, stream);
    let index = 0;
    try {
      for (;;) {
        while (index >= stream.upTo && !stream.stop) await new Promise<void>((resolve) => (stream.wake = resolve));
        if (stream.stop) {
          await iterator.return?.();
          break;
        }
        const next = await iterator.next();
        if (next.done) break;
        const id = newObjectId();
        const result = await this.#io.store(id, next.value);
        this.#io.connection.send({ type: 'stream-item', taskId, index, id, result });
        index += 1;
      }
    } catch (error) {
      this.#streams.delete(taskId);
      this.#io.fail(taskId, error);
      return;
    }
    this.#streams.delete(taskId);
    await this.#io.finish(taskId, returnId, index);
  }
}
