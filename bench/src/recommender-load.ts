// HTTP load test of the recommender example (examples/src/recommender/server.ts): is a matrix
// shared through Shoal as fast to serve as one copy per process, how much memory does sharing
// save, and do requests keep succeeding while the matrix is hot-swapped?
//
//   npx turbo run build && node bench/dist/recommender-load.js [--quick] [--workers=N] [--items=N]
//       [--dim=N] [--connections=N] [--duration=S] [--rounds=N] [--retries=N]
//
// Three variants, one after the other in the same run, with the same worker count, matrix size
// and load (autocannon, C connections, GET /recommend?item=<random>&k=10):
//   naive         bench/dist/recommender-naive-server.js: every worker fills its own copy
//   shoal         examples/dist/recommender/server.js as is: one copy in shared memory
//   shoal+reload  the same, while this script POSTs /admin/reload every second
// naive and shoal run `rounds` times each (default 2, in the order naive shoal shoal naive ...),
// shoal+reload once, last. Defaults: 1,000,000 x 64, 15 s per round; --quick: 100,000 items, 3 s.
// The machine may be shared: each round waits for other processes to calm down first, and a round
// during which they still took CPU is run again (up to `retries` times in all, default 2).
// Each server starts on PORT=0, is waited for until every worker answers /health, is warmed up,
// then loaded. Meanwhile the memory of all its processes (the primary and its descendants) is
// sampled from /proc: the sum of PSS (shared pages split between the processes mapping them,
// so a shared matrix counts once) and, for comparison, the sum of RSS (which counts it in every
// process); the maximum over the load is reported. The server then gets SIGTERM and must be gone,
// with its /dev/shm/shoal-* session directory, before the next one starts.
// Prints a table and ratios, writes bench/results/recommender-load.json. Progress goes to stderr.
import autocannon, { type Result as CannonResult } from 'autocannon';
import { descendants, readProcStat } from './proc.js';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { availableParallelism, cpus, loadavg, release, totalmem } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const NAIVE_SCRIPT = fileURLToPath(new URL('./recommender-naive-server.js', import.meta.url));
const SHOAL_SCRIPT = fileURLToPath(new URL('../../examples/dist/recommender/server.js', import.meta.url));
const RESULTS_DIR = fileURLToPath(new URL('../results/', import.meta.url));

/** Decimal MB, as the server's own "published ... (256 MB)" line counts. */
const MB = 1e6;
const K = 10;
const RELOAD_EVERY_MS = 1000;
/** A reload not answered by then counts as failed (and stops holding up the end of the run). */
const RELOAD_TIMEOUT_MS = 20_000;
/** Often enough to catch the few hundred ms in which a reload holds two matrices. */
const SAMPLE_EVERY_MS = 200;
const STARTUP_TIMEOUT_MS = 180_000;
const STOP_TIMEOUT_MS = 20_000;
/** Per-process memory the Shoal runtime may add over a plain Node process (see the goals). */
const RUNTIME_ALLOWANCE_MB = 20;
/** Cores used by other processes during a round above which its numbers are flagged. */
const DISTURBED_CORES = 0.15;

// ---- options -------------------------------------------------------------------------------

interface Options {
  quick: boolean;
  workers: number;
  items: number;
  dim: number;
  connections: number;
  durationS: number;
  warmupS: number;
  /** Runs of naive and shoal each, alternating which goes first; shoal+reload runs once. */
  rounds: number;
  /** Times a round disturbed by other processes is run again (the disturbed one is discarded). */
  retries: number;
}

function parseOptions(argv: readonly string[]): Options {
  const known = '--quick, --workers=N, --items=N, --dim=N, --connections=N, --duration=S, --rounds=N, --retries=N';
  const ints: Record<string, number> = {};
  let quick = false;
  for (const arg of argv) {
    if (arg === '--quick') {
      quick = true;
      continue;
    }
    const match = /^--(workers|items|dim|connections|duration|rounds|retries)=(.*)$/.exec(arg);
    if (!match) throw new Error(`Unknown argument \`${arg}\`; known: ${known}`);
    const value = Number((match[2] ?? '').replaceAll('_', ''));
    const min = match[1] === 'retries' ? 0 : 1;
    if (!Number.isSafeInteger(value) || value < min) throw new Error(`Expected ${arg.split('=')[0]}=N with N >= 1, got \`${arg}\``);
    ints[match[1]!] = value;
  }
  const items = ints['items'] ?? (quick ? 100_000 : 1_000_000);
  if (items <= K) throw new Error(`--items must be more than k = ${K}`);
  return {
    quick,
    // One server process per core, as the example defaults to.
    workers: ints['workers'] ?? availableParallelism(),
    items,
    dim: ints['dim'] ?? 64,
    connections: ints['connections'] ?? 10,
    durationS: ints['duration'] ?? (quick ? 3 : 15),
    // Long enough to compile the kernel and fault the whole matrix into every worker.
    warmupS: quick ? 1 : 3,
    // Two rounds in A B B A order: a drift on this shared machine (another job starting, the
    // host's load) then weighs on both sides alike, and one unlucky run does not decide the ratio.
    rounds: ints['rounds'] ?? 2,
    retries: ints['retries'] ?? 2,
  };
}

// ---- small helpers -------------------------------------------------------------------------

const progress = (text: string): void => {
  process.stderr.write(`${text}\n`);
};

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** About three significant digits, without exponents. */
function fmt(value: number | undefined | null): string {
  if (value === undefined || value === null || Number.isNaN(value)) return '-';
  const abs = Math.abs(value);
  const digits = abs >= 100 ? 0 : abs >= 10 ? 1 : abs >= 1 ? 2 : abs >= 0.1 ? 3 : 4;
  return value.toFixed(digits);
}

function renderTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ');
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

/** Nearest-rank percentile (p in 0..1). */
function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length, Math.max(1, Math.ceil(p * sorted.length))) - 1]!;
}

interface HttpReply {
  status: number;
  body: string;
}

/** One request on its own connection (agent: false), so cluster hands it to the next worker. */
function httpRequest(port: number, method: string, path: string, timeoutMs: number): Promise<HttpReply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, agent: false, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${path} timed out after ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

// ---- /proc ---------------------------------------------------------------------------------

/** Clock ticks per second, the unit of utime/stime in /proc/<pid>/stat and of /proc/stat. */
const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** Whether `pid` still exists as more than a zombie (a zombie holds no memory). */
function alive(pid: number): boolean {
  const stat = readProcStat(pid);
  return stat !== undefined && stat.state !== 'Z' && stat.state !== 'X';
}

/** `root` and every live process below it (cluster workers, and anything they start). */
function processTree(root: number): number[] {
  return descendants([root]).map((stat) => stat.pid);
}

interface Rollup {
  pssKb: number;
  rssKb: number;
  pssShmemKb: number;
}

function readRollup(pid: number): Rollup | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  } catch {
    return undefined; // exited between listing and reading
  }
  const field = (name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? 0);
  return { pssKb: field('Pss'), rssKb: field('Rss'), pssShmemKb: field('Pss_Shmem') };
}

/** Bytes the files under `dir` occupy in tmpfs: these pages count whether mapped or not. */
function allocatedBytes(dir: string): number {
  let total = 0;
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return 0;
  }
  for (const entry of entries) {
    const path = join(dir, entry);
    try {
      const stat = statSync(path);
      total += stat.isDirectory() ? allocatedBytes(path) : stat.blocks * 512;
    } catch {
      // freed between listing and stat
    }
  }
  return total;
}

/** Busy clock ticks of the whole machine, from the first line of /proc/stat. */
function machineBusyTicks(): number {
  const fields = (readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '').trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal (guest time is already inside user).
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = fields;
  return user + nice + system + irq + softirq + steal;
}

// ---- memory and CPU sampling ---------------------------------------------------------------

interface MemorySample {
  atS: number;
  processes: number;
  pssMB: number;
  rssMB: number;
  pssShmemMB: number;
  shmMB: number;
  byPid: Record<number, { pssMB: number; rssMB: number }>;
}

interface MemorySummary {
  samples: number;
  /** Maximum of the per-sample sums over all server processes. */
  maxPssMB: number;
  maxRssMB: number;
  /** Maximum size of the session's files in /dev/shm (Shoal only). */
  maxShmMB: number | null;
  maxProcesses: number;
  /** The sample with the largest PSS sum, with its per-process split. */
  atMaxPss: MemorySample | null;
}

interface CpuSummary {
  /** Cores' worth of CPU the server processes used during the load. */
  serverCores: number;
  /** The same for this process (autocannon, the sampler, the reloads). */
  benchCores: number;
  /** The rest of the machine: other benchmarks or jobs sharing the cores. Should be ~0. */
  otherCores: number;
}

/** Samples the server's process tree while the load runs. */
class Sampler {
  readonly samples: MemorySample[] = [];
  private timer: NodeJS.Timeout | undefined;
  private started = 0;
  private busyAtStart = 0;
  private benchAtStart = 0;
  private readonly ticksAtStart = new Map<number, number>();
  private readonly ticksLast = new Map<number, number>();

  constructor(
    private readonly root: number,
    private readonly sessionDir: string | undefined,
  ) {}

  start(): void {
    this.started = performance.now();
    this.busyAtStart = machineBusyTicks();
    const usage = process.cpuUsage();
    this.benchAtStart = usage.user + usage.system;
    for (const pid of processTree(this.root)) {
      const ticks = readProcStat(pid)?.cpuTicks ?? 0;
      this.ticksAtStart.set(pid, ticks);
      this.ticksLast.set(pid, ticks);
    }
    this.sample();
    this.timer = setInterval(() => this.sample(), SAMPLE_EVERY_MS);
  }

  sample(): MemorySample {
    const sample: MemorySample = { atS: (performance.now() - this.started) / 1000, processes: 0, pssMB: 0, rssMB: 0, pssShmemMB: 0, shmMB: 0, byPid: {} };
    for (const pid of processTree(this.root)) {
      const rollup = readRollup(pid);
      const stat = readProcStat(pid);
      if (stat) this.ticksLast.set(pid, stat.cpuTicks);
      if (!rollup) continue;
      sample.processes += 1;
      const pssMB = (rollup.pssKb * 1024) / MB;
      const rssMB = (rollup.rssKb * 1024) / MB;
      sample.pssMB += pssMB;
      sample.rssMB += rssMB;
      sample.pssShmemMB += (rollup.pssShmemKb * 1024) / MB;
      sample.byPid[pid] = { pssMB, rssMB };
    }
    if (this.sessionDir) sample.shmMB = allocatedBytes(this.sessionDir) / MB;
    if (this.timer !== undefined) this.samples.push(sample);
    return sample;
  }

