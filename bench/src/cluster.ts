// The cluster suite: two of Ray's object-transfer figures, with a real multi-node cluster on this
// machine. Each node is a `shoal start` daemon with its own SHOAL_HOME and so its own session
// directory in /dev/shm: an object a task needs on another node crosses a bulk connection (raw
// bytes read straight into a segment file of that node's own), exactly as between hosts, only on
// loopback.
//
//   object_transfer_1gb        node B pulls a fresh 1 GiB object from node A: the driver (on A)
//                              puts it with store.create and runs a task needing {gpu:1}, which
//                              only B offers, that reads its length and last element.
//     peers, same run:         raw TCP on loopback between two processes, 1 GiB written from a
//                              preallocated buffer in 1 MiB writes, (a) received and discarded,
//                              (b) pwritten into a new /dev/shm file (what Shoal's receiver does)
//   broadcast_1gb_to_3_nodes   three tasks at once, needing {bcast0:1}, {bcast1:1}, {bcast2:1},
//                              which B, C and D offer (1 CPU each): the object reaches three nodes;
//                              each task must report its own node (the worker's process.ppid). One
//                              shared {bcast:1} does not spread them reliably (docs/benchmarks.md).
//     peer, same run:          raw TCP from one process to three at once, each pwriting into a
//                              new /dev/shm file; both rows are also given ÷ their single transfer.
//
// Time: from the submit to the (last) result, measured in the driver; the peers from the parent
// telling the sender to start to the last byte received (and written). Before the runs, small
// tasks warm every node's worker, function cache and data connection, so the pull dominates; the
// task latency with a 1 MiB argument is reported beside it. Every run puts a fresh object (the
// copies pulled for a task are freed after it, and the driver frees its own), contenders take
// turns (rotated each run), and the median is reported. A check at the end asks the head how many
// bytes each node pulled, so a transfer that did not happen cannot pass for a fast one.
//
// Shaped mode (`--only=cluster-netns`, root only): the same suite, every line of it, with each
// node (daemon, and A's driver and raw TCP sender, or B–D's raw TCP receivers) in a network
// namespace of its own, linked to one bridge by a veth pair limited with tbf on both ends
// (shaped-network.ts): each node's upload and download are each held to the rate, so a broadcast
// from A shares A's one uplink. Its goals are those of issue 16: one transfer ≥ 0.9× raw TCP over
// the same link, and the broadcast ≤ 1.3× one transfer. A last check reads tbf's counters, so a
// transfer that did not cross the shaped links cannot pass either.
//
// Everything started (daemons, driver, sender, files, namespaces) is stopped or removed on
// success, failure and SIGINT/SIGTERM/SIGHUP: the daemons with `shoal stop` (SIGTERM at exit),
// their homes removed, each daemon's session directory checked to be gone, and the namespaces
// (with the bridge, the veth pairs and their qdiscs) deleted.
import { execFile, fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { freemem, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { fmt, renderTable, rotate, settle, stats, type Stats } from './common.js';
import type { DriverReply, DriverRequest } from './cluster-driver.js';
import { LOOPBACK, type ClusterNetwork } from './cluster-network.js';
import type { ReceiveRequest, ReceiverMessage } from './cluster-tcp-receiver.js';
import type { SendReply, SendRequest } from './cluster-tcp-sender.js';
import { cpuSnapshot, interferenceBetween, isDisturbed, type CpuSnapshot, type Interference } from './interference.js';
import { killAtExit, removeAtExit, Scope } from './lifecycle.js';
import { readProcStat, treeTicks } from './proc.js';
import { BURST, LATENCY, ShapedNetwork, type LinkCounters } from './shaped-network.js';

const CLI = join(dirname(createRequire(import.meta.url).resolve('shoal')), 'cli.js');
const DRIVER = fileURLToPath(new URL('./cluster-driver.js', import.meta.url));
const SENDER = fileURLToPath(new URL('./cluster-tcp-sender.js', import.meta.url));
const RECEIVER = fileURLToPath(new URL('./cluster-tcp-receiver.js', import.meta.url));
const execFileAsync = promisify(execFile);

const MIB = 1 << 20;
const GIB = 1 << 30;
/** Below this the figures would be latency, not bandwidth. */
const MIN_BYTES = 64 * MIB;
/** A task that has not answered by then is stuck (a 1 GiB pull takes seconds). */
const REQUEST_TIMEOUT_MS = 300_000;
/** Shoal ≥ this × raw TCP on loopback (docs/DESIGN.md, "Wire"). */
export const TRANSFER_GOAL = 0.8;
/** On shaped links (issue 16): one transfer ≥ this × raw TCP over the same link... */
export const SHAPED_TRANSFER_GOAL = 0.9;
/** ...and the broadcast to three nodes ≤ this × one transfer. */
export const SHAPED_BROADCAST_GOAL = 1.3;

/** Where the nodes run: this machine's loopback, or namespaces joined by shaped links. */
export type ClusterMode = 'loopback' | 'shaped';

export interface ClusterOptions {
  quick: boolean;
  mode: ClusterMode;
  /** Bytes of each object and each raw TCP transfer. */
  bytes: number;
  runs: number;
  /** Nodes the broadcast reaches (besides the head's, which holds the object). */
  nodes: number;
  warmRounds: number;
  latencyRounds: number;
  /** Shaped mode: each link's rate, each way, in Mbit/s (`--mbit=N`). @default 1000 */
  mbit: number;
}

/**
 * Object size: `--mib=N`, else 1 GiB; with --quick 64 MiB on loopback and 256 MiB on shaped
 * links (~2 s a transfer at 1 Gbit/s).
 */
export function clusterOptions(
  flags: { quick: boolean; runs?: number | undefined; mib?: number | undefined; mbit?: number | undefined },
  mode: ClusterMode = 'loopback',
): ClusterOptions {
  if (flags.mib !== undefined && flags.mib * MIB < MIN_BYTES) throw new RangeError(`Expected \`--mib\` to be at least ${MIN_BYTES / MIB}, got \`${flags.mib}\``);
  return {
    quick: flags.quick,
    mode,
    bytes: flags.mib !== undefined ? flags.mib * MIB : !flags.quick ? GIB : mode === 'shaped' ? 256 * MIB : MIN_BYTES,
    runs: flags.runs ?? (flags.quick ? 1 : 3),
    nodes: 3,
    warmRounds: flags.quick ? 1 : 2,
    latencyRounds: flags.quick ? 3 : 7,
    mbit: flags.mbit ?? 1000,
  };
}

/** One goal of a mode: `value` against `target`, at least or at most. */
export interface ClusterGoal {
  name: string;
  value: number;
  target: number;
  atMost: boolean;
  met: boolean;
}

interface Timed {
  ms: Stats;
  /** GB/s (10^9 bytes) at the median time. */
  gbps: number;
}

/** Shaped mode where no namespace can be made (not root, no iproute2, no CAP_NET_ADMIN). */
export interface ClusterSkipped {
  options: ClusterOptions;
  skipped: string;
}

export interface ClusterReport {
  options: ClusterOptions;
  /** ClusterNetwork.description: "on loopback", "over 1000 Mbit/s links (...)". */
  network: string;
  nodes: { role: string; pid: number; nodeId: string; resources: Record<string, number> }[];
  transfer: Timed & { taskLatencyMs: Stats };
  tcp: Timed;
  tcpShm: Timed;
  /** GB/s here is the aggregate: bytes × nodes per second. */
  /** `uploads` (shaped mode): what each node's link sent per broadcast, in objects (frames included), medians. */
  broadcast: Timed & { perTaskMs: number[][]; ppids: number[][]; uploads?: Record<string, number> };
  /** Raw TCP from one process to `nodes` processes at once, each pwriting into a /dev/shm file (aggregate GB/s). */
  tcpBroadcast: Timed;
  ratios: {
    /** object_transfer_1gb GB/s ÷ raw TCP GB/s. */
    transferVsTcp: number;
    /** object_transfer_1gb GB/s ÷ raw TCP into a /dev/shm file GB/s. */
    transferVsTcpShm: number;
    /** broadcast time ÷ single transfer time (medians). */
    broadcastVsSingle: number;
    /** The same for raw TCP: to `nodes` receivers ÷ to one, both into /dev/shm files. */
    tcpBroadcastVsSingle: number;
  };
  goals: ClusterGoal[];
  /** Shaped mode: what tbf counted on each node's link (cumulative, warm-up included). */
  links?: LinkCounters[];
  /** What the head reported each node pulled (cumulative, warm-up included). */
  pulls: { role: string; pulls: number; pulledBytes: number; objects: number }[];
  /** Other processes' CPU while the runs went on (the daemons and their workers count as ours). */
  interference: Interference;
  /** Checks that failed: pulls that did not happen, tasks on the wrong node, leftovers. */
  problems: string[];
}

// ---- the nodes -----------------------------------------------------------------------------

interface Daemon {
  role: string;
  home: string;
  pid: number;
  address: string;
  head: string;
  nodeId: string;
  resources: Record<string, number>;
}

/**
 * Homes whose daemon may be running. At exit (a failure, a signal) each daemon still running is
 * sent SIGTERM, which makes it stop its workers and remove its session directory, and the home
 * is removed. This hook, not lifecycle's removeAtExit, owns the homes: the daemons must be found
 * before their homes go. (lifecycle's own exit hook, registered first, has killed any `shoal
 * start` still running by then, so no daemon appears after the search.)
 */
const homes = new Set<string>();
process.on('exit', () => {
  for (const home of homes) {
    for (const pid of daemonPids(home)) {
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        // Already gone.
      }
    }
    rmSync(home, { recursive: true, force: true });
  }
});

/**
 * The daemons of `home`: the one its daemon.json names, and any daemon process whose SHOAL_HOME
 * it is (a daemon still starting has not written daemon.json yet).
 */
function daemonPids(home: string): Set<number> {
  const pids = new Set<number>();
  try {
    pids.add((JSON.parse(readFileSync(join(home, 'daemon.json'), 'utf8')) as { pid: number }).pid);
  } catch {
    // Not written (yet).
  }
  let names: string[] = [];
  try {
    names = readdirSync('/proc');
  } catch {
    // Not Linux: daemon.json is all there is.
  }
  for (const name of names) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (!readFileSync(`/proc/${name}/cmdline`, 'utf8').includes('daemon.js')) continue;
      if (readFileSync(`/proc/${name}/environ`, 'utf8').split('\0').includes(`SHOAL_HOME=${home}`)) pids.add(Number(name));
    } catch {
      // Gone, or not ours to read.
    }
  }
  return pids;
}

