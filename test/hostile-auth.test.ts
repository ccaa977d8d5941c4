// Nothing is parsed before the token (issue 18, finding 1): the token is checked at the WebSocket
// upgrade, so messages built to make the decoder blow up (16 MiB of msgpack Error extensions)
// from a peer without it are refused (401) before a byte of them is read, without pausing the
// head or a node, while a legitimate driver runs tasks through both; WebSocket upgrades from a
// web page (an `Origin` header) are refused unless allowed.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BadTokenError } from '@shoal/protocol';
import { Head, queryStatus } from '@shoal/runtime/cluster';
import { errorRecords, sendUnauthenticated, upgradeStatus } from './support/hostile-peers.js';
import { startCluster } from './support/start-cluster.js';
import { eventLoopMonitor, startSteadyDriver } from './support/steady-driver.js';

const MiB = 1 << 20;

test('unauthenticated messages built to blow up the decoder are refused at the upgrade, and a running driver does not notice', { timeout: 120_000 }, async (t) => {
  await using cluster = await startCluster({ nodes: [{}, { resources: { gpu: 1 } }] });
  const [a] = cluster.nodes;
  await using driver = await startSteadyDriver(a!.address);
  const monitor = eventLoopMonitor();
  // The head's real limit is 16 MiB, a data port's 1 MiB: the largest each took before. Without
  // a token and with a wrong one.
  const head = await Promise.all([undefined, 'not-the-token'].map((token) => sendUnauthenticated(cluster.url, errorRecords(16 * MiB - 64), token)));
  const data = await Promise.all([0, 1, 2, 3, 4, 5].map((i) => sendUnauthenticated(a!.dataUrl, errorRecords(MiB - 64), i % 2 ? 'not-the-token' : undefined)));
  // Let a few more tasks run after the attack, through heartbeats the head would have missed.
  await new Promise((resolve) => setTimeout(resolve, 2000));
  const longestPauseMs = monitor.stop();
  const run = await driver.finish();

  const slowestRefusal = Math.max(...[...head, ...data].map((refusal) => refusal.refusedAfterMs));
  t.diagnostic(`tasks ${run.ok}, failed ${run.failures.length}, slowest task ${run.slowestMs} ms, longest pause ${longestPauseMs.toFixed(0)} ms, slowest refusal ${slowestRefusal.toFixed(1)} ms`);
  for (const refusal of [...head, ...data]) {
    assert.equal(refusal.status, 401, 'refused at the upgrade');
    assert.equal(refusal.sent, false, 'the WebSocket never opened: nothing was sent, nothing decoded');
    assert.ok(refusal.refusedAfterMs < 1000, `refused ${refusal.refusedAfterMs.toFixed(0)} ms after the upgrade request`);
  }
  assert.ok(longestPauseMs < 1000, `the head's event loop paused for ${longestPauseMs.toFixed(0)} ms`);
  assert.deepEqual(run.failures, [], 'no task of the legitimate driver failed');
  assert.ok(run.ok > 0);
  assert.ok(run.slowestMs < 1000, `a task took ${run.slowestMs} ms`);
  assert.equal((await queryStatus(cluster.url, cluster.token)).nodes.length, 2, 'both nodes are still in the cluster');
  assert.ok(cluster.log.some((line) => /refused a connection from .*: wrong or missing token/.test(line)), 'the head logs its refusals');
  assert.ok(cluster.log.some((line) => /refused a data connection from .*: wrong or missing token/.test(line)), 'the data servers log theirs');
});

test('a client with a wrong token gets BadTokenError, as before the token moved to the upgrade', { timeout: 60_000 }, async () => {
  await using cluster = await startCluster({ nodes: 1 });
  for (const url of [cluster.url, `${cluster.url}/driver`, cluster.nodes[0]!.dataUrl]) {
    assert.equal(await upgradeStatus(url), 401, url);
    assert.equal(await upgradeStatus(url, { 'x-shoal-token': `${cluster.token}x` }), 401, url);
  }
  for (const url of [cluster.url, cluster.nodes[0]!.dataUrl]) assert.equal(await upgradeStatus(url, { 'x-shoal-token': cluster.token }), 101, url);
  await assert.rejects(queryStatus(cluster.url, 'not-the-token'), (error: unknown) => {
    assert.ok(error instanceof BadTokenError);
    assert.equal(error.message, `The head at ${cluster.url} refused the token. Use the cluster's token (--token or SHOAL_TOKEN; on the head's machine it is in $SHOAL_HOME/token).`);
    return true;
  });
  assert.equal((await queryStatus(cluster.url, cluster.token)).nodes.length, 1);
});

test('WebSocket upgrades with an Origin header (a web page) are refused unless allowed; without one they work', { timeout: 60_000 }, async () => {
  await using cluster = await startCluster({ nodes: 1 });
  const [a] = cluster.nodes;
  for (const url of [cluster.url, `${cluster.url}/driver`, a!.dataUrl]) {
    assert.equal(await upgradeStatus(url, { Origin: 'http://evil.example' }), 403, url);
  }
  const token = { 'x-shoal-token': cluster.token };
  assert.equal(await upgradeStatus(cluster.url, token), 101);
  assert.equal(await upgradeStatus(a!.dataUrl, token), 101);
  assert.equal((await queryStatus(cluster.url, cluster.token)).nodes.length, 1, 'Shoal clients send no Origin');
  assert.ok(cluster.log.some((line) => /Origin `http:\/\/evil\.example` is not allowed/.test(line)));

  await using head = await Head.start({ port: 0, token: cluster.token, allowedOrigins: ['https://dashboard.example'] });
  assert.equal(await upgradeStatus(head.url, { Origin: 'https://dashboard.example', 'x-shoal-token': cluster.token }), 101);
  assert.equal(await upgradeStatus(head.url, { Origin: 'http://evil.example' }), 403);
});
