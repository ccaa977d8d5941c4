#!/usr/bin/env node
// The `shoal` command: start, inspect and stop this machine's Shoal daemon.
import { randomBytes } from 'node:crypto';
import { statfsSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import {
  attachToNode,
  ensureHome,
  liveDaemon,
  logPath,
  prettyLogLine,
  progressBar,
  progressWanted,
  readLog,
  readToken,
  shoalHome,
  writeToken,
  TIMELINE_KEPT,
} from '@shoal/runtime';
import {
  isLoopback,
  queryStatus,
  resolveDaemonOptions,
  runDaemon,
  startDaemon,
  stopDaemon,
  type ClusterObject,
  type ClusterNodeLog,
  type ClusterObjects,
  type ClusterTimeline,
  type DaemonOptions,
  type OptionLabel,
} from '@shoal/runtime/cluster';
import { UsageError } from './usage-error.js';

const USAGE = `Usage: shoal <command> [options]

Commands:
  start --head        start this machine's node and the cluster's head
  start --address URL start this machine's node and join the cluster at URL
  status              show the cluster's nodes, CPUs, resources, objects and tasks
  memory              list every live object of the cluster: size, nodes, names, holders
  timeline            write what ran where and when (tasks, pulls) as a Chrome trace
  logs [--follow]     print this machine's daemon log, or another node's (--node)
  dashboard           print the address of the head's dashboard and of every /metrics
  health [--ready]    exit 0 when this machine's daemon answers (and is a cluster member)
  stop                stop this machine's daemon and remove its session directory

Run \`shoal <command> --help\` for a command's options; \`shoal --version\` prints the version.
Environment: SHOAL_HOME (state directory, default ~/.shoal), SHOAL_ADDRESS (head address),
SHOAL_TOKEN (cluster token).
Exit codes: 0 done, 1 failed (the message says why), 2 bad usage.`;

const START_USAGE = `Usage: shoal start --head [--host 127.0.0.1] [--port 6380] [--token T | --new-token] [--num-cpus N] [--resources JSON]
       shoal start --address ws://HOST:PORT --token T [--num-cpus N] [--resources JSON] [--node-ip IP]

Starts this machine's Shoal daemon in the background: a node (object store and worker
processes) and, with --head, the cluster's head. Prints the head's address and how to join.

  --head             run the head here
  --host H           interface the head listens on (default 127.0.0.1; any other needs --token)
  --port P           port of the head (default 6380; 0 picks a free one)
  --address URL      the head to join (or SHOAL_ADDRESS)
  --token T          the cluster token (or SHOAL_TOKEN; a new head makes one and keeps it in
                     $SHOAL_HOME/token, mode 0600, where commands on this machine find it; a
                     head started again uses that one, so its nodes stay members; a joining
                     node keeps the one the head took in $SHOAL_HOME/joined-token)
  --new-token        with --head: make a new token even if $SHOAL_HOME/token has one (nodes
                     that have the old one are refused)
  --num-cpus N       CPUs this node offers (default: all)
  --resources JSON   custom resources this node offers, e.g. '{"gpu":1}'
  --object-store-memory SIZE
                     capacity of this node's object store, in bytes or with a suffix: 3Gi,
                     512Mi (binary) or 4G, 500M (decimal), as Kubernetes writes quantities, or a
                     share of /dev/shm: 90% (default: 30% of RAM, at most what /dev/shm can hold)
  --join-timeout S   with --address: keep trying a head not reachable yet for S seconds (nodes
                     started together with their head); default 0: fail at once
  --spill-directory DIR
                     where objects go when the store is full: a directory on disk (default
                     /var/tmp/shoal-spill-<uid>); a relative path is taken from here
  --no-spill         a full store refuses puts instead of spilling
  --node-ip IP       the address other nodes pull this node's objects from (default: the
                     address this machine reaches the head from; the head's --host for a head)
  --data-port P      port of this node's object transfer server (default 0: any free port)
  --allowed-origin URL
                     a browser origin (https://dashboard.example) whose WebSocket connections
                     the head and the data server accept; repeatable. By default any connection
                     with an Origin header (a web page) is refused with 403
  --foreground       run in the foreground until stopped (for containers and supervisors)
  --dry-run          check the options (and the token rule), print what would start as JSON,
                     and exit without starting anything`;

const STATUS_USAGE = `Usage: shoal status [--address ws://HOST:PORT] [--token T] [--json]

Shows the cluster's nodes: CPUs used/total, custom resources, objects and bytes per store,
queued and running tasks, and file descriptors open in each node's process of its limit (a
daemon raises its soft limit to the hard one at start). The address and token default to SHOAL_ADDRESS / SHOAL_TOKEN, then to
this machine's daemon and its token ($SHOAL_HOME/joined-token on a joined node, else $SHOAL_HOME/token).`;

const MEMORY_USAGE = `Usage: shoal memory [--address ws://HOST:PORT] [--token T] [--json]

Lists every live object of the cluster, largest first: its size, what it is (put or result,
pending, failed, named, inline, spilled), the nodes holding a copy and the processes holding refs
to it on each (pid and kind), then the totals. Like \`ray memory\`. The address and token are
found as for \`shoal status\`; --json prints the head's answer as it is.`;

const TIMELINE_USAGE = `Usage: shoal timeline [--minutes N] [-o FILE] [--address ws://HOST:PORT] [--token T]

Writes what ran where and when as a Chrome trace, to open in https://ui.perfetto.dev or
chrome://tracing: a row per worker process of each node with a span per task run (failed runs
are marked), and a row of each node's pulls of objects from other nodes. Like \`ray timeline\`.
Each node keeps its last ${TIMELINE_KEPT.toLocaleString('en-US')} spans.

  --minutes N   only what ended in the last N minutes (default: all the nodes kept)
  -o FILE       where to write it (default: shoal-timeline-<time>.json here; - for stdout)

The address and token are found as for \`shoal status\`.`;

const LOGS_USAGE = `Usage: shoal logs [--node ID|HOST] [--follow] [--lines N] [--json | --pretty] [--address ws://HOST:PORT] [--token T]

Prints the log of this machine's daemon ($SHOAL_HOME/daemon.log: its head, node and workers),
or with --node that of another member, asked through the head. Each line is a JSON object
(pino's: level, time, pid, component, msg); they are shown human-readable when stdout is a
terminal, as they are when not (for jq and log shippers).

  --node ID|HOST  the member with this node id or host name (\`shoal status\` lists them)
  --follow, -f    keep printing lines as they are written, until interrupted
  --lines N       how many of the last lines to print first (default 200)
  --json          print the JSON lines as they are, even on a terminal
  --pretty        print them human-readable, even when stdout is not a terminal

With --node, the address and token are found as for \`shoal status\`.`;

const DASHBOARD_USAGE = `Usage: shoal dashboard [--address ws://HOST:PORT] [--token T]

Prints where to look inside the cluster: the head's dashboard, with the token to open it once
(the page keeps it in a cookie), and the Prometheus /metrics of the head and of each node (scrape
them with the token as \`Authorization: Bearer TOKEN\`). The address and token are found as for
\`shoal status\`.`;

const HEALTH_USAGE = `Usage: shoal health [--ready] [--timeout-ms MS]

Checks this machine's Shoal daemon (the one in $SHOAL_HOME), for container health checks and
Kubernetes probes. Exit 0 when its node answers an attached client on its unix socket (liveness);
with --ready, also when the cluster's head answers and counts this node as a member (readiness).
Exit 1, with the reason, otherwise. Each step waits at most --timeout-ms (default 5000).`;

const STOP_USAGE = `Usage: shoal stop

Stops this machine's Shoal daemon (the one in $SHOAL_HOME): its workers exit, its objects are
freed and its session directory is removed. Other machines' nodes are not affected.`;

const print = (text: string): void => void process.stdout.write(`${text}\n`);
// `shoal status | head` closes the pipe early: that is the reader's choice, not an error.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw error;
});