/**
 * Whether process `pid` still runs. A stopped daemon is not this process's child (it was started
 * detached): it may linger a moment as a zombie until init reaps it, which is not running.
 */
function isAlive(pid: number): boolean {
  const stat = readProcStat(pid);
  return stat !== undefined && stat.state !== 'Z' && stat.state !== 'X';
}

/** The environment of a `shoal` command or the driver for `home`: none of the caller's cluster. */
function envFor(home: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, SHOAL_HOME: home };
  delete env.SHOAL_ADDRESS;
  delete env.SHOAL_TOKEN;
  return env;
}

/** Runs `shoal ...args` as node `role` (in its namespace, if it has one) for `home`. */
async function shoal(network: ClusterNetwork, role: string, home: string, args: string[]): Promise<string> {
  const running = execFileAsync(...network.wrap(role, [process.execPath, CLI, ...args]), { env: envFor(home), timeout: 60_000 });
  const forget = killAtExit(running.child);
  try {
    return (await running).stdout;
  } finally {
    await forget();
  }
}

async function startDaemon(network: ClusterNetwork, role: string, args: string[], resources: Record<string, number>): Promise<Daemon> {
  const home = mkdtempSync(join(tmpdir(), `shoal-bench-cluster-${role}-`));
  homes.add(home);
  const resourceArgs = Object.keys(resources).length > 0 ? ['--resources', JSON.stringify(resources)] : [];
  await shoal(network, role, home, ['start', ...args, '--num-cpus', '1', ...resourceArgs]);
  const info = JSON.parse(readFileSync(join(home, 'daemon.json'), 'utf8')) as Omit<Daemon, 'role' | 'home' | 'resources'>;
  return { role, home, pid: info.pid, address: info.address, head: info.head, nodeId: info.nodeId, resources };
}

