// The cluster CLI and head end to end: `shoal start --head`, a second node joining with its own
// SHOAL_HOME (so its own session directory), `shoal status`, authentication, bad frames, a
// node that dies, a driver that joins, `shoal stop`.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { encodeMessage } from '@shoal/protocol';
import { sweepStaleSessions } from '@shoal/store';
import { closeCodeFor, daemonOf, hasExited, runProgram, shoal } from './cluster-helpers.js';
import { isAlive, until } from './runtime-helpers.js';

const DRIVER = fileURLToPath(new URL('./fixtures/cluster-driver.ts', import.meta.url));
const CROSS = fileURLToPath(new URL('./fixtures/cluster-cross.ts', import.meta.url));

test('a head and a second node: start, status, auth, bad frames, a dying node, a joining driver, stop', { timeout: 180_000 }, async () => {
  const homeA = mkdtempSync(join(tmpdir(), 'shoal-home-a-'));
  const homeB = mkdtempSync(join(tmpdir(), 'shoal-home-b-'));
  const homes = [homeA, homeB];
  const pids: number[] = [];
  try {
    // Usage errors are exit code 2 with a message; --help says so, --version prints the package's.
    const help = await shoal(homeA, ['--help']);
    assert.match(help.stdout, /Exit codes: 0 done, 1 failed .*, 2 bad usage/);
    const version = await shoal(homeA, ['--version']);
    assert.equal(version.code, 0);
    assert.equal(version.stdout.trim(), `shoal ${(JSON.parse(readFileSync(new URL('../packages/shoal/package.json', import.meta.url), 'utf8')) as { version: string }).version} (Node.js ${process.version})`);
    assert.equal((await shoal(homeA, [])).code, 2);
    assert.equal((await shoal(homeA, ['frobnicate'])).code, 2);
    assert.equal((await shoal(homeA, ['start'])).code, 2);
    const publicBind = await shoal(homeA, ['start', '--head', '--host', '0.0.0.0', '--port', '0'], { SHOAL_TOKEN: '' });
    assert.equal(publicBind.code, 2);
    assert.match(publicBind.stderr, /without an explicit token/);
    assert.match((await shoal(homeA, ['start', '--help'])).stdout, /--num-cpus[\s\S]*--spill-directory DIR[\s\S]*--no-spill/);
    const bothSpill = await shoal(homeA, ['start', '--head', '--port', '0', '--spill-directory', 'spill', '--no-spill']);
    assert.equal(bothSpill.code, 2);
    assert.match(bothSpill.stderr, /either --spill-directory or --no-spill/);

    const started = await shoal(homeA, ['start', '--head', '--port', '0', '--num-cpus', '1', '--resources', '{"headres":1}', '--object-store-memory', String(32 * 1024 ** 2)], {
      SHOAL_TOKEN: '',
    });
    assert.equal(started.code, 0, started.stderr);
    const a = daemonOf(homeA);
    pids.push(a.pid);
    assert.match(started.stdout, new RegExp(a.head.replace(/[.]/g, '\\.')));
    assert.equal(statSync(join(homeA, 'token')).mode & 0o777, 0o600, 'the token file is private');
    const token = readFileSync(join(homeA, 'token'), 'utf8').trim();
    assert.equal((await shoal(homeA, ['start', '--head', '--port', '0'])).code, 1, 'one daemon per home');

    const joined = await shoal(homeB, ['start', '--address', a.head, '--token', token, '--num-cpus', '1', '--resources', '{"gpu":1}']);
    assert.equal(joined.code, 0, joined.stderr);
    const b = daemonOf(homeB);
    pids.push(b.pid);
    assert.notEqual(dirname(a.address.slice(5)), dirname(b.address.slice(5)), 'each node has its own session directory');

    const status = JSON.parse((await shoal(homeA, ['status', '--json'])).stdout) as { nodes: { pid: number; resources: Record<string, number> }[] };
    assert.deepEqual(status.nodes.map((node) => node.pid).sort(), [a.pid, b.pid].sort());
    assert.deepEqual(status.nodes.find((node) => node.pid === b.pid)!.resources, { CPU: 1, gpu: 1 });
    assert.match((await shoal(homeA, ['status'])).stdout, /2 node\(s\)[\s\S]*gpu 0\/1[\s\S]*Total: CPU 0\/2/);

    // Wrong or missing token: refused, logged, nothing else happens.
    const wrong = await shoal(homeA, ['status', '--token', 'not-the-token']);
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /refused the token/);
    assert.match(readFileSync(join(homeA, 'daemon.log'), 'utf8'), /refused a connection from .*: wrong or missing token/);
    const homeC = mkdtempSync(join(tmpdir(), 'shoal-home-c-'));
    homes.push(homeC);
    const badJoin = await shoal(homeC, ['start', '--address', a.head, '--token', 'not-the-token']);
    assert.equal(badJoin.code, 1);
    // Its last words, read back from its JSON log, as a sentence.
    assert.match(badJoin.stderr, /the daemon exited \(code 1\) before it was ready: The head at \S+ refused the token\./);

    // Garbage and oversized frames close only their own connection.
    assert.equal(await closeCodeFor(a.head, token, [Buffer.from([0xc1, 0xff, 0x00, 0x13])]), 4002);
    assert.equal(await closeCodeFor(a.head, token, ['{"type":"hello"}']), 4002);
    assert.equal(await closeCodeFor(a.head, token, [encodeMessage({ type: 'status' })]), 4002, 'no hello first');
    // 1009 (too big); 1006 when the head drops the socket before the client reads its close frame.
    assert.ok([1009, 1006].includes(await closeCodeFor(a.head, token, [Buffer.alloc(17 * 1024 * 1024)])));
    assert.equal((await shoal(homeA, ['status'])).code, 0, 'the head still serves');

    // A program without a node of its own puts more than the head's node can hold: that object
    // is the failure, and the node goes on serving.
    const overflow = await runProgram(CROSS, [a.head, 'overflow'], { SHOAL_HOME: homeC, SHOAL_TOKEN: token });
    assert.equal(overflow.code, 0, overflow.stderr);
    assert.equal((JSON.parse(overflow.stdout) as { error: string }).error, 'ObjectStoreFullError');
    assert.ok(isAlive(a.pid), 'the node survived');
    assert.equal((await shoal(homeA, ['status'])).code, 0, 'and still serves');

    // A task placed on the head's node on an object larger than its store: the pull is refused.
    const pullFull = await runProgram(CROSS, [a.head, 'pullfull'], { SHOAL_HOME: homeB });
    assert.equal(pullFull.code, 0, pullFull.stderr);
    assert.deepEqual(JSON.parse(pullFull.stdout), { error: 'ObjectStoreFullError', code: 'ERR_OBJECT_STORE_FULL' });

    // A driver on node B's machine joins with the head's address and uses B's store zero-copy.
    const driver = await runProgram(DRIVER, [a.head, 'shoal-test-child'], { SHOAL_HOME: homeB });
    assert.equal(driver.code, 0, driver.stderr);
    assert.deepEqual(JSON.parse(driver.stdout), { attached: true, directory: dirname(b.address.slice(5)), total: 400_000 });

    // Node B dies without a word: the head removes it after the heartbeat timeout.
    const directoryB = dirname(b.address.slice(5));
    process.kill(b.pid, 'SIGKILL');
    await until(() => !isAlive(b.pid), 'node B to die');
    await until(async () => {
      const run = await shoal(homeA, ['status', '--json']);
      return run.code === 0 && (JSON.parse(run.stdout) as { nodes: unknown[] }).nodes.length === 1;
    }, 'the head to drop the dead node', 20_000);
    // SIGKILL left B's session directory; the next session on the machine sweeps it.
    sweepStaleSessions('/dev/shm');
    assert.ok(!existsSync(directoryB));

    const stopped = await shoal(homeA, ['stop']);
    assert.equal(stopped.code, 0);
    assert.match(stopped.stdout, /Stopped the Shoal daemon/);
    assert.ok(hasExited(a.pid), 'stop returns once the daemon has exited');
    assert.ok(!existsSync(dirname(a.address.slice(5))), 'stop removes the session directory');
    assert.match((await shoal(homeA, ['stop'])).stdout, /No Shoal daemon is running/);
  } finally {
    for (const pid of pids) {
      if (isAlive(pid)) process.kill(pid, 'SIGKILL');
    }
    await until(() => pids.every((pid) => !isAlive(pid)), 'the daemons to be gone');
    // Daemons killed here could not remove their session directories.
    sweepStaleSessions('/dev/shm');
    for (const home of homes) rmSync(home, { recursive: true, force: true });
  }
});
