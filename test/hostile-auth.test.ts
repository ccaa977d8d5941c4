// Nothing is parsed before the token (issue 18, finding 1): unauthenticated messages built to make
// the decoder blow up (16 MiB of msgpack Error extensions) are refused from their header, without
// pausing the head or a node, while a legitimate driver runs tasks through both; WebSocket
// upgrades from a web page (an `Origin` header) are refused unless allowed.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Packr } from 'msgpackr';
import { CLOSE_PROTOCOL_ERROR, encodeMessage } from '@shoal/protocol';
import { Head, queryStatus } from '@shoal/runtime';
import { errorRecords, sendUnauthenticated, upgradeStatus } from './support/hostile-peers.js';
import { startCluster } from './support/start-cluster.js';
import { eventLoopMonitor, startSteadyDriver } from './support/steady-driver.js';

const MiB = 1 << 20;

test('unauthenticated messages built to blow up the decoder are refused at once, and a running driver does not notice', { timeout: 120_000 }, async (t) => {
  await using cluster = await startCluster({ nodes: [{}, { resources: { gpu: 1 } }] });
  const [a] = cluster.nodes;
  await using driver = await startSteadyDriver(a!.address);
  const monitor = eventLoopMonitor();
  // The head's real limit is 16 MiB, a data port's 1 MiB: the largest each took before.
  const head = await Promise.all([0, 1].map(() => sendUnauthenticated(cluster.url, errorRecords(16 * MiB - 64))));
  const data = await Promise.all([0, 1, 2, 3, 4, 5].map(() => sendUnauthenticated(a!.dataUrl, errorRecords(MiB - 64))));
  // Let a few more tasks run after the attack, through heartbeats the head would have missed.
  await new Promise((resolve) => setTimeout(resolve, 2000));
  const longestPauseMs = monitor.stop();
  const run = await driver.finish();

  const slowestRefusal = Math.max(...[...head, ...data].map((refusal) => refusal.closedAfterMs));
  t.diagnostic(`tasks ${run.ok}, failed ${run.failures.length}, slowest task ${run.slowestMs} ms, longest pause ${longestPauseMs.toFixed(0)} ms, slowest refusal ${slowestRefusal.toFixed(1)} ms`);
  for (const refusal of [...head, ...data]) {
    // 1009 (too big); 1006 when the server's close came while the client was still writing.
    assert.ok([1009, 1006].includes(refusal.code), `closed with ${refusal.code}`);
    assert.ok(refusal.closedAfterMs < 100, `closed ${refusal.closedAfterMs.toFixed(0)} ms after the message arrived`);
  }
  assert.ok(longestPauseMs < 1000, `the head's event loop paused for ${longestPauseMs.toFixed(0)} ms`);
  assert.deepEqual(run.failures, [], 'no task of the legitimate driver failed');
  assert.ok(run.ok > 0);
  assert.ok(run.slowestMs < 1000, `a task took ${run.slowestMs} ms`);
  assert.equal((await queryStatus(cluster.url, cluster.token)).nodes.length, 2, 'both nodes are still in the cluster');
  assert.ok(cluster.log.some((line) => /a first message above 4096 bytes/.test(line)), 'the refusals are logged');
});

test('before the token, a small message that is not a plain-msgpack hello closes its connection', { timeout: 60_000 }, async () => {
  await using cluster = await startCluster({ nodes: 1 });
  const [a] = cluster.nodes;
  for (const url of [cluster.url, a!.dataUrl]) {
    // A hello whose token is an Error extension: the strict decoder never builds it.
    const withError = new Packr({ moreTypes: true, useRecords: false }).pack({ type: 'hello', token: new Error('x'), role: 'cli' });
    assert.equal((await sendUnauthenticated(url, withError)).code, CLOSE_PROTOCOL_ERROR);
    // Records (msgpackr's own extension) are refused too.
    const withRecords = new Packr({ useRecords: true }).pack({ type: 'hello', token: cluster.token, role: 'cli' });
    assert.equal((await sendUnauthenticated(url, withRecords)).code, CLOSE_PROTOCOL_ERROR);
  }
  // A well-formed hello still works, and an authenticated node's large messages still get through.
  assert.equal((await queryStatus(cluster.url, cluster.token)).nodes.length, 1);
  assert.ok(encodeMessage({ type: 'hello', token: cluster.token, role: 'cli' }).length < 4096);
});

test('WebSocket upgrades with an Origin header (a web page) are refused unless allowed; without one they work', { timeout: 60_000 }, async () => {
  await using cluster = await startCluster({ nodes: 1 });
  const [a] = cluster.nodes;
  for (const url of [cluster.url, `${cluster.url}/driver`, a!.dataUrl]) {
    assert.equal(await upgradeStatus(url, { Origin: 'http://evil.example' }), 403, url);
  }
  assert.equal(await upgradeStatus(cluster.url), 101);
  assert.equal(await upgradeStatus(a!.dataUrl), 101);
  assert.equal((await queryStatus(cluster.url, cluster.token)).nodes.length, 1, 'Shoal clients send no Origin');
  assert.ok(cluster.log.some((line) => /Origin `http:\/\/evil\.example` is not allowed/.test(line)));

  await using head = await Head.start({ port: 0, token: cluster.token, allowedOrigins: ['https://dashboard.example'] });
  assert.equal(await upgradeStatus(head.url, { Origin: 'https://dashboard.example' }), 101);
  assert.equal(await upgradeStatus(head.url, { Origin: 'http://evil.example' }), 403);
});