const sessionDirectory = (daemon: Daemon): string => dirname(daemon.address.replace(/^unix:/, ''));

/** Stops the daemons (all at once: each stop takes seconds) and says what was left behind, removing it. */
async function stopCluster(network: ClusterNetwork, daemons: readonly Daemon[], log: (text: string) => void): Promise<string[]> {
  const problems: string[] = [];
  const stop = async (daemon: Daemon): Promise<void> => {
    try {
      await shoal(network, daemon.role, daemon.home, ['stop']);
    } catch (error) {
      problems.push(`shoal stop of node ${daemon.role} failed: ${(error as Error).message}`);
      if (isAlive(daemon.pid)) process.kill(daemon.pid, 'SIGKILL');
    }
  };
  await Promise.all(daemons.map(stop));
  for (const daemon of daemons) {
    if (isAlive(daemon.pid)) problems.push(`node ${daemon.role} (pid ${daemon.pid}) still runs after shoal stop`);
    const directory = sessionDirectory(daemon);
    if (existsSync(directory)) {
      problems.push(`node ${daemon.role} left its session directory ${directory}; removed`);
      rmSync(directory, { recursive: true, force: true });
    }
    rmSync(daemon.home, { recursive: true, force: true });
    homes.delete(daemon.home);
  }
  log(`stopped ${daemons.length} nodes`);
  return problems;
}

interface StatusNode {
  nodeId: string;
  pid: number;
  pulls: number;
  pulledBytes: number;
  objects: number;
}

async function clusterStatus(network: ClusterNetwork, head: Daemon): Promise<StatusNode[]> {
  return (JSON.parse(await shoal(network, head.role, head.home, ['status', '--json'])) as { nodes: StatusNode[] }).nodes;
}

