// The baseline for recommender-load.ts: examples/src/recommender/server.ts without Shoal. Every
// node:cluster worker fills its own copy of the embedding matrix in its own memory, so N server
// processes hold N copies. Everything else is kept the same on purpose, so that the load test
// measures only where the matrix lives: the same environment (PORT, WORKERS, ITEMS, DIM), the
// same routes and JSON replies, the same deterministic fill (seed = version) and the same top-k
// kernel. The fill, topK and reply below are copied verbatim from the example, which cannot be
// imported: its module body starts the server.
//
//   node bench/dist/recommender-naive-server.js
//
// Reload regenerates the matrix in every worker (each its own copy again); the POST that asked
// for it is answered once all workers have switched.
import cluster, { type Worker } from 'node:cluster';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { availableParallelism } from 'node:os';
import { fillEmbeddings, reply, topK } from 'shoal-examples/dist/recommender/embeddings.js';

const PORT = Number(process.env.PORT ?? 3000);
const WORKERS = Number(process.env.WORKERS ?? availableParallelism());
const ITEMS = Number(process.env.ITEMS ?? 1_000_000);
const DIM = Number(process.env.DIM ?? 64);

type ToPrimary = { type: 'reload' } | { type: 'regenerated'; version: number };
type ToWorker = { type: 'regenerate'; version: number } | { type: 'reloaded'; version: number };

if (cluster.isPrimary) {
  runPrimary();
} else {
  runWorker();
}

function runPrimary(): void {
  // The primary holds no matrix: in the Shoal server it only publishes, and here the workers
  // each build their own. It starts workers, announces the port and coordinates reloads.
  let version = 1;
  let reloading = Promise.resolve();
  const acks = new Map<number, Set<number>>();
  const acked = new Map<number, () => void>();

  /** Asks every live worker to rebuild its copy as `next`; resolves once all have. */
  const regenerateAll = (next: number): Promise<void> =>
    new Promise<void>((resolve) => {
      const pending = new Set(Object.values(cluster.workers ?? {}).flatMap((w) => (w ? [w.id] : [])));
      acks.set(next, pending);
      acked.set(next, resolve);
      for (const id of pending) cluster.workers?.[id]?.send({ type: 'regenerate', version: next } satisfies ToWorker);
      if (pending.size === 0) resolve();
    });
  const ack = (next: number, workerId: number): void => {
    const pending = acks.get(next);
    pending?.delete(workerId);
    if (pending?.size === 0) {
      acks.delete(next);
      acked.get(next)?.();
      acked.delete(next);
    }
  };

  cluster.on('message', (worker: Worker, message: ToPrimary) => {
    if (message?.type === 'regenerated') return ack(message.version, worker.id);
    if (message?.type !== 'reload') return;
    // One reload at a time, like the Shoal server's publish chain.
    reloading = reloading.then(async () => {
      version += 1;
      await regenerateAll(version);
      worker.send({ type: 'reloaded', version } satisfies ToWorker);
    });
  });
  let announced = false;
  cluster.on('listening', (_worker, address) => {
    if (announced) return;
    announced = true;
    console.log(`listening on http://127.0.0.1:${address.port} with ${WORKERS} worker processes`);
  });
  let stopping = false;
  cluster.on('exit', (worker, code, signal) => {
    // A dead worker must not hold up a reload that waits for its acknowledgement.
    for (const next of [...acks.keys()]) ack(next, worker.id);
    if (stopping) return;
    console.error(`server worker ${worker.process.pid} died (${signal ?? code}); starting another`);
    cluster.fork({ NAIVE_VERSION: String(version) });
  });
  for (let i = 0; i < WORKERS; i++) cluster.fork({ NAIVE_VERSION: String(version) });

  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    const workers = Object.values(cluster.workers ?? {}).flatMap((w) => (w ? [w] : []));
    if (workers.length === 0) process.exit(0);
    // Exit once the workers are gone, so that whoever sent SIGTERM can wait for this process
    // alone and know that the whole server is down.
    cluster.on('exit', () => {
      if (Object.keys(cluster.workers ?? {}).length === 0) process.exit(0);
    });
    for (const worker of workers) worker.kill();
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

function runWorker(): void {
  // A replacement worker builds the version that is current when it starts.
  const startVersion = Number(process.env.NAIVE_VERSION ?? 1);
  const build = (version: number): { version: number; items: Float32Array } => {
    const items = new Float32Array(ITEMS * DIM);
    fillEmbeddings(items, version);
    return { version, items };
  };
  let current = build(startVersion);

  const reloads = new Map<number, (version: number) => void>();
  process.on('message', (message: ToWorker) => {
    if (message?.type === 'regenerate') {
      // Blocks this worker's event loop for the fill, as a process loading its own copy would.
      current = build(message.version);
      process.send!({ type: 'regenerated', version: message.version } satisfies ToPrimary);
      return;
    }
    if (message?.type === 'reloaded') for (const done of reloads.values()) done(message.version);
    reloads.clear();
  });

  const server = createServer((request, response) => {
    handle(request, response).catch((error: unknown) => reply(response, 500, { error: String(error) }));
  });

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? '/', 'http://localhost');
    if (request.method === 'GET' && url.pathname === '/recommend') {
      const snapshot = current;
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
      return reply(response, 200, { version: current.version, pid: process.pid });
    }
    if (request.method === 'POST' && url.pathname === '/admin/reload') {
      const version = await new Promise<number>((resolve) => {
        reloads.set(reloads.size, resolve);
        process.send!({ type: 'reload' } satisfies ToPrimary);
      });
      return reply(response, 200, { version });
    }
    reply(response, 404, { error: 'not found: GET /recommend?item=ID&k=10, GET /health, POST /admin/reload' });
  }

  server.listen(PORT);
}
