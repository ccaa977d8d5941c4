// The smallest useful Shoal program: put an array into shared memory once, then let worker
// processes read it in place.
//
//   node examples/dist/quickstart.js
import { remote, shutdown, store } from 'shoal';

// 10 million numbers. A plain loop fills them: `Float64Array.from({ length }, fn)` calls a
// function per element and takes ~7x as long (~400 ms against ~60 here).
const values = new Float64Array(10_000_000);
for (let i = 0; i < values.length; i++) values[i] = i;

// Once, into shared memory (synchronous).
const data = store.put(values);

// Runs in a worker process; `values` is a view of the shared pages, not a copy.
const mean = remote((values: Float64Array) => {
  let total = 0;
  for (let i = 0; i < values.length; i++) total += values[i]!;
  return total / values.length;
});

// Calls return refs at once; awaiting a ref fetches the value.
const [first, second] = [mean(data), mean(data)];
console.log('mean:', await first, '(computed twice, in parallel:', await second, ')');

await shutdown();