// ---- child processes -----------------------------------------------------------------------

/** Sends `message` to `child` and resolves with its next message; rejects if it exits or stalls. */
function ask<R>(child: ChildProcess, what: string, message?: unknown): Promise<R> {
  return new Promise((resolve, reject) => {
    const cleanup = (): void => {
      clearTimeout(timer);
      child.off('message', onMessage);
      child.off('exit', onExit);
    };
    const onMessage = (reply: unknown): void => {
      cleanup();
      resolve(reply as R);
    };
    const onExit = (code: number | null, signal: string | null): void => {
      cleanup();
      reject(new Error(`${what} exited (code ${code}, signal ${signal})`));
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`${what} did not answer within ${REQUEST_TIMEOUT_MS / 1000} s`));
    }, REQUEST_TIMEOUT_MS);
    child.on('message', onMessage);
    child.once('exit', onExit);
    if (message !== undefined) child.send(message as object);
  });
}

/**
 * Forks `script` as a process of node `role` and waits for its first message (it is ready); the
 * child is stopped (disconnected, then killed if need be) when `scope` closes.
 */
async function start<M = unknown>(
  scope: Scope,
  network: ClusterNetwork,
  role: string,
  script: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  what: string,
): Promise<{ child: ChildProcess; ready: M }> {
  // Through the network's wrapper (`ip netns exec`, which execs node: the IPC channel passes).
  const [execPath, execArgv] = network.wrap(role, [process.execPath, ...process.execArgv]);
  // stdout goes to our stderr: with --json our stdout is the report's.
  const child = fork(script, args, { env, execPath, execArgv, stdio: ['ignore', 2, 2, 'ipc'] });
  const kill = killAtExit(child);
  scope.defer(async () => {
    if (child.exitCode === null && child.signalCode === null && child.connected) {
      const exited = once(child, 'exit');
      child.disconnect();
      await Promise.race([exited, delay(5000, undefined, { ref: false })]);
    }
    await kill();
  });
  return { child, ready: await ask<M>(child, what) };
}

async function driverRequest<R extends DriverReply & { ok: true }>(driver: ChildProcess, request: DriverRequest): Promise<R> {
  const reply = await ask<DriverReply>(driver, 'the driver', request);
  if (!reply.ok) throw new Error(`the driver's ${request.op} failed: ${reply.error}`);
  return reply as R;
}

// ---- raw TCP, the peer ---------------------------------------------------------------------

/** A receiving process of the raw TCP peer, and the address it listens on. */
interface Receiver {
  child: ChildProcess;
  host: string;
  port: number;
}

/**
 * One raw TCP transfer of `bytes` from the sender process to each of `receivers` at once; with
 * `files`, receiver i pwrites what it reads into files[i] (a new file, removed after). Returns the
 * ms from the go to the last receiver's last byte received (and written).
 */
async function tcpTransfer(sender: ChildProcess, receivers: readonly Receiver[], bytes: number, files?: readonly string[]): Promise<number> {
  const check = (message: ReceiverMessage, type: 'armed' | 'done'): void => {
    if (!message.ok) throw new Error(`raw TCP receiver: ${message.error}`);
    if (message.type !== type) throw new Error(`raw TCP receiver: expected ${type}, got ${message.type}`);
  };
  for (const [i, receiver] of receivers.entries()) {
    const file = files?.[i];
    check(await ask<ReceiverMessage>(receiver.child, 'a TCP receiver', { bytes, ...(file === undefined ? {} : { file }) } satisfies ReceiveRequest), 'armed');
  }
  try {
    const done = receivers.map((receiver) => ask<ReceiverMessage>(receiver.child, 'a TCP receiver'));
    const started = performance.now();
    const targets = receivers.map(({ host, port }) => ({ host, port }));
    const sent = ask<SendReply>(sender, 'the TCP sender', { targets, bytes } satisfies SendRequest);
    for (const message of await Promise.all(done)) check(message, 'done');
    const ms = performance.now() - started;
    const reply = await sent;
    if (!reply.ok) throw new Error(`raw TCP sender: ${reply.error}`);
    return ms;
  } finally {
    for (const file of files ?? []) rmSync(file, { force: true });
  }
}

// ---- CPU used by others --------------------------------------------------------------------

/** The daemons are detached (not our descendants): their CPU is added to ours. */
function snapshot(daemons: readonly Daemon[]): CpuSnapshot {
  const at = cpuSnapshot();
  try {
    return { ...at, ours: at.ours + treeTicks(daemons.map((daemon) => daemon.pid)) };
  } catch {
    return { ...at, ours: Number.NaN };
  }
}

// ---- the suite -----------------------------------------------------------------------------