function fail(message: string, code = 1): never {
  process.stderr.write(`shoal: ${message}\n`);
  process.exit(code);
}

function parse<T extends Record<string, { type: 'string' | 'boolean'; multiple?: boolean; short?: string }>>(args: string[], options: T) {
  try {
    return parseArgs({ args, options: { ...options, help: { type: 'boolean' as const } }, strict: true, allowPositionals: false }).values;
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

/** The flag each daemon option is given with: the runtime's messages name it so. */
const FLAGS: Readonly<Record<Parameters<OptionLabel>[0], string>> = {
  head: '--head',
  host: '--host',
  port: '--port',
  join: '--address',
  numCpus: '--num-cpus',
  resources: '--resources',
  objectStoreMemory: '--object-store-memory',
  spillDirectory: '--spill-directory',
  nodeIp: '--node-ip',
  dataPort: '--data-port',
  heartbeatTimeoutMs: 'SHOAL_HEARTBEAT_TIMEOUT_MS',
  joinTimeoutMs: '--join-timeout',
  allowedOrigins: '--allowed-origin',
};

/** A path flag made absolute (from the directory the command runs in). */
function spillPath(text: string | undefined): string | undefined {
  return text === undefined ? undefined : resolve(text);
}

/** A numeric flag as a number; text that is not one stays text, for the runtime to name in its message. */
function numeric(text: string | undefined): number | string | undefined {
  if (text === undefined) return undefined;
  const value = Number(text);
  return text.trim() === '' || Number.isNaN(value) ? text : value;
}

/** Where a daemon's store keeps its segments (the store's default shmRoot). */
const SHM_ROOT = '/dev/shm';

const QUANTITY_UNITS: Readonly<Record<string, number>> = { k: 1e3, K: 1e3, M: 1e6, G: 1e9, T: 1e12, Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40 };

/**
 * A size in bytes, written plain or as a Kubernetes quantity (`3Gi`, `500M`), so that a manifest
 * can give the same figure it gives the `/dev/shm` volume. Text that is not one stays text, for
 * the runtime to name in its message.
 */
function quantity(text: string | undefined): number | string | undefined {
  const share = text === undefined ? null : /^\s*(\d+(?:\.\d+)?)\s*%\s*$/.exec(text);
  if (share) {
    const percent = Number(share[1]);
    if (percent <= 0 || percent > 100) throw new UsageError(`expected --object-store-memory as a share of /dev/shm to be above 0% and at most 100%, got ${text}`);
    const { blocks, bsize } = statfsSync(SHM_ROOT);
    return Math.floor((blocks * bsize * percent) / 100);
  }
  const match = text === undefined ? null : /^\s*(\d+(?:\.\d+)?)\s*(k|K|M|G|T|Ki|Mi|Gi|Ti)?\s*$/.exec(text);
  if (!match) {
    if (text === undefined || typeof numeric(text) === 'number') return numeric(text);
    throw new UsageError(`expected --object-store-memory to be a size in bytes, or with a suffix (3Gi, 512Mi, 4G), got ${text}`);
  }
  return Math.floor(Number(match[1]) * (match[2] ? QUANTITY_UNITS[match[2]]! : 1));
}

/** Seconds given on the command line, as milliseconds; text that is not a number stays text (the runtime names it). */
function seconds(text: string | undefined): number | string | undefined {
  const value = numeric(text);
  return typeof value === 'number' ? Math.round(value * 1000) : value;
}

function daemonOptions(values: Record<string, string | boolean | string[] | undefined>, address: string | undefined): DaemonOptions {
  let resources: DaemonOptions['resources'];
  if (typeof values.resources === 'string') {
    try {
      resources = JSON.parse(values.resources) as DaemonOptions['resources'];
    } catch {
      throw new UsageError(`expected --resources to be JSON like '{"gpu":1}', got ${values.resources}`);
    }
  }
  const text = (name: string) => (typeof values[name] === 'string' ? values[name] : undefined);
  const given = (key: keyof DaemonOptions, value: unknown) => (value === undefined ? {} : { [key]: value });
  // Values go to the runtime as given (a number or the text that is not one): it checks each.
  const port = (numeric(text('port')) ?? 6380) as number;
  try {
    return resolveDaemonOptions(
      {
        ...(values.head ? { head: { host: text('host') ?? '127.0.0.1', port } } : { join: address }),
        ...given('numCpus', numeric(text('num-cpus'))),
        ...given('resources', resources),
        ...given('objectStoreMemory', quantity(text('object-store-memory'))),
        ...given('spillDirectory', values['no-spill'] ? false : spillPath(text('spill-directory'))),
        ...given('nodeIp', text('node-ip')),
        ...given('dataPort', numeric(text('data-port'))),
        ...given('heartbeatTimeoutMs', numeric(process.env.SHOAL_HEARTBEAT_TIMEOUT_MS || undefined)),
        ...given('joinTimeoutMs', seconds(text('join-timeout'))),
        ...given('allowedOrigins', values['allowed-origin']),
      },
      (key) => FLAGS[key],
    );
  } catch (error) {
    if (error instanceof TypeError) throw new UsageError(error.message);
    throw error;
  }
}

async function start(args: string[]): Promise<void> {
  const values = parse(args, {
    head: { type: 'boolean' },
    host: { type: 'string' },
    port: { type: 'string' },
    address: { type: 'string' },
    token: { type: 'string' },
    'new-token': { type: 'boolean' },
    'num-cpus': { type: 'string' },
    resources: { type: 'string' },
    'node-ip': { type: 'string' },
    'object-store-memory': { type: 'string' },
    'spill-directory': { type: 'string' },
    'no-spill': { type: 'boolean' },
    'data-port': { type: 'string' },
    'allowed-origin': { type: 'string', multiple: true },
    'join-timeout': { type: 'string' },
    foreground: { type: 'boolean' },
    'dry-run': { type: 'boolean' },
  });
  if (values.help) return print(START_USAGE);
  const dryRun = values['dry-run'] === true;
  const home = shoalHome();
  if (!dryRun) ensureHome(home);
  const running = dryRun ? undefined : liveDaemon(home);
  if (running) fail(`a Shoal daemon is already running for ${home} (pid ${running.pid}, head ${running.head}); run \`shoal stop\` first`);

  const address = values.address ?? (values.head ? undefined : process.env.SHOAL_ADDRESS);
  if (values.head && values.address) throw new UsageError('give either --head or --address, not both');
  if (values['no-spill'] && values['spill-directory'] !== undefined) throw new UsageError('give either --spill-directory or --no-spill, not both');
  if (!values.head && !address) throw new UsageError('give --head to start a cluster, or --address (or SHOAL_ADDRESS) to join one');
  const options = daemonOptions(values, address);
  const host = options.head?.host ?? '127.0.0.1';

  let token = values.token ?? (process.env.SHOAL_TOKEN || undefined);
  if (values.head) {
    if (!isLoopback(host) && !token) {
      fail(
        `refusing to listen on ${host} without an explicit token: anyone who can reach it could run code. ` +
          'Pass --token (or SHOAL_TOKEN), or keep the default --host 127.0.0.1.',
        2,
      );
    }
    // A head started again keeps its token, or every node of the cluster would be refused (and exit).
    if (!values['new-token']) token ??= readToken(home, 'head');
    // Hex: a token must never start with '-', or `--token <token>` would read as an option.
    token ??= randomBytes(24).toString('hex');
    if (!dryRun) writeToken(home, token);
  } else {
    token ??= readToken(home, 'joined') ?? readToken(home, 'head');
    if (!token) throw new UsageError('joining a cluster needs its token: --token T or SHOAL_TOKEN');
  }
  // A joiner's token is stored by the daemon once the head took it (daemon.ts), apart from a head's.

  const config = { home, token, ...options };
  if (dryRun) return print(JSON.stringify({ home, ...options }, null, 2));
  if (values.foreground) process.exit(await runDaemon(config));
  const started = await waitingFor(config.joinTimeoutMs, address, startDaemon(config));
  if (started.kind === 'exited') fail(`the daemon exited (code ${started.code}) before it was ready: ${started.lastWords}\n(full log: ${logPath(home)})`);
  if (started.kind === 'timeout') fail(`the daemon did not become ready within ${started.timeoutMs / 1000} s; see ${logPath(home)}`);
  const { info } = started;
  if (info.isHead) {
    print(`Shoal head and node started (pid ${info.pid}).`);
    print(`  head address:   ${info.head}`);
    print(`  join a machine: shoal start --address ${info.head} --token <token in ${home}/token>`);
  } else {
    print(`Shoal node started (pid ${info.pid}) and joined ${info.head}.`);
  }
  print(`  attach here:    SHOAL_ADDRESS=${info.address}   (or init({ address }) in a program)`);
  print(`  status / stop:  shoal status   /   shoal stop      (log: ${logPath(home)})`);
}

/**
 * `starting`, with a bar of the seconds waited out of `--join-timeout` on stderr when it is a
 * terminal and a joiner may wait for its head that long.
 */
async function waitingFor<T>(joinTimeoutMs: number | undefined, address: string | undefined, starting: Promise<T>): Promise<T> {
  if (!joinTimeoutMs || address === undefined || !progressWanted()) return starting;
  const seconds = Math.ceil(joinTimeoutMs / 1000);
  const began = Date.now();
  let bar: ReturnType<typeof progressBar> | undefined;
  // Only once it takes a while: a head that is up answers at once.
  const ticking = setInterval(() => {
    bar ??= progressBar(`shoal: waiting for the head at ${address}`, seconds, 's');
    bar.update(Math.min(seconds, Math.round((Date.now() - began) / 1000)));
  }, 1000);
  try {
    return await starting;
  } finally {
    clearInterval(ticking);
    bar?.stop();
  }
}

/** The head to ask and its token: the options, then SHOAL_ADDRESS / SHOAL_TOKEN, then this machine's daemon. */
function clusterTarget(values: { address?: string | undefined; token?: string | undefined }): { address: string; token: string } {
  const home = shoalHome();
  const envAddress = process.env.SHOAL_ADDRESS?.startsWith('ws') ? process.env.SHOAL_ADDRESS : undefined;
  const address = values.address ?? envAddress ?? liveDaemon(home)?.head;
  if (!address) fail(`no cluster to ask: no daemon runs for ${home}; pass --address ws://HOST:PORT (or SHOAL_ADDRESS)`);
  const token = values.token ?? (process.env.SHOAL_TOKEN || undefined) ?? readToken(home);
  if (!token) throw new UsageError('the cluster token is needed: --token T or SHOAL_TOKEN');
  return { address, token };
}

/** The cluster's status from its head; fails (exit 1) saying why it cannot be had. */
async function clusterStatus(address: string, token: string): Promise<Awaited<ReturnType<typeof queryStatus>>> {
  try {
    return await queryStatus(address, token);
  } catch (error) {
    fail((error as Error).message);
  }
}

/** The HTTP address of a head's or data server's port (`ws://H:P` → `http://H:P`, no trailing slash). */
function httpUrl(address: string): string {
  return address.replace(/^ws/, 'http').replace(/\/$/, '');
}

/**
 * The JSON a head's HTTP route answers; fails (exit 1) saying why it cannot be had. `what` names
 * what was asked for, `older` what an older head cannot do, `command` the command to run again.
 */
async function askHead<T>(address: string, token: string, path: string, say: { what: string; older: string; command: string }): Promise<T> {
  const url = `${httpUrl(address)}${path}`;
  try {
    const response = await fetch(url, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(15_000) });
    // An older head answers paths it does not serve with 426 (connect with a WebSocket).
    if (response.status === 426) fail(`the head at ${address} does not ${say.older} (it runs an older Shoal): upgrade its daemon, then run shoal ${say.command} again`);
    if (!response.ok) {
      // The head's own refusals are JSON saying why (`{ error }`); anything else is shown as it came.
      const text = (await response.text()).trim();
      let why = text;
      try {
        why = String((JSON.parse(text) as { error?: unknown }).error ?? text);
      } catch {
        // Not JSON.
      }
      fail(`the head at ${address} answered ${url} with HTTP ${response.status}: ${why}`);
    }
    return (await response.json()) as T;
  } catch (error) {
    fail(`cannot ask the head at ${address} for ${say.what}: ${(error as Error).message}`);
  }
}

async function timeline(args: string[]): Promise<void> {
  const values = parse(args, { address: { type: 'string' }, token: { type: 'string' }, minutes: { type: 'string' }, output: { type: 'string', short: 'o' } });
  if (values.help) return print(TIMELINE_USAGE);
  const minutes = values.minutes === undefined ? undefined : Number(values.minutes);
  if (minutes !== undefined && !(minutes > 0)) throw new UsageError(`expected --minutes to be a number of minutes above 0, got ${values.minutes}`);
  const { address, token } = clusterTarget(values);
  const since = minutes === undefined ? 0 : Date.now() - minutes * 60_000;
  const trace = await askHead<ClusterTimeline>(address, token, `/api/timeline?since=${Math.floor(since)}`, { what: 'its timeline', older: 'keep a timeline', command: 'timeline' });
  for (const node of trace.otherData.unreachable) process.stderr.write(`node ${node.node} did not answer: ${node.reason}\n`);
  const text = JSON.stringify(trace);
  if (values.output === '-') return print(text);
  const file = resolve(values.output ?? `shoal-timeline-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  try {
    writeFileSync(file, text);
  } catch (error) {
    fail(`cannot write the timeline to ${file}: ${(error as Error).message}`);
  }
  const { tasks, pulls, nodes } = trace.otherData;
  print(`wrote ${tasks} task run(s) and ${pulls} pull(s) of ${nodes} node(s)${minutes === undefined ? '' : ` from the last ${minutes} minute(s)`} to ${file}`);
  print('open it in https://ui.perfetto.dev or chrome://tracing');
}

/** How often `shoal logs --follow` looks for new lines. */
const FOLLOW_EVERY_MS = 500;

async function logs(args: string[]): Promise<void> {
  const values = parse(args, {
    node: { type: 'string' },
    follow: { type: 'boolean', short: 'f' },
    lines: { type: 'string' },
    json: { type: 'boolean' },
    pretty: { type: 'boolean' },
    address: { type: 'string' },
    token: { type: 'string' },
  });
  if (values.help) return print(LOGS_USAGE);
  if (values.json && values.pretty) throw new UsageError('--json and --pretty cannot go together: pick one');
  const lines = values.lines === undefined ? 200 : Number(values.lines);
  if (!Number.isInteger(lines) || lines < 0) throw new UsageError(`expected --lines to be a whole number of lines, got ${values.lines}`);
  const pretty = values.pretty ?? (!values.json && process.stdout.isTTY === true);
  const show = pretty ? prettyLogLine(process.stdout.isTTY === true) : (line: string) => line;
  const printAll = (read: readonly string[]) => {
    if (read.length > 0) process.stdout.write(`${read.map(show).join('\n')}\n`);
  };
  // Each read says where the next one starts; a log read once ends here, one followed never does.
  let next: (after: number | undefined) => Promise<number>;
  if (values.node === undefined) {
    const file = logPath(shoalHome());
    next = async (after) => {
      try {
        const read = readLog(file, after === undefined ? { lines } : { after });
        printAll(read.lines);
        return read.end;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT' && after === undefined) fail(`there is no log at ${file}: no daemon has run with SHOAL_HOME=${shoalHome()} (start one with shoal start)`);
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 0;
        fail(`cannot read ${file}: ${(error as Error).message}`);
      }
    };
  } else {
    const { address, token } = clusterTarget(values);
    const node = values.node;
    next = async (after) => {
      const query = new URLSearchParams({ node, ...(after === undefined ? { lines: String(lines) } : { after: String(after) }) });
      const body = await askHead<ClusterNodeLog>(address, token, `/api/logs?${query}`, { what: `node ${node}'s log`, older: "serve nodes' logs", command: 'logs' });
      if (body.file === null) fail(`node ${node} logs to no file (its daemon runs with --foreground: its log is its supervisor's, e.g. docker logs or journalctl)`);
      printAll(body.lines);
      return body.end;
    };
  }
  let end = await next(undefined);
  if (!values.follow) return;
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, FOLLOW_EVERY_MS));
    end = await next(end);
  }
}

