import { connect } from 'node:net';
import { basename, dirname } from 'node:path';
import { ShoalError, decodeNodeMessage, type NodeToWorker, type WorkerToNode } from '@shoal/protocol';
import { isRunning, readDaemon, shoalHome } from './cluster/home.js';
import { Connection } from './connection.js';
import { NodeClient } from './node-client.js';

/** Inline threshold assumed until the node's welcome says otherwise (it only steers put's choice). */
const DEFAULT_INLINE_THRESHOLD = 100 * 1024;

/**
 * The socket path of a node address. Local nodes are reached at `unix:<path to node.sock>`
 * (what `session.address` prints).
 * @throws TypeError for anything else.
 */
export function parseNodeAddress(address: unknown): string {
  if (typeof address !== 'string') throw new TypeError(`Expected \`address\` to be a string, got \`${typeof address}\``);
  if (address.startsWith('ws://') || address.startsWith('wss://')) {
    // A driver on a machine that runs a node of this cluster uses that node, zero-copy.
    const home = shoalHome();
    const daemon = readDaemon(home);
    if (daemon && daemon.head === address && isRunning(daemon.pid)) return parseNodeAddress(daemon.address);
    throw new ShoalError(
      'ERR_NOT_SUPPORTED',
      `Cannot join ${address} from this machine: no node of that cluster runs here (SHOAL_HOME=${home}). ` +
        `Start one with \`shoal start --address ${address} --token <token>\`, then run the program again; ` +
        'drivers on machines without a node are not supported yet.',
    );
  }
  const path = address.startsWith('unix://') ? address.slice('unix://'.length) : address.startsWith('unix:') ? address.slice('unix:'.length) : '';
  if (!path.startsWith('/') || !path.endsWith('/node.sock') || !basename(dirname(path)).startsWith('shoal-')) {
    throw new TypeError(
      `Expected \`address\` to be a node address like 'unix:/dev/shm/shoal-<id>/node.sock', got \`${JSON.stringify(address)}\``,
    );
  }
  return path;
}

/**
 * Connects this process to the node at `address` as an attached client: it can put, get, use
 * named objects and submit tasks, zero-copy for objects in shared memory, and never runs tasks.
 * Usable at once (messages queue until the socket connects); `runtime.connected` tells when the
 * node accepted it.
 */
export function attachToNode(address: string): NodeClient {
  const path = parseNodeAddress(address);
  const directory = dirname(path);
  const socket = connect(path);
  // Attached processes (web servers...) must be free to exit: the socket only keeps the process
  // alive while something is awaited from the node.
  socket.unref();
  let runtime: NodeClient | undefined;
  const connection: Connection<NodeToWorker, WorkerToNode> = new Connection(socket, {
    decode: decodeNodeMessage,
    message: (message) => runtime!.handle(message),
    close: (error) => {
      const code = (error as NodeJS.ErrnoException | undefined)?.code;
      runtime!.closed(
        error
          ? new ShoalError(
              'ERR_ATTACH_FAILED',
              `Cannot attach to the Shoal node at ${address} (${code ?? error.message}). ` +
                (code === 'ENOENT' || code === 'ECONNREFUSED'
                  ? 'Is the node running? Its process prints the address as `session.address` after init().'
                  : code === 'EACCES'
                    ? 'The node belongs to another user: attach as the user that started it.'
                    : ''),
              { cause: error },
            )
          : undefined,
      );
    },
  });
  runtime = new NodeClient(
    connection,
    { sessionId: basename(directory).slice('shoal-'.length), directory, inlineThreshold: DEFAULT_INLINE_THRESHOLD },
    'attached',
  );
  connection.send({ type: 'attach', pid: process.pid });
  return runtime;
}
