// A machine's Shoal daemon, started in the background by `shoal start`: a node (object store,
// scheduler, worker processes) that joins a cluster's head, and with `--head` the head itself.
// Configuration arrives as JSON in SHOAL_DAEMON_CONFIG; the daemon writes $SHOAL_HOME/daemon.json
// once it serves, and removes it when it stops (SIGTERM/SIGINT).
import { networkInterfaces } from 'node:os';
import { NodeManager } from '../../node/node-manager.js';
import { ClusterNode } from '../node/cluster-node.js';
import { Head } from '../head/head.js';
import { removeDaemon, writeDaemon } from './home.js';
import { wsStream } from '../../transport/ws-stream.js';
import type { LogFn, Logger } from '../../log.js';

interface DaemonConfig {
  home: string;
  token: string;
  /** Set for the head's machine: where the head listens. */
  head?: { host: string; port: number };
  /** Set when joining: the head's address. */
  join?: string;
  numCpus?: number;
  resources?: Record<string, number>;
  heartbeatTimeoutMs?: number;
  objectStoreMemory?: number;
  /** The IP other nodes pull this node's objects from. */
  nodeIp?: string;
  dataPort?: number;
}

/** The head's own node is reached where the head listens; a wildcard bind picks the first external IPv4. */
function headNodeIp(host: string): string {
  if (host !== '0.0.0.0' && host !== '::') return host;
  for (const addresses of Object.values(networkInterfaces())) {
    for (const address of addresses ?? []) if (address.family === 'IPv4' && !address.internal) return address.address;
  }
  return '127.0.0.1';
}

const log = (line: string) => process.stderr.write(`${new Date().toISOString()} shoal daemon ${process.pid}: ${line}\n`);
// The head logs through a Logger; its sentences go to the daemon log as the daemon's own lines.
const line: LogFn = (_fields, message) => log(message);
const headLogger: Logger = { info: line, warn: line, error: line };
const config = JSON.parse(process.env.SHOAL_DAEMON_CONFIG ?? 'null') as DaemonConfig | null;
if (!config) {
  log('SHOAL_DAEMON_CONFIG is not set; the daemon is started by `shoal start`, not by hand.');
  process.exit(2);
}

const node = new NodeManager({
  ...(config.numCpus === undefined ? {} : { numCpus: config.numCpus }),
  ...(config.resources === undefined ? {} : { resources: config.resources }),
  ...(config.objectStoreMemory === undefined ? {} : { objectStoreMemory: config.objectStoreMemory }),
});
let head: Head | undefined;
let member: ClusterNode | undefined;
let stopping = false;

async function stop(code: number): Promise<void> {
  if (stopping) return;
  stopping = true;
  log('stopping');
  await member?.close();
  await head?.close();
  await node.shutdown();
  removeDaemon(config!.home);
  process.exit(code);
}
process.on('SIGTERM', () => void stop(0));
process.on('SIGINT', () => void stop(0));

try {
  await node.ready();
  if (config.head) {
    head = await Head.start({
      host: config.head.host,
      port: config.head.port,
      token: config.token,
      ...(config.heartbeatTimeoutMs === undefined ? {} : { heartbeatTimeoutMs: config.heartbeatTimeoutMs }),
      logger: headLogger,
      // Programs on machines without a node join through this one.
      onDriver: (socket) => node.acceptRemote(wsStream(socket)),
    });
    log(`head listening on ${head.url}`);
  }
  const headUrl = head?.url ?? config.join!;
  const nodeIp = config.nodeIp ?? (config.head ? headNodeIp(config.head.host) : undefined);
  member = await ClusterNode.start(node, {
    headUrl,
    token: config.token,
    ...(nodeIp === undefined ? {} : { nodeIp }),
    ...(config.dataPort === undefined ? {} : { dataPort: config.dataPort }),
    log,
    onFatal: (error) => {
      log(error.message);
      void stop(1);
    },
  });
  writeDaemon(config.home, { pid: process.pid, address: node.address, head: headUrl, isHead: head !== undefined, nodeId: node.store.sessionId });
  log(`node ${node.store.sessionId} serving at ${node.address}, member of ${headUrl}`);
} catch (error) {
  log(`could not start: ${(error as Error).message}`);
  await stop(1);
}
