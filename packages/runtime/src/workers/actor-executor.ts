import { encodeError, type NodeToWorker } from '@shoal/protocol';
import { compileFunction } from '../api/compile-function.js';
import { isAsyncIterator, noCredit, StreamProducers } from './stream-producer.js';
import { TaskIO, type TaskIOOptions } from './task-io.js';

type Init = Extract<NodeToWorker, { type: 'actor-init' }>;
type Call = Extract<NodeToWorker, { type: 'call' }>;

/** Options of an {@link ActorExecutor}. */
export interface ActorExecutorOptions extends TaskIOOptions {
  /** Resolves `require()` in the class's code. */
  readonly require: NodeJS.Require;
}

/**
 * The actor living in this worker process: constructs the instance once (`actor-init`: the
 * class compiled from its source, the constructor given its arguments; a constructor that
 * returns a promise is awaited) and runs the calls the node sends (`call`) on it, in the order
 * sent, at most `maxConcurrency` at once (async methods interleave at their awaits; a sync method
 * runs alone whatever the limit; a streaming method waiting for its consumer does not count). An
 * exception fails its call only.
 */
export class ActorExecutor {
  readonly #io: TaskIO;
  readonly #streams: StreamProducers;
  readonly #require: NodeJS.Require;
  #instance: Record<string, unknown> | undefined;
  #maxConcurrency = 1;
  #streamWindow = 16;
  #running = 0;
  readonly #queue: Call[] = [];
  /** Paused streaming calls waiting for a slot to go on. */
  readonly #resuming: (() => void)[] = [];
  #head = 0;

  constructor(options: ActorExecutorOptions) {
    this.#io = new TaskIO(options);
    this.#streams = new StreamProducers(this.#io, options.askCredit ?? noCredit);
    this.#require = options.require;
  }

  /** Builds the instance; the node hears `actor-ready`, or `actor-failed` with the constructor's error. */
  async init(message: Init): Promise<void> {
    this.#maxConcurrency = message.maxConcurrency;
    this.#streamWindow = message.streamWindow;
    try {
      const Class = compileFunction(message.cls.source, this.#require) as unknown as new (...args: unknown[]) => unknown;
      const args = this.#io.args(message.args);
      let instance: unknown = new Class(...(Array.isArray(args) ? args : await args));
      // `constructor() { return (async () => { this.lib = await import('x'); return this; })(); }`
      if (isThenable(instance)) instance = await instance;
      if (typeof instance !== 'object' || instance === null) throw new TypeError(`The constructor of ${message.cls.name} did not make an object`);
      this.#instance = instance as Record<string, unknown>;
    } catch (error) {
      this.#io.connection.send({ type: 'actor-failed', error: encodeError(error) });
      return;
    }
    this.#io.connection.send({ type: 'actor-ready' });
    this.#next();
  }

  /** A call from the node: run now if the concurrency allows, else after those before it. */
  call(message: Call): void {
    this.#queue.push(message);
    this.#next();
  }

  /** The node cancels calls `taskIds`: those still queued here are dropped, and named in `recalled`. */
  recall(taskIds: readonly number[]): void {
    const wanted = new Set(taskIds);
    const recalled: number[] = [];
    for (let i = this.#head; i < this.#queue.length; i++) {
      if (!wanted.has(this.#queue[i]!.taskId)) continue;
      recalled.push(this.#queue[i]!.taskId);
      this.#queue.splice(i--, 1);
    }
    this.#io.connection.send({ type: 'recalled', taskIds: recalled });
  }

  /** The node's `credit` for a streaming method this actor runs. */
  credit(taskId: number, upTo: number, stop: boolean): void {
    this.#streams.credit(taskId, upTo, stop);
  }

  #next(): void {
    // Streaming calls going on after a pause come first: they were running before.
    while (this.#running < this.#maxConcurrency && this.#resuming.length > 0) {
      this.#running += 1;
      this.#resuming.shift()!();
    }
    while (this.#instance && this.#running < this.#maxConcurrency && this.#head < this.#queue.length) {
      const call = this.#queue[this.#head]!;
      this.#queue[this.#head++] = undefined as never;
      if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
        this.#queue.splice(0, this.#head);
        this.#head = 0;
      }
      this.#running += 1;
      let running: Promise<void> | undefined;
      try {
        // A sync method with an inline result is over before this returns: no promise at all.
        running = this.#run(call);
      } catch (error) {
        // Nothing of a call may escape into the connection's handler: it fails that call only.
        this.#io.fail(call.taskId, error);
      }
      if (running === undefined) this.#running -= 1;
      else
        void running.finally(() => {
          this.#running -= 1;
          this.#next();
        });
    }
  }

  /** A streaming call paused for its consumer gives its slot up: calls queued behind may run. */
  #paused(): void {
    this.#running -= 1;
    this.#next();
  }

  /** A paused streaming call goes on once a slot is free (before calls still queued). */
  #resumed(): void | Promise<void> {
    if (this.#running < this.#maxConcurrency) {
      this.#running += 1;
      return;
    }
    return new Promise<void>((resolve) => this.#resuming.push(resolve));
  }

  /** Runs a call; a promise only when something in it is asynchronous. */
  #run(call: Call): Promise<void> | undefined {
    const instance = this.#instance!;
    let result: unknown;
    try {
      const method = instance[call.method];
      if (typeof method !== 'function') throw new TypeError(`The actor has no method ${call.method}`);
      const args = this.#io.args(call.args);
      if (!Array.isArray(args)) return this.#runLater(call, method as (...a: unknown[]) => unknown, args);
      result = (method as (...a: unknown[]) => unknown).apply(instance, args);
      // (A value's own `then` getter may throw too: that fails this call.)
      if ((call.stream && isAsyncIterator(result)) || isThenable(result)) return this.#settle(call, result);
    } catch (error) {
      this.#io.fail(call.taskId, error);
      return undefined;
    }
    return this.#io.finish(call.taskId, call.returnId, result) ?? undefined;
  }

  /** A call whose arguments had to be asked for (spilled). */
  async #runLater(call: Call, method: (...a: unknown[]) => unknown, args: Promise<unknown[]>): Promise<void> {
    let result: unknown;
    try {
      result = method.apply(this.#instance, await args);
    } catch (error) {
      this.#io.fail(call.taskId, error);
      return;
    }
    await this.#settle(call, result);
  }

  /** The rest of a call whose method returned a promise or (a streaming call) an async iterator. */
  #settle(call: Call, result: unknown): Promise<void> {
    // While a streaming call waits for its consumer it does not count against maxConcurrency:
    // the consumer may be calling this very actor.
    const pause = { paused: () => this.#paused(), resumed: () => this.#resumed() };
    return this.#streams.settle(call.taskId, call.returnId, result, call.stream ? this.#streamWindow : undefined, pause);
  }
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof value === 'object' && value !== null && typeof (value as PromiseLike<unknown>).then === 'function';
}
