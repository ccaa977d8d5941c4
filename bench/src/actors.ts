// Actors and streams (issue "Actors and streaming tasks"): Ray's actor microbenchmarks
// (python/ray/_private/ray_perf.py) written with Shoal under Ray's names, beside Ray's published
// figures (for orientation: a 64-vCPU machine) and peers measured here in the same run:
//
//   1_1_actor_calls_sync            await a.smallValue(), one at a time
//     peers                         a raw unix-socket echo (msgpackr frames) to one long-lived
//                                   child, one at a time; the same over fork()'s IPC (JSON)
//   1_1_actor_calls_async           get(1,000 x a.smallValue())
//   1_1_actor_calls_concurrent      the same, the actor with maxConcurrency 16
//   1_n_actor_calls_async           a client actor calls 5,000 x smallValue on each of n actors
//   n_n_actor_calls_async           4 tasks each call 5,000 x smallValue round-robin on n actors
//   n_n_actor_calls_with_arg_async  n client actors, each putting 0 and calling smallValueArg(ref)
//                                   1,000 times on its own actor
//   stream_items                    a streaming task yielding 10,000 small items, read with
//                                   for await (items/s); and an actor's generator method
//
// n = max(1, cores / 2), as Ray's n_cpu. Each operation is repeated for `runMs` after a warm-up,
// Shoal and its peers taking turns every run; medians of `runs` runs. Goals on this machine:
// 1_1_actor_calls_sync >= 0.8x the raw echo's round trips/s; 1_1_actor_calls_async >= 40,000/s.
//
//   node --expose-gc bench/dist/actors.js [--quick] [--runs=N]
//
// Writes bench/results/actors.json.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { actor, get, init, remote, shutdown, type Actor, type ObjectRef, type ObjectStream } from 'shoal';
import { fmt, fmtInt, machine, parseFlags, progress, renderTable, rotate, settle, stats, writeResults } from './common.js';
import { FramedLink } from './framed-link.js';
import { killAtExit } from './lifecycle.js';
import { RAY_PUBLISHED, ipcEcho, type RayRow } from './ray-micro.js';

const SOCKET_CHILD = fileURLToPath(new URL('./tasks-socket-child.js', import.meta.url));

/** Ray's figures for these names, from the same microbenchmark.json as ray-micro.ts. */
const RAY_ACTORS: Record<string, number> = {
  '1_1_actor_calls_sync': 2011.916260420167,
  '1_1_actor_calls_async': 8663.654839458402,
  '1_1_actor_calls_concurrent': 5775.020315522301,
  '1_n_actor_calls_async': 8038.166251679982,
  'n_n_actor_calls_async': 27375.624367126635,
  'n_n_actor_calls_with_arg_async': 2759.3212097473174,
};

const flags = parseFlags(process.argv.slice(2), []);
const quick = flags.quick;
const runs = flags.runs ?? (quick ? 1 : 5);
const runMs = quick ? 60 : 1000;
const warmUpMs = quick ? 30 : 300;
const nActors = Math.max(1, Math.floor(availableParallelism() / 2));
const BATCH = 1000;
const PER_ACTOR = quick ? 500 : 5000;
const WITH_ARG = quick ? 200 : 1000;
const STREAM_ITEMS = quick ? 1000 : 10_000;

class Server {
  smallValue(): string {
    return 'ok';
  }
  smallValueArg(_x: unknown): string {
    return 'ok';
  }
  async *items(n: number): AsyncGenerator<number> {
    for (let i = 0; i < n; i++) yield i;
  }
}

/** Ray's Client: calls its servers and waits for every result. */
class Client {
  constructor(readonly servers: { smallValue(): PromiseLike<string>; smallValueArg(x: unknown): PromiseLike<string> }[]) {}
  async smallValueBatch(n: number): Promise<number> {
    const results: PromiseLike<string>[] = [];
    for (const server of this.servers) for (let i = 0; i < n; i++) results.push(server.smallValue());
    await Promise.all(results);
    return results.length;
  }
  async smallValueBatchArg(n: number): Promise<number> {
    const shoal = await import('shoal');
    const x = shoal.store.put(0);
    const results: PromiseLike<string>[] = [];
    for (const server of this.servers) for (let i = 0; i < n; i++) results.push(server.smallValueArg(x));
    await Promise.all(results);
    return results.length;
  }
}

interface Timed {
  readonly name: string;
  readonly unit: string;
  /** Operations one call counts for. */
  readonly perCall: number;
  readonly call: () => Promise<unknown>;
}

