import { createRequire } from 'node:module';
import { connect } from 'node:net';
import type { WebSocket } from 'ws';
import {
  AttachFailedError,
  BadTokenError,
  HeadUnreachableError,
  NoLocalNodeError,
  DRIVER_PATH,
  NoTokenError,
  REMOTE_MAX_FRAME_BYTES,
  ShoalError,
  TOKEN_HEADER,
  decodeNodeMessage, type NodeToWorker, type WorkerToNode } from '@shoal/protocol';
import { liveDaemon, readToken, shoalHome } from '../cluster/daemon/home.js';
import { wsStream } from '../transport/ws-stream.js';
import { Connection, type MessageStream } from '../transport/connection.js';
import { sessionOfSocket } from '@shoal/store';
import { resolveRuntimeEnv, type ResolvedRuntimeEnv, type RuntimeEnv } from '../options.js';
import { NodeClient } from './node-client.js';
import { argumentError } from '@shoal/protocol';

// ws is loaded when a program joins over the network, not by every program that imports Shoal.
const require = createRequire(import.meta.url);

/** Inline threshold assumed until the node's welcome says otherwise (it only steers put's choice). */
const DEFAULT_INLINE_THRESHOLD = 100 * 1024;

/**
 * The socket path of a node address. Local nodes are reached at `unix:<path to node.sock>`
 * (what `session.address` prints).
 * @throws TypeError for anything else.
 */
export function parseNodeAddress(address: unknown): string {
  if (typeof address !== 'string') throw argumentError('ERR_INVALID_ARGUMENT', `Expected \`address\` to be a string, got \`${typeof address}\``);
  if (address.startsWith('ws://') || address.startsWith('wss://')) {
    // A driver on a machine that runs a node of this cluster uses that node, zero-copy.
    const local = localNodeOf(address);
    if (local) return parseNodeAddress(local);
    throw new NoLocalNodeError(address, shoalHome());
  }
  const path = address.startsWith('unix://') ? address.slice('unix://'.length) : address.startsWith('unix:') ? address.slice('unix:'.length) : '';
  if (!sessionOfSocket(path)) {
    throw argumentError('ERR_INVALID_ARGUMENT',
      `Expected \`address\` to be a node address like 'unix:/dev/shm/shoal-<id>/node.sock', got \`${JSON.stringify(address)}\``,
    );
  }
  return path;
}

/** The unix address of this machine's node of the cluster whose head is at `headUrl`, if one runs. */
function localNodeOf(headUrl: string): string | undefined {
  const daemon = liveDaemon(shoalHome());
  return daemon?.head === headUrl ? daemon.address : undefined;
}

/**
 * Connects this process to a node as an attached client: it can put, get, use named objects and
 * submit tasks, and never runs tasks. With a node's unix address (or a head's `ws://` address
 * when this machine runs a node of that cluster) objects in shared memory are read zero-copy.
 * With a head's address and no node here, the program joins over the network through the node
 * beside the head: `token` (or SHOAL_TOKEN) is needed, and objects travel as bytes.
 * Usable at once (messages queue until connected); `runtime.connected` tells when the node
 * accepted it.
 */
export function attachToNode(address: string, token?: string, options: AttachOptions = {}): NodeClient {
  // Checked before any connection is made; the client gets it resolved.
  if (options.runtimeEnv !== undefined) options = { ...options, runtimeEnv: resolveRuntimeEnv('runtimeEnv', options.runtimeEnv) };
  if ((address.startsWith('ws://') || address.startsWith('wss://')) && !localNodeOf(address)) {
    return joinRemotely(address, token ?? (process.env.SHOAL_TOKEN || readToken(shoalHome())), options);
  }
  const path = parseNodeAddress(address);
  const { sessionId, directory } = sessionOfSocket(path)!;
  const socket = connect(path);
  return clientOver(
    socket,
    { sessionId, directory, inlineThreshold: DEFAULT_INLINE_THRESHOLD },
    (error) => {
      if (!error) return undefined;
      const errnoCode = (error as NodeJS.ErrnoException).code;
      return new AttachFailedError({ to: 'node', address, errnoCode, reason: error.message }, { cause: error });
    },
    options,
  );
}