/** The size to use: `bytes`, halved (with a warning) while the copies would not fit. */
function fitBytes(options: ClusterOptions, log: (text: string) => void): number {
  let bytes = options.bytes;
  // In /dev/shm at once: the object on A, a copy per broadcast node, the raw TCP file; in RAM
  // besides: the sender's buffer.
  const shmCopies = 1 + options.nodes + 1;
  let shmFree = Number.POSITIVE_INFINITY;
  try {
    const fs = statfsSync('/dev/shm');
    shmFree = fs.bavail * fs.bsize;
  } catch {
    // No /dev/shm to ask: Shoal itself will say.
  }
  const fits = (size: number): boolean => size * shmCopies * 1.1 <= shmFree && size * (shmCopies + 1) * 1.1 <= freemem();
  while (bytes > MIN_BYTES && !fits(bytes)) bytes /= 2;
  if (bytes !== options.bytes) log(`warning: ${fmt(options.bytes / 1e9)} GB objects do not fit in memory ${shmCopies + 1} times: using ${fmt(bytes / 1e9)} GB`);
  return bytes;
}

const gbps = (bytes: number, ms: number): number => bytes / 1e9 / (ms / 1000);

/**
 * Runs the suite on loopback or, with `mode: 'shaped'`, on a shaped network made for it; the
 * latter resolves to why it was skipped when no network namespace can be made here.
 */
