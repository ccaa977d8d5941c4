// A machine's Shoal daemon, started in the background by `shoal start`: a node (object store,
// scheduler, worker processes) that joins a cluster's head, and with `--head` the head itself.
// Configuration arrives as JSON in SHOAL_DAEMON_CONFIG; the daemon writes $SHOAL_HOME/daemon.json
// once it serves, and removes it when it stops (SIGTERM/SIGINT).
import { hostname } from 'node:os';
import { NodeManager } from '../node-manager.js';
import { Head } from './head.js';
import { HeadLink } from './head-link.js';
import { removeDaemon, writeDaemon } from './home.js';

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
}

const log = (line: string) => process.stderr.write(`${new Date().toISOString()} shoal daemon ${process.pid}: ${line}\n`);
const config = JSON.parse(process.env.SHOAL_DAEMON_CONFIG ?? 'null') as DaemonConfig | null;
if (!config) {
  log('SHOAL_DAEMON_CONFIG is not set; the daemon is started by `shoal start`, not by hand.');
  process.exit(2);
}

const node = new NodeManager({
  ...(config.numCpus === undefined ? {} : { numCpus: config.numCpus }),
  ...(config.resources === undefined ? {} : { resources: config.resources }),
});
let head: Head | undefined;
let link: HeadLink | undefined;
let stopping = false;

async function stop(code: number): Promise<void> {
  if (stopping) return;
  stopping = true;
  log('stopping');
  link?.close();
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
      log,
    });
    log(`head listening on ${head.url}`);
  }
  const headUrl = head?.url ?? config.join!;
  link = new HeadLink(
    headUrl,
    config.token,
    () => ({ nodeId: node.store.sessionId, hostname: hostname(), pid: process.pid, address: node.address, ...node.load() }),
    (error) => {
      log(error.message);
      void stop(1);
    },
  );
  await link.registered;
  writeDaemon(config.home, { pid: process.pid, address: node.address, head: headUrl, isHead: head !== undefined, nodeId: node.store.sessionId });
  log(`node ${node.store.sessionId} serving at ${node.address}, member of ${headUrl}`);
} catch (error) {
  log(`could not start: ${(error as Error).message}`);
  await stop(1);
}
