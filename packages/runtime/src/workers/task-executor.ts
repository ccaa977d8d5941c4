import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { decodeValue, encodeError, encodeValue, type NodeToWorker, type WireArg, type WorkerToNode } from '@shoal/protocol';
import { compileFunction, type FunctionSource } from '../api/function-source.js';
import type { ObjectIO } from '../client/object-io.js';

type Execute = Extract<NodeToWorker, { type: 'execute' }>;

/** What the messages a {@link TaskExecutor} handles look like. */
export type TaskMessage = Extract<NodeToWorker, { type: 'execute' | 'recall' }>;

/** Options of a {@link TaskExecutor}. */
export interface TaskExecutorOptions {
  /** Where `done`, `failed` and `recalled` go: the worker's connection to its node. */
  readonly connection: { send(message: WorkerToNode): void };
  /** Reads the arguments and writes the results. */
  readonly objects: ObjectIO;
  /**
   * Reserves room at the node for a result segment of `size` bytes before it is written.
   * @default no reservation (the node then checks the room when the result arrives)
   */
  readonly reserve?: (id: string, size: number) => Promise<string | undefined>;
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
  readonly #objects: ObjectIO;
  readonly #reserve: ((id: string, size: number) => Promise<string | undefined>) | undefined;
  readonly #require: NodeJS.Require;
  readonly #functions = new Map<string, (...args: unknown[]) => unknown>();
  #queue: Execute[] = [];
  #busy = false;

  constructor(options: TaskExecutorOptions) {
    this.#connection = options.connection;
    this.#objects = options.objects;
    this.#reserve = options.reserve;
    // Tasks that `require()` resolve from the directory the program was started in.
    this.#require = options.require ?? createRequire(pathToFileURL(join(process.cwd(), 'noop.js')));
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
      const args = message.args.map((arg, i) => this.#argument(arg, i));
      result = await fn(...args);
    } catch (error) {
      this.#connection.send({ type: 'failed', taskId: message.taskId, error: encodeError(error) });
      return;
    }
    try {
      const encoded = encodeValue(result, 'result');
      // Room first: the node refuses a result that does not fit before a byte of it is written.
      const size = this.#objects.segmentBytes(encoded);
      const reserve = size > 0 ? this.#reserve : undefined;
      const lent = reserve ? await reserve(message.returnId, size) : undefined;
      // Granted by the node already: the payload must not reserve it a second time.
      const payload = this.#objects.payload(message.returnId, encoded, reserve !== undefined, lent);
      this.#connection.send({ type: 'done', taskId: message.taskId, result: payload });
    } catch (error) {
      this.#connection.send({ type: 'failed', taskId: message.taskId, error: encodeError(error) });
    }
  }

  /** Compiles shipped source; a source that does not compile becomes a function that throws why. */
  #compile(source: string): (...args: unknown[]) => unknown {
    try {
      return compileFunction(source, this.#require);
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

  #argument(arg: WireArg, index: number): unknown {
    if ('value' in arg) return decodeValue(arg.value, { copy: true, where: `argument ${index}` });
    if (!arg.location) throw new Error(`The node sent argument ${index} without its location (this is a bug).`);
    return this.#objects.materialize(arg.ref, arg.location);
  }
}
