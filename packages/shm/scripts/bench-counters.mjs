// Cost of one call of each atomic counter (docs/internals.md, "Capacity: every writer"):
//   node packages/shm/scripts/bench-counters.mjs      (after `npm run build`)
// Prints nanoseconds per call over 5 M calls each, after a warm-up.
import { addToCounter, loadCounter, reserveOnCounter, takeFromCounter } from '../dist/index.js';

const buffer = new ArrayBuffer(64);
const CALLS = 5_000_000;

function measure(name, call) {
  for (let i = 0; i < 100_000; i++) call();
  const start = process.hrtime.bigint();
  for (let i = 0; i < CALLS; i++) call();
  const ns = Number(process.hrtime.bigint() - start) / CALLS;
  console.log(`${name.padEnd(18)} ${ns.toFixed(1)} ns/call`);
}

measure('loadCounter', () => loadCounter(buffer, 8));
measure('addToCounter', () => addToCounter(buffer, 8, 1));
measure('reserveOnCounter', () => reserveOnCounter(buffer, 16, 1, 2 ** 52));
measure('takeFromCounter', () => takeFromCounter(buffer, 16, 1));
