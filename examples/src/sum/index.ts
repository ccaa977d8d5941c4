// The seed article's benchmark, in Node: a ~1.5 GB Float64Array summed by worker processes,
// read in place from Shoal's object store, next to the same work with the array's slices copied
// to child processes over IPC (what you get without shared memory).
//
//   node examples/dist/sum/index.js [--elements N] [--runs N]
import { fork } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { get, init, remote, shutdown, store } from 'shoal';

const { values } = parseArgs({
  options: { elements: { type: 'string', default: '200000000' }, runs: { type: 'string', default: '5' } },
});
const elements = Number(values.elements);
const runs = Number(values.runs);
if (!Number.isSafeInteger(elements) || elements <= 0 || !Number.isSafeInteger(runs) || runs <= 0) {
  console.error('Usage: sum [--elements N (default 200000000 = 1.6 GB)] [--runs N (default 5)]');
  process.exit(2);
}
const workers = availableParallelism();
const gb = (elements * 8) / 1e9;
const median = (times: number[]) => [...times].sort((a, b) => a - b)[Math.floor(times.length / 2)]!;

await init({ numCpus: workers });
console.log(`Filling ${elements.toLocaleString()} doubles (${gb.toFixed(2)} GB) in shared memory...`);
const writer = store.create(Float64Array, elements);
for (let i = 0; i < elements; i++) writer.array[i] = (i % 1000) * 0.5;
const ref = writer.seal();
const expected = Math.floor(elements / 1000) * 249_750 + ((elements % 1000) * ((elements % 1000) - 1) * 0.5) / 2;

// The kernel: a plain loop over part of the array.
const sumRange = remote((array: Float64Array, start: number, end: number) => {
  let total = 0;
  for (let i = start; i < end; i++) total += array[i]!;
  return total;
});
const chunk = Math.ceil(elements / workers);
const ranges = Array.from({ length: workers }, (_, w) => [w * chunk, Math.min(elements, (w + 1) * chunk)] as const);

async function shoalSum(): Promise<number> {
  const parts = await get(ranges.map(([start, end]) => sumRange(ref, start, end)));
  return parts.reduce((a, b) => a + b, 0);
}

// Warm-up: each worker maps the segment once (page faults), later calls read it in place.
console.log(`Summing with ${workers} worker processes (Shoal object store, zero-copy)...`);
let total = await shoalSum();
if (total !== expected) throw new Error(`wrong sum ${total}, expected ${expected}`);
const shoalTimes: number[] = [];
for (let r = 0; r < runs; r++) {
  const started = performance.now();
  total = await shoalSum();
  shoalTimes.push(performance.now() - started);
}
console.log(`  median ${median(shoalTimes).toFixed(0)} ms over ${runs} runs (sum ${total})`);

// The same work with IPC copies: each child process gets its slice by value.
console.log(`Summing with ${workers} child processes, slices copied over IPC...`);
const childPath = fileURLToPath(new URL('./ipc-child.js', import.meta.url));
const children = ranges.map(() => fork(childPath, [], { serialization: 'advanced', stdio: 'inherit' }));
const source = writer.array;
async function ipcSum(): Promise<number> {
  const parts = await Promise.all(
    children.map(
      (child, w) =>
        new Promise<number>((resolve) => {
          child.once('message', (part) => resolve(part as number));
          child.send(source.subarray(ranges[w]![0], ranges[w]![1]));
        }),
    ),
  );
  return parts.reduce((a, b) => a + b, 0);
}
const ipcTimes: number[] = [];
const ipcRuns = Math.min(runs, 3);
for (let r = 0; r < ipcRuns; r++) {
  const started = performance.now();
  total = await ipcSum();
  ipcTimes.push(performance.now() - started);
}
for (const child of children) child.kill();
console.log(`  median ${median(ipcTimes).toFixed(0)} ms over ${ipcRuns} runs (sum ${total})`);

console.log(
  `\nShoal read the array in place ${(median(ipcTimes) / median(shoalTimes)).toFixed(0)}x faster than copying it over IPC.`,
);
await shutdown();