/** Calls `item` until `ms` have passed (at least once); operations per second. */
async function rate(item: Timed, ms: number): Promise<number> {
  let count = 0;
  const started = performance.now();
  let now = started;
  do {
    await item.call();
    count++;
    now = performance.now();
  } while (now - started < ms);
  return (count * item.perCall) / ((now - started) / 1000);
}

/** One long-lived child echoing msgpackr frames over a unix socket (tasks-socket-child.js). */
async function socketEcho(): Promise<{ roundTrip(): Promise<void>; close(): Promise<void> }> {
  const directory = mkdtempSync(join(tmpdir(), 'shoal-bench-actors-'));
  const path = join(directory, 'echo.sock');
  const server = createServer();
  server.listen(path);
  await once(server, 'listening');
  const accepted = once(server, 'connection') as Promise<[Socket]>;
  const child = spawn(process.execPath, [SOCKET_CHILD, path, 'nobatch'], { stdio: ['ignore', 'inherit', 'inherit'] });
  const stop = killAtExit(child);
  const [socket] = await accepted;
  const link = new FramedLink(socket, false);
  let waiting: (() => void) | undefined;
  let id = 0;
  link.onMessage = () => waiting?.();
  return {
    roundTrip: () =>
      new Promise<void>((resolve) => {
        waiting = resolve;
        link.send({ type: 'echo', id: id++, payload: 'ok' });
      }),
    close: async () => {
      socket.destroy();
      await stop();
      server.close();
      rmSync(directory, { recursive: true, force: true });
    },
  };
}

/** A row as the ray suite reports one (nothing here is retried). */
type Row = Omit<RayRow, 'retried' | 'note'>;

