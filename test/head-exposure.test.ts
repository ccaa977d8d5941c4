// The head, however it is started, listens beyond loopback only with a token that is hard to guess.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HeadListenError } from '@shoal/protocol';
import { Head, MIN_EXPOSED_TOKEN_LENGTH } from '@shoal/runtime/cluster';

test('Head.start() refuses a non-loopback host with a short token, and allows a strong one or loopback', { timeout: 30_000 }, async () => {
  // A head that starts anyway is closed, so the failing test does not keep the process alive.
  const refused = Head.start({ host: '0.0.0.0', port: 0, token: 'eightchr' }).then(async (head) => {
    await head.destroy();
    return head;
  });
  await assert.rejects(refused, (error: unknown) => {
    assert.ok(error instanceof HeadListenError);
    assert.equal(error.code, 'ERR_HEAD_LISTEN');
    assert.match(error.message, /cannot listen on 0\.0\.0\.0:0: a head reachable from other machines needs a token of at least 16 characters/);
    assert.match(error.message, /openssl rand -hex 16/);
    return true;
  });
  await using strong = await Head.start({ host: '0.0.0.0', port: 0, token: 'x'.repeat(MIN_EXPOSED_TOKEN_LENGTH) });
  assert.equal(strong.state, 'running');
  await using loopback = await Head.start({ host: '127.0.0.1', port: 0, token: 'eightchr' });
  assert.equal(loopback.state, 'running');
});
