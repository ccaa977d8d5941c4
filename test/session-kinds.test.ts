// Which node a program's session uses: a program that only uses the store starts no worker, and
// `init()` joins this machine's running daemon (found through SHOAL_HOME) unless told otherwise.
import assert from 'node:assert/strict';
import { availableParallelism } from 'node:os';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { daemonOf, runProgram, shoal, withHomes } from './cluster-helpers.js';

const PROGRAM = fileURLToPath(new URL('./fixtures/session-kinds.ts', import.meta.url));
const noDaemon = { SHOAL_ADDRESS: '' };

test('a program that only uses the store runs no worker; its first remote function starts them', { timeout: 60_000 }, async () => {
  await withHomes(1, async ([home]) => {
    const run = await runProgram(PROGRAM, ['store-only', 'shoal-test-child'], { ...noDaemon, SHOAL_HOME: home! });
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(JSON.parse(run.stdout), { before: 0, after: availableParallelism(), total: 2 * (1 << 16) });
  });
});

test('a SHOAL_ADDRESS naming a head nobody runs: a task or a put says to await init(), which says the head cannot be reached', { timeout: 60_000 }, async () => {
  await withHomes(1, async ([home]) => {
    const run = await runProgram(PROGRAM, ['stale', 'shoal-test-child'], { SHOAL_ADDRESS: 'ws://127.0.0.1:1', SHOAL_TOKEN: 'a-token-of-some-length', SHOAL_HOME: home! });
    assert.equal(run.code, 0, run.stderr);
    const seen = JSON.parse(run.stdout) as Record<string, string>;
    assert.match(seen.task!, /^NotConnectedError ERR_NOT_CONNECTED: Cannot submit a task of anonymous before the node accepted this program: `await init\(\{ address, token \}\)` first/);
    assert.match(seen.put!, /^NotConnectedError ERR_NOT_CONNECTED: Cannot put an object before/);
    assert.match(seen.started!, /^HeadUnreachableError ERR_HEAD_UNREACHABLE: Cannot reach the head at ws:\/\/127\.0\.0\.1:1 \(ECONNREFUSED\)/);
  });
});

test("init() attaches to this machine's running daemon; node options or address: 'embedded' start a node of its own", { timeout: 120_000 }, async () => {
  await withHomes(1, async ([home], pids) => {
    const env = { ...noDaemon, SHOAL_HOME: home!, NODE_DEBUG: 'shoal:session' };
    const alone = JSON.parse((await runProgram(PROGRAM, ['init', '{}', 'shoal-test-child'], env)).stdout) as { attached: boolean };
    assert.equal(alone.attached, false, 'no daemon: an embedded node');

    const started = await shoal(home!, ['start', '--head', '--port', '0', '--num-cpus', '1']);
    assert.equal(started.code, 0, started.stderr);
    const daemon = daemonOf(home!);
    pids.push(daemon.pid);

    const joined = await runProgram(PROGRAM, ['init', '{}', 'shoal-test-child'], env);
    assert.equal(joined.code, 0, joined.stderr);
    const attached = JSON.parse(joined.stdout) as { attached: boolean; address: string; workers: number; pid: number };
    assert.deepEqual({ attached: attached.attached, address: attached.address }, { attached: true, address: daemon.address });
    assert.match(joined.stderr, /SHOAL:SESSION \d+: attaching to the daemon running for .* at unix:/);

    for (const options of [{ address: 'embedded' }, { numCpus: 1 }]) {
      const own = await runProgram(PROGRAM, ['init', JSON.stringify(options), 'shoal-test-child'], env);
      assert.equal(own.code, 0, own.stderr);
      const result = JSON.parse(own.stdout) as { attached: boolean; workers: number };
      assert.equal(result.attached, false, `${JSON.stringify(options)}: a node of its own`);
      assert.ok(result.workers >= 1);
    }
  });
});
