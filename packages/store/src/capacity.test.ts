import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ObjectStoreFullError } from '@shoal/protocol';
import { Capacity } from './capacity.js';

test('a reservation beyond the capacity is refused with the sizes and the reason', () => {
  const capacity = new Capacity(100);
  capacity.reserve(60);
  assert.throws(
    () => capacity.reserve(50, ', so it cannot be pulled here'),
    (error: unknown) => error instanceof ObjectStoreFullError && /cannot be pulled here/.test(error.message),
  );
  assert.equal(capacity.usedBytes, 60, 'a refused reservation takes nothing');
  capacity.unreserve(60);
  capacity.reserve(100);
  assert.equal(capacity.usedBytes, 100);
});

test('segments are counted when committed or added', () => {
  const capacity = new Capacity(10);
  capacity.reserve(10);
  capacity.commitSegment();
  capacity.addSegment(5);
  capacity.addInline(3);
  assert.deepEqual([capacity.usedBytes, capacity.segments, capacity.inlineBytes], [15, 2, 3]);
  capacity.removeSegment(5);
  capacity.removeInline(3);
  assert.deepEqual([capacity.usedBytes, capacity.segments, capacity.inlineBytes], [10, 1, 0]);
  capacity.reset();
  assert.deepEqual([capacity.usedBytes, capacity.segments, capacity.inlineBytes], [0, 0, 0]);
});

test('a size that is NaN, negative or fractional never touches the books', () => {
  const capacity = new Capacity(100);
  for (const size of [Number.NaN, -1, 0.5, Number.POSITIVE_INFINITY]) {
    assert.throws(() => capacity.reserve(size), RangeError);
    assert.throws(() => capacity.addSegment(size), RangeError);
    assert.throws(() => capacity.addInline(size), RangeError);
  }
  assert.deepEqual([capacity.usedBytes, capacity.segments, capacity.inlineBytes], [0, 0, 0]);
});