  stop(): { memory: MemorySummary; cpu: CpuSummary } {
    this.sample();
    clearInterval(this.timer);
    this.timer = undefined;
    const elapsedS = (performance.now() - this.started) / 1000;
    const busy = (machineBusyTicks() - this.busyAtStart) / CLK_TCK;
    const usage = process.cpuUsage();
    const bench = (usage.user + usage.system - this.benchAtStart) / 1e6;
    // A process that started during the load (a replaced worker) counts from zero; one that
    // exited keeps the last value read.
    let server = 0;
    for (const [pid, last] of this.ticksLast) server += (last - (this.ticksAtStart.get(pid) ?? 0)) / CLK_TCK;
    const atMaxPss = this.samples.reduce<MemorySample | null>((best, s) => (best === null || s.pssMB > best.pssMB ? s : best), null);
    return {
      memory: {
        samples: this.samples.length,
        maxPssMB: Math.max(...this.samples.map((s) => s.pssMB)),
        maxRssMB: Math.max(...this.samples.map((s) => s.rssMB)),
        maxShmMB: this.sessionDir ? Math.max(...this.samples.map((s) => s.shmMB)) : null,
        maxProcesses: Math.max(...this.samples.map((s) => s.processes)),
        atMaxPss,
      },
      cpu: {
        serverCores: server / elapsedS,
        benchCores: bench / elapsedS,
        otherCores: Math.max(0, busy - server - bench) / elapsedS,
      },
    };
  }
}

/**
 * Waits (up to `maxWaitS`) until other processes use less than DISTURBED_CORES / 2 over two
 * consecutive seconds. No server of ours runs then, so all busy time is someone else's.
 */
async function waitForQuiet(maxWaitS: number): Promise<void> {
  const deadline = performance.now() + maxWaitS * 1000;
  let calm = 0;
  let announced = false;
  while (calm < 2) {
    const before = machineBusyTicks();
    const own = process.cpuUsage();
    await sleep(1000);
    const ownNow = process.cpuUsage();
    const ownS = (ownNow.user + ownNow.system - own.user - own.system) / 1e6;
    const others = Math.max(0, (machineBusyTicks() - before) / CLK_TCK - ownS);
    calm = others < DISTURBED_CORES / 2 ? calm + 1 : 0;
    if (calm === 0 && !announced) {
      announced = true;
      progress(`other processes are using ${fmt(others)} cores; waiting up to ${maxWaitS} s for a calm machine`);
    }
    if (performance.now() > deadline) {
      progress('the machine stayed busy; going ahead (the round will show it under "other CPU")');
      return;
    }
  }
}

// ---- server lifecycle ----------------------------------------------------------------------

interface Server {
  child: ChildProcess;
  pid: number;
  port: number;
  /** The Shoal session directory, from the primary's "published ..." line. */
  sessionDir: string | undefined;
  stdout: string[];
  stderr: string[];
  /** performance.now() of each "server worker ... died" line. */
  deaths: number[];
  exited: Promise<void>;
  /** Every pid seen in the server's tree, so that stopping can check each one is gone. */
  pids: Set<number>;
}

interface Cleanup {
  /** The primary exited by itself after SIGTERM (not killed by this script). */
  primaryExited: boolean;
  stopMs: number;
  /** Server processes still alive after the primary exited (then SIGKILLed). */
  leftoverPids: number[];
  /** Whether the session directory was gone after the stop (null for the naive server). */
  sessionDirRemoved: boolean | null;
}

let active: Server | undefined;