async function memory(args: string[]): Promise<void> {
  const values = parse(args, { address: { type: 'string' }, token: { type: 'string' }, json: { type: 'boolean' } });
  if (values.help) return print(MEMORY_USAGE);
  const { address, token } = clusterTarget(values);
  const listing = await askHead<ClusterObjects>(address, token, '/api/objects', { what: 'its objects', older: 'list objects', command: 'memory' });
  if (values.json) return print(JSON.stringify(listing, null, 2));
  const size = (bytes: number) => (bytes >= 1e6 ? `${(bytes / 1e6).toFixed(1)} MB` : bytes >= 1e3 ? `${(bytes / 1e3).toFixed(1)} kB` : `${bytes} B`);
  const what = (object: ClusterObject) =>
    [object.state === 'ready' ? 'object' : object.state, object.inline ? 'inline' : '', object.spilled ? 'spilled' : '', ...object.names.map((name) => `named ${name}`)].filter(Boolean).join(', ');
  const rows = listing.objects.map((object) => [
    object.id,
    size(object.size),
    what(object),
    object.nodes.join(' '),
    object.holders.map((holder) => `${holder.kind} ${holder.pid}@${holder.node}${holder.refs > 1 ? ` x${holder.refs}` : ''}`).join(', ') || `${object.holds} hold(s) in the node`,
  ]);
  const header = ['object', 'size', 'what', 'nodes', 'held by'];
  const widths = header.map((title, i) => Math.max(title.length, ...rows.map((row) => row[i]!.length)));
  for (const row of [header, ...rows]) print(row.map((cell, i) => (i === 1 ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!))).join('  ').trimEnd());
  const total = listing.objects.reduce((sum, object) => sum + object.size, 0);
  const spilled = listing.objects.filter((object) => object.spilled).reduce((sum, object) => sum + object.size, 0);
  print(`${listing.objects.length} object(s), ${size(total)}${spilled > 0 ? ` (${size(spilled)} spilled)` : ''}`);
  for (const node of listing.unreachable) process.stderr.write(`node ${node.node} did not answer: ${node.reason}\n`);
}

