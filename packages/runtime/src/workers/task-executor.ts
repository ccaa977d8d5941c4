import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { NodeToWorker, WorkerToNode } from '@shoal/protocol';
import { compileFunction } from '../api/compile-function.js';
import type { FunctionSource } from '../api/function-source.js';
import { noCredit, StreamProducers } from './stream-producer.js';
import { TaskIO, type TaskIOOptions } from './task-io.js';

type Execute = Extract<NodeToWorker, { type: 'execute' }>;

/** What the messages a {@link TaskExecutor} handles look like. */
export type TaskMessage = Extract<NodeToWorker, { type: 'execute' | 'recall' }>;

/** Options of a {@link TaskExecutor}. */
export interface TaskExecutorOptions extends TaskIOOptions {
  /**
   * Resolves `require()` in task code.
   * @default a require of the directory the worker was started in
   */
  readonly require?: NodeJS.Require;
}

/**
 * Runs the tasks a node sends to its worker process, one at a time, in the order sent: compiles
 * each function once, turns the wire arguments into values, runs the function and reports the
 * result (`done`) or the error (`failed`). A `recall` gives back the queued tasks that have not
 * started, so the node can run them elsewhere.
 *
 * @example
 * ```ts
 * const executor = new TaskExecutor({ connection, objects });
 * // for each 'execute' or 'recall' message from the node:
 * executor.handle(message);
 * ```
 */
export class TaskExecutor {
  readonly #connection: { send(message: WorkerToNode): void };
  readonly #io: TaskIO;
  readonly #streams: StreamProducers;
  /** Resolves `require()` in task code (an actor's class uses the same). */
  readonly require: NodeJS.Require;
  readonly #functions = new Map<string, (...args: unknown[]) => unknown>();
  #queue: Execute[] = [];
  #busy = false;

  constructor(options: TaskExecutorOptions) {
    this.#connection = options.connection;
    this.#io = new TaskIO(options);
    this.#streams = new StreamProducers(this.#io, options.askCredit ?? noCredit);
    // A task's `require()` resolves from the file that defined it, then from this directory (see callerRequire).
    this.require = options.require ?? createRequire(pathToFileURL(join(process.cwd(), 'noop.js')));
  }

  /**
   * Compiles a function submitted from this process, if not known yet: the node counts the
   * functions a worker submitted as known to it, and sends tasks of them without their source.
   */
  learn(fn: FunctionSource): void {
    if (!this.#functions.has(fn.hash)) this.#functions.set(fn.hash, this.#compile(fn.source));
  }

  /** Handles an `execute` or `recall` message from the node. */
  handle(message: TaskMessage): void {
    switch (message.type) {
      case 'execute':
        // Compile now, not when it runs: the node counts this worker as having the function
        // even if this task is recalled before it starts.
        if (message.fn.source !== undefined && !this.#functions.has(message.fn.hash)) {
          this.#functions.set(message.fn.hash, this.#compile(message.fn.source));
        }
        this.#queue.push(message);
        if (!this.#busy) void this.#drain();
        return;
      case 'recall': {
        const wanted = new Set(message.taskIds);
        const kept = this.#queue.filter((task) => !wanted.has(task.taskId));
        const taskIds = this.#queue.filter((task) => wanted.has(task.taskId)).map((task) => task.taskId);
        this.#queue = kept;
        this.#connection.send({ type: 'recalled', taskIds });
        return;
      }
    }
  }

  /** Runs queued tasks one at a time, in the order the node sent them. */
  async #drain(): Promise<void> {
    this.#busy = true;
    while (this.#queue.length > 0) await this.#execute(this.#queue.shift()!);
    this.#busy = false;
  }

  async #execute(message: Execute): Promise<void> {
    let result: unknown;
    try {
      const fn = this.#function(message.fn.hash);
      const args = this.#io.args(message.args);
      result = fn(...(Array.isArray(args) ? args : await args));
    } catch (error) {
      this.#io.fail(message.taskId, error);
      return;
    }
    // A streaming task's items go as they are yielded, at most the window ahead.
    await this.#streams.settle(message.taskId, message.returnId, result, message.streamWindow);
  }

  /** The node's `credit` for a streaming task this worker runs. */
  credit(taskId: number, upTo: number, stop: boolean): void {
    this.#streams.credit(taskId, upTo, stop);
  }

  /** Compiles shipped source; a source that does not compile becomes a function that throws why. */
  #compile(source: string): (...args: unknown[]) => unknown {
    try {
      return compileFunction(source, this.require);
    } catch (error) {
      return () => {
        throw error;
      };
    }
  }

  #function(hash: string): (...args: unknown[]) => unknown {
    const fn = this.#functions.get(hash);
    if (!fn) throw new Error(`The node sent function ${hash} without its source (this is a bug).`);
    return fn;
  }
}
