// A machine's Shoal daemon, started by `startDaemon` (daemon-control.ts, what `shoal start`
// calls): a node (object store, scheduler, worker processes) that joins a cluster's head, and
// with `head` the head itself. Its configuration arrives as JSON in SHOAL_DAEMON_CONFIG. Once it
// serves, it writes $SHOAL_HOME/daemon.json and tells its starter over the IPC channel (when it
// has one); it holds its lifeline socket open until its process exits, and removes daemon.json
// when it stops (SIGTERM/SIGINT). It logs JSON lines to stderr.
import { createServer } from 'node:net';
import { networkInterfaces } from 'node:os';
import { fstatSync, rmSync, statSync } from 'node:fs';
import { raiseDescriptorLimit } from '../../node/descriptors.js';
import { NodeManager } from '../../node/node-manager.js';
import { ClusterNode } from '../node/cluster-node.js';
import { Head } from '../head/head.js';
import { lifelinePath, logPath, removeDaemon, writeDaemon, writeToken, type DaemonInfo } from './home.js';
import { wsStream } from '../../transport/ws-stream.js';
import { STOPPING_MESSAGE } from './daemon-log.js';
import { processLogger } from '../../log.js';
import type { DaemonConfig } from './daemon-options.js';
import type { DaemonMessage } from './daemon-control.js';

/** The head's own node is reached where the head listens; a wildcard bind picks the first external IPv4. */
function headNodeIp(host: string): string {
  if (host !== '0.0.0.0' && host !== '::') return host;
  for (const addresses of Object.values(networkInterfaces())) {
    for (const address of addresses ?? []) if (address.family === 'IPv4' && !address.internal) return address.address;
  }
  return '127.0.0.1';
}

/** Whether this daemon's stderr is its home's daemon.log (started in the background, not --foreground). */
function loggingTo(home: string): boolean {
  try {
    const [out, log] = [fstatSync(2), statSync(logPath(home))];
    return out.dev === log.dev && out.ino === log.ino;
  } catch {
    return false;
  }
}

// JSON lines on stderr, which `startDaemon` points at $SHOAL_HOME/daemon.log. Written
// synchronously, so a line logged just before `process.exit` is in the file when the starter
// reads the daemon's last words.
const root = processLogger();
const logger = root.child({ component: 'daemon' });
const config = JSON.parse(process.env.SHOAL_DAEMON_CONFIG ?? 'null') as DaemonConfig | null;
if (!config) {
  logger.error({}, 'SHOAL_DAEMON_CONFIG is not set; the daemon is started by `shoal start`, not by hand.');
  process.exit(2);
}
process.on('uncaughtException', (error) => {
  logger.error({ err: error }, `crashed: ${error.message}`);
  process.exit(1);
});

// A node holds a descriptor per connection and per segment it streams; the default soft limit
// (often 1024) is far below what the administrator allows (the hard limit). Raised before any
// worker is spawned, so they inherit it too. `shoal status` shows the limit each node runs with.
const descriptors = raiseDescriptorLimit();
logger.info(descriptors, `file descriptor limit ${descriptors.limit} (hard limit ${descriptors.hardLimit})`);

// Bound first, so a daemon that has written daemon.json can always be waited on. A file left by
// a daemon that was killed is stale: its owner is gone (the CLI checked before starting this one).
const lifelinePathname = lifelinePath(config.home);
rmSync(lifelinePathname, { force: true });
const lifeline = createServer((connection) => connection.on('error', () => {}));
await new Promise<void>((resolve, reject) => lifeline.once('error', reject).listen(lifelinePathname, resolve));

const node = new NodeManager({
  ...(config.numCpus === undefined ? {} : { numCpus: config.numCpus }),
  ...(config.resources === undefined ? {} : { resources: config.resources }),
  ...(config.objectStoreMemory === undefined ? {} : { objectStoreMemory: config.objectStoreMemory }),
  ...(config.spillDirectory === undefined ? {} : { spillDirectory: config.spillDirectory }),
});
let head: Head | undefined;
let member: ClusterNode | undefined;
let stopping = false;

async function stop(code: number): Promise<void> {
  if (stopping) return;
  stopping = true;
  logger.info({}, STOPPING_MESSAGE);
  await member?.close();
  await head?.close();
  await node.shutdown();
  removeDaemon(config!.home);
  // The lifeline's connections stay open: the kernel closes them when this process is gone.
  rmSync(lifelinePathname, { force: true });
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
      ...(config.allowedOrigins === undefined ? {} : { allowedOrigins: config.allowedOrigins }),
      logger: root.child({ component: 'head' }),
      // Programs on machines without a node join through this one.
      onDriver: (socket) => node.acceptRemote(wsStream(socket)),
    });
    logger.info({ head: head.url }, `head listening on ${head.url}`);
  }
  const headUrl = head?.url ?? config.join!;
  const nodeIp = config.nodeIp ?? (config.head ? headNodeIp(config.head.host) : undefined);
  member = await ClusterNode.start(node, {
    headUrl,
    token: config.token,
    ...(nodeIp === undefined ? {} : { nodeIp }),
    ...(config.dataPort === undefined ? {} : { dataPort: config.dataPort }),
    ...(config.allowedOrigins === undefined ? {} : { allowedOrigins: config.allowedOrigins }),
    ...(config.joinTimeoutMs === undefined ? {} : { joinTimeoutMs: config.joinTimeoutMs }),
    logger: root.child({ component: 'node' }),
    ...(loggingTo(config.home) ? { logFile: logPath(config.home) } : {}),
    onFatal: (error) => {
      logger.error({ err: error }, error.message);
      void stop(1);
    },
  });
  const info: DaemonInfo = { pid: process.pid, address: node.address, head: headUrl, isHead: head !== undefined, nodeId: node.store.sessionId };
  writeDaemon(config.home, info);
  // Only now that the head took it (a mistyped token never gets here), and apart from a head's
  // own token: kept so that `shoal status` on this machine needs no --token.
  if (!info.isHead) writeToken(config.home, config.token, 'joined');
  logger.info({ node: info.nodeId, address: node.address, head: headUrl }, `node ${info.nodeId} serving at ${node.address}, member of ${headUrl}`);
  const ready: DaemonMessage = { type: 'ready', info };
  // The starter disconnects once it has read this; the daemon lives on without it.
  if (process.connected) process.send?.(ready);
} catch (error) {
  logger.error({ err: error }, `could not start: ${(error as Error).message}`);
  await stop(1);
}