export async function runCluster(requested: ClusterOptions, log: (text: string) => void): Promise<ClusterReport | ClusterSkipped> {
  const options = { ...requested, bytes: fitBytes(requested, log) };
  const { bytes, nodes: broadcastNodes } = options;
  const others = ['B', 'C', 'D', 'E', 'F', 'G', 'H'].slice(0, broadcastNodes);
  const scope = new Scope();
  const problems: string[] = [];
  const report = (found: string[]): void => {
    for (const problem of found) log(`problem: ${problem}`);
    problems.push(...found);
  };
  let network: ClusterNetwork = LOOPBACK;
  let shaped: ShapedNetwork | undefined;
  if (options.mode === 'shaped') {
    const opened = ShapedNetwork.open(['A', ...others], { mbit: options.mbit, burst: BURST, latency: LATENCY });
    if ('skipped' in opened) return { options, skipped: opened.skipped };
    network = shaped = opened;
    // Closed last: after the daemons have stopped and the children have exited.
    scope.defer(() => report(opened.close()));
    log(`made ${others.length + 1} network namespaces and a bridge, ${network.description}`);
  }
  const daemons: Daemon[] = [];
  scope.defer(async () => report(await stopCluster(network, daemons, log)));
  try {
    log(`starting a head and ${broadcastNodes} more nodes (1 CPU each, own SHOAL_HOME and session directory)`);
    const token = `bench-${randomBytes(16).toString('hex')}`;
    const a = await startDaemon(network, 'A', ['--head', '--host', network.host('A'), '--port', '0', '--token', token], {});
    daemons.push(a);
    const joinArgs = ['--address', a.head, '--token', token];
    const settled = await Promise.allSettled(
      others.map((role, i) => startDaemon(network, role, joinArgs, { ...(role === 'B' ? { gpu: 1 } : {}), [`bcast${i}`]: 1 })),
    );
    for (const result of settled) if (result.status === 'fulfilled') daemons.push(result.value);
    const failed = settled.find((result) => result.status === 'rejected');
    if (failed) throw (failed as PromiseRejectedResult).reason;
    const b = daemons.find((daemon) => daemon.role === 'B')!;
    // Task i of a broadcast needs bcast<i>: it must run on others[i].
    const bcastPids = others.map((role) => daemons.find((daemon) => daemon.role === role)!.pid);
    const onTheirNodes = (ppids: readonly number[]): boolean => ppids.every((pid, i) => pid === bcastPids[i % broadcastNodes]);
    const joined = await clusterStatus(network, a);
    if (joined.length !== daemons.length) throw new Error(`the head reports ${joined.length} nodes, ${daemons.length} were started`);

    const shmDir = `/dev/shm/shoal-bench-cluster-${process.pid}`;
    scope.defer(removeAtExit(shmDir));
    // An owner.json naming us keeps any Shoal session's stale sweep away from it while we run.
    mkdirSync(shmDir, { recursive: true, mode: 0o700 });
    writeFileSync(join(shmDir, 'owner.json'), JSON.stringify({ pid: process.pid, startTime: null }));
    const shmFiles = others.map((_, i) => join(shmDir, `tcp-${i}.bin`));

    // The raw TCP peer: a sender process and one receiving process per node receiving.
    const { child: sender } = await start(scope, network, 'A', SENDER, [String(bytes)], process.env, 'the TCP sender');
    const receivers: Receiver[] = [];
    for (const role of others) {
      const host = network.host(role);
      const { child, ready } = await start<ReceiverMessage>(scope, network, role, RECEIVER, [host], process.env, `TCP receiver ${role}`);
      if (!ready.ok || ready.type !== 'ready') throw new Error(`TCP receiver ${role} did not start: ${JSON.stringify(ready)}`);
      receivers.push({ child, host, port: ready.port });
    }
    const one = receivers.slice(0, 1);
    const oneFile = shmFiles.slice(0, 1);
    const { child: driver } = await start(scope, network, 'A', DRIVER, [a.head], envFor(a.home), 'the driver');

    log('warming up: small tasks on every node, small raw TCP transfers');
    const warm = await driverRequest<Extract<DriverReply, { op: 'warm' }>>(driver, { op: 'warm', rounds: options.warmRounds, nodes: broadcastNodes });
    if (warm.singlePpids.some((pid) => pid !== b.pid)) throw new Error(`a {gpu:1} task ran on node pid ${warm.singlePpids.join(', ')}, not B (${b.pid})`);
    if (!onTheirNodes(warm.broadcastPpids)) throw new Error(`warm-up broadcast tasks ran on pids ${warm.broadcastPpids.join(', ')}, expected ${bcastPids.join(', ')}`);
    const warmBytes = Math.min(bytes, MIN_BYTES);
    await tcpTransfer(sender, one, warmBytes);
    await tcpTransfer(sender, receivers, warmBytes, shmFiles);
    const latency = await driverRequest<Extract<DriverReply, { op: 'latency' }>>(driver, { op: 'latency', rounds: options.latencyRounds });

    const times = { transfer: [] as number[], broadcast: [] as number[], tcp: [] as number[], tcpShm: [] as number[], tcpBroadcast: [] as number[] };
    const perTaskMs: number[][] = [];
    const ppids: number[][] = [];
    /** Shaped mode: what each node's link sent during each broadcast, in objects. */
    const broadcastUploads: Record<string, number>[] = [];
    const contenders = ['transfer', 'broadcast', 'tcp', 'tcpShm', 'tcpBroadcast'] as const;
    const cpuAtStart = snapshot(daemons);
    for (let run = 0; run < options.runs; run++) {
      for (const contender of rotate(contenders, run)) {
        settle();
        let ms: number;
        if (contender === 'tcp') ms = await tcpTransfer(sender, one, bytes);
        else if (contender === 'tcpShm') ms = await tcpTransfer(sender, one, bytes, oneFile);
        else if (contender === 'tcpBroadcast') ms = await tcpTransfer(sender, receivers, bytes, shmFiles);
        else if (contender === 'transfer') {
          const reply = await driverRequest<Extract<DriverReply, { op: 'single' | 'broadcast' }>>(driver, { op: 'single', bytes });
          if (reply.tasks[0]?.ppid !== b.pid) throw new Error(`the {gpu:1} task ran on pid ${reply.tasks[0]?.ppid}, not node B (${b.pid})`);
          ms = reply.ms;
        } else {
          const before = shaped?.counters();
          const reply = await driverRequest<Extract<DriverReply, { op: 'single' | 'broadcast' }>>(driver, { op: 'broadcast', bytes, nodes: broadcastNodes });
          if (before) broadcastUploads.push(uploadsSince(before, shaped!.counters(), bytes));
          const on = reply.tasks.map((task) => task.ppid);
          if (new Set(on).size !== broadcastNodes || !onTheirNodes(on)) {
            throw new Error(`the ${broadcastNodes} broadcast tasks ran on node pids ${on.join(', ')}, not on ${broadcastNodes} distinct nodes ${bcastPids.join(', ')}`);
          }
          perTaskMs.push(reply.tasks.map((task) => task.ms));
          ppids.push(on);
          ms = reply.ms;
        }
        times[contender].push(ms);
        log(`run ${run + 1}/${options.runs} ${contender}: ${fmt(ms)} ms (${fmt(gbps(contender.endsWith('roadcast') ? bytes * broadcastNodes : bytes, ms))} GB/s)`);
      }
    }
    const cpuAtEnd = snapshot(daemons);

    // Each timed transfer was a fresh object, so each must have been a pull: ask the head what
    // every node pulled (its figures are refreshed every second, so allow a few reports).
    const expectedPull = (role: string): number => (role === 'A' ? 0 : options.runs * bytes * (role === 'B' ? 2 : 1));
    let pulls: ClusterReport['pulls'] = [];
    for (const deadline = performance.now() + 3500; ; await delay(250)) {
      const status = await clusterStatus(network, a);
      pulls = daemons.map((daemon) => {
        const node = status.find((entry) => entry.pid === daemon.pid);
        return { role: daemon.role, pulls: node?.pulls ?? Number.NaN, pulledBytes: node?.pulledBytes ?? Number.NaN, objects: node?.objects ?? Number.NaN };
      });
      if (pulls.every((node) => node.pulledBytes >= expectedPull(node.role)) || performance.now() > deadline) break;
    }
    for (const node of pulls) {
      if (!(node.pulledBytes >= expectedPull(node.role))) problems.push(`node ${node.role} pulled ${node.pulledBytes} bytes, expected at least ${expectedPull(node.role)}`);
    }
    // And every timed byte crossed the shaped links: B received four contenders' bytes and C, D
    // two each. A sent the three single transfers' and raw TCP's broadcast (once per node) up its
    // link, and Shoal's broadcast at least once: the nodes relay it to each other (relay.ts), so
    // what A did not send, the others did — together the links carried it once per node.
    const links = shaped?.counters();
    for (const link of links ?? []) {
      const up = link.role === 'A' ? options.runs * bytes * (3 + broadcastNodes + 1) : 0;
      const down = link.role === 'A' ? 0 : options.runs * bytes * (link.role === 'B' ? 4 : 2);
      if (link.upBytes < up) problems.push(`node ${link.role}'s shaped link sent ${link.upBytes} bytes, expected at least ${up}`);
      if (link.downBytes < down) problems.push(`node ${link.role}'s shaped link received ${link.downBytes} bytes, expected at least ${down}`);
    }
    const sentUp = (links ?? []).reduce((sum, link) => sum + link.upBytes, 0);
    const expectedUp = options.runs * bytes * (3 + 2 * broadcastNodes);
    if (links && sentUp < expectedUp) problems.push(`the shaped links sent ${sentUp} bytes in all, expected at least ${expectedUp}`);

    const timed = (samples: number[], total: number): Timed => {
      const ms = stats(samples);
      return { ms, gbps: gbps(total, ms.median) };
    };
    const transfer = { ...timed(times.transfer, bytes), taskLatencyMs: stats(latency.ms) };
    const tcp = timed(times.tcp, bytes);
    const tcpShm = timed(times.tcpShm, bytes);
    const broadcast = {
      ...timed(times.broadcast, bytes * broadcastNodes),
      perTaskMs,
      ppids,
      ...(shaped ? { uploads: medianUploads(broadcastUploads) } : {}),
    };
    const tcpBroadcast = timed(times.tcpBroadcast, bytes * broadcastNodes);
    const ratios = {
      transferVsTcp: transfer.gbps / tcp.gbps,
      transferVsTcpShm: transfer.gbps / tcpShm.gbps,
      broadcastVsSingle: broadcast.ms.median / transfer.ms.median,
      tcpBroadcastVsSingle: tcpBroadcast.ms.median / tcpShm.ms.median,
    };
    const goal = (name: string, value: number, target: number, atMost = false): ClusterGoal => ({
      name,
      value,
      target,
      atMost,
      met: atMost ? value <= target : value >= target,
    });
    const goals =
      options.mode === 'shaped'
        ? [
            goal('object_transfer ÷ raw TCP over the same link', ratios.transferVsTcp, SHAPED_TRANSFER_GOAL),
            goal(`broadcast_1gb_to_${broadcastNodes}_nodes ÷ one object_transfer`, ratios.broadcastVsSingle, SHAPED_BROADCAST_GOAL, true),
          ]
        : [
            goal('object_transfer ÷ raw TCP', ratios.transferVsTcp, TRANSFER_GOAL),
            goal('object_transfer ÷ raw TCP into a /dev/shm file', ratios.transferVsTcpShm, TRANSFER_GOAL),
          ];

    // The driver detaches, then the nodes stop: what they leave behind is a problem of the report.
    await scope.close();
    return {
      options,
      network: network.description,
      nodes: daemons.map(({ role, pid, nodeId, resources }) => ({ role, pid, nodeId, resources })),
      transfer,
      tcp,
      tcpShm,
      broadcast,
      tcpBroadcast,
      ratios,
      goals,
      ...(links ? { links } : {}),
      pulls,
      interference: interferenceBetween(cpuAtStart, cpuAtEnd),
      problems,
    };
  } catch (error) {
    // The daemons' logs go with their homes: keep their last lines.
    for (const daemon of daemons) {
      try {
        const lines = readFileSync(join(daemon.home, 'daemon.log'), 'utf8').trimEnd().split('\n').slice(-5);
        log(`node ${daemon.role} log:\n  ${lines.join('\n  ')}`);
      } catch {
        // No log.
      }
    }
    throw error;
  } finally {
    await scope.close();
  }
}

