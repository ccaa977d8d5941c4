// Entry point of a worker process, spawned by a node (worker-handle.ts). It connects to its node's
// unix socket, says which process it is, and runs the tasks it is sent until the node goes away.
import { connect } from 'node:net';
import { decodeNodeMessage, type NodeToWorker, type WorkerToNode } from '@shoal/protocol';
import { setParentDeathSignal } from '@shoal/store';
import { Connection } from '../transport/connection.js';
import { setCurrentRuntime } from '../api/runtime.js';
import { NodeClient } from '../client/node-client.js';

function setting(name: string): string {
  const value = process.env[name];
  if (!value) {
    console.error(`shoal worker: ${name} is not set; worker processes are started by a Shoal node, not by hand.`);
    process.exit(2);
  }
  return value;
}

const socketPath = setting('SHOAL_NODE_SOCKET');
const nodePid = Number(setting('SHOAL_NODE_PID'));

// Die with the node, even when it is SIGKILLed. If it already died before this took effect, our
// parent is now someone else: exit at once.
if (setParentDeathSignal('SIGKILL') !== nodePid) process.exit(1);

const socket = connect(socketPath);
const connection: Connection<NodeToWorker, WorkerToNode> = new Connection(socket, {
  decode: decodeNodeMessage,
  message: (message) => runtime.handle(message),
  close: () => process.exit(0),
});
const runtime = new NodeClient(connection, {
  sessionId: setting('SHOAL_SESSION_ID'),
  directory: setting('SHOAL_SESSION_DIR'),
  inlineThreshold: Number(setting('SHOAL_INLINE_THRESHOLD')),
});
setCurrentRuntime(runtime);
socket.once('connect', () => connection.send({ type: 'ready', pid: process.pid }));

// A task's unhandled rejection must not kill the worker silently mid-way through other work; it
// is reported, and the task itself fails through its own promise.
process.on('unhandledRejection', (reason) => {
  console.error('shoal worker: unhandled rejection in a task:', reason);
});
