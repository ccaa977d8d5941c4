// Put a big Float64Array into shared memory once, then read it from a second, separate Node
// process without copying it: the reader maps the segment and sums the array in place.
//
//   node examples/dist/put-and-read.js [elements]      (default 100,000,000 = 800 MB)
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { ObjectRef, shutdown, store } from 'shoal';

const elements = Number(process.argv[2] ?? 100_000_000);
if (!Number.isSafeInteger(elements) || elements <= 0) {
  console.error(`Expected a positive number of elements, got ${process.argv[2]}`);
  process.exit(2);
}

const mb = (bytes: number) => `${(bytes / 1e6).toFixed(0)} MB`;

console.log(`Filling a Float64Array of ${elements.toLocaleString()} elements (${mb(elements * 8)}) in shared memory...`);
let started = performance.now();
// store.create hands out the array in shared memory itself: filling it is the only write.
const writer = store.create(Float64Array, elements);
for (let i = 0; i < elements; i++) writer.array[i] = i % 1000;
const ref: ObjectRef<Float64Array> = writer.seal();
console.log(`  created and sealed in ${(performance.now() - started).toFixed(0)} ms`);

let expected = 0;
for (let i = 0; i < elements; i++) expected += writer.array[i]!;

console.log('Starting a second process and handing it the ref (a few bytes of JSON)...');
const reader = fork(fileURLToPath(new URL('./read-in-child.js', import.meta.url)), [JSON.stringify(ref)], {
  stdio: 'inherit',
});
const answer = await new Promise<{ sum: number; getMs: number; sumMs: number; rssBefore: number; rssAfterGet: number }>(
  (resolve, reject) => {
    reader.once('message', (message) => resolve(message as never));
    reader.once('exit', (code) => reject(new Error(`the reader exited with code ${code} before answering`)));
  },
);
console.log(`  reader: get took ${answer.getMs.toFixed(2)} ms; its RSS went ${mb(answer.rssBefore)} -> ${mb(answer.rssAfterGet)} (no copy)`);
console.log(`  reader: summed in place in ${answer.sumMs.toFixed(0)} ms: ${answer.sum}`);
console.log(answer.sum === expected ? '  matches the sum computed here.' : `  MISMATCH: expected ${expected}`);

started = performance.now();
const copy = writer.array.slice();
console.log(`For comparison, one in-process copy of the array (arr.slice()) takes ${(performance.now() - started).toFixed(0)} ms.`);
void copy;

await shutdown();
process.exitCode = answer.sum === expected ? 0 : 1;
