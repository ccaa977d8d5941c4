// A streaming pipeline whose memory stays flat: produce chunks -> transform -> consume.
//
//   npm run build && node examples/dist/streaming/pipeline.js [chunks] [chunkMiB]
//
// A streaming task (an async generator) produces `chunks` Float64Arrays of `chunkMiB` MiB each,
// far more in total than the store ever holds at once: it may run only `streamWindow` (4) items
// ahead of the consumer, then it waits at its `yield`. Each chunk, as soon as it is yielded, goes
// by ref to a transform task (its sum, read in place); the consumer keeps at most 4 transforms in
// flight and releases each chunk's ref once its sum is in. The store's peak use is printed beside the
// total produced: the peak is a few chunks, whatever the total.
import { remote, shutdown, store, type ObjectRef } from 'shoal';

const chunks = Number(process.argv[2] ?? 64);
const chunkMiB = Number(process.argv[3] ?? 16);

const produce = remote(
  async function* (count: number, elements: number) {
    for (let i = 0; i < count; i++) yield new Float64Array(elements).fill(i);
  },
  { streamWindow: 4 },
);
const transform = remote((chunk: Float64Array) => {
  let sum = 0;
  for (let i = 0; i < chunk.length; i++) sum += chunk[i]!;
  return sum;
});

const elements = (chunkMiB * 2 ** 20) / 8;
let peak = 0;
let total = 0;
const inFlight: { chunk: ObjectRef<Float64Array>; sum: ObjectRef<number> }[] = [];
/** The oldest transform's sum; its chunk is released at once (not when the ref is collected). */
const finishOldest = async (): Promise<void> => {
  const { chunk, sum } = inFlight.shift()!;
  total += await sum;
  chunk.release();
};
for await (const { ref: chunk } of produce(chunks, elements).refs()) {
  inFlight.push({ chunk, sum: transform(chunk) });
  peak = Math.max(peak, store.stats().usedBytes);
  if (inFlight.length >= 4) await finishOldest();
}
while (inFlight.length > 0) await finishOldest();
const expected = elements * ((chunks * (chunks - 1)) / 2);
const producedMiB = chunks * chunkMiB;
console.log(`streamed ${chunks} chunks of ${chunkMiB} MiB (${producedMiB} MiB in all); sum ${total} (expected ${expected})`);
console.log(`peak store use ${(peak / 2 ** 20).toFixed(0)} MiB: ${((100 * peak) / (producedMiB * 2 ** 20)).toFixed(1)}% of what was produced`);
await shutdown();
