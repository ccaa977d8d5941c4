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

/** The node's word on a stream: items below `upTo` may be yielded; `stop`: end the generator. */
export interface StreamCredit {
  readonly upTo: number;
  readonly stop: boolean;
}

/** Asks the node whether item `index` of the stream of task `taskId` may be yielded (see `stream-wait`). */
export type AskCredit = (taskId: number, index: number) => Promise<StreamCredit>;

/** For a process that cannot ask its node: a producer past its window fails with this. */
export const noCredit: AskCredit = () => Promise.reject(new Error('This worker cannot ask its node for credit to stream more items (this is a bug)'));

/** Told when a producer waits for its consumer and when it goes on (an actor frees its slot meanwhile). */
export interface PauseHooks {
  paused(): void;
  /** Resolves once the producer may go on (an actor's slot is free again). */
  resumed(): void | Promise<void>;
}

/** Credits that came before their stream started (a queued task or call), kept at most this many. */
const EARLY_CREDITS = 1024;

/**
 * The streams a worker process produces: each streaming task (or actor method) drains its async
 * generator, storing every item as an object of its own and reporting it (`stream-item`) as soon
 * as it is yielded. It yields freely up to the credit it knows of (the window at first); there it
 * asks the node (`stream-wait`), which answers once the consumer has taken enough, so a slow
 * consumer pauses the producer (and the node lends the worker's CPU meanwhile). A `credit` with
 * `stop`, which may come before the stream starts, ends the generator at its next `yield` (its
 * `finally` blocks run).
 */
export class StreamProducers {
  readonly #io: TaskIO;
  readonly #ask: AskCredit;
  readonly #streams = new Map<number, { upTo: number; stop: boolean }>();
  readonly #early = new Map<number, StreamCredit>();

  constructor(io: TaskIO, ask: AskCredit) {
    this.#io = io;
    this.#ask = ask;
  }

  /** The node's `credit` for stream `taskId` (kept if the stream has not started yet). */
  credit(taskId: number, upTo: number, stop: boolean): void {
    const stream = this.#streams.get(taskId);
    if (stream) {
      stream.upTo = Math.max(stream.upTo, upTo);
      stream.stop ||= stop;
      return;
    }
    const early = this.#early.get(taskId);
    this.#early.set(taskId, { upTo: Math.max(upTo, early?.upTo ?? 0), stop: stop || (early?.stop ?? false) });
    // A credit for a stream that ended just before it came is never picked up: the oldest go.
    if (this.#early.size > EARLY_CREDITS) this.#early.delete(this.#early.keys().next().value!);
  }

  /**
   * The rest of task (or call) `taskId` once its function returned `result`: drained as a stream
   * if it is one and the task streams (`window` set), else awaited and stored; either way its
   * outcome is reported (`done` or `failed`).
   */
  async settle(taskId: number, returnId: string, result: unknown, window: number | undefined, pause?: PauseHooks): Promise<void> {
    try {
      if (window !== undefined && isAsyncIterator(result)) return await this.produce(taskId, returnId, result, window, pause);
      result = await result;
    } catch (error) {
      this.#io.fail(taskId, error);
      return;
    }
    await this.#io.finish(taskId, returnId, result);
  }

  /**
   * Drains `iterator` for task `taskId`, then reports its end: `done` with the count of items
   * (its return value is not kept), or `failed` with its error after the items before it.
   */
  async produce(taskId: number, returnId: string, iterator: AsyncIterator<unknown>, window: number, pause?: PauseHooks): Promise<void> {
    const early = this.#early.get(taskId);
    this.#early.delete(taskId);
    const stream = { upTo: Math.max(window, early?.upTo ?? 0), stop: early?.stop ?? false };
    this.#streams.set(taskId, stream);
    let index = 0;
    try {
      for (;;) {
        if (!stream.stop && index >= stream.upTo) {
          pause?.paused();
          try {
            const credit = await this.#ask(taskId, index);
            stream.upTo = Math.max(stream.upTo, credit.upTo);
            stream.stop ||= credit.stop;
          } finally {
            await pause?.resumed();
          }
          continue;
        }
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
