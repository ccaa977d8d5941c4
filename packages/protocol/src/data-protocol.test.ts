import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { decodeFromHolder, decodeToHolder, type FromHolder, type ToHolder } from './data-protocol.js';
import { rejects, wire } from './schema.test-helpers.js';

const ID = 'Zq3kP9xT2mWv8LcR0001';

const TO_HOLDER: { readonly [T in ToHolder['type']]: Extract<ToHolder, { type: T }> } = {
  hello: { type: 'hello', relay: 'ws://10.0.0.2:7001' },
  pull: { type: 'pull', requestId: 1, id: ID, stream: 3, direct: true },
  release: { type: 'release', ids: [ID] },
  'actor-call': { type: 'actor-call', requestId: 2, actorId: ID, returnId: 'Zq3kP9xT2mWv8LcR0002', method: 'add', args: [{ value: Buffer.from([1]) }, { ref: ID, owner: 'K3mX9qLp2ZtA', size: 8 }] },
};
const FROM_HOLDER: { readonly [T in FromHolder['type']]: Extract<FromHolder, { type: T }> } = {
  welcome: { type: 'welcome', nodeId: 'K3mX9qLp2ZtA', connection: 7 },
  object: { type: 'object', requestId: 1, size: 3, bytes: Buffer.from([1, 2, 3]), contains: [ID] },
  relay: { type: 'relay', requestId: 1, url: 'ws://[fd00::2]:7001' },
  missing: { type: 'missing', requestId: 1, reason: 'failed', failure: { code: 'ERR_TASK_FAILED', message: 'boom', thrown: Buffer.from([0]) } },
  'actor-result': { type: 'actor-result', requestId: 2, result: { ok: true, size: 3, bytes: Buffer.from([1, 2, 3]), contains: [] } },
};

describe('data protocol', () => {
  test('every message type decodes, through msgpack, to what was sent', () => {
    for (const message of Object.values(TO_HOLDER)) assert.deepEqual(decodeToHolder(wire(message)), wire(message));
    for (const message of Object.values(FROM_HOLDER)) assert.deepEqual(decodeFromHolder(wire(message)), wire(message));
    assert.deepEqual(decodeFromHolder(wire({ type: 'object', requestId: 2, size: 1 << 30 })), { type: 'object', requestId: 2, size: 1 << 30 });
  });

  test('a puller message with a wrong field is refused naming it', () => {
    rejects(decodeToHolder, { type: 'object', requestId: 1, size: 1 }, /from a puller: type `object`/);
    rejects(decodeToHolder, { ...TO_HOLDER.pull, stream: -1 }, /`pull` .*`stream`/);
    rejects(decodeToHolder, { type: 'pull', requestId: 1, id: ID }, /`pull` .*`stream`/);
    rejects(decodeToHolder, { ...TO_HOLDER.pull, id: '../../etc/passwd' }, /`pull` .*`id`/);
    rejects(decodeToHolder, { type: 'ack', requestId: 1, bytes: 1 }, /from a puller: type `ack`/);
    rejects(decodeToHolder, { type: 'release', ids: [1] }, /`release` .*`ids\.0`/);
    rejects(decodeToHolder, { type: 'hello', relay: 'http://10.0.0.2:7001' }, /`hello` .*`relay`/);
    rejects(decodeToHolder, { type: 'hello', relay: `ws://${'a'.repeat(600)}` }, /`hello` .*`relay`/);
    rejects(decodeToHolder, { ...TO_HOLDER.pull, direct: 1 }, /`pull` .*`direct`/);
  });

  test('a holder message with a wrong field is refused naming it', () => {
    rejects(decodeFromHolder, { ...FROM_HOLDER.object, bytes: 'abc' }, /`object` .*`bytes`/);
    rejects(decodeFromHolder, { ...FROM_HOLDER.object, contains: 'abc' }, /`object` .*`contains`/);
    rejects(decodeFromHolder, { ...FROM_HOLDER.welcome, connection: 2 ** 60 }, /`welcome` .*`connection`/);
    rejects(decodeFromHolder, { ...FROM_HOLDER.missing, failure: { code: 'ERR_X' } }, /`missing` .*`failure\.message`/);
    rejects(decodeFromHolder, { type: 'welcome', nodeId: '', connection: 1 }, /`welcome` .*`nodeId`/);
    rejects(decodeFromHolder, { type: 'relay', requestId: 1, url: 'ws://a b' }, /`relay` .*`url`/);
  });
});
