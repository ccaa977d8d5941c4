// The one kernel every contender of seed.ts runs: a plain loop over part of the array. Shoal ships
// this very function to its workers (remote(sumRange)); the worker_threads worker, the IPC child
// and the in-process pass import it, so all four run the same code.
export function sumRange(a: Float64Array, start: number, end: number): number {
  let s = 0;
  for (let i = start; i < end; i++) s += a[i]!;
  return s;
}
