import assert from 'node:assert/strict';
import { afterEach, test } from 'node:test';
import { MAX_IDS_PER_MESSAGE, newObjectId } from '@shoal/protocol';
import { store } from 'shoal';
import { cleanUp, start } from './runtime-helpers.js';
import { attachRaw } from './support/attach-raw.js';

afterEach(cleanUp);

test('a malformed resolve or put closes only its own connection: the node, its accounting and other clients carry on', async () => {
  const session = await start({ numCpus: 0 });
  const socketPath = session.address.replace(/^unix:/, '');
  const ref = store.put(new Float64Array(100_000).fill(2));
  const used = store.stats().usedBytes;
  const bystander = await attachRaw(socketPath);
  const tooMany = Array.from({ length: MAX_IDS_PER_MESSAGE + 1 }, () => newObjectId());
  const hostile: [string, unknown][] = [
    ['a resolve of more ids than a message may list', { type: 'resolve', requestId: 1, ids: tooMany }],
    ['a resolve of a few ids owned by too many', { type: 'resolve', requestId: 1, ids: [ref.id], owners: tooMany }],
    ['a resolve with ids as a string', { type: 'resolve', requestId: 1, ids: ref.id }],
    ['a put of size NaN', { type: 'put', id: newObjectId(), payload: { size: Number.NaN, contains: [] } }],
    ['a put of negative size', { type: 'put', id: newObjectId(), payload: { size: -1, contains: [] } }],
    ['a put of infinite size', { type: 'put', id: newObjectId(), payload: { size: Number.POSITIVE_INFINITY, contains: [] } }],
    ['a put of fractional size', { type: 'put', id: newObjectId(), payload: { size: 0.5, bytes: Buffer.alloc(1), contains: [] } }],
  ];
  for (const [what, message] of hostile) {
    const attacker = await attachRaw(socketPath);
    attacker.send(message);
    await attacker.closed;
    assert.equal(store.stats().usedBytes, used, `${what}: the store's accounting is untouched`);
    bystander.send({ type: 'resolve', requestId: 7, ids: [ref.id], owners: [ref.owner] });
    const answer = (await bystander.next('resolved')) as { locations: Record<string, { kind: string }> };
    assert.equal(answer.locations[ref.id]?.kind, 'segment', `${what}: another attached client still resolves objects`);
  }
  assert.equal(bystander.socket.destroyed, false);
  assert.equal((await ref)[0], 2, 'the driver still reads its objects');
  bystander.socket.destroy();
});