async function dashboard(args: string[]): Promise<void> {
  const values = parse(args, { address: { type: 'string' }, token: { type: 'string' } });
  if (values.help) return print(DASHBOARD_USAGE);
  const { address, token } = clusterTarget(values);
  const result = await clusterStatus(address, token);
  print(`Dashboard: ${httpUrl(address)}/?token=${encodeURIComponent(token)}`);
  print(`Metrics (Authorization: Bearer <the token>):`);
  print(`  head: ${httpUrl(address)}/metrics`);
  for (const node of result.nodes) print(`  node ${node.nodeId} (${node.hostname}): ${httpUrl(node.dataUrl)}/metrics`);
}

async function status(args: string[]): Promise<void> {
  const values = parse(args, { address: { type: 'string' }, token: { type: 'string' }, json: { type: 'boolean' } });
  if (values.help) return print(STATUS_USAGE);
  const { address, token } = clusterTarget(values);
  const result = await clusterStatus(address, token);
  if (values.json) return print(JSON.stringify(result, null, 2));
  const gb = (bytes: number) => `${(bytes / 1e9).toFixed(2)} GB`;
  print(`Cluster ${result.clusterId} at ${address}: ${result.nodes.length} node(s)`);
  let cpus = 0;
  let used = 0;
  for (const node of result.nodes) {
    const total = node.resources.CPU ?? 0;
    const free = node.available.CPU ?? 0;
    cpus += total;
    used += Math.max(0, total - free);
    const custom = Object.entries(node.resources)
      .filter(([name]) => name !== 'CPU')
      .map(([name, amount]) => `${name} ${amount - (node.available[name] ?? 0)}/${amount}`)
      .join(', ');
    print(
      `  node ${node.nodeId} on ${node.hostname} (pid ${node.pid}): CPU ${Math.max(0, total - free)}/${total}` +
        `${custom ? `, ${custom}` : ''}; ${node.workers} workers; ${node.objects} objects, ${gb(node.objectBytes)} of ` +
        `${gb(node.capacityBytes)}; pulled ${node.pulls} objects (${gb(node.pulledBytes)}); ` +
        `tasks ${node.queuedTasks} queued, ${node.runningTasks} running; ` +
        `${spillSummary(node.spill, gb)}; ` +
        `file descriptors ${node.openFiles ?? '?'} open of ${node.fileLimit ?? 'unlimited'}; seen ${node.lastSeenMs} ms ago`,
    );
  }
  print(`Total: CPU ${used}/${cpus}`);
}

