// The article's use case: a multi-process web server whose "database" is a big array of item
// embeddings, shared by every server process through Shoal and hot-swapped without a restart.
//
//   node examples/dist/recommender/server.js
//   curl 'http://127.0.0.1:3000/recommend?item=42&k=10'
//   curl -X POST http://127.0.0.1:3000/admin/reload
//   curl -X POST http://127.0.0.1:3000/admin/rollback   # with ROLLBACK=1
//
// Environment: PORT (3000; 0 picks a free port), WORKERS (one per CPU), ITEMS (1,000,000),
// DIM (64), STORE_MB (the store's memory; Shoal's default otherwise), SPILL_DIR (where a full
// store spills; Shoal's default otherwise), ROLLBACK (1: keep the previous version, for
// /admin/rollback). The primary process runs the Shoal node (store only, no task workers) and
// publishes the matrix under the name "items"; each node:cluster worker attaches to the node and
// serves requests from the current version, switching when a new one is published. With
// ROLLBACK=1 the primary holds two versions and makes a third: when memory is short, the store
// spills the oldest, which nobody reads any more, to make room (it is dropped once the new one
// is published).
import cluster from 'node:cluster';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { availableParallelism } from 'node:os';
import { fillEmbeddings, reply, topK } from './embeddings.js';
import { init, shutdown, store, type ObjectRef } from 'shoal';

const PORT = Number(process.env.PORT ?? 3000);
const WORKERS = Number(process.env.WORKERS ?? availableParallelism());
const ITEMS = Number(process.env.ITEMS ?? 1_000_000);
const DIM = Number(process.env.DIM ?? 64);
const NAME = 'items';
const STORE_MB = process.env.STORE_MB === undefined ? undefined : Number(process.env.STORE_MB);
const SPILL_DIR = process.env.SPILL_DIR;
const ROLLBACK = process.env.ROLLBACK === '1';

type ToPrimary = { type: 'reload' | 'rollback'; id: number };
type ToWorker = { type: 'reloaded'; id: number; version: number; error?: string };

if (cluster.isPrimary) {
  await runPrimary();
} else {
  await runWorker();
}

async function runPrimary(): Promise<void> {
  // A store-only node: the web workers attach to it; no task workers are needed.
  const session = await init({
    numCpus: 0,
    ...(STORE_MB === undefined ? {} : { objectStoreMemory: STORE_MB * 2 ** 20 }),
    ...(SPILL_DIR === undefined ? {} : { spillDirectory: SPILL_DIR }),
  });
  let seed = 1;
  // With ROLLBACK=1: the version now served, and the one before it (kept for a rollback).
  let currentRef: ObjectRef<Float32Array> | undefined;
  let previousRef: ObjectRef<Float32Array> | undefined;
  const announce = (version: number) => {
    const { usedBytes, spill } = store.stats();
    console.log(
      `version ${version} published; store: ${(usedBytes / 1e6).toFixed(0)} MB in memory; ` +
        `spilled ${spill.spills} objects so far, ${spill.spilledObjects} on disk now (${(spill.spilledBytes / 1e6).toFixed(0)} MB)`,
    );
    return version;
  };
  const publish = async () => {
    // Room first: a synchronous create cannot wait for objects to be spilled or let go of.
    await store.makeRoom(ITEMS * DIM * 4 + 4096);
    const writer = store.create(Float32Array, ITEMS * DIM);
    fillEmbeddings(writer.array, seed++);
    // The name holds the new matrix; the old one goes once no server process holds it.
    const ref = writer.seal();
    const { version } = await store.putNamed(NAME, ref);
    if (ROLLBACK) {
      previousRef?.release();
      [previousRef, currentRef] = [currentRef, ref];
    } else ref.release(); // the primary itself does not need it
    return announce(version);
  };
  const rollback = async () => {
    if (!previousRef) throw new Error(ROLLBACK ? 'there is no earlier version to roll back to' : 'rollback is off (start with ROLLBACK=1)');
    // Read back from disk if it was spilled, when the servers ask for it.
    const { version } = await store.putNamed(NAME, previousRef);
    [previousRef, currentRef] = [currentRef, previousRef];
    return announce(version);
  };
  const started = performance.now();
  await publish();
  console.log(
    `published ${ITEMS.toLocaleString()} x ${DIM} embeddings (${((ITEMS * DIM * 4) / 1e6).toFixed(0)} MB) ` +
      `in ${(performance.now() - started).toFixed(0)} ms; session ${session.directory}`,
  );

  // One change at a time, in the order asked. Reloads asked while one waits its turn share it,
  // so reloads faster than publishing never pile up versions; the event loop turns in between.
  let tail: Promise<unknown> = Promise.resolve();
  let waitingReload: Promise<number> | undefined;
  const inTurn = (change: () => Promise<number>): Promise<number> => {
    const turn = tail
      .catch(() => 0)
      .then(() => new Promise((resolve) => setImmediate(resolve)))
      .then(change);
    tail = turn;
    return turn;
  };
  const reload = (): Promise<number> =>
    (waitingReload ??= inTurn(() => {
      waitingReload = undefined;
      return publish();
    }));
  cluster.on('message', (worker, message: ToPrimary) => {
    if (message?.type !== 'reload' && message?.type !== 'rollback') return;
    (message.type === 'reload' ? reload() : inTurn(rollback)).then(
      (version) => worker.send({ type: 'reloaded', id: message.id, version } satisfies ToWorker),
      (error: unknown) => worker.send({ type: 'reloaded', id: message.id, version: 0, error: String(error) } satisfies ToWorker),
    );
  });
  let announcedPort: number | undefined;
  cluster.on('listening', (_worker, address) => {
    // With PORT=0, workers started after all others died may get a new port: say so.
    if (address.port === announcedPort) return;
    announcedPort = address.port;
    console.log(`listening on http://127.0.0.1:${address.port} with ${WORKERS} worker processes`);
  });
  let stopping = false;
  cluster.on('exit', (worker, code, signal) => {
    if (stopping) return;
    console.error(`server worker ${worker.process.pid} died (${signal ?? code}); starting another`);
    cluster.fork({ SHOAL_ADDRESS: session.address });
  });
  for (let i = 0; i < WORKERS; i++) cluster.fork({ SHOAL_ADDRESS: session.address });

  const stop = async () => {
    if (stopping) return;
    stopping = true;
    for (const worker of Object.values(cluster.workers ?? {})) worker?.kill();
    await shutdown();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop());
  process.on('SIGTERM', () => void stop());
}

