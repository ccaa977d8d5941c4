// worker_threads contender of seed.ts: the array arrives once, as a SharedArrayBuffer in
// workerData (shared, not copied); each call then posts only a range.
import { parentPort, workerData } from 'node:worker_threads';
import { sumRange } from './seed-kernel.js';

const port = parentPort!;
const array = new Float64Array((workerData as { sab: SharedArrayBuffer }).sab);
port.on('message', ({ id, start, end }: { id: number; start: number; end: number }) => {
  port.postMessage({ id, sum: sumRange(array, start, end) });
});
