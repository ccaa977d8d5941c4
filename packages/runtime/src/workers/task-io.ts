import { SharedMemoryError, decodeValue, encodeError, encodeValue, type ObjectLocation, type ObjectPayload, type WireArg, type WorkerToNode } from '@shoal/protocol';
import type { ObjectIO } from '../client/object-io.js';
import type { AskCredit } from './stream-producer.js';

/** How a worker reads a task's arguments and writes its results (tasks and actor calls alike). */
export interface TaskIOOptions {
  /** Where `done` and `failed` go: the worker's connection to its node. */
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
   * Asks the node whether a streaming task or call may yield item `index` (`stream-wait`).
   * @default none (a producer past its window fails)
   */
  readonly askCredit?: AskCredit;
}

/**
 * A worker's side of a task's objects: wire arguments turned into values (refs mapped in place,
 * spilled ones asked for) and results stored (room reserved first) and reported.
 */
export class TaskIO {
  readonly connection: { send(message: WorkerToNode): void };
  readonly #objects: ObjectIO;
  readonly #reserve: ((id: string, size: number) => Promise<string | undefined>) | undefined;
  readonly #locate: ((id: string) => Promise<ObjectLocation>) | undefined;

  constructor(options: TaskIOOptions) {
    this.connection = options.connection;
    this.#objects = options.objects;
    this.#reserve = options.reserve;
    this.#locate = options.locate;
  }

  /**
   * The values of `wire`: synchronous unless an argument is spilled (then it is asked for, and
   * the node reads it back).
   */
  args(wire: readonly WireArg[]): unknown[] | Promise<unknown[]> {
    const args: unknown[] = [];
    let ask: number[] | undefined;
    for (const [i, arg] of wire.entries()) {
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
    if (!ask) return args;
    // Those the node sent as spilled, or that went since: asked for again (rare: no await on the common path).
    return (async () => {
      for (const i of ask) args[i] = await this.#askedArgument((wire[i] as { ref: string }).ref);
      return args;
    })();
  }

  /**
   * Stores `value` as object `id` (room reserved first) and returns what the node is told of it:
   * at once for an inline value (no room to reserve), else once the node granted the room.
   */
  store(id: string, value: unknown): ObjectPayload | Promise<ObjectPayload> {
    const encoded = encodeValue(value, 'result');
    // Room first: the node refuses a result that does not fit before a byte of it is written.
    const size = this.#objects.segmentBytes(encoded);
    const reserve = size > 0 ? this.#reserve : undefined;
    if (!reserve) return this.#objects.payload(id, encoded);
    // Granted by the node already: the payload must not reserve it a second time.
    return reserve(id, size).then((lent) => this.#objects.payload(id, encoded, true, lent));
  }

  /**
   * Stores the task's `result` and reports it (`done`), or reports why that failed (`failed`):
   * synchronously for an inline result (the common small result costs no promise).
   */
  finish(taskId: number, returnId: string, result: unknown): void | Promise<void> {
    let payload: ObjectPayload | Promise<ObjectPayload>;
    try {
      payload = this.store(returnId, result);
    } catch (error) {
      this.fail(taskId, error);
      return;
    }
    if (!(payload instanceof Promise)) {
      this.connection.send({ type: 'done', taskId, result: payload });
      return;
    }
    return payload.then(
      (stored) => this.connection.send({ type: 'done', taskId, result: stored }),
      (error: unknown) => this.fail(taskId, error),
    );
  }

  /** Reports that task `taskId` threw `error`. */
  fail(taskId: number, error: unknown): void {
    this.connection.send({ type: 'failed', taskId, error: encodeError(error) });
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