/** A node's spilling in a few words: what is on disk now, then what was written and read back, with their throughput. */
function spillSummary(spill: Awaited<ReturnType<typeof queryStatus>>['nodes'][number]['spill'], gb: (bytes: number) => string): string {
  if (!spill) return 'spilling unknown (an older node)';
  if (spill.spills === 0 && spill.restores === 0) return 'spilled nothing';
  const rate = (bytes: number, ms: number) => (ms > 0 ? `, ${(bytes / ms / 1e6).toFixed(2)} GB/s` : '');
  return (
    `on disk ${spill.spilledObjects} objects (${gb(spill.spilledBytes)}; spill files ${gb(spill.diskBytes)}); ` +
    `spilled ${spill.spills} (${gb(spill.spillBytesTotal)}${rate(spill.spillBytesTotal, spill.spillMs)}), ` +
    `restored ${spill.restores} (${gb(spill.restoreBytesTotal)}${rate(spill.restoreBytesTotal, spill.restoreMs)})`
  );
}

/** The version of the installed `shoal` package (its package.json, beside dist/). */
function shoalVersion(): string {
  return (createRequire(import.meta.url)('../package.json') as { version: string }).version;
}

/** Waits for `promise` at most `ms`; rejects with `message` past that. */
function within<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(message)), ms)));
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