/** What each node's link sent between two readings of the counters, in objects of `bytes`. */
function uploadsSince(before: readonly LinkCounters[], after: readonly LinkCounters[], bytes: number): Record<string, number> {
  return Object.fromEntries(after.map((link) => [link.role, (link.upBytes - (before.find((old) => old.role === link.role)?.upBytes ?? 0)) / bytes]));
}

/** The median of each role's uploads over the runs. */
function medianUploads(runs: readonly Record<string, number>[]): Record<string, number> {
  const roles = [...new Set(runs.flatMap((run) => Object.keys(run)))];
  return Object.fromEntries(roles.map((role) => [role, stats(runs.map((run) => run[role] ?? 0)).median]));
}

// ---- output --------------------------------------------------------------------------------

const size = (bytes: number): string => (bytes >= GIB ? `${fmt(bytes / GIB)} GiB` : `${fmt(bytes / MIB)} MiB`);
const range = (ms: Stats): string => `${fmt(ms.min)}–${fmt(ms.max)}`;

/** Shaped mode: what each node's link sent per broadcast (1 for A and 0 elsewhere when the holder sends all; relayed, A's 1 and the others' 2 in all). */
function holderCopies(report: ClusterReport): string[] {
  const uploads = report.broadcast.uploads;
  if (!uploads) return [];
  const each = Object.entries(uploads).map(([role, objects]) => `${role} ${fmt(objects)}`);
  return [`Per broadcast, each node's link sent (in objects, frames included): ${each.join(', ')}; the holder is A, the rest was relayed node to node.`];
}