function startServer(script: string, options: Options): Promise<Server> {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PORT: '0',
    WORKERS: String(options.workers),
    ITEMS: String(options.items),
    DIM: String(options.dim),
  };
  // The primary must start its own node, not attach to one this script might have inherited.
  delete env['SHOAL_ADDRESS'];
  const child = spawn(process.execPath, [script], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const server: Server = { child, pid: child.pid ?? -1, port: 0, sessionDir: undefined, stdout: [], stderr: [], deaths: [], exited, pids: new Set() };
  if (child.pid !== undefined) server.pids.add(child.pid);
  active = server;
  createInterface({ input: child.stderr! }).on('line', (line) => {
    server.stderr.push(line);
    if (/^server worker \d+ died/.test(line)) server.deaths.push(performance.now());
    // Stack frames would drown the progress output; the JSON keeps them.
    if (!line.startsWith('    at ')) progress(`  server stderr: ${line}`);
  });
  return new Promise<Server>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the server did not listen within ${STARTUP_TIMEOUT_MS / 1000} s`)), STARTUP_TIMEOUT_MS);
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`the server exited (${signal ?? code}) before listening:\n${server.stderr.join('\n')}`));
    });
    // The stdout lines keep being read after this resolves, so the pipe never fills up.
    createInterface({ input: child.stdout! }).on('line', (line) => {
      server.stdout.push(line);
      const session = /session (\S+)/.exec(line);
      if (session) server.sessionDir = session[1];
      const listening = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(line);
      if (listening) {
        clearTimeout(timer);
        server.port = Number(listening[1]);
        resolve(server);
      }
    });
  });
}

/**
 * Waits until every worker answers /health. The example announces the port when the first
 * worker listens; cluster only hands connections to workers that listen, so a fresh connection
 * per probe reaches each of them in turn once they all do.
 */
async function waitForWorkers(server: Server, workers: number): Promise<void> {
  const seen = new Set<number>();
  const deadline = performance.now() + STARTUP_TIMEOUT_MS;
  while (seen.size < workers) {
    if (performance.now() > deadline) throw new Error(`only ${seen.size} of ${workers} workers answered /health`);
    try {
      const reply = await httpRequest(server.port, 'GET', '/health', 5000);
      if (reply.status === 200) seen.add((JSON.parse(reply.body) as { pid: number }).pid);
    } catch {
      // not ready yet
    }
    if (seen.size < workers) await sleep(20);
  }
  for (const pid of processTree(server.pid)) server.pids.add(pid);
}

async function waitUntil(condition: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) return false;
    await sleep(20);
  }
  return true;
}

/** SIGTERM, then checks that every process and the session directory are gone. */
async function stopServer(server: Server): Promise<Cleanup> {
  const started = performance.now();
  for (const pid of processTree(server.pid)) server.pids.add(pid);
  let primaryExited = true;
  if (server.child.exitCode === null && server.child.signalCode === null) {
    server.child.kill('SIGTERM');
    // A cleared timer, not sleep(): a pending one would keep this script alive after the run.
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), STOP_TIMEOUT_MS)));
    primaryExited = await Promise.race([server.exited.then(() => true), timedOut]);
    clearTimeout(timer);
  }
  // The workers get their own SIGTERM from the primary; give them a moment to finish exiting.
  await waitUntil(() => [...server.pids].every((pid) => !alive(pid)), 5000);
  const leftoverPids = [...server.pids].filter(alive);
  for (const pid of leftoverPids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  if (!primaryExited) await server.exited;
  let sessionDirRemoved: boolean | null = null;
  if (server.sessionDir) {
    const dir = server.sessionDir;
    sessionDirRemoved = await waitUntil(() => !existsSync(dir), 5000);
    // Leave nothing behind even if the server did: this directory is this run's own session.
    if (!sessionDirRemoved) rmSync(dir, { recursive: true, force: true });
  }
  if (active === server) active = undefined;
  return { primaryExited, stopMs: performance.now() - started, leftoverPids, sessionDirRemoved };
}

// ---- load ----------------------------------------------------------------------------------

interface Served {
  /** 200 replies whose body was not a top-k list of K items. */
  badBodies: number;
  byPid: Map<number, number>;
  byVersion: Map<number, number>;
  errorsByKind: Map<string, number>;
  /** Every response's latency (ms), so that rounds can be pooled into exact percentiles. */
  latencies: number[];
}

function newServed(): Served {
  return { badBodies: 0, byPid: new Map(), byVersion: new Map(), errorsByKind: new Map(), latencies: [] };
}

function runCannon(port: number, options: Options, durationS: number, served: Served): Promise<CannonResult> {
  const instance = autocannon({
    url: `http://127.0.0.1:${port}`,
    connections: options.connections,
    duration: durationS,
    // A request waits behind up to C / workers full scans; anything past 10 s is a failure.
    timeout: 10,
    requests: [
      {
        method: 'GET',
        setupRequest: (req) => ({ ...req, path: `/recommend?item=${Math.floor(Math.random() * options.items)}&k=${K}` }),
        onResponse: (status, body) => {
          if (status !== 200) return; // counted by autocannon as non-2xx
          try {
            const reply = JSON.parse(body) as { version?: unknown; pid?: unknown; results?: unknown };
            if (typeof reply.version !== 'number' || typeof reply.pid !== 'number' || !Array.isArray(reply.results) || reply.results.length !== K) {
              served.badBodies += 1;
              return;
            }
            served.byPid.set(reply.pid, (served.byPid.get(reply.pid) ?? 0) + 1);
            served.byVersion.set(reply.version, (served.byVersion.get(reply.version) ?? 0) + 1);
          } catch {
            served.badBodies += 1;
          }
        },
      },
    ],
  });
  // autocannon only counts errors; their kinds tell a reset (a worker died mid-request) from a
  // refused connection (no worker listening) or a timeout.
  instance.on('reqError', (error: NodeJS.ErrnoException) => {
    const kind = error.code ?? error.message;
    served.errorsByKind.set(kind, (served.errorsByKind.get(kind) ?? 0) + 1);
  });
  instance.on('response', (_client: unknown, _status: number, _bytes: number, responseTimeMs: number) => {
    served.latencies.push(responseTimeMs);
  });
  return Promise.resolve(instance);
}

interface ReloadOutcome {
  /** Seconds from the start of the load. */
  sentAtS: number;
  ms: number;
  /** `version N` for a 200, else the error. */
  outcome: string;
}

interface ReloadSummary {
  sent: number;
  ok: number;
  failed: number;
  failures: string[];
  latencyMs: { p50: number; max: number };
  /** The most reloads that were in flight at once (> 1: reloads queue up behind each other). */
  maxInFlight: number;
  lastVersion: number | null;
  /** Every reload in the order sent: when, how long, what came back. */
  log: ReloadOutcome[];
}

/** POSTs /admin/reload every second, whether or not the previous one has been answered. */
class Reloader {
  private timer: NodeJS.Timeout | undefined;
  private readonly inFlight = new Set<Promise<void>>();
  private sent = 0;
  private ok = 0;
  private readonly failures: string[] = [];
  private readonly latencies: number[] = [];
  private maxInFlight = 0;
  private lastVersion: number | null = null;
  private readonly log: ReloadOutcome[] = [];

  constructor(
    private readonly port: number,
    private readonly loadStarted: number,
  ) {}

  start(): void {
    this.timer = setInterval(() => this.fire(), RELOAD_EVERY_MS);
  }

  private fire(): void {
    this.sent += 1;
    const started = performance.now();
    const entry: ReloadOutcome = { sentAtS: (started - this.loadStarted) / 1000, ms: Number.NaN, outcome: 'pending' };
    this.log.push(entry);
    const done = httpRequest(this.port, 'POST', '/admin/reload', RELOAD_TIMEOUT_MS)
      .then((reply) => {
        entry.ms = performance.now() - started;
        if (reply.status !== 200) throw new Error(`status ${reply.status}: ${reply.body}`);
        this.ok += 1;
        this.latencies.push(entry.ms);
        const version = (JSON.parse(reply.body) as { version: number }).version;
        entry.outcome = `version ${version}`;
        this.lastVersion = Math.max(this.lastVersion ?? 0, version);
      })
      .catch((error: unknown) => {
        entry.ms = performance.now() - started;
        entry.outcome = String(error);
        this.failures.push(String(error));
      })
      .finally(() => this.inFlight.delete(done));
    this.inFlight.add(done);
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight.size);
  }

  async stop(): Promise<ReloadSummary> {
    clearInterval(this.timer);
    await Promise.all(this.inFlight);
    return {
      sent: this.sent,
      ok: this.ok,
      failed: this.failures.length,
      failures: this.failures.slice(0, 10),
      latencyMs: { p50: percentile(this.latencies, 0.5), max: this.latencies.length > 0 ? Math.max(...this.latencies) : Number.NaN },
      maxInFlight: this.maxInFlight,
      lastVersion: this.lastVersion,
      log: this.log,
    };
  }
}

