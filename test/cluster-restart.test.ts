// A head stopped and started again as it was first started (no --token): its nodes stay members.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { sweepStaleSessions } from '@shoal/store';
import { daemonOf, shoal } from './cluster-helpers.js';
import { freePort } from './helpers.js';
import { isAlive, until } from './runtime-helpers.js';

async function nodePids(home: string): Promise<number[]> {
  const run = await shoal(home, ['status', '--json']);
  return run.code === 0 ? (JSON.parse(run.stdout) as { nodes: { pid: number }[] }).nodes.map((node) => node.pid).sort() : [];
}

test('a head started again without --token reuses its stored token: its node stays a member', { timeout: 120_000 }, async () => {
  const homeA = mkdtempSync(join(tmpdir(), 'shoal-home-a-'));
  const homeB = mkdtempSync(join(tmpdir(), 'shoal-home-b-'));
  const pids: number[] = [];
  try {
    const startHead = async () => {
      const run = await shoal(homeA, ['start', '--head', '--port', String(port), '--num-cpus', '1'], { SHOAL_TOKEN: '' });
      assert.equal(run.code, 0, run.stderr);
      pids.push(daemonOf(homeA).pid);
      return daemonOf(homeA);
    };
    // The head must come back on the same port.
    const port = await freePort();
    const head = await startHead();
    const token = readFileSync(join(homeA, 'token'), 'utf8').trim();
    const joined = await shoal(homeB, ['start', '--address', head.head, '--token', token, '--num-cpus', '1']);
    assert.equal(joined.code, 0, joined.stderr);
    const node = daemonOf(homeB);
    pids.push(node.pid);
    assert.deepEqual(await nodePids(homeA), [head.pid, node.pid].sort());

    assert.equal((await shoal(homeA, ['stop'])).code, 0);
    const again = await startHead();
    await until(async () => (await nodePids(homeA)).includes(node.pid), 'the node to rejoin the restarted head', 30_000);
    assert.ok(isAlive(node.pid), 'the node did not exit');
    assert.deepEqual(await nodePids(homeA), [again.pid, node.pid].sort());
    assert.equal(readFileSync(join(homeA, 'token'), 'utf8').trim(), token, 'the stored token is kept');

    // Told otherwise, the head makes a new token.
    assert.equal((await shoal(homeA, ['stop'])).code, 0);
    const rotated = await shoal(homeA, ['start', '--head', '--port', String(port), '--new-token'], { SHOAL_TOKEN: '' });
    assert.equal(rotated.code, 0, rotated.stderr);
    pids.push(daemonOf(homeA).pid);
    assert.notEqual(readFileSync(join(homeA, 'token'), 'utf8').trim(), token);
  } finally {
    for (const home of [homeA, homeB]) await shoal(home, ['stop']);
    for (const pid of pids) if (isAlive(pid)) process.kill(pid, 'SIGKILL');
    await until(() => pids.every((pid) => !isAlive(pid)), 'the daemons to be gone');
    sweepStaleSessions('/dev/shm');
    for (const home of [homeA, homeB]) rmSync(home, { recursive: true, force: true });
  }
});
