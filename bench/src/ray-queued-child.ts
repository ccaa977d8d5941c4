// tasks_1m_queued, run in a fresh process so that its peak RSS is this benchmark's alone (the
// driver of main.ts has held gigabytes by then): submits `count` no-op tasks at once, awaits them
// all, and reports the total time, the submission time and the process's peak RSS.
//
//   fork ray-queued-child.js shoal|piscina <count> <workers>   (replies once over IPC)
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import { get, init, remote, shutdown, type ObjectRef } from 'shoal';

export interface QueuedResult {
  who: 'shoal' | 'piscina';
  count: number;
  submitMs: number;
  totalMs: number;
  /** The process's own high-water mark (VmHWM), start-up included. */
  peakRssBytes: number;
  /** RSS just before submitting, after start-up and one warm-up task. */
  rssBeforeBytes: number;
}

/**
 * This process's peak RSS: VmHWM, the high-water mark of its own memory since exec. Not
 * getrusage's maxRSS, which Linux carries over from the forking parent (the exec'd process starts
 * at the parent's RSS at fork): under main.ts, which holds ~1 GB by then, every run read >= 1 GB.
 */
function peakRss(): number {
  const kib = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1];
  return kib === undefined ? process.resourceUsage().maxRSS * 1024 : Number(kib) * 1024;
}

const PISCINA_WORKER = fileURLToPath(new URL('./ray-piscina-worker.js', import.meta.url));
const gc = (globalThis as { gc?: () => void }).gc;

async function queued(who: string, count: number, workers: number): Promise<QueuedResult> {
  if (who === 'shoal') {
    await init({ numCpus: workers });
    try {
      const smallValue = remote(() => 'ok');
      await get(smallValue());
      gc?.();
      const rssBeforeBytes = process.memoryUsage.rss();
      const started = performance.now();
      const refs: ObjectRef<string>[] = new Array(count);
      for (let i = 0; i < count; i++) refs[i] = smallValue();
      const submitMs = performance.now() - started;
      const results = await get(refs);
      const totalMs = performance.now() - started;
      if (results.length !== count || results[count - 1] !== 'ok') throw new Error('tasks_1m_queued: wrong results');
      return { who, count, submitMs, totalMs, peakRssBytes: peakRss(), rssBeforeBytes };
    } finally {
      await shutdown();
    }
  }
  if (who === 'piscina') {
    const pool = new Piscina<null, string>({ filename: PISCINA_WORKER, minThreads: workers, maxThreads: workers });
    try {
      await pool.run(null);
      gc?.();
      const rssBeforeBytes = process.memoryUsage.rss();
      const started = performance.now();
      const runs: Promise<string>[] = new Array(count);
      for (let i = 0; i < count; i++) runs[i] = pool.run(null);
      const submitMs = performance.now() - started;
      const results = await Promise.all(runs);
      const totalMs = performance.now() - started;
      if (results.length !== count || results[count - 1] !== 'ok') throw new Error('tasks_1m_queued: wrong results');
      return { who, count, submitMs, totalMs, peakRssBytes: peakRss(), rssBeforeBytes };
    } finally {
      await pool.destroy();
    }
  }
  throw new Error(`usage: ray-queued-child.js shoal|piscina <count> <workers>; got \`${who}\``);
}

const [who = '', countText = '', workersText = ''] = process.argv.slice(2);
const count = Number(countText);
const workers = Number(workersText) || availableParallelism();
// The parent going away ends this process too: no orphan keeps running a million tasks.
process.on('disconnect', () => process.exit(1));
let reply: { result: QueuedResult } | { error: string };
try {
  if (!Number.isSafeInteger(count) || count < 1) throw new Error(`expected a task count, got \`${countText}\``);
  reply = { result: await queued(who, count, workers) };
} catch (error) {
  reply = { error: error instanceof Error ? (error.stack ?? error.message) : String(error) };
}
// Exit once the reply is written: the Piscina threads or a stray handle must not keep it alive.
process.send!(reply, () => process.exit(0));