// ---- one variant ---------------------------------------------------------------------------

interface Variant {
  name: string;
  script: string;
  shoal: boolean;
  reload: boolean;
}

/** One server start, warm-up, load and stop. */
interface RoundResult {
  name: string;
  /** 1-based, per variant. */
  round: number;
  startupS: number;
  requests: number;
  durationS: number;
  reqPerSec: number;
  /** autocannon's own latency histogram for this round. */
  latencyMs: { mean: number; p50: number; p90: number; p99: number; max: number };
  non2xx: number;
  errors: number;
  timeouts: number;
  /** autocannon's request errors by code (ECONNRESET, ECONNREFUSED, ...). */
  errorsByKind: Record<string, number>;
  badBodies: number;
  /** non-2xx + errors (timeouts included) + bad bodies + failed reload POSTs. */
  failed: number;
  statusCodes: Record<string, number>;
  requestsByPid: Record<string, number>;
  versionsServed: number[];
  /** Server workers that died during the run (the primary's "died ... starting another" lines). */
  workerRestarts: number;
  /** When they died, in seconds from the start of the load (negative: before it). */
  workerDeathsAtS: number[];
  reloads: ReloadSummary | null;
  /** Server memory after warm-up, before the load (one sample). */
  idle: { pssMB: number; rssMB: number; shmMB: number | null; processes: number };
  memory: MemorySummary;
  cpu: CpuSummary;
  cleanup: Cleanup;
  serverStderr: string[];
}

async function measureRound(variant: Variant, round: number, rounds: number, options: Options): Promise<{ result: RoundResult; latencies: number[] }> {
  const label = rounds > 1 ? `[${variant.name} ${round}/${rounds}]` : `[${variant.name}]`;
  const startedAt = performance.now();
  progress(`${label} starting ${variant.script}`);
  const server = await startServer(variant.script, options);
  let cleanup: Cleanup | undefined;
  try {
    await waitForWorkers(server, options.workers);
    const startupS = (performance.now() - startedAt) / 1000;
    progress(`${label} ${options.workers} workers ready on port ${server.port} after ${fmt(startupS)} s; warming up ${options.warmupS} s`);
    const warm = await runCannon(server.port, options, options.warmupS, newServed());
    progress(`${label} warm-up: ${warm.requests.total} requests, ${warm.non2xx} non-2xx, ${warm.errors} errors`);

    const sampler = new Sampler(server.pid, server.sessionDir);
    const idleSample = sampler.sample();
    const served = newServed();
    progress(`${label} load: ${options.connections} connections for ${options.durationS} s${variant.reload ? ', reload every second' : ''}`);
    sampler.start();
    const loadStarted = performance.now();
    const reloader = variant.reload ? new Reloader(server.port, loadStarted) : undefined;
    reloader?.start();
    const result = await runCannon(server.port, options, options.durationS, served);
    // Sampling covers the load only, not the wait below for reloads still in flight.
    const { memory, cpu } = sampler.stop();
    const reloads = (await reloader?.stop()) ?? null;
    for (const pid of processTree(server.pid)) server.pids.add(pid);

    cleanup = await stopServer(server);
    const requests = result.requests.total;
    const failed = result.non2xx + result.errors + served.badBodies + (reloads?.failed ?? 0);
    const outcome: RoundResult = {
      name: variant.name,
      round,
      startupS,
      requests,
      durationS: result.duration,
      reqPerSec: requests / result.duration,
      latencyMs: { mean: result.latency.average, p50: result.latency.p50, p90: result.latency.p90, p99: result.latency.p99, max: result.latency.max },
      non2xx: result.non2xx,
      errors: result.errors,
      timeouts: result.timeouts,
      errorsByKind: Object.fromEntries(served.errorsByKind),
      badBodies: served.badBodies,
      failed,
      statusCodes: Object.fromEntries(Object.entries(result.statusCodeStats).map(([code, { count }]) => [code, Number(count)])),
      requestsByPid: Object.fromEntries([...served.byPid].map(([pid, count]) => [String(pid), count])),
      versionsServed: [...served.byVersion.keys()].sort((a, b) => a - b),
      workerRestarts: server.deaths.length,
      workerDeathsAtS: server.deaths.map((at) => (at - loadStarted) / 1000),
      reloads,
      idle: { pssMB: idleSample.pssMB, rssMB: idleSample.rssMB, shmMB: server.sessionDir ? idleSample.shmMB : null, processes: idleSample.processes },
      memory,
      cpu,
      cleanup,
      // Without stack frames: the messages and the primary's restarts are what explain a failure.
      serverStderr: server.stderr.filter((line) => !line.startsWith('    at ')).slice(0, 60),
    };
    progress(
      `${label} ${fmt(outcome.reqPerSec)} req/s, p50 ${fmt(outcome.latencyMs.p50)} ms, p99 ${fmt(outcome.latencyMs.p99)} ms, ` +
        `${failed} failed; PSS max ${fmt(memory.maxPssMB)} MB, RSS max ${fmt(memory.maxRssMB)} MB; ` +
        `server CPU ${fmt(cpu.serverCores)} cores, others ${fmt(cpu.otherCores)}` +
        (reloads ? `; reloads ${reloads.ok}/${reloads.sent} ok, p50 ${fmt(reloads.latencyMs.p50)} ms` : '') +
        `; stopped in ${fmt(cleanup.stopMs)} ms`,
    );
    return { result: outcome, latencies: served.latencies };
  } finally {
    // On an error above, still take the server down before the next variant or the exit.
    if (!cleanup) await stopServer(server);
  }
}