async function runWorker(): Promise<void> {
  // Attaches to the primary's node (SHOAL_ADDRESS), whose objects it reads in place.
  await init();
  let current: { version: number; items: Float32Array; ref: ObjectRef<Float32Array> } | undefined;
  const firstVersion = new Promise<void>((resolve) => {
    void (async () => {
      for await (const { version, ref } of store.watch<Float32Array>(NAME)) {
        try {
          // Swapped between requests: a request in progress keeps the version it started with.
          // Only the old ref is kept here, not its matrix: a variable of this suspended loop
          // would keep the old view (and its memory) alive until the next version.
          const previous = current?.ref;
          current = { version, items: await ref, ref };
          // Done with the old version's ref now (its views stay valid for requests still using
          // them): the old matrix is freed as soon as every server process has switched.
          previous?.release();
          resolve();
        } catch (error) {
          // Keep serving the version we have; the next one published will be picked up.
          console.error(`server ${process.pid}: could not read version ${version}:`, error);
        }
      }
    })();
  });

  const reloads = new Map<number, (answer: ToWorker) => void>();
  let nextReload = 0;
  process.on('message', (message: ToWorker) => {
    if (message?.type !== 'reloaded') return;
    reloads.get(message.id)?.(message);
    reloads.delete(message.id);
  });

  const server = createServer((request, response) => {
    handle(request, response).catch((error: unknown) => reply(response, 500, { error: String(error) }));
  });

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? '/', 'http://localhost');
    if (request.method === 'GET' && url.pathname === '/recommend') {
      const snapshot = current;
      if (!snapshot) return reply(response, 503, { error: 'no embeddings published yet' });
      const item = Number(url.searchParams.get('item'));
      const k = Number(url.searchParams.get('k') ?? 10);
      const rows = snapshot.items.length / DIM;
      if (!Number.isInteger(item) || item < 0 || item >= rows) {
        return reply(response, 400, { error: `item must be an integer from 0 to ${rows - 1}` });
      }
      if (!Number.isInteger(k) || k < 1 || k > 1000) return reply(response, 400, { error: 'k must be an integer from 1 to 1000' });
      return reply(response, 200, { item, version: snapshot.version, pid: process.pid, results: topK(snapshot.items, DIM, item, k) });
    }
    if (request.method === 'GET' && url.pathname === '/health') {
      return reply(response, current ? 200 : 503, { version: current?.version ?? null, pid: process.pid });
    }
    if (request.method === 'POST' && (url.pathname === '/admin/reload' || url.pathname === '/admin/rollback')) {
      const type = url.pathname === '/admin/reload' ? 'reload' : 'rollback';
      const answer = await new Promise<ToWorker>((resolve) => {
        const id = nextReload++;
        reloads.set(id, resolve);
        process.send!({ type, id } satisfies ToPrimary);
      });
      if (answer.error !== undefined) return reply(response, 500, { error: `${type} failed: ${answer.error}` });
      return reply(response, 200, { version: answer.version });
    }
    reply(response, 404, { error: 'not found: GET /recommend?item=ID&k=10, GET /health, POST /admin/reload, POST /admin/rollback' });
  }

  await firstVersion;
  server.listen(PORT);
}
