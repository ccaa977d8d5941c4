import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Task } from './task.js';
import { mayRetry, retriesException } from './retry.js';

const withOptions = (retryExceptions: boolean | string[], maxRetries = 3, attempts = 1) =>
  ({ attempts, options: { retryExceptions, maxRetries } }) as unknown as Task;

test('retryExceptions decides which thrown errors are retried', () => {
  const rows: [boolean | string[], unknown, boolean][] = [
    [false, new RangeError('x'), false],
    [true, new RangeError('x'), true],
    [true, 'a string', true],
    [['RangeError'], new RangeError('x'), true],
    [['RangeError'], new TypeError('x'), false],
    [['RangeError'], { name: 'RangeError' }, false],
  ];
  for (const [option, thrown, expected] of rows) assert.equal(retriesException(withOptions(option), thrown), expected, `${JSON.stringify(option)} ${String(thrown)}`);
});

test('maxRetries counts retries after the first run', () => {
  assert.equal(mayRetry(withOptions(false, 0, 1)), false);
  assert.equal(mayRetry(withOptions(false, 1, 1)), true);
  assert.equal(mayRetry(withOptions(false, 1, 2)), false);
  assert.equal(mayRetry(withOptions(false, 3, 3)), true);
  assert.equal(mayRetry(withOptions(false, 3, 4)), false);
});
