// A hostile client against a real cluster while a legitimate driver runs a steady stream of tasks
// (issue 18, "What to build" 9): the messages of findings 1 and 8, with and without the token,
// on every listener (head, data port, attach socket). Every task's result must be right, none may
// fail, and no gap between two task completions may exceed 1 s (the bound).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CLOSE_PROTOCOL_ERROR, MAX_IDS_PER_MESSAGE, newObjectId } from '@shoal/protocol';
import { queryStatus } from '@shoal/runtime/cluster';
import { attachRaw } from './support/attach-raw.js';
import { errorRecords, sendAuthenticated, sendUnauthenticated, upgradeStatus } from './support/hostile-peers.js';
import { startCluster } from './support/start-cluster.js';
import { startSteadyDriver } from './support/steady-driver.js';

const MiB = 1 << 20;

/** A frame announcing `bytes`, sent in 64 KiB pieces on an attached connection (finding 8: reassembled in quadratic time once). */
async function pieceByPiece(address: string, bytes: number): Promise<void> {
  const client = await attachRaw(address.replace(/^unix:/, ''));
  const prefix = Buffer.alloc(4);
  prefix.writeUInt32LE(bytes);
  client.socket.write(prefix);
  const piece = Buffer.alloc(64 * 1024);
  for (let sent = 0; sent < bytes && !client.socket.destroyed; sent += piece.length) {
    if (!client.socket.write(piece.subarray(0, Math.min(piece.length, bytes - sent)))) {
      await new Promise((resolve) => client.socket.once('drain', resolve));
    }
  }
  await client.closed;
}

test('a hostile client on every listener: the driver running beside it gets every result right, none failed, no pause over 1 s', { timeout: 180_000 }, async (t) => {
  await using cluster = await startCluster({ nodes: [{}, { resources: { gpu: 1 } }] });
  const [a] = cluster.nodes;
  await using driver = await startSteadyDriver(a!.address);
  const socketPath = a!.address.replace(/^unix:/, '');

  // Finding 1, before the token: a 16 MiB message of Error extensions to the head, 1 MiB ones to
  // a data port from six connections (refused at the upgrade: never sent), an upgrade from a web page.
  const refusals = [await sendUnauthenticated(cluster.url, errorRecords(16 * MiB - 64), 'not-the-token')];
  refusals.push(...(await Promise.all([0, 1, 2, 3, 4, 5].map(() => sendUnauthenticated(a!.dataUrl, errorRecords(MiB - 64))))));
  for (const refusal of refusals) assert.deepEqual({ status: refusal.status, sent: refusal.sent }, { status: 401, sent: false }, 'refused at the upgrade');
  assert.equal(await upgradeStatus(cluster.url, { Origin: 'http://evil.example' }), 403);
  assert.equal(await upgradeStatus(a!.dataUrl, { Origin: 'http://evil.example' }), 403);

  // The same messages from a peer holding the token: the full decoder's cap refuses them unbuilt.
  const asCli = { type: 'hello', role: 'cli' };
  const asPuller = { type: 'hello' };
  const head = await sendAuthenticated(cluster.url, cluster.token, asCli, errorRecords(16 * MiB - 64));
  const pulls = await Promise.all([0, 1, 2, 3, 4, 5].map(() => sendAuthenticated(a!.dataUrl, cluster.token, asPuller, errorRecords(MiB - 64))));
  assert.equal(head, CLOSE_PROTOCOL_ERROR, 'authenticated 16 MiB of Error extensions to the head');
  for (const code of pulls) assert.equal(code, CLOSE_PROTOCOL_ERROR, 'authenticated 1 MiB of Error extensions to the data port');

  // Finding 8, the attach socket: a malformed resolve, a NaN put, a 200 MiB frame in 64 KiB pieces.
  for (const message of [
    { type: 'resolve', requestId: 1, ids: Array.from({ length: MAX_IDS_PER_MESSAGE + 1 }, () => newObjectId()) },
    { type: 'resolve', requestId: 1, ids: 'not-a-list' },
    { type: 'put', id: newObjectId(), payload: { size: Number.NaN, contains: [] } },
  ]) {
    const attacker = await attachRaw(socketPath);
    attacker.send(message);
    await attacker.closed;
  }
  await pieceByPiece(a!.address, 200 * MiB);

  // Heartbeats go on through what came after.
  await new Promise((resolve) => setTimeout(resolve, 2000));
  const run = await driver.finish();
  t.diagnostic(`tasks ${run.ok}, failed ${run.failures.length}, slowest gap between completions ${run.slowestMs} ms`);
  assert.deepEqual(run.failures, [], 'no task of the legitimate driver failed (a wrong result is a failure)');
  assert.ok(run.ok > 10, `only ${run.ok} tasks ran`);
  assert.ok(run.slowestMs < 1000, `${run.slowestMs} ms between two task completions`);
  assert.equal((await queryStatus(cluster.url, cluster.token)).nodes.length, 2, 'both nodes are still in the cluster');
});
