import assert from 'node:assert/strict';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { test } from 'node:test';
import { MAX_IDS_PER_MESSAGE, ObjectRef } from '@shoal/protocol';
import { RefTracker } from './ref-tracker.js';

// No ref hooks are installed in this process: the tests call track() as ObjectRef's constructor would.
function tracker() {
  const sent: { hold: string[]; release: string[] }[] = [];
  const lastRefs: string[] = [];
  const refs = new RefTracker({ send: (hold, release) => sent.push({ hold, release }), onLastRef: (id) => lastRefs.push(id) });
  const make = (id: string) => {
    const ref = new ObjectRef(id, 'session');
    refs.track(ref);
    return ref;
  };
  return { refs, sent, lastRefs, make };
}

test('the holds and releases of one turn travel in one message, on the next turn', async () => {
  const { refs, sent, make } = tracker();
  const a = make('a');
  make('b');
  refs.untrack(a);
  make('c');
  assert.deepEqual(sent, [], 'nothing is sent in the turn the refs were made');
  await nextTurn();
  assert.deepEqual(sent, [{ hold: ['a', 'b', 'c'], release: ['a'] }]);
  await nextTurn();
  assert.equal(sent.length, 1, 'an empty turn sends nothing');
});

test('only the first ref to an object holds it and only the last one releases it', async () => {
  const { refs, sent, lastRefs, make } = tracker();
  const first = make('x');
  const second = make('x');
  await nextTurn();
  assert.deepEqual(sent, [{ hold: ['x'], release: [] }]);
  refs.untrack(first);
  await nextTurn();
  assert.equal(sent.length, 1, 'a ref remains: no release');
  assert.deepEqual(lastRefs, []);
  refs.untrack(second);
  await nextTurn();
  assert.deepEqual(sent[1], { hold: [], release: ['x'] });
  assert.deepEqual(lastRefs, ['x']);
});

test('a ref released twice counts out once', async () => {
  const { refs, sent, make } = tracker();
  const first = make('x');
  make('x');
  refs.untrack(first);
  refs.untrack(first);
  await nextTurn();
  assert.deepEqual(sent, [{ hold: ['x'], release: [] }], 'the other ref still holds x');
});

test('released and held again in one turn: the message carries both (the node applies holds before releases)', async () => {
  const { refs, sent, make } = tracker();
  const old = make('x');
  await nextTurn();
  refs.untrack(old);
  make('x');
  await nextTurn();
  assert.deepEqual(sent[1], { hold: ['x'], release: ['x'] });
});

test('an object the node holds for us already needs no hold, and is released like any other', async () => {
  const { refs, sent, make } = tracker();
  refs.heldByNode('put');
  const ref = make('put');
  make('other');
  await nextTurn();
  assert.deepEqual(sent, [{ hold: ['other'], release: [] }]);
  refs.untrack(ref);
  // The node's hold was taken over once: a later first ref asks for a hold again.
  make('put');
  await nextTurn();
  assert.deepEqual(sent[1], { hold: ['put'], release: ['put'] });
});

test('a turn with more ids than one message may list is split, every hold before any release', async () => {
  const { refs, sent, make } = tracker();
  const made = Array.from({ length: MAX_IDS_PER_MESSAGE + 10 }, (_, i) => make(`r${i}`));
  for (const ref of made.slice(0, 5)) refs.untrack(ref);
  await nextTurn();
  assert.ok(sent.every((message) => message.hold.length + message.release.length <= MAX_IDS_PER_MESSAGE), 'no message lists more than the limit');
  assert.deepEqual(sent.map((message) => [message.hold.length, message.release.length]), [[MAX_IDS_PER_MESSAGE, 0], [10, 0], [0, 5]]);
});
