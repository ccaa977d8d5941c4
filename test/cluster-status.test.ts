// `shoal status` on a joined node's machine finds the cluster and its token without being told.
import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { daemonOf, shoal, withHomes } from './cluster-helpers.js';

test("`shoal status` on a joined node's machine works without --token", { timeout: 120_000 }, async () => {
  const noToken = { SHOAL_TOKEN: '', SHOAL_ADDRESS: '' };
  await withHomes(2, async ([homeA, homeB], pids) => {
    const started = await shoal(homeA!, ['start', '--head', '--port', '0', '--num-cpus', '1'], noToken);
    assert.equal(started.code, 0, started.stderr);
    const head = daemonOf(homeA!);
    pids.push(head.pid);
    const token = readFileSync(join(homeA!, 'token'), 'utf8').trim();
    const joined = await shoal(homeB!, ['start', '--address', head.head, '--token', token, '--num-cpus', '1'], noToken);
    assert.equal(joined.code, 0, joined.stderr);
    const node = daemonOf(homeB!);
    pids.push(node.pid);

    const status = await shoal(homeB!, ['status', '--json'], noToken);
    assert.equal(status.code, 0, status.stderr);
    const pidsSeen = (JSON.parse(status.stdout) as { nodes: { pid: number }[] }).nodes.map((member) => member.pid).sort();
    assert.deepEqual(pidsSeen, [head.pid, node.pid].sort());
    assert.equal(statSync(join(homeB!, 'token')).mode & 0o777, 0o600, "the joined node's token is private");
  });
});
