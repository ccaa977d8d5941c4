// What tasks print reaches the program that submitted them, each line prefixed with the function
// and the worker's pid (and the node, from another one): with an embedded node, through a daemon,
// and from another node of a cluster; `logToDriver: false` keeps it with the node.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { daemonOf, runProgram, shoal, startHeadAndGpuNode, withHomes } from './cluster-helpers.js';
import { until } from './runtime-helpers.js';

const DRIVER = fileURLToPath(new URL('./fixtures/output-driver.ts', import.meta.url));
const run = (options: object, what: string, env: Record<string, string>) => runProgram(DRIVER, [JSON.stringify(options), what, 'shoal-test-child'], { SHOAL_ADDRESS: '', ...env });

/** Checks the local run's output: every line of the task, the nested task and the actor, prefixed. */
function assertForwarded(stdout: string, stderr: string): void {
  assert.match(stdout, /^\(hello pid=\d+\) hello from a task 1$/m);
  assert.match(stdout, /^\(hello pid=\d+\) second line$/m, 'each line gets the prefix');
  assert.match(stderr, /^\(hello pid=\d+\) to stderr$/m, 'stderr goes to stderr');
  assert.match(stdout, /^\(child pid=\d+\) from a nested task$/m, "a nested task's output reaches the driver too");
  assert.match(stdout, /^\(Talker pid=\d+\) an actor says hi$/m);
  assert.ok(stdout.indexOf('hello from a task') < stdout.indexOf('driver done'), 'a task line comes before what the driver printed after awaiting it');
}

test("an embedded node's tasks print at the driver, prefixed; logToDriver: false prints them unprefixed", { timeout: 60_000 }, async () => {
  await withHomes(1, async ([home]) => {
    const forwarded = await run({ numCpus: 1 }, 'local', { SHOAL_HOME: home! });
    assert.equal(forwarded.code, 0, forwarded.stderr);
    assertForwarded(forwarded.stdout, forwarded.stderr);

    const plain = await run({ numCpus: 1, logToDriver: false }, 'local', { SHOAL_HOME: home! });
    assert.equal(plain.code, 0, plain.stderr);
    assert.match(plain.stdout, /^hello from a task 1$/m, 'the worker writes to the same stdout itself');
    assert.doesNotMatch(plain.stdout, /\(hello pid=/);
  });
});

test("through a daemon, a task's output reaches the attached program, not the daemon's log; logToDriver: false leaves it in the log", { timeout: 120_000 }, async () => {
  await withHomes(1, async ([home], pids) => {
    const started = await shoal(home!, ['start', '--head', '--port', '0', '--num-cpus', '1']);
    assert.equal(started.code, 0, started.stderr);
    pids.push(daemonOf(home!).pid);
    const attached = await run({}, 'local', { SHOAL_HOME: home! });
    assert.equal(attached.code, 0, attached.stderr);
    assertForwarded(attached.stdout, attached.stderr);
    assert.doesNotMatch(readFileSync(join(home!, 'daemon.log'), 'utf8'), /hello from a task/);

    const quiet = await run({ logToDriver: false }, 'local', { SHOAL_HOME: home! });
    assert.equal(quiet.code, 0, quiet.stderr);
    assert.doesNotMatch(quiet.stdout, /hello from a task/);
    await until(() => /\(hello pid=\d+\) hello from a task 1/.test(readFileSync(join(home!, 'daemon.log'), 'utf8')), 'the line in the daemon log');
  });
});

test('a task that ran on another node prints at the driver, naming that node', { timeout: 120_000 }, async () => {
  await withHomes(2, async ([homeA, homeB], pids) => {
    const { gpuNode } = await startHeadAndGpuNode(homeA!, homeB!, pids);
    const driver = await run({}, 'gpu', { SHOAL_HOME: homeA! });
    assert.equal(driver.code, 0, driver.stderr);
    assert.match(driver.stdout, new RegExp(`^\\(onGpu pid=\\d+ node=${gpuNode.nodeId}\\) printed on the gpu node ${gpuNode.nodeId}$`, 'm'));
  });
});
