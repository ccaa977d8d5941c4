// The second process of put-and-read.ts: rebuilds the ref from JSON and reads the array in place.
import { ObjectRef, shutdown, store } from 'shoal';

const ref = ObjectRef.from<Float64Array>(JSON.parse(process.argv[2] ?? 'null'));
const rssBefore = process.memoryUsage().rss;
let started = performance.now();
const array = store.getSync(ref);
const getMs = performance.now() - started;
const rssAfterGet = process.memoryUsage().rss;
started = performance.now();
let sum = 0;
for (let i = 0; i < array.length; i++) sum += array[i]!;
const sumMs = performance.now() - started;
process.send!({ sum, getMs, sumMs, rssBefore, rssAfterGet }, () => {
  void shutdown().then(() => process.disconnect());
});
