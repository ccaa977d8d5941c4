import { MAX_OUTPUT_CHARS, type OutputStream } from '@shoal/protocol';
import type { LocalScheduler } from '../scheduling/local-scheduler.js';
import type { Task } from '../scheduling/task.js';
import { WorkerHandle } from '../workers/worker-handle.js';
import type { ActorService } from './actors.js';
import { ClientHandle } from './peer.js';

/** A task run here for another node: its output goes back there (through the head). */
export interface ForeignSubmitter {
  readonly origin: string;
}

/** The node's parts a {@link TaskOutput} uses. */
export interface TaskOutputParts {
  readonly scheduler: LocalScheduler;
  readonly actors: ActorService;
  /** This node's id, named in output that leaves it. */
  readonly nodeId: string;
  /** Sends output (prefixed) to the node `origin`, keyed by the task (or actor) it is for; false outside a cluster. */
  readonly toOrigin: (origin: string, key: string, stream: OutputStream, text: string) => boolean;
  /** Where output stays when no program wants it (this process's own stdout and stderr). */
  readonly write?: (stream: OutputStream, text: string) => void;
}

/** Nested tasks deeper than this are not followed up to their driver (their output stays here). */
const MAX_NESTING = 64;

const writeHere = (stream: OutputStream, text: string): void => void (stream === 'out' ? process.stdout : process.stderr).write(text);

/** `text` in pieces of at most MAX_OUTPUT_CHARS, cut after a newline where one is near enough. */
export function outputChunks(text: string): string[] {
  const chunks: string[] = [];
  let start = 0;
  while (text.length - start > MAX_OUTPUT_CHARS) {
    const newline = text.lastIndexOf('\n', start + MAX_OUTPUT_CHARS - 1);
    const end = newline >= start ? newline + 1 : start + MAX_OUTPUT_CHARS;
    chunks.push(text.slice(start, end));
    start = end;
  }
  chunks.push(text.slice(start));
  return chunks;
}

/** `text` with every line prefixed by `(label)`, as Ray prints a worker's output at its driver. */
function prefixed(label: string, text: string): string {
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  return lines.map((line) => `(${label}) ${line}\n`).join('');
}

/**
 * Takes what a worker's tasks write (each worker sends its process.stdout and stderr as `output`
 * messages) to the program that submitted the task running there: this process's own stdout
 * (an embedded driver), an attached program (an `output` message it prints), through the parent
 * task for a nested one, or the node a foreign task came from (through the head), which goes on
 * from there. Each line is prefixed `(function pid=N)`, with `node=ID` once it leaves this node.
 * Output nobody wants (no task running, a program that said `logToDriver: false`, a driver gone)
 * stays on this node's stdout/stderr.
 */
export class TaskOutput {
  readonly #parts: TaskOutputParts;
  readonly #write: (stream: OutputStream, text: string) => void;

  constructor(parts: TaskOutputParts) {
    this.#parts = parts;
    this.#write = parts.write ?? writeHere;
  }

  /** Output the process `worker` wrote (a task worker's, or an actor's). */
  fromWorker(worker: WorkerHandle, stream: OutputStream, text: string): void {
    const actor = this.#parts.actors.outputOf(worker);
    if (actor) {
      const label = `${actor.name} pid=${worker.pid}`;
      if (actor.origin !== undefined) this.#send({ origin: actor.origin }, actor.id, label, stream, text);
      else this.#deliver(actor.creator, actor.id, label, stream, text, 0);
      return;
    }
    const task = this.#running(worker);
    if (!task) this.#write(stream, prefixed(`worker pid=${worker.pid}`, text));
    else this.#deliver(task.submitter, task.returnId, `${task.fn.name} pid=${worker.pid}`, stream, text, 0);
  }

  /** Output another node sent for a task this node spilled there, or an actor this node made (already prefixed). */
  fromNode(key: string, stream: OutputStream, text: string): void {
    const task = this.#parts.scheduler.tasks.get(key);
    const submitter = task ? task.submitter : this.#parts.actors.outputOf(key)?.creator;
    this.#deliver(submitter, key, undefined, stream, text, 0);
  }

  /** Takes the output to `submitter`; `label` undefined: `text` is prefixed already. */
  #deliver(submitter: object | undefined, key: string, label: string | undefined, stream: OutputStream, text: string, depth: number): void {
    if (submitter instanceof WorkerHandle) {
      // A nested task: its output goes where its parent's goes (the parent waits in that worker).
      const parent = depth < MAX_NESTING ? this.#running(submitter) : undefined;
      if (parent) return this.#deliver(parent.submitter, parent.returnId, label, stream, text, depth + 1);
    } else if (submitter instanceof ClientHandle) {
      if (submitter.wantsOutput && submitter.connection) {
        for (const chunk of outputChunks(label === undefined ? text : prefixed(label, text))) submitter.send({ type: 'output', stream, text: chunk });
        return;
      }
    } else if (submitter !== undefined && 'origin' in submitter) {
      return this.#send(submitter as ForeignSubmitter, key, label, stream, text);
    }
    this.#write(stream, label === undefined ? text : prefixed(label, text));
  }

  #send(to: ForeignSubmitter, key: string, label: string | undefined, stream: OutputStream, text: string): void {
    const lines = label === undefined ? text : prefixed(`${label} node=${this.#parts.nodeId}`, text);
    for (const chunk of outputChunks(lines)) if (!this.#parts.toOrigin(to.origin, key, stream, chunk)) this.#write(stream, chunk);
  }

  /** The task running on `worker` now (the first of those sent to it, once started). */
  #running(worker: WorkerHandle): Task | undefined {
    const task = worker.inflight[0] as Task | undefined;
    return task?.state === 'running' ? task : undefined;
  }
}
