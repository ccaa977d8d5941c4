// Entry point of a worker process, spawned by a node (worker-handle.ts). It connects to its node's
// unix socket, says which process it is, and runs the tasks it is sent (TaskExecutor) until the
// node goes away or tells it to exit.
import { connect } from 'node:net';
import { decodeNodeMessage, type NodeToWorker, type WorkerToNode } from '@shoal/protocol';
import { setParentDeathSignal } from '@shoal/store';
import { Connection } from '../transport/connection.js';
import { setCurrentRuntime } from '../api/runtime.js';
import { NodeClient } from '../client/node-client.js';
import { LocalObjects } from '../client/object-io.js';
import { ActorExecutor } from './actor-executor.js';
import { forwardOutput } from './output-forwarding.js';
import { processLogger } from '../log.js';
import { TaskExecutor } from './task-executor.js';

function setting(name: string): string {
  const value = process.env[name];
  if (!value) {
    processLogger('worker').error({ setting: name }, `${name} is not set; worker processes are started by a Shoal node, not by hand.`);
    process.exit(2);
  }
  return value;
}

// Task functions are compiled with the main loader for their import() (function-source.ts),
// which Node still calls experimental: that warning is Shoal's business, not the task's output.
const emitWarning = process.emitWarning.bind(process);
process.emitWarning = ((warning: string | Error, ...rest: unknown[]) => {
  const text = typeof warning === 'string' ? warning : warning.message;
  if (text.includes('USE_MAIN_CONTEXT_DEFAULT_LOADER')) return;
  (emitWarning as (...args: unknown[]) => void)(warning, ...rest);
}) as typeof process.emitWarning;

const socketPath = setting('SHOAL_NODE_SOCKET');
const nodePid = Number(setting('SHOAL_NODE_PID'));

// Die with the node, even when it is SIGKILLed. If it already died before this took effect, our
// parent is now someone else: exit at once.
if (setParentDeathSignal('SIGKILL') !== nodePid) process.exit(1);

const socket = connect(socketPath);
const connection: Connection<NodeToWorker, WorkerToNode> = new Connection(socket, {
  decode: decodeNodeMessage,
  message: (message) => {
    switch (message.type) {
      case 'execute':
        executor.handle(message);
        return;
      case 'recall':
        // An actor's process gives back calls it has not started (cancelled); a worker, tasks.
        if (actor) actor.recall(message.taskIds);
        else executor.handle(message);
        return;
      case 'actor-init':
        // This process is an actor's from now on (the node never sends it tasks).
        actor ??= new ActorExecutor({ ...io, require: executor.require });
        void actor.init(message);
        return;
      case 'call':
        actor?.call(message);
        return;
      case 'credit':
        if (actor) actor.credit(message.taskId, message.upTo, message.stop);
        else executor.credit(message.taskId, message.upTo, message.stop);
        return;
      case 'shutdown':
        process.exit(0);
      default:
        runtime.handle(message);
    }
  },
  close: () => process.exit(0),
});
// What tasks print goes to the program that submitted them (the node routes it), in order with their results.
if (process.env.SHOAL_FORWARD_OUTPUT === '1') forwardOutput(connection);
const directory = setting('SHOAL_SESSION_DIR');
const inlineThreshold = Number(setting('SHOAL_INLINE_THRESHOLD'));
// One object I/O for both: a result written by a task and a get of the API share its mappings.
const objects = new LocalObjects(directory, inlineThreshold);
const io = {
  connection,
  objects,
  reserve: (id: string, size: number) => runtime.reserve(id, size),
  locate: (id: string) => runtime.locate(id),
  askCredit: (taskId: number, index: number) => runtime.streamWait(taskId, index),
};
const executor = new TaskExecutor(io);
let actor: ActorExecutor | undefined;
const runtime = new NodeClient(connection, {
  sessionId: setting('SHOAL_SESSION_ID'),
  directory,
  inlineThreshold,
  objects,
  onSubmit: (fn) => executor.learn(fn),
});
setCurrentRuntime(runtime);
socket.once('connect', () => connection.send({ type: 'ready', pid: process.pid }));

// A task's unhandled rejection must not kill the worker silently mid-way through other work; it
// is reported, and the task itself fails through its own promise.
// It goes to the worker's log (its node's: a daemon's is $SHOAL_HOME/daemon.log, see `shoal logs`).
let logger: ReturnType<typeof processLogger> | undefined;
process.on('unhandledRejection', (reason) => {
  logger ??= processLogger('worker');
  logger.warn({ err: reason }, `unhandled rejection in a task: ${reason instanceof Error ? reason.message : String(reason)}`);
});
