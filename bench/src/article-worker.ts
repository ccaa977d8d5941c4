// worker_threads side of the article table (article.ts), for two rows:
//   SAB      the array arrives once, as a SharedArrayBuffer in workerData (shared, not copied);
//            each call posts only a range: { op: 'sum', start, end }
//   clone    no shared array: each call posts the worker's slice by value ({ op: 'sum-copy',
//            array }), which postMessage structured-clones, i.e. copies
// and for the bandwidth floor: { op: 'scan', start, end, needle } runs memchr (Buffer.indexOf,
// SIMD in libc) over a byte range of the shared array, as fast as this core can read memory.
// { op: 'gc' } drops the last clone before the next timed phase (workers inherit --expose-gc).
import { parentPort, workerData } from 'node:worker_threads';
import { sumRange } from './seed-kernel.js';

export type ArticleWorkerRequest =
  | { id: number; op: 'sum'; start: number; end: number }
  | { id: number; op: 'sum-copy'; array: Float64Array }
  | { id: number; op: 'scan'; start: number; end: number; needle: number }
  | { id: number; op: 'gc' };

export interface ArticleWorkerReply {
  id: number;
  value: number;
}

const port = parentPort!;
const sab = (workerData as { sab?: SharedArrayBuffer } | undefined)?.sab;
const array = sab === undefined ? undefined : new Float64Array(sab);
const bytes = sab === undefined ? undefined : Buffer.from(sab);
const gc = (globalThis as { gc?: () => void }).gc;

function shared<T>(value: T | undefined): T {
  if (value === undefined) throw new Error('this worker was started without a SharedArrayBuffer');
  return value;
}

port.on('message', (request: ArticleWorkerRequest) => {
  let value: number;
  switch (request.op) {
    case 'sum':
      value = sumRange(shared(array), request.start, request.end);
      break;
    case 'sum-copy':
      value = sumRange(request.array, 0, request.array.length);
      break;
    case 'scan':
      // A view, not a copy: subarray of a Buffer over the SharedArrayBuffer.
      value = shared(bytes).subarray(request.start, request.end).indexOf(request.needle);
      break;
    case 'gc':
      gc?.();
      value = 0;
      break;
  }
  port.postMessage({ id: request.id, value } satisfies ArticleWorkerReply);
});
