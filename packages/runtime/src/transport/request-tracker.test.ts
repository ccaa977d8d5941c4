import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RequestTracker } from './request-tracker.js';

test('an answer settles the request that carries its id, and only that one', async () => {
  const tracker = new RequestTracker();
  const sent: number[] = [];
  const a = tracker.request<string>((id) => sent.push(id));
  const b = tracker.request<string>((id) => sent.push(id));
  assert.equal(sent.length, 2);
  assert.notEqual(sent[0], sent[1]);
  assert.equal(tracker.answer(sent[1]!, 'second'), true);
  assert.equal(tracker.answer(sent[0]!, 'first'), true);
  assert.deepEqual(await Promise.all([a, b]), ['first', 'second']);
  assert.equal(tracker.size, 0);
});

test('an answer for an unknown or already answered id is refused', async () => {
  const tracker = new RequestTracker();
  let id = 0;
  const answered = tracker.request((requestId) => (id = requestId));
  assert.equal(tracker.answer(id, 1), true);
  assert.equal(tracker.answer(id, 2), false);
  assert.equal(tracker.answer(9999, 3), false);
  assert.equal(await answered, 1);
});

test('an Error answer rejects with it', async () => {
  const tracker = new RequestTracker();
  let id = 0;
  const request = tracker.request((requestId) => (id = requestId));
  tracker.answer(id, new RangeError('no such name'));
  await assert.rejects(request, RangeError);
});

test('an aborted signal rejects with its reason and forgets the request', async () => {
  const tracker = new RequestTracker();
  const controller = new AbortController();
  let id = 0;
  const request = tracker.request((requestId) => (id = requestId), { signal: controller.signal });
  controller.abort(new Error('gave up'));
  await assert.rejects(request, /gave up/);
  assert.equal(tracker.size, 0);
  assert.equal(tracker.answer(id, 'late'), false);
});

test('a signal aborted before the request sends nothing', async () => {
  const tracker = new RequestTracker();
  let sent = false;
  const request = tracker.request(() => (sent = true), { signal: AbortSignal.abort(new Error('already')) });
  await assert.rejects(request, /already/);
  assert.equal(sent, false);
});

test('AbortSignal.timeout rejects with a TimeoutError', async () => {
  const tracker = new RequestTracker();
  const request = tracker.request(() => {}, { signal: AbortSignal.timeout(1) });
  await assert.rejects(request, { name: 'TimeoutError' });
});

test('a send that throws rejects the request with that error', async () => {
  const tracker = new RequestTracker();
  const request = tracker.request(() => {
    throw new Error('socket closed');
  });
  await assert.rejects(request, /socket closed/);
  assert.equal(tracker.size, 0);
});

test('failAll rejects every pending request and leaves none', async () => {
  const tracker = new RequestTracker();
  const requests = [tracker.request(() => {}), tracker.request(() => {}), tracker.request(() => {})];
  tracker.failAll(new Error('connection lost'));
  for (const request of requests) await assert.rejects(request, /connection lost/);
  assert.equal(tracker.size, 0);
});
