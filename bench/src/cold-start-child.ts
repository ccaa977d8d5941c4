// One cold start for cold-start.ts, in a fresh process: loads a pool's modules, starts it, runs
// one trivial task, stops the pool, and prints what each step took (ms, performance.now()) as
// one JSON line on stdout. The parent times the whole process from spawn to exit.
//   node cold-start-child.js shoal | piscina
import { fileURLToPath } from 'node:url';

const who = process.argv[2];
const startedAt = performance.now();
let marks: { load: number; init: number; first: number; shutdown: number };
if (who === 'shoal') {
  const { init, remote, shutdown } = await import('shoal');
  const loaded = performance.now();
  await init();
  const ready = performance.now();
  if ((await remote(() => 1)()) !== 1) throw new Error('wrong result');
  const first = performance.now();
  await shutdown();
  marks = { load: loaded - startedAt, init: ready - loaded, first: first - ready, shutdown: performance.now() - first };
} else if (who === 'piscina') {
  const { Piscina } = await import('piscina');
  const loaded = performance.now();
  // As the Piscina contender of tasks.ts: 2 threads (Piscina starts them as tasks arrive).
  const pool = new Piscina<{ a: number; b: number }, number>({
    filename: fileURLToPath(new URL('./tasks-piscina-worker.js', import.meta.url)),
    minThreads: 2,
    maxThreads: 2,
  });
  const ready = performance.now();
  if ((await pool.run({ a: 0, b: 1 })) !== 1) throw new Error('wrong result');
  const first = performance.now();
  await pool.destroy();
  marks = { load: loaded - startedAt, init: ready - loaded, first: first - ready, shutdown: performance.now() - first };
} else {
  throw new Error(`Expected shoal or piscina, got \`${who}\``);
}
// The time before this module ran: node's own start (performance.now() counts from the process's start).
process.stdout.write(`${JSON.stringify({ ...marks, nodeStart: startedAt })}\n`);