async function health(args: string[]): Promise<void> {
  const values = parse(args, { ready: { type: 'boolean' }, 'timeout-ms': { type: 'string' } });
  if (values.help) return print(HEALTH_USAGE);
  const given = values['timeout-ms'];
  const timeoutMs = given === undefined ? 5000 : /^\d+$/.test(given) ? Number(given) : NaN;
  // Node's timers take at most 2^31 - 1 ms (longer ones fire at once).
  if (!(timeoutMs >= 1 && timeoutMs <= 2 ** 31 - 1)) {
    throw new UsageError(`expected --timeout-ms to be a whole number of milliseconds from 1 to ${2 ** 31 - 1}, got ${given}`);
  }
  const home = shoalHome();
  const info = liveDaemon(home);
  if (!info) fail(`unhealthy: no Shoal daemon runs for ${home} (or it has not finished starting)`);
  // Liveness: the node's event loop serves its socket (a hung process would accept the connection
  // in the kernel, but never welcome the client).
  const client = attachToNode(info.address);
  try {
    await within(client.connected, timeoutMs, `did not welcome an attached client within ${timeoutMs} ms`);
  } catch (error) {
    fail(`unhealthy: node ${info.nodeId} (pid ${info.pid}) at ${info.address}: ${(error as Error).message}`);
  } finally {
    await client.close();
  }
  let membership = '';
  if (values.ready) {
    const token = process.env.SHOAL_TOKEN || readToken(home);
    if (!token) fail(`not ready: no token to ask the head with (SHOAL_TOKEN, or a token file in ${home})`);
    let result: Awaited<ReturnType<typeof queryStatus>>;
    try {
      result = await within(queryStatus(info.head, token), timeoutMs, `did not answer within ${timeoutMs} ms`);
    } catch (error) {
      fail(`not ready: the head at ${info.head}: ${(error as Error).message}`);
    }
    if (!result.nodes.some((node) => node.nodeId === info.nodeId)) fail(`not ready: the head at ${info.head} does not count node ${info.nodeId} as a member`);
    membership = `; a member of cluster ${result.clusterId} at ${info.head} (${result.nodes.length} node(s))`;
  }
  print(`healthy: node ${info.nodeId} (pid ${info.pid}) answers at ${info.address}${membership}`);
}

