// Errors that say what happened, each made to happen for real: the node a driver is attached to
// is killed; a node is stalled (SIGSTOP) until the head drops it; the head is not there.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { HeadUnreachableError, NodeDisconnectedError, NodeUnresponsiveError, get, init, remote, shutdown } from 'shoal';
import { daemonOf, shoal, withHomes } from './cluster-helpers.js';
import { freePort } from './helpers.js';
import { until } from './runtime-helpers.js';

const noEnv = { SHOAL_TOKEN: '', SHOAL_ADDRESS: '' };

/** Like {@link withHomes}, with this process detached from Shoal first. */
const withHomesAttached = (count: number, body: (homes: string[], pids: number[]) => Promise<void>) =>
  withHomes(count, async (homes, pids) => {
    try {
      await body(homes, pids);
    } finally {
      await shutdown();
    }
  });

async function startHead(home: string, pids: number[], extra: string[] = []): Promise<ReturnType<typeof daemonOf>> {
  const run = await shoal(home, ['start', '--head', '--port', '0', '--num-cpus', '1', ...extra], noEnv);
  assert.equal(run.code, 0, run.stderr);
  pids.push(daemonOf(home).pid);
  return daemonOf(home);
}

async function memberCount(home: string): Promise<number> {
  const run = await shoal(home, ['status', '--json'], noEnv);
  return run.code === 0 ? (JSON.parse(run.stdout) as { nodes: unknown[] }).nodes.length : -1;
}

test("a driver whose node was killed is told that node closed its connection, not that Shoal was shut down", { timeout: 120_000 }, async () => {
  await withHomesAttached(1, async ([home], pids) => {
    const daemon = await startHead(home!, pids);
    await init({ address: daemon.address });
    const slow = remote(async () => {
      await new Promise((resolve) => setTimeout(resolve, 60_000));
      return 1;
    });
    const pending = get(slow());
    process.kill(daemon.pid, 'SIGKILL');
    const said = (error: unknown) => {
      assert.ok(error instanceof NodeDisconnectedError, `got ${String(error)}`);
      assert.equal(error.code, 'ERR_NODE_DISCONNECTED');
      assert.ok(error.message.includes('node.sock'), error.message);
      assert.match(error.message, /closed its connection to this program: it died or was stopped/);
      assert.match(error.message, /daemon\.log.*shoal status/);
      assert.doesNotMatch(error.message, /shut down first/);
      return true;
    };
    await assert.rejects(pending, said);
    // What follows says the same, at once: a task cannot be submitted to a node that is gone.
    assert.throws(() => slow(), said);
  });
});

test('a task only a node dropped for missed heartbeats could run says so, not that it can never run', { timeout: 120_000 }, async () => {
  await withHomesAttached(2, async ([homeA, homeB], pids) => {
    const head = await startHead(homeA!, pids);
    const token = readFileSync(join(homeA!, 'token'), 'utf8').trim();
    const joined = await shoal(homeB!, ['start', '--address', head.head, '--token', token, '--num-cpus', '1', '--resources', '{"gpu":1}'], noEnv);
    assert.equal(joined.code, 0, joined.stderr);
    const stalled = daemonOf(homeB!).pid;
    pids.push(stalled);
    await until(async () => (await memberCount(homeA!)) === 2, 'both nodes to be members');
    await init({ address: head.address });
    const onGpu = remote(() => 42, { resources: { gpu: 1 } });

    process.kill(stalled, 'SIGSTOP');
    // The helper's head drops a node after 1.5 s without a heartbeat.
    await until(async () => (await memberCount(homeA!)) === 1, 'the head to drop the stalled node', 30_000);
    await assert.rejects(get(onGpu()), (error: Error & { code?: string }) => {
      // A failure reaches an attached program as a serialized value: its class by name and code.
      assert.equal(error.name, NodeUnresponsiveError.name, `got ${String(error)}`);
      assert.equal(error.code, 'ERR_NODE_UNRESPONSIVE');
      assert.match(error.message, /needs CPU 1, gpu 1, which only .* offered, and the head dropped it after no heartbeat for 1500 ms/);
      assert.doesNotMatch(error.message, /no node of the cluster offers/);
      return true;
    });

    // Once it runs again it rejoins, and the task runs there.
    process.kill(stalled, 'SIGCONT');
    await until(async () => (await memberCount(homeA!)) === 2, 'the node to rejoin', 30_000);
    assert.equal(await get(onGpu()), 42);
  });
});

test('a node or driver that cannot reach the head is told the head is unreachable', { timeout: 60_000 }, async () => {
  await withHomesAttached(1, async ([home]) => {
    const nowhere = `ws://127.0.0.1:${await freePort()}`;
    const node = await shoal(home!, ['start', '--address', nowhere, '--token', 'unreachable-head-token'], noEnv);
    assert.notEqual(node.code, 0);
    assert.match(node.stderr, new RegExp(`Cannot reach the head at ${nowhere} \\(ECONNREFUSED\\)`));
    await assert.rejects(init({ address: nowhere, token: 'unreachable-head-token' }), (error: unknown) => {
      assert.ok(error instanceof HeadUnreachableError, `got ${String(error)}`);
      assert.equal(error.code, 'ERR_HEAD_UNREACHABLE');
      assert.match(error.message, /Cannot reach the head at .* \(ECONNREFUSED\)\. Is it running\?/);
      return true;
    });
  });
});