async function main(): Promise<void> {
  const started = performance.now();
  progress(`actors: ${nActors} actor(s) for the n-way rows, ${runs} run(s) of ${runMs} ms${quick ? ' (--quick: a smoke test, not figures)' : ''}`);
  await init({ numCpus: availableParallelism() });
  const socket = await socketEcho();
  const ipc = await ipcEcho();
  let echoId = 0;
  try {
    const RemoteServer = actor(Server);
    const RemoteClient = actor(Client, { numCpus: 0 });
    const one = new RemoteServer();
    const concurrent = new (RemoteServer.options({ maxConcurrency: 16 }))();
    const servers = Array.from({ length: nActors }, () => new RemoteServer());
    const fanOut = new RemoteClient(servers);
    const pairs = servers.map((server) => new RemoteClient([server]));
    const work = remote(async (actors: Actor<Server>[], n: number) => {
      const shoal = await import('shoal');
      const refs: ObjectRef<string>[] = [];
      for (let i = 0; i < n; i++) refs.push(actors[i % actors.length]!.smallValue());
      await shoal.get(refs);
      return n;
    });
    const streamTask = remote(async function* (n: number) {
      for (let i = 0; i < n; i++) yield i;
    });
    // The stream itself: items as refs, not read here (as Ray's generator yields refs).
    const drain = async (stream: ObjectStream<number>): Promise<void> => {
      let count = 0;
      for await (const item of stream.refs()) {
        void item;
        count++;
      }
      if (count !== STREAM_ITEMS) throw new Error(`the stream gave ${count} items, not ${STREAM_ITEMS}`);
    };
    const batchOn = (target: Actor<Server>) => async () => {
      const refs: ObjectRef<string>[] = new Array(BATCH);
      for (let i = 0; i < BATCH; i++) refs[i] = target.smallValue();
      const values = await get(refs);
      if (values[BATCH - 1] !== 'ok') throw new Error('an actor call returned the wrong value');
    };
    // Every actor up (its process started, its constructor run) before anything is timed.
    await get([one.smallValue(), concurrent.smallValue(), ...servers.map((server) => server.smallValue())]);
    await fanOut.smallValueBatch(1);
    await get(pairs.map((pair) => pair.smallValueBatch(1)));
    const t = (name: string, unit: string, perCall: number, call: () => Promise<unknown>): Timed => ({ name, unit, perCall, call });
    const benches: { name: string; what: string; shoal: Timed; peers: Timed[] }[] = [
      {
        name: '1_1_actor_calls_sync',
        what: 'await a.smallValue(), one at a time',
        shoal: t('Shoal', 'calls/s', 1, () => get(one.smallValue())),
        peers: [
          t('raw unix-socket echo (msgpackr frames), one at a time', 'round trips/s', 1, () => socket.roundTrip()),
          t('fork IPC echo (JSON), one at a time', 'round trips/s', 1, () => ipc.roundTrip(echoId++)),
        ],
      },
      { name: '1_1_actor_calls_async', what: `get(${fmtInt(BATCH)} x a.smallValue())`, shoal: t('Shoal', 'calls/s', BATCH, batchOn(one)), peers: [] },
      {
        name: '1_1_actor_calls_concurrent',
        what: `the same, maxConcurrency 16`,
        shoal: t('Shoal', 'calls/s', BATCH, batchOn(concurrent)),
        peers: [],
      },
      {
        name: '1_n_actor_calls_async',
        what: `a client actor calls ${fmtInt(PER_ACTOR)} x smallValue on each of ${nActors} actor(s)`,
        shoal: t('Shoal', 'calls/s', PER_ACTOR * nActors, () => get(fanOut.smallValueBatch(PER_ACTOR))),
        peers: [],
      },
      {
        name: 'n_n_actor_calls_async',
        what: `4 tasks each call ${fmtInt(PER_ACTOR)} x smallValue round-robin on ${nActors} actor(s)`,
        shoal: t('Shoal', 'calls/s', 4 * PER_ACTOR, () => get(Array.from({ length: 4 }, () => work(servers, PER_ACTOR)))),
        peers: [],
      },
      {
        name: 'n_n_actor_calls_with_arg_async',
        what: `${nActors} client actor(s), each putting 0 and calling smallValueArg(ref) ${fmtInt(WITH_ARG)} times on its actor`,
        shoal: t('Shoal', 'calls/s', WITH_ARG * nActors, () => get(pairs.map((pair) => pair.smallValueBatchArg(WITH_ARG)))),
        peers: [],
      },
      {
        name: 'stream_items',
        what: `a streaming task yielding ${fmtInt(STREAM_ITEMS)} numbers, read with for await`,
        shoal: t('Shoal', 'items/s', STREAM_ITEMS, () => drain(streamTask(STREAM_ITEMS))),
        peers: [t("an actor's async generator method, the same", 'items/s', STREAM_ITEMS, () => drain(one.items(STREAM_ITEMS)))],
      },
    ];
    const rows: Row[] = [];
    for (const bench of benches) {
      progress(`actors: ${bench.name}`);
      const items = [bench.shoal, ...bench.peers];
      for (const item of items) await rate(item, warmUpMs);
      const samples = items.map(() => [] as number[]);
      for (let run = 0; run < runs; run++) {
        for (const k of rotate(
          items.map((_, i) => i),
          run,
        )) {
          settle();
          samples[k]!.push(await rate(items[k]!, runMs));
        }
      }
      rows.push({
        name: bench.name,
        what: bench.what,
        unit: bench.shoal.unit,
        shoal: stats(samples[0]!),
        ray: RAY_ACTORS[bench.name] ?? null,
        peers: bench.peers.map((peer, i) => ({ name: peer.name, unit: peer.unit, rate: stats(samples[i + 1]!) })),
      });
    }
    const sync = rows[0]!;
    const async = rows[1]!;
    const goals = {
      syncVsRawEcho: sync.shoal.median / sync.peers[0]!.rate.median,
      syncVsIpcEcho: sync.shoal.median / sync.peers[1]!.rate.median,
      asyncCallsPerSecond: async.shoal.median,
    };
    const table = renderTable(
      ['benchmark', 'Shoal', 'unit', 'Ray (published)', 'peer', 'peer rate', 'Shoal / peer'],
      rows.flatMap((row) => {
        const first = [row.name, fmtInt(row.shoal.median), row.unit, row.ray === null ? '-' : fmtInt(row.ray)];
        if (row.peers.length === 0) return [[...first, '-', '-', '-']];
        return row.peers.map((peer, i) => [
          ...(i === 0 ? first : ['', '', '', '']),
          peer.name,
          `${fmtInt(peer.rate.median)} ${peer.unit}`,
          fmt(row.shoal.median / peer.rate.median),
        ]);
      }),
    );
    console.log(`\n${table}\n`);
    console.log(
      `goals: 1_1_actor_calls_sync ${fmt(goals.syncVsRawEcho)}x the raw unix-socket echo (goal >= 0.8), ` +
        `${fmt(goals.syncVsIpcEcho)}x the fork IPC echo; 1_1_actor_calls_async ${fmtInt(goals.asyncCallsPerSecond)} calls/s (goal >= 40,000)`,
    );
    writeResults('actors', {
      benchmark: 'actors',
      date: new Date().toISOString(),
      machine: machine(),
      options: { quick, runs, runMs, warmUpMs, nActors, batch: BATCH, perActor: PER_ACTOR, withArg: WITH_ARG, streamItems: STREAM_ITEMS },
      ray: { label: RAY_PUBLISHED.label, source: RAY_PUBLISHED.source },
      elapsedS: (performance.now() - started) / 1000,
      rows,
      goals,
    });
  } finally {
    await socket.close();
    await ipc.close();
    await shutdown();
  }
}

await main();