async function stop(args: string[]): Promise<void> {
  const values = parse(args, {});
  if (values.help) return print(STOP_USAGE);
  const home = shoalHome();
  const stopped = await stopDaemon(home);
  if (stopped.kind === 'none') {
    print(`No Shoal daemon is running for ${home}.`);
    return;
  }
  print(`Stopped the Shoal daemon (pid ${stopped.info.pid}${stopped.info.isHead ? ', the head' : ''}).`);
}

const [command, ...rest] = process.argv.slice(2);
try {
  switch (command) {
    case 'start':
      await start(rest);
      break;
    case 'dashboard':
      await dashboard(rest);
      break;
    case 'memory':
      await memory(rest);
      break;
    case 'timeline':
      await timeline(rest);
      break;
    case 'logs':
      await logs(rest);
      break;
    case 'status':
      await status(rest);
      break;
    case 'stop':
      await stop(rest);
      break;
    case 'health':
      await health(rest);
      break;
    case '--version':
    case '-v':
    case 'version':
      print(`shoal ${shoalVersion()} (Node.js ${process.version})`);
      break;
    case undefined:
    case '--help':
    case '-h':
    case 'help':
      print(USAGE);
      if (command === undefined) process.exitCode = 2;
      break;
    default:
      throw new UsageError(`unknown command ${JSON.stringify(command)}`);
  }
} catch (error) {
  if (error instanceof UsageError) {
    process.stderr.write(`shoal: ${error.message}\n\n`);
    fail(`run \`shoal ${command && ['start', 'status', 'memory', 'timeline', 'logs', 'dashboard', 'health', 'stop'].includes(command) ? `${command} ` : ''}--help\` for usage`, 2);
  }
  throw error;
}
