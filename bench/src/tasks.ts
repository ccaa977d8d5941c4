// Task throughput and latency of Shoal's `remote` next to Piscina and a raw fork() IPC pool, plus
// a transport-only comparison of the local wire (unix socket + length-prefixed msgpackr frames)
// against Node's own IPC channel.
//
//   node --expose-gc bench/dist/tasks.js [--quick] [--runs=N] [--tasks=N] [--latency=N]
//                                        [--messages=N] [--window=N]
//
// Every task contender has two workers:
//   Shoal    init({ numCpus: 2 }): two worker processes over unix sockets; remote((a, b) => a + b)
//   Piscina  worker_threads pool, minThreads = maxThreads = 2, the same function in a worker file
//   fork     two child_process.fork children (default JSON serialization), round-robin, replies
//            matched by id
// Measured per run, contenders in an order rotated every run:
//   throughput  --tasks tasks submitted at once, all awaited: tasks/s
//   latency     --latency tasks one at a time, each awaited before the next: p50 and p99 (the
//               contenders take turns every 50 round trips, so they share the machine's drift)
//   transport   one child echoing { type, id, payload: Uint8Array(64) }: messages/s with --window
//               messages in flight, and the round trip of one message at a time (p50, p99)
// Prints tables on stdout (medians over runs; ratios are per-run ratios to the same run's
// reference, then the median), writes bench/results/tasks.json. Progress goes to stderr.
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import { get, init, remote, shutdown, type ObjectRef } from 'shoal';
import {
  fmt,
  fmtInt,
  gc,
  machine,
  median,
  parseFlags,
  percentile,
  progress,
  renderTable,
  rotate,
  settle,
  stats,
  writeResults,
  type Stats,
} from './common.js';
import { FramedLink } from './framed-link.js';

const WORKERS = 2;
const PISCINA_WORKER = fileURLToPath(new URL('./tasks-piscina-worker.js', import.meta.url));
const IPC_CHILD = fileURLToPath(new URL('./tasks-ipc-child.js', import.meta.url));
const SOCKET_CHILD = fileURLToPath(new URL('./tasks-socket-child.js', import.meta.url));
/** The transport comparison's message body: small, with a binary field like most Shoal messages. */
const PAYLOAD = new Uint8Array(64).map((_, i) => i);

// ---- options -------------------------------------------------------------------------------

interface Options {
  quick: boolean;
  runs: number;
  tasks: number;
  latency: number;
  messages: number;
  window: number;
}

function parseOptions(argv: readonly string[]): Options {
  const flags = parseFlags(argv, ['tasks', 'latency', 'messages', 'window']);
  const quick = flags.quick;
  return {
    quick,
    runs: flags.runs ?? (quick ? 3 : 5),
    tasks: flags.tasks ?? (quick ? 2_000 : 20_000),
    latency: flags.latency ?? (quick ? 200 : 2_000),
    messages: flags.messages ?? (quick ? 10_000 : 100_000),
    // Enough in flight to keep both ends busy; a bound, so IPC does not buffer every message at once.
    window: flags.window ?? 1_000,
  };
}

// ---- task contenders -----------------------------------------------------------------------

interface TaskContender {
  readonly name: string;
  /** Submits tasks add(i, 1) for i < count all at once, awaits them all, returns the sum of results. */
  burst(count: number): Promise<number>;
  /** Runs one task and awaits it. */
  one(a: number, b: number): Promise<number>;
  close(): Promise<void>;
}

async function shoalContender(): Promise<TaskContender> {
  await init({ numCpus: WORKERS });
  const add = remote((a: number, b: number) => a + b);
  return {
    name: 'Shoal remote',
    async burst(count) {
      const refs: ObjectRef<number>[] = new Array(count);
      for (let i = 0; i < count; i++) refs[i] = add(i, 1);
      const results = await get(refs);
      return results.reduce((s, r) => s + r, 0);
    },
    one: (a, b) => get(add(a, b)),
    close: () => shutdown(),
  };
}

