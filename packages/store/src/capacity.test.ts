import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ObjectStoreFullError } from '@shoal/protocol';
import { Capacity } from './capacity.js';
import { SegmentReservations } from './segment-reservations.js';

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

test('segments are counted when committed', () => {
  const capacity = new Capacity(20);
  capacity.reserve(10);
  capacity.commitSegment();
  capacity.addInline(3);
  assert.deepEqual([capacity.usedBytes, capacity.segments, capacity.inlineBytes], [10, 1, 3]);
  capacity.removeSegment(10);
  capacity.removeInline(3);
  assert.deepEqual([capacity.usedBytes, capacity.segments, capacity.inlineBytes], [0, 0, 0]);
  capacity.reserve(5);
  capacity.reset();
  assert.deepEqual([capacity.usedBytes, capacity.segments, capacity.inlineBytes], [0, 0, 0]);
});

test('a size that is NaN, negative or fractional never touches the books', () => {
  const capacity = new Capacity(100);
  for (const size of [Number.NaN, -1, 0.5, Number.POSITIVE_INFINITY]) {
    assert.throws(() => capacity.reserve(size), RangeError);
    assert.throws(() => capacity.takeReserved(1, size), RangeError);
    assert.throws(() => capacity.addInline(size), RangeError);
  }
  assert.deepEqual([capacity.usedBytes, capacity.segments, capacity.inlineBytes], [0, 0, 0]);
});

test('shared books: another process’s reservation counts, is charged once, and is given back when it dies', () => {
  const directory = mkdtempSync(join(tmpdir(), 'shoal-capacity-'));
  try {
    const capacity = new Capacity(100);
    capacity.reserve(10);
    capacity.share(directory);
    assert.equal(capacity.usedBytes, 10, 'what was taken before sharing is kept');
    // Two "processes" (pids 4001 and 4002) writing segments of their own.
    const first = new SegmentReservations(directory, 4001);
    const second = new SegmentReservations(directory, 4002);
    first.reserve(50);
    assert.throws(() => second.reserve(50), ObjectStoreFullError, 'room another process holds is not given twice');
    assert.throws(() => capacity.reserve(41), ObjectStoreFullError, 'the node sees it too');
    second.reserve(40);
    assert.equal(capacity.usedBytes, 100);
    // The first one's segment is registered: its reservation is the object's charge, once.
    assert.equal(capacity.takeReserved(4001, 50), true);
    assert.equal(capacity.takeReserved(4001, 50), false, 'a reservation is converted only once');
    capacity.commitSegment();
    assert.deepEqual([capacity.usedBytes, capacity.segments], [100, 1]);
    // The second dies before telling the node: its 40 bytes come back.
    assert.equal(capacity.releaseWriter(4002), 40);
    assert.equal(capacity.usedBytes, 60);
    second.release(40);
    assert.equal(capacity.usedBytes, 60, 'a slot given back is not given back again');
    first.reserve(30);
    first.release(30);
    assert.equal(capacity.usedBytes, 60, 'a write that failed gives its room back');
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
});
