import assert from 'node:assert/strict';
import { test } from 'node:test';
import { backoffDelay } from './backoff.js';

test('the ceiling doubles from 100 ms per attempt and stops at 5 s', () => {
  const highest = () => 1 - Number.EPSILON;
  const ceilings = [0, 1, 2, 3, 4, 5, 6, 7, 100, 2000].map((attempt) => backoffDelay(attempt, { random: highest }));
  assert.deepEqual(ceilings, [100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000, 5000]);
});

test('full jitter: the wait is the random fraction of the ceiling, down to 0', () => {
  assert.equal(backoffDelay(3, { random: () => 0 }), 0);
  assert.equal(backoffDelay(3, { random: () => 0.5 }), 400);
  assert.equal(backoffDelay(3, { random: () => 0.25, minMs: 10, maxMs: 50 }), 13);
});

test('a negative attempt waits as the first one', () => {
  assert.equal(backoffDelay(-1, { random: () => 0.5 }), 50);
});

test('without an injected source the wait stays within the ceiling', () => {
  for (let attempt = 0; attempt < 20; attempt++) {
    const delay = backoffDelay(attempt);
    assert.ok(delay >= 0 && delay <= Math.min(5000, 100 * 2 ** attempt), `attempt ${attempt}: ${delay}`);
  }
});