/** A variant over all its rounds: counts summed, latencies pooled, memory and disturbance maxed. */
interface VariantResult {
  name: string;
  server: string;
  reloadEverySecond: boolean;
  requests: number;
  durationS: number;
  /** All rounds' requests over all rounds' load time. */
  reqPerSec: number;
  reqPerSecByRound: number[];
  /** Percentiles of every response's latency in every round (not an average of percentiles). */
  latencyMs: { mean: number; p50: number; p90: number; p99: number; max: number };
  non2xx: number;
  errors: number;
  timeouts: number;
  errorsByKind: Record<string, number>;
  badBodies: number;
  failed: number;
  workerRestarts: number;
  /** The most distinct versions served within one round. */
  versionsServed: number;
  /** Reloads of the round that had them (one by design). */
  reloads: ReloadSummary | null;
  memory: { maxPssMB: number; maxRssMB: number; maxShmMB: number | null; maxProcesses: number };
  cpu: { serverCores: number; maxOtherCores: number };
  rounds: RoundResult[];
}

function aggregate(variant: Variant, runs: readonly { result: RoundResult; latencies: number[] }[]): VariantResult {
  const rounds = runs.map((run) => run.result);
  const latencies = runs.flatMap((run) => run.latencies);
  const sum = (pick: (r: RoundResult) => number): number => rounds.reduce((total, r) => total + pick(r), 0);
  const max = (pick: (r: RoundResult) => number): number => Math.max(...rounds.map(pick));
  const errorsByKind: Record<string, number> = {};
  for (const r of rounds) for (const [kind, count] of Object.entries(r.errorsByKind)) errorsByKind[kind] = (errorsByKind[kind] ?? 0) + count;
  const requests = sum((r) => r.requests);
  const durationS = sum((r) => r.durationS);
  return {
    name: variant.name,
    server: variant.shoal ? 'examples/dist/recommender/server.js' : 'bench/dist/recommender-naive-server.js',
    reloadEverySecond: variant.reload,
    requests,
    durationS,
    reqPerSec: requests / durationS,
    reqPerSecByRound: rounds.map((r) => r.reqPerSec),
    latencyMs: {
      mean: latencies.reduce((total, ms) => total + ms, 0) / latencies.length,
      p50: percentile(latencies, 0.5),
      p90: percentile(latencies, 0.9),
      p99: percentile(latencies, 0.99),
      max: latencies.length > 0 ? Math.max(...latencies) : Number.NaN,
    },
    non2xx: sum((r) => r.non2xx),
    errors: sum((r) => r.errors),
    timeouts: sum((r) => r.timeouts),
    errorsByKind,
    badBodies: sum((r) => r.badBodies),
    failed: sum((r) => r.failed),
    workerRestarts: sum((r) => r.workerRestarts),
    versionsServed: max((r) => r.versionsServed.length),
    reloads: rounds.find((r) => r.reloads !== null)?.reloads ?? null,
    memory: {
      maxPssMB: max((r) => r.memory.maxPssMB),
      maxRssMB: max((r) => r.memory.maxRssMB),
      maxShmMB: variant.shoal ? max((r) => r.memory.maxShmMB ?? 0) : null,
      maxProcesses: max((r) => r.memory.maxProcesses),
    },
    cpu: { serverCores: sum((r) => r.cpu.serverCores) / rounds.length, maxOtherCores: max((r) => r.cpu.otherCores) },
    rounds,
  };
}

// ---- report --------------------------------------------------------------------------------

/**
 * The commit measured, and whether the tree differed from it: other work lands in this repo while
 * benchmarks run, and the servers run whatever the packages' and examples' dist folders hold.
 */
function codeRevision(): { commit: string | null; dirty: boolean | null } {
  const root = fileURLToPath(new URL('../../', import.meta.url));
  try {
    const commit = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: root, encoding: 'utf8' }).trim();
    const status = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: root, encoding: 'utf8' });
    return { commit, dirty: status.trim().length > 0 };
  } catch {
    return { commit: null, dirty: null };
  }
}

function machine() {
  return {
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    totalMemBytes: totalmem(),
    node: process.version,
    kernel: release(),
    // The machine is shared: the load when the run started says how much to trust it.
    loadAverage1mAtStart: loadavg()[0] ?? null,
  };
}

function table(results: readonly VariantResult[]): string {
  const header = ['variant', 'rounds', 'req/s', 'p50 ms', 'p99 ms', 'requests', 'non-2xx', 'errors', 'bad', 'PSS MB', 'RSS MB', 'shm MB', 'reloads ok', 'versions', 'restarts', 'other CPU'];
  const rows = results.map((r) => [
    r.name,
    String(r.rounds.length),
    fmt(r.reqPerSec),
    fmt(r.latencyMs.p50),
    fmt(r.latencyMs.p99),
    String(r.requests),
    String(r.non2xx),
    String(r.errors),
    String(r.badBodies),
    fmt(r.memory.maxPssMB),
    fmt(r.memory.maxRssMB),
    r.memory.maxShmMB === null ? '-' : fmt(r.memory.maxShmMB),
    r.reloads ? `${r.reloads.ok}/${r.reloads.sent}` : '-',
    String(r.versionsServed),
    String(r.workerRestarts),
    fmt(r.cpu.maxOtherCores),
  ]);
  return renderTable(header, rows);
}

