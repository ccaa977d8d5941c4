// What a task pays for its argument's size, and for writing to it (issue "Every get sees the
// object as stored"): every get shows the stored bytes, and only writers may pay for that.
//
//   node --expose-gc bench/dist/task-args.js [--quick] [--runs=N]
//
// One worker; per run, in this order (rotated each run so noise hits every row alike):
//   read 1 KB ref        task (a) => a[0] on a ref to a 1 KB Float64Array (inline)      µs/task
//   read 1.5 GB ref      the same task on a 1.5 GB Float64Array in a segment            µs/task
//   write 1 element      task (a) => { a[0] = 1 } on the 1.5 GB ref (a fresh mapping,   µs/task
//                        since the previous write marked the cached one written)
//   read after a write   (a) => a[0] right after a writing task: a fresh mapping, one   µs/task
//                        page touched
//   sum 1.5 GB           a task summing every element, warm (the mapping is cached)     ms/task
//   sum after a write    the same sum right after a writing task: a fresh mapping's     ms/task
//                        page faults (what only writers' successors pay)
// --quick uses 16 MiB instead of 1.5 GB. Writes bench/results/task-args.json.
import { init, remote, shutdown, store, type ObjectRef } from 'shoal';
import { fmt, machine, parseFlags, progress, renderTable, rotate, stats, writeResults, type Stats } from './common.js';

const flags = parseFlags(process.argv.slice(2), []);
const quick = flags.quick;
const runs = flags.runs ?? (quick ? 2 : 5);
const bigBytes = quick ? 16 * 2 ** 20 : 1.5e9;
const smallTasks = quick ? 20 : 300;
const writeTasks = quick ? 5 : 40;
const sums = quick ? 1 : 3;

const first = remote((a: Float64Array) => a[0]);
const write = remote((a: Float64Array) => {
  a[0] = 1;
});
const sum = remote((a: Float64Array) => {
  let total = 0;
  for (let i = 0; i < a.length; i++) total += a[i]!;
  return total;
});

async function timed(count: number, call: () => PromiseLike<unknown>): Promise<number> {
  const started = process.hrtime.bigint();
  for (let i = 0; i < count; i++) await call();
  return Number(process.hrtime.bigint() - started) / 1e3 / count;
}

/** Each pair times only its second task: the first prepares it (a write before a read). */
async function timedAfter(count: number, before: () => PromiseLike<unknown>, call: () => PromiseLike<unknown>): Promise<number> {
  let total = 0;
  for (let i = 0; i < count; i++) {
    await before();
    const started = process.hrtime.bigint();
    await call();
    total += Number(process.hrtime.bigint() - started) / 1e3;
  }
  return total / count;
}

await init({ numCpus: 1 });
try {
  const small = store.put(new Float64Array(128));
  progress(`storing a ${fmt(bigBytes / 1e9)} GB Float64Array`);
  const writer = store.create(Float64Array, Math.floor(bigBytes / 8));
  writer.array.fill(0.5);
  const big: ObjectRef<Float64Array> = writer.seal();
  // Warm up: the function cache, the worker's mapping of each ref.
  await first(small);
  await first(big);
  await sum(big);

  const rows: Record<string, { unit: string; run: () => Promise<number> }> = {
    'read 1 KB ref': { unit: 'µs/task', run: () => timed(smallTasks, () => first(small)) },
    'read 1.5 GB ref': { unit: 'µs/task', run: () => timed(smallTasks, () => first(big)) },
    'write 1 element': { unit: 'µs/task', run: () => timed(writeTasks, () => write(big)) },
    'read after a write': { unit: 'µs/task', run: () => timedAfter(writeTasks, () => write(big), () => first(big)) },
    'sum 1.5 GB': { unit: 'ms/task', run: async () => (await timedAfter(sums, () => sum(big), () => sum(big))) / 1e3 },
    'sum after a write': { unit: 'ms/task', run: async () => (await timedAfter(sums, () => write(big), () => sum(big))) / 1e3 },
  };
  const names = Object.keys(rows);
  const samples = new Map<string, number[]>(names.map((name) => [name, []]));
  for (let run = 0; run < runs; run++) {
    for (const name of rotate(names, run)) samples.get(name)!.push(await rows[name]!.run());
    progress(`run ${run + 1}/${runs} done`);
  }
  const results: Record<string, Stats & { unit: string }> = {};
  for (const name of names) results[name] = { unit: rows[name]!.unit, ...stats(samples.get(name)!) };
  const ratio = (a: string, b: string): number => results[a]!.median / results[b]!.median;
  const ratios = {
    bigOverSmall: ratio('read 1.5 GB ref', 'read 1 KB ref'),
    readAfterWriteOverRead: ratio('read after a write', 'read 1.5 GB ref'),
    sumAfterWriteOverSum: ratio('sum after a write', 'sum 1.5 GB'),
  };
  console.log(
    renderTable(
      ['task', 'median', 'min', 'max', 'unit'],
      names.map((name) => {
        const row = results[name]!;
        return [name, fmt(row.median), fmt(row.min), fmt(row.max), row.unit];
      }),
    ),
  );
  console.log(
    `\ntask on the ${fmt(bigBytes / 1e9)} GB ref ÷ task on the 1 KB ref: ${fmt(ratios.bigOverSmall)} (goal ≤ 2); ` +
      `read after a write ÷ read: ${fmt(ratios.readAfterWriteOverRead)}; sum after a write ÷ warm sum: ${fmt(ratios.sumAfterWriteOverSum)}`,
  );
  const file = writeResults('task-args', { date: new Date().toISOString(), machine: machine(), quick, runs, bigBytes, rows: results, ratios });
  progress(`wrote ${file}`);
} finally {
  await shutdown();
}