async function piscinaContender(): Promise<TaskContender> {
  const pool = new Piscina<{ a: number; b: number }, number>({
    filename: PISCINA_WORKER,
    minThreads: WORKERS,
    maxThreads: WORKERS,
  });
  return {
    name: 'Piscina',
    async burst(count) {
      const runs: Promise<number>[] = new Array(count);
      for (let i = 0; i < count; i++) runs[i] = pool.run({ a: i, b: 1 });
      const results = await Promise.all(runs);
      return results.reduce((s, r) => s + r, 0);
    },
    one: (a, b) => pool.run({ a, b }),
    close: () => pool.destroy(),
  };
}

/** Forks a tasks-ipc-child.js in `role` and resolves once it said it is ready. */
async function forkChild(role: string, serialization: 'json' | 'advanced'): Promise<ChildProcess> {
  const child = fork(IPC_CHILD, [role], { serialization, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const [first] = (await once(child, 'message')) as [{ ready?: boolean }];
  if (first.ready !== true) throw new Error(`the ${role} child did not start properly`);
  return child;
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill();
  await exited;
}

async function forkPoolContender(): Promise<TaskContender> {
  const children = await Promise.all(Array.from({ length: WORKERS }, () => forkChild('add', 'json')));
  const pending = new Map<number, (result: number) => void>();
  for (const child of children) {
    child.on('message', (message: { id: number; r: number }) => {
      const resolve = pending.get(message.id);
      pending.delete(message.id);
      resolve?.(message.r);
    });
  }
  let nextId = 0;
  let nextChild = 0;
  const call = (a: number, b: number): Promise<number> =>
    new Promise((resolve) => {
      const id = nextId++;
      const child = children[nextChild]!;
      nextChild = (nextChild + 1) % children.length;
      pending.set(id, resolve);
      child.send({ id, a, b });
    });
  return {
    name: 'fork IPC pool',
    async burst(count) {
      const calls: Promise<number>[] = new Array(count);
      for (let i = 0; i < count; i++) calls[i] = call(i, 1);
      const results = await Promise.all(calls);
      return results.reduce((s, r) => s + r, 0);
    },
    one: call,
    close: async () => {
      await Promise.all(children.map(stopChild));
    },
  };
}

/** Sum of add(i, 1) for i < count: what every burst must return. */
const expectedBurst = (count: number): number => (count * (count + 1)) / 2;

async function timeBurst(contender: TaskContender, count: number): Promise<number> {
  settle();
  const started = performance.now();
  const total = await contender.burst(count);
  const ms = performance.now() - started;
  if (total !== expectedBurst(count)) throw new Error(`${contender.name}: burst summed to ${total}, expected ${expectedBurst(count)}`);
  return (count / ms) * 1000;
}

/** One task, awaited and checked: the unit of the latency measurement. */
async function taskRoundTrip(contender: TaskContender, i: number): Promise<void> {
  const result = await contender.one(i, 1);
  if (result !== i + 1) throw new Error(`${contender.name}: add(${i}, 1) returned ${result}`);
}

/** Round trips one at a time per contender, in chunks of this many before switching contender. */
const LATENCY_CHUNK = 50;

/**
 * Round-trip latencies (µs) of `count` one-at-a-time round trips per item, the items taking turns
 * every LATENCY_CHUNK round trips (order rotated per chunk): on this machine the wake-up latency
 * drifts over seconds, and taking turns makes every contender see the same drift.
 */
async function timeInterleaved<T>(
  items: readonly T[],
  count: number,
  run: number,
  roundTrip: (item: T, i: number) => Promise<void>,
): Promise<number[][]> {
  settle();
  const samples = items.map(() => [] as number[]);
  const indexes = items.map((_, k) => k);
  for (let chunk = 0; chunk * LATENCY_CHUNK < count; chunk++) {
    for (const k of rotate(indexes, run + chunk)) {
      const item = items[k]!;
      const into = samples[k]!;
      for (let i = chunk * LATENCY_CHUNK; i < Math.min(count, (chunk + 1) * LATENCY_CHUNK); i++) {
        const started = performance.now();
        await roundTrip(item, i);
        into.push((performance.now() - started) * 1000);
      }
    }
  }
  return samples;
}

// ---- transports ----------------------------------------------------------------------------

interface EchoTransport {
  readonly name: string;
  send(id: number): void;
  /** Called with each reply's id; the harness sets it. */
  onReply: (id: number) => void;
  close(): Promise<void>;
}

/** A unix-socket server in a private temporary directory, for the socket children to connect to. */
async function socketServer(): Promise<{ server: Server; path: string; directory: string }> {
  const directory = mkdtempSync(join(tmpdir(), 'shoal-bench-tasks-'));
  const path = join(directory, 'echo.sock');
  const server = createServer();
  server.listen(path);
  await once(server, 'listening');
  return { server, path, directory };
}

async function socketTransport(server: Server, path: string, batch: boolean): Promise<EchoTransport> {
  const accepted = once(server, 'connection') as Promise<[Socket]>;
  const child = spawn(process.execPath, [SOCKET_CHILD, path, batch ? 'batch' : 'nobatch'], {
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const [socket] = await accepted;
  const link = new FramedLink(socket, batch);
  const transport: EchoTransport = {
    name: batch ? 'unix socket + msgpackr frames, batched per tick' : 'unix socket + msgpackr frames, one write each',
    send: (id) => link.send({ type: 'echo', id, payload: PAYLOAD }),
    onReply: () => {},
    close: async () => {
      const exited = once(child, 'exit');
      socket.destroy();
      await exited;
    },
  };
  link.onMessage = (raw) => {
    const message = raw as { id: number; payload: Uint8Array };
    if (message.payload.length !== PAYLOAD.length) throw new Error('socket echo: payload lost on the way');
    transport.onReply(message.id);
  };
  return transport;
}

async function ipcTransport(serialization: 'json' | 'advanced'): Promise<EchoTransport> {
  const child = await forkChild(`echo-${serialization}`, serialization);
  const json = serialization === 'json';
  const transport: EchoTransport = {
    name: `fork IPC, serialization: '${serialization}'`,
    // Encode per message, as a sender with a fresh payload each time would.
    send: json
      ? (id) => child.send({ type: 'echo', id, payload: Buffer.from(PAYLOAD.buffer).toString('base64') })
      : (id) => child.send({ type: 'echo', id, payload: PAYLOAD }),
    onReply: () => {},
    close: () => stopChild(child),
  };
  child.on('message', (raw: { id: number; payload: string | Uint8Array }) => {
    const bytes = json ? Buffer.from(raw.payload as string, 'base64') : (raw.payload as Uint8Array);
    if (bytes.length !== PAYLOAD.length) throw new Error(`${transport.name}: payload lost on the way`);
    transport.onReply(raw.id);
  });
  return transport;
}

/** Echoes `count` messages with up to `window` in flight; returns messages/s (round trips). */
async function timeEchoStream(transport: EchoTransport, count: number, window: number): Promise<number> {
  settle();
  let sent = 0;
  let received = 0;
  const started = performance.now();
  await new Promise<void>((resolve) => {
    transport.onReply = () => {
      received++;
      if (sent < count) transport.send(sent++);
      else if (received === count) resolve();
    };
    while (sent < Math.min(window, count)) transport.send(sent++);
  });
  return (count / (performance.now() - started)) * 1000;
}

/** One message echoed, awaited and checked: the unit of the transport latency measurement. */
function echoRoundTrip(transport: EchoTransport, i: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    transport.onReply = (id) => {
      if (id === i) resolve();
      else reject(new Error(`${transport.name}: reply ${id} to message ${i}`));
    };
    transport.send(i);
  });
}

// ---- results -------------------------------------------------------------------------------

interface LatencyRun {
  p50: number;
  p99: number;
}

function latencyOf(samples: readonly number[]): LatencyRun {
  const sorted = [...samples].sort((a, b) => a - b);
  return { p50: percentile(sorted, 0.5), p99: percentile(sorted, 0.99) };
}

interface Series {
  /** Per run, in run order. */
  rate: number[];
  p50: number[];
  p99: number[];
  /** Every latency sample of every run. */
  pooled: number[];
}

/** Adds one run's latency samples to a series; returns that run's p50 and p99. */
function record(series: Series, samples: readonly number[]): LatencyRun {
  const run = latencyOf(samples);
  series.p50.push(run.p50);
  series.p99.push(run.p99);
  for (const sample of samples) series.pooled.push(sample);
  return run;
}

interface Summary {
  name: string;
  /** tasks/s or messages/s */
  rate: Stats;
  p50Us: Stats;
  p99Us: Stats;
  /** Per-run ratios to the reference contender of the same run, then their median. */
  rateOverReference: number;
  p50OverReference: number;
  p99OverReference: number;
  /** p50 and p99 of all runs' samples together. */
  pooledP50Us: number;
  pooledP99Us: number;
}

function summarize(series: Map<string, Series>, reference: string): Summary[] {
  const ref = series.get(reference)!;
  const ratio = (values: readonly number[], base: readonly number[]): number => median(values.map((v, i) => v / base[i]!));
  return [...series].map(([name, s]) => {
    const pooled = latencyOf(s.pooled);
    return {
      name,
      rate: stats(s.rate),
      p50Us: stats(s.p50),
      p99Us: stats(s.p99),
      rateOverReference: ratio(s.rate, ref.rate),
      p50OverReference: ratio(s.p50, ref.p50),
      p99OverReference: ratio(s.p99, ref.p99),
      pooledP50Us: pooled.p50,
      pooledP99Us: pooled.p99,
    };
  });
}

function rateTable(rows: readonly Summary[], unit: string, reference: string): string {
  return renderTable(
    ['', `${unit} median`, 'min', 'max', `÷ ${reference}`],
    rows.map((r) => [r.name, fmtInt(r.rate.median), fmtInt(r.rate.min), fmtInt(r.rate.max), fmt(r.rateOverReference)]),
  );
}

function latencyTable(rows: readonly Summary[], reference: string): string {
  return renderTable(
    ['', 'p50 µs median', 'min', 'p99 µs median', 'min', `p50 ÷ ${reference}`, `p99 ÷ ${reference}`],
    rows.map((r) => [
      r.name,
      fmt(r.p50Us.median),
      fmt(r.p50Us.min),
      fmt(r.p99Us.median),
      fmt(r.p99Us.min),
      fmt(r.p50OverReference),
      fmt(r.p99OverReference),
    ]),
  );
}

// ---- main ----------------------------------------------------------------------------------

const emptySeries = (): Series => ({ rate: [], p50: [], p99: [], pooled: [] });

async function main(options: Options, closers: (() => Promise<void>)[]): Promise<void> {
  const host = machine();
  if (!gc) progress('warning: global.gc is not exposed; run with `node --expose-gc` for steadier numbers');
  const started = performance.now();

  progress(`starting contenders (${WORKERS} workers each)`);
  const contenders: TaskContender[] = [];
  for (const make of [shoalContender, piscinaContender, forkPoolContender]) {
    const contender = await make();
    contenders.push(contender);
    closers.push(() => contender.close());
  }
  const { server, path, directory } = await socketServer();
  closers.push(async () => {
    server.close();
    rmSync(directory, { recursive: true, force: true });
  });
  const transports: EchoTransport[] = [];
  for (const make of [
    () => socketTransport(server, path, true),
    () => socketTransport(server, path, false),
    () => ipcTransport('json'),
    () => ipcTransport('advanced'),
  ]) {
    const transport = await make();
    transports.push(transport);
    // Closed before the server (closers run in reverse).
    closers.push(() => transport.close());
  }

  // Warm-up: starts every pool's workers for real and gets both ends' code optimized, so the
  // first measured run is not paying for start-up or the interpreter.
  progress('warming up');
  const warmTasks = Math.min(options.tasks, 2_000);
  const warmMessages = Math.min(options.messages, 10_000);
  for (const contender of contenders) {
    for (let round = 0; round < 3; round++) await timeBurst(contender, warmTasks);
  }
  await timeInterleaved(contenders, Math.min(options.latency, 200), 0, taskRoundTrip);
  for (const transport of transports) await timeEchoStream(transport, warmMessages, options.window);
  await timeInterleaved(transports, Math.min(options.latency, 200), 0, echoRoundTrip);

  const taskSeries = new Map(contenders.map((c) => [c.name, emptySeries()]));
  const transportSeries = new Map(transports.map((t) => [t.name, emptySeries()]));
  for (let run = 0; run < options.runs; run++) {
    const runStarted = performance.now();
    const notes: string[] = [];
    for (const contender of rotate(contenders, run)) {
      const rate = await timeBurst(contender, options.tasks);
      taskSeries.get(contender.name)!.rate.push(rate);
      notes.push(`${contender.name} ${fmtInt(rate)}/s`);
    }
    const taskLatencies = await timeInterleaved(contenders, options.latency, run, taskRoundTrip);
    contenders.forEach((contender, k) => {
      const { p50 } = record(taskSeries.get(contender.name)!, taskLatencies[k]!);
      notes.push(`${contender.name} p50 ${fmt(p50)} µs`);
    });
    for (const transport of rotate(transports, run)) {
      transportSeries.get(transport.name)!.rate.push(await timeEchoStream(transport, options.messages, options.window));
    }
    const echoLatencies = await timeInterleaved(transports, options.latency, run, echoRoundTrip);
    transports.forEach((transport, k) => record(transportSeries.get(transport.name)!, echoLatencies[k]!));
    progress(`run ${run + 1}/${options.runs}: ${notes.join(', ')} (${fmt((performance.now() - runStarted) / 1000)} s)`);
  }
  const elapsedS = (performance.now() - started) / 1000;

  const shoal = contenders[0]!.name;
  const socket = transports[0]!.name;
  const taskRows = summarize(taskSeries, shoal);
  const transportRows = summarize(transportSeries, socket);
  const head = `${host.cpu}, ${host.cores} cores, node ${host.node}; ${options.runs} runs, median over runs`;
  console.log(`\nTask throughput: ${fmtInt(options.tasks)} tasks add(i, 1) submitted at once, ${WORKERS} workers each. ${head}`);
  console.log(rateTable(taskRows, 'tasks/s', 'Shoal'));
  console.log(
    `\nTask latency: ${fmtInt(options.latency)} tasks one at a time (submit, await, next), ` +
      `contenders taking turns every ${LATENCY_CHUNK}.`,
  );
  console.log(latencyTable(taskRows, 'Shoal'));
  console.log(
    `\nTransport: echo of { type, id, payload: Uint8Array(64) } with one child; ` +
      `${fmtInt(options.messages)} messages, ${fmtInt(options.window)} in flight; ` +
      `${fmtInt(options.latency)} round trips one at a time, taking turns every ${LATENCY_CHUNK}.`,
  );
  console.log(rateTable(transportRows, 'msgs/s', 'socket batched'));
  console.log(latencyTable(transportRows, 'socket batched'));
  console.log(
    [
      '',
      '÷ columns: this contender divided by the reference in the same run, median over runs (rate > 1: faster; latency > 1: slower).',
      "fork IPC pool uses Node's default JSON serialization; the JSON transport carries the payload as base64.",
      `total ${fmt(elapsedS)} s`,
    ].join('\n'),
  );

  const file = writeResults('tasks', {
    benchmark: 'tasks',
    date: new Date().toISOString(),
    machine: host,
    options: { ...options, workers: WORKERS, payloadBytes: PAYLOAD.length, latencyChunk: LATENCY_CHUNK },
    elapsedS,
    tasks: { reference: shoal, rateUnit: 'tasks/s', latencyUnit: 'µs', results: taskRows },
    transport: { reference: socket, rateUnit: 'messages/s (round trips)', latencyUnit: 'µs', results: transportRows },
  });
  progress(`wrote ${file}`);
}

const closers: (() => Promise<void>)[] = [];
try {
  await main(parseOptions(process.argv.slice(2)), closers);
} catch (error) {
  process.exitCode = 1;
  console.error(error);
} finally {
  // Reverse order of start-up; one failing close must not leave the others running.
  for (const close of closers.reverse()) {
    await close().catch((error: unknown) => console.error('while shutting down:', error));
  }
}
