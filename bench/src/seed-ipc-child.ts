// IPC contender of seed.ts (forked with `serialization: 'advanced'`): receives its slice by value
// (a copy, each call) and sums all of it. `gc` asks it to drop the last copy before the next
// timed phase (it runs with --expose-gc), so its garbage does not weigh on other contenders.
import { sumRange } from './seed-kernel.js';

const gc = (globalThis as { gc?: () => void }).gc;

process.on('message', (message: Float64Array | 'gc') => {
  if (message === 'gc') {
    gc?.();
    process.send!('gc-done');
    return;
  }
  process.send!(sumRange(message, 0, message.length));
});
process.on('disconnect', () => process.exit(0));
process.send!('ready');
