// The fresh-process half of store-put-get.ts: rebuilds a ref from the JSON in argv[2], times its
// first get here (the segment has never been mapped in this process) and two full read passes,
// and prints one JSON line on stdout for the parent.
import { ObjectRef, init, shutdown, store } from 'shoal';

/** What this process reports to the parent. */
export interface ChildReport {
  getUs: number;
  /** A second get of the same ref: the mapping is cached now, what remains is decoding. */
  secondGetUs: number;
  /** Minor page faults during the get: mmap is lazy, so only the header page and the heap's own. */
  getFaults: number;
  firstSumMs: number;
  /** Minor page faults during the first read pass: each one maps shared-memory pages in. */
  firstSumFaults: number;
  secondSumMs: number;
  secondSumFaults: number;
  sum: number;
  length: number;
}

function sum(array: Float64Array): number {
  let total = 0;
  for (let i = 0; i < array.length; i++) total += array[i]!;
  return total;
}

const minorFaults = (): number => process.resourceUsage().minorPageFault;

async function main(): Promise<ChildReport> {
  const ref = ObjectRef.from<Float64Array>(JSON.parse(process.argv[2] ?? 'null'));
  // Start the session and get `sum` optimized on a private array first, so the timings below
  // are the first get and the page faults, not session setup or the interpreter. One CPU: the
  // fewest prestarted worker processes a session allows; this process runs no tasks.
  await init({ numCpus: 1 });
  const warm = new Float64Array(1 << 16).fill(1);
  for (let i = 0; i < 50; i++) sum(warm);

  let faults = minorFaults();
  let started = performance.now();
  const array = store.getSync(ref);
  const getUs = (performance.now() - started) * 1000;
  const getFaults = minorFaults() - faults;
  started = performance.now();
  store.getSync(ref);
  const secondGetUs = (performance.now() - started) * 1000;

  faults = minorFaults();
  started = performance.now();
  const total = sum(array);
  const firstSumMs = performance.now() - started;
  const firstSumFaults = minorFaults() - faults;

  faults = minorFaults();
  started = performance.now();
  const again = sum(array);
  const secondSumMs = performance.now() - started;
  const secondSumFaults = minorFaults() - faults;
  if (again !== total) throw new Error(`the two read passes disagree: ${total} vs ${again}`);

  return { getUs, secondGetUs, getFaults, firstSumMs, firstSumFaults, secondSumMs, secondSumFaults, sum: total, length: array.length };
}

try {
  process.stdout.write(`${JSON.stringify(await main())}\n`);
} finally {
  await shutdown();
}