/** The goals as one line: `object_transfer ÷ raw TCP ≥ 0.8: 0.85 (met); ...`. */
export function clusterGoalLine(report: ClusterReport): string {
  return report.goals.map((goal) => `${goal.name} ${goal.atMost ? '≤' : '≥'} ${goal.target}: ${fmt(goal.value)} (${goal.met ? 'met' : 'NOT met'})`).join('; ');
}

export function clusterTable(report: ClusterReport, host: { cpu: string; cores: number; node: string }): string {
  const { options, transfer, tcp, tcpShm, broadcast, tcpBroadcast, ratios } = report;
  const rows: string[][] = [
    ['object_transfer_1gb (node A → B)', fmt(transfer.ms.median), range(transfer.ms), fmt(transfer.gbps), '1'],
    ['  peer: raw TCP, received and discarded', fmt(tcp.ms.median), range(tcp.ms), fmt(tcp.gbps), `Shoal ${fmt(ratios.transferVsTcp)}×`],
    ['  peer: raw TCP, pwritten into a new /dev/shm file', fmt(tcpShm.ms.median), range(tcpShm.ms), fmt(tcpShm.gbps), `Shoal ${fmt(ratios.transferVsTcpShm)}×`],
    [`broadcast_1gb_to_${options.nodes}_nodes (A → B, C, D at once)`, fmt(broadcast.ms.median), range(broadcast.ms), `${fmt(broadcast.gbps)} total`, `${fmt(ratios.broadcastVsSingle)}× single`],
    [
      `  peer: raw TCP to ${options.nodes} processes at once, into /dev/shm files`,
      fmt(tcpBroadcast.ms.median),
      range(tcpBroadcast.ms),
      `${fmt(tcpBroadcast.gbps)} total`,
      `${fmt(ratios.tcpBroadcastVsSingle)}× single`,
    ],
  ];
  const lines = [
    `Cluster: ${size(options.bytes)} objects between nodes ${report.network}, median of ${options.runs} run(s); GB = 10^9 bytes`,
    `${host.cpu}, ${host.cores} cores, node ${host.node}; ${report.nodes.length} nodes (1 CPU each) on this machine` +
      (options.mode === 'shaped' ? ', each in a network namespace of its own' : ''),
    '',
    renderTable(['', 'ms', 'min–max', 'GB/s', 'ratio'], rows),
    '',
    `Task latency with a 1 MiB argument pulled (included in the transfer's time): median ${fmt(transfer.taskLatencyMs.median)} ms.`,
    ...(options.mode === 'shaped'
      ? [
          `Of the link rate (${fmt(options.mbit / 8000)} GB/s each way): raw TCP ${fmt(tcp.gbps / (options.mbit / 8000))}, Shoal ${fmt(transfer.gbps / (options.mbit / 8000))}.`,
          ...holderCopies(report),
        ]
      : []),
    `Goal ${clusterGoalLine(report)}.`,
    `Other processes used ${fmt(report.interference.otherCores)} cores during the runs${isDisturbed(report.interference) ? ': DISTURBED, rerun on a quiet machine' : ''}.`,
  ];
  if (options.quick) lines.push('(--quick: small objects, one run; the figures mean nothing.)');
  for (const problem of report.problems) lines.push(`PROBLEM: ${problem}`);
  return lines.join('\n');
}
