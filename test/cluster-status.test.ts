// `shoal status` on a joined node's machine finds the cluster and its token without being told.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { sweepStaleSessions } from '@shoal/store';
import { daemonOf, shoal } from './cluster-helpers.js';
import { isAlive, until } from './runtime-helpers.js';

test("`shoal status` on a joined node's machine works without --token", { timeout: 120_000 }, async () => {
  const homeA = mkdtempSync(join(tmpdir(), 'shoal-home-a-'));
  const homeB = mkdtempSync(join(tmpdir(), 'shoal-home-b-'));
  const pids: number[] = [];
  const noToken = { SHOAL_TOKEN: '', SHOAL_ADDRESS: '' };
  try {
    const started = await shoal(homeA, ['start', '--head', '--port', '0', '--num-cpus', '1'], noToken);
    assert.equal(started.code, 0, started.stderr);
    const head = daemonOf(homeA);
    pids.push(head.pid);
    const token = readFileSync(join(homeA, 'token'), 'utf8').trim();
    const joined = await shoal(homeB, ['start', '--address', head.head, '--token', token, '--num-cpus', '1'], noToken);
    assert.equal(joined.code, 0, joined.stderr);
    const node = daemonOf(homeB);
    pids.push(node.pid);

    const status = await shoal(homeB, ['status', '--json'], noToken);
    assert.equal(status.code, 0, status.stderr);
    const pidsSeen = (JSON.parse(status.stdout) as { nodes: { pid: number }[] }).nodes.map((member) => member.pid).sort();
    assert.deepEqual(pidsSeen, [head.pid, node.pid].sort());
    assert.equal(statSync(join(homeB, 'token')).mode & 0o777, 0o600, "the joined node's token is private");
  } finally {
    for (const home of [homeA, homeB]) await shoal(home, ['stop']);
    for (const pid of pids) if (isAlive(pid)) process.kill(pid, 'SIGKILL');
    await until(() => pids.every((pid) => !isAlive(pid)), 'the daemons to be gone');
    sweepStaleSessions('/dev/shm');
    for (const home of [homeA, homeB]) rmSync(home, { recursive: true, force: true });
  }
});