/** How an attached program takes part. */
export interface AttachOptions {
  /** Print the output of the tasks it submits (`false`: it stays with the node). @default true */
  readonly logToDriver?: boolean;
  /** The runtimeEnv of every task it submits, under each task's own. @default none */
  readonly runtimeEnv?: RuntimeEnv;
}

/**
 * An attached client speaking the attach protocol over `stream`. Attached processes (web
 * servers...) must be free to exit: the stream only keeps the process alive while something is
 * awaited from the node. `failure` explains a connection that ended (`undefined`: a plain close).
 */
function clientOver(
  stream: MessageStream,
  settings: ConstructorParameters<typeof NodeClient>[1],
  failure: (error: Error | undefined) => Error | undefined,
  options: AttachOptions,
  maxFrameBytes?: number,
): NodeClient {
  stream.unref();
  let runtime: NodeClient | undefined;
  const connection: Connection<NodeToWorker, WorkerToNode> = new Connection(
    stream,
    {
      decode: decodeNodeMessage,
      message: (message) => runtime!.handle(message),
      close: (error) => runtime!.closed(failure(error)),
    },
    maxFrameBytes,
  );
  // Resolved by attachToNode (resolveRuntimeEnv: env always present).
  const runtimeEnv = options.runtimeEnv as ResolvedRuntimeEnv | undefined;
  runtime = new NodeClient(connection, runtimeEnv === undefined ? settings : { ...settings, runtimeEnv }, 'attached');
  connection.send({ type: 'attach', pid: process.pid, ...(options.logToDriver === false ? { output: false } : {}) });
  return runtime;
}

/** Joins the cluster at `headUrl` from a machine without a node (see {@link attachToNode}). */
function joinRemotely(headUrl: string, token: string | undefined, options: AttachOptions): NodeClient {
  if (!token) {
    throw new NoTokenError(headUrl);
  }
  const url = `${headUrl.replace(/\/+$/, '')}${DRIVER_PATH}`;
  const { WebSocket: Client } = require('ws') as typeof import('ws');
  const socket: WebSocket = new Client(url, {
    perMessageDeflate: false,
    maxPayload: REMOTE_MAX_FRAME_BYTES,
    headers: { [TOKEN_HEADER]: token },
    // A zero mask makes ws skip masking the puts this program sends (its JavaScript XOR runs at
    // ~0.2 GB/s; measured on loopback: 0.20 GB/s masked, 1.2 GB/s not). Masking protects
    // intermediaries from payloads chosen by untrusted browser scripts; here the client is the
    // program itself, sending its own data.
    generateMask: (mask: Buffer) => void mask.fill(0),
  });
  let refused: Error | undefined;
  socket.on('unexpected-response', (_request, response) => {
    const { statusCode = 0 } = response;
    refused = statusCode === 401 ? new BadTokenError(headUrl) : new AttachFailedError({ to: 'head', headUrl, statusCode });
    socket.terminate();
  });
  return clientOver(
    wsStream(socket),
    { sessionId: '', directory: '', inlineThreshold: DEFAULT_INLINE_THRESHOLD, remote: true },
    (error) => refused ?? (error && remoteFailure(headUrl, error)),
    options,
    REMOTE_MAX_FRAME_BYTES,
  );
}

/**
 * What a program sees when its connection to the head at `headUrl` failed: HeadUnreachableError
 * only for a socket error (ECONNREFUSED, EHOSTUNREACH, ENOTFOUND: no connection at all). A
 * Shoal error (a bad frame) stays itself, and anything else (ws's WS_ERR_*) is an
 * AttachFailedError: the head was reached, so "is it running?" would mislead.
 */
export function remoteFailure(headUrl: string, error: Error): Error {
  if (error instanceof ShoalError) return error;
  const { code, syscall } = error as NodeJS.ErrnoException;
  if (syscall !== undefined || (code !== undefined && /^E[A-Z]+$/.test(code))) return new HeadUnreachableError(headUrl, code ?? syscall!, { cause: error });
  return new AttachFailedError({ to: 'head', headUrl, reason: error.message }, { cause: error });
}