/** One line on what failed in a variant, for the summary under the table. */
function describeFailures(r: VariantResult): string {
  const kinds = Object.entries(r.errorsByKind).map(([kind, count]) => `${count} ${kind}`);
  const parts = [
    ...(kinds.length > 0 ? [`request errors: ${kinds.join(', ')}`] : []),
    ...(r.non2xx > 0 ? [`${r.non2xx} non-2xx`] : []),
    ...(r.badBodies > 0 ? [`${r.badBodies} bad bodies`] : []),
    ...(r.reloads && r.reloads.failed > 0 ? [`${r.reloads.failed} reload POSTs failed`] : []),
    ...r.rounds
      .filter((round) => round.workerRestarts > 0)
      .map((round) => `round ${round.round}: server workers died at ${round.workerDeathsAtS.map((at) => `${fmt(at)} s`).join(', ')} of the load`),
  ];
  return `${r.name} failures: ${parts.join('; ')}`;
}

function cleanupProblems(results: readonly VariantResult[], discarded: readonly RoundResult[]): string[] {
  return [...results.flatMap((variant) => variant.rounds), ...discarded].flatMap((r) => [
    ...(r.cleanup.primaryExited ? [] : [`${r.name}: the primary did not exit within ${STOP_TIMEOUT_MS / 1000} s of SIGTERM (killed)`]),
    ...(r.cleanup.leftoverPids.length === 0 ? [] : [`${r.name}: processes ${r.cleanup.leftoverPids.join(', ')} outlived the primary (killed)`]),
    ...(r.cleanup.sessionDirRemoved === false ? [`${r.name}: the session directory was left in /dev/shm (removed by this script)`] : []),
  ]);
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  for (const script of [NAIVE_SCRIPT, SHOAL_SCRIPT]) {
    if (!existsSync(script)) throw new Error(`${script} is missing; build first: npx turbo run build`);
  }
  const matrixMB = (options.items * options.dim * 4) / MB;
  const host = machine();
  progress(
    `recommender load: ${options.workers} workers, ${options.items.toLocaleString('en-US')} x ${options.dim} (${fmt(matrixMB)} MB), ` +
      `${options.connections} connections, ${options.durationS} s per round, ${options.rounds} rounds (load average ${fmt(host.loadAverage1mAtStart)})`,
  );
  const naiveVariant: Variant = { name: 'naive', script: NAIVE_SCRIPT, shoal: false, reload: false };
  const shoalVariant: Variant = { name: 'shoal', script: SHOAL_SCRIPT, shoal: true, reload: false };
  const reloadVariant: Variant = { name: 'shoal+reload', script: SHOAL_SCRIPT, shoal: true, reload: true };
  // naive shoal | shoal naive | ...: each side goes first equally often. The reload run is about
  // failures and memory while versions change, so once is enough; it goes last.
  const schedule: Variant[] = [];
  for (let round = 0; round < options.rounds; round++) {
    schedule.push(...(round % 2 === 0 ? [naiveVariant, shoalVariant] : [shoalVariant, naiveVariant]));
  }
  schedule.push(reloadVariant);
  const started = performance.now();
  const runs = new Map<Variant, { result: RoundResult; latencies: number[] }[]>();
  const discarded: RoundResult[] = [];
  let retriesLeft = options.retries;
  for (const variant of schedule) {
    const done = runs.get(variant) ?? [];
    const rounds = variant.reload ? 1 : options.rounds;
    for (;;) {
      // Another job on this shared machine would take cores from whichever round it overlaps;
      // start each round on a calm machine and run it again if something arrived meanwhile.
      await waitForQuiet(options.quick ? 20 : 60);
      const run = await measureRound(variant, done.length + 1, rounds, options);
      if (run.result.cpu.otherCores <= DISTURBED_CORES || retriesLeft === 0) {
        done.push(run);
        break;
      }
      retriesLeft -= 1;
      discarded.push(run.result);
      progress(`[${variant.name}] other processes used ${fmt(run.result.cpu.otherCores)} cores during that round: running it again`);
    }
    runs.set(variant, done);
  }
  const elapsedS = (performance.now() - started) / 1000;

  const results = [naiveVariant, shoalVariant, reloadVariant].map((variant) => aggregate(variant, runs.get(variant) ?? []));
  const [naive, shoal, reload] = results as [VariantResult, VariantResult, VariantResult];
  const reloadRound = reload.rounds[0];
  const processes = shoal.memory.maxProcesses;
  // Memory besides the matrices themselves: the naive server holds one per worker, Shoal one.
  const naiveOverheadMB = naive.memory.maxPssMB - options.workers * matrixMB;
  const shoalOverheadMB = shoal.memory.maxPssMB - matrixMB;
  const ratios = {
    shoalOverNaiveThroughput: shoal.reqPerSec / naive.reqPerSec,
    shoalReloadOverNaiveThroughput: reload.reqPerSec / naive.reqPerSec,
    shoalOverNaivePss: shoal.memory.maxPssMB / naive.memory.maxPssMB,
    shoalReloadOverNaivePss: reload.memory.maxPssMB / naive.memory.maxPssMB,
    shoalOverNaiveRss: shoal.memory.maxRssMB / naive.memory.maxRssMB,
  };
  const goals = {
    throughputAtLeast95PercentOfNaive: ratios.shoalOverNaiveThroughput >= 0.95,
    // "One matrix + per-process overhead": what Shoal holds besides its one matrix is at most
    // what the naive server holds besides its N copies, plus an allowance per process for the
    // Shoal runtime (its code, socket and heap), so that an extra copy of the matrix anywhere
    // would show (at the default size) while a few MB of runtime would not.
    memoryIsOneMatrixPlusOverhead: shoalOverheadMB <= naiveOverheadMB + RUNTIME_ALLOWANCE_MB * processes,
    zeroFailedRequestsDuringReloads: reload.failed === 0,
  };
  const disturbed = results.filter((r) => r.cpu.maxOtherCores > DISTURBED_CORES).map((r) => r.name);
  const problems = cleanupProblems(results, discarded);
  const failing = results.filter((r) => r.failed > 0 || r.workerRestarts > 0);

  console.log(
    `\nRecommender load test: ${options.workers} server workers, ${options.items.toLocaleString('en-US')} x ${options.dim} ` +
      `float32 (${fmt(matrixMB)} MB), ${options.connections} connections, ${options.durationS} s per round. ` +
      `${host.cpu}, ${host.cores} cores, node ${host.node}`,
  );
  console.log(table(results));
  const yes = (ok: boolean): string => (ok ? 'met' : 'NOT met');
  console.log(
    [
      '',
      'PSS/RSS: max over the load of the sum over all server processes (primary + workers); shm: the',
      'Shoal session files in /dev/shm (counted in PSS only while mapped). bad: 200s without k results.',
      'other CPU: cores busy outside the server and this script during the load (another job sharing the machine),',
      'the worst round. Rounds are pooled: req/s = all requests / all load time, latency percentiles over all responses.',
      `req/s by round: naive ${naive.reqPerSecByRound.map(fmt).join(', ')}; shoal ${shoal.reqPerSecByRound.map(fmt).join(', ')}`,
      '',
      `throughput shoal / naive:         ${fmt(ratios.shoalOverNaiveThroughput)}   (shoal+reload / naive: ${fmt(ratios.shoalReloadOverNaiveThroughput)})`,
      `PSS shoal / naive:                ${fmt(ratios.shoalOverNaivePss)}   (shoal+reload / naive: ${fmt(ratios.shoalReloadOverNaivePss)}; RSS shoal / naive: ${fmt(ratios.shoalOverNaiveRss)})`,
      `naive memory:  ${options.workers} x ${fmt(matrixMB)} MB matrix + ${fmt(naiveOverheadMB)} MB over ${naive.memory.maxProcesses} processes`,
      `shoal memory:  1 x ${fmt(matrixMB)} MB matrix + ${fmt(shoalOverheadMB)} MB over ${processes} processes` +
        ` (${fmt(shoalOverheadMB / processes)} MB each)`,
      ...(reload.reloads
        ? [
            `reloads:       ${reload.reloads.ok}/${reload.reloads.sent} answered 200, p50 ${fmt(reload.reloads.latencyMs.p50)} ms, ` +
              `max ${fmt(reload.reloads.latencyMs.max)} ms, up to ${reload.reloads.maxInFlight} in flight; ` +
              `${reload.versionsServed} versions served (${reloadRound?.versionsServed[0] ?? '-'}..${reloadRound?.versionsServed.at(-1) ?? '-'})`,
          ]
        : []),
      '',
      'goals (tracked, not asserted):',
      `  shoal throughput >= 0.95 x naive:                 ${yes(goals.throughputAtLeast95PercentOfNaive)} (${fmt(ratios.shoalOverNaiveThroughput)})`,
      `  shoal memory ~ one matrix + per-process overhead: ${yes(goals.memoryIsOneMatrixPlusOverhead)} ` +
        `(${fmt(shoalOverheadMB)} MB besides the matrix; allowed: naive's ${fmt(naiveOverheadMB)} MB + ${RUNTIME_ALLOWANCE_MB} MB x ${processes} processes)`,
      `  zero failed requests during reloads:              ${yes(goals.zeroFailedRequestsDuringReloads)} (${reload.failed} failed` +
        `${reload.workerRestarts > 0 ? `; ${reload.workerRestarts} server workers died, see serverStderr in the JSON` : ''})`,
      ...(failing.length > 0 ? ['', ...failing.map(describeFailures)] : []),
      ...(disturbed.length > 0 ? ['', `warning: other processes used CPU during ${disturbed.join(', ')}; the comparison may be disturbed, rerun`] : []),
      ...(problems.length > 0 ? ['', 'cleanup problems:', ...problems.map((p) => `  ${p}`)] : []),
      `total ${fmt(elapsedS)} s`,
    ].join('\n'),
  );

  mkdirSync(RESULTS_DIR, { recursive: true });
  const file = `${RESULTS_DIR}recommender-load.json`;
  const report = {
    benchmark: 'recommender-load',
    date: new Date().toISOString(),
    machine: host,
    code: codeRevision(),
    options: { ...options, k: K, reloadEveryMs: RELOAD_EVERY_MS, sampleEveryMs: SAMPLE_EVERY_MS, matrixMB },
    elapsedS,
    ratios,
    goals,
    overheadMB: { naive: naiveOverheadMB, shoal: shoalOverheadMB },
    disturbed,
    discardedRounds: discarded,
    cleanupProblems: problems,
    results,
  };
  writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
  progress(`wrote ${file}`);
}

// Ctrl-C or a kill: take the running server down (and its /dev/shm session) instead of
// orphaning it, then exit as the signal would have.
for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
  process.once(signal, () => {
    const server = active;
    void (server ? stopServer(server) : Promise.resolve()).finally(() => process.exit(code));
  });
}

try {
  await main();
} catch (error) {
  process.exitCode = 1;
  console.error(error);
  if (active) await stopServer(active);
}
