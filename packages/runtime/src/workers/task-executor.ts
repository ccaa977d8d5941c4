import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { SharedMemoryError, decodeValue, encodeError, encodeValue, type NodeToWorker, type ObjectLocation, type WireArg, type WorkerToNode } from '@shoal/protocol';
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
   * Asks the node where object `id` is now (a `resolve`): for an argument the node sent as spilled,
   * which it reads back when asked.
   * @default none (an argument sent as spilled fails the task)
   */
  readonly locate?: (id: string) => Promise<ObjectLocation>;
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
  readonly #locate: ((id: string) => Promise<ObjectLocation>) | undefined;
  readonly #require: NodeJS.Require;
  readonly #functions = new Map<string, (...args: unknown[]) => unknown>();
  #queue: Execute[] = [];
  #busy = false;

  constructor(options: TaskExecutorOptions) {
    this.#connection = options.connection;
    this.#objects = options.objects;
    this.#reserve = options.reserve;
    this.#locate = options.locate;
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
      const args: unknown[] = [];
      let ask: number[] | undefined;
      for (const [i, arg] of message.args.entries()) {
        if (spilled(arg)) (ask ??= []).push(i);
        else {
          try {
            args[i] = this.#argument(arg, i);
          } catch (error) {
            // Spilled after the node said where it was (the task was queued, so it was not pinned).
            if (!(error instanceof SharedMemoryError && error.errnoCode === 'ENOENT' && 'ref' in arg)) throw error;
            (ask ??= []).push(i);
          }
        }
      }
      // Those the node sent as spilled, or that went since: asked for again, and it reads them
      // back (rare: no await on the common path).
      if (ask) for (const i of ask) args[i] = await this.#askedArgument((message.args[i] as { ref: string }).ref);
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

  /** An argument the node sent as spilled, or that was spilled since: where it is once the node read it back. */
  async #askedArgument(id: string): Promise<unknown> {
    if (!this.#locate) throw new Error(`Argument object ${id} is spilled to disk, and this worker cannot ask the node for it (this is a bug).`);
    return this.#objects.materialize(id, await this.#locate(id));
  }
}

/** Whether the node sent `arg` as spilled to disk (to be asked for when the task starts). */
function spilled(arg: WireArg): arg is Extract<WireArg, { ref: string }> {
  return 'ref' in arg && arg.location?.kind === 'spilled';
}
