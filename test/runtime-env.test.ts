// runtimeEnv: the environment variables and working directory of the workers that run a task
// (or an actor), per task and per init(), with an embedded node, through a daemon, and on another
// node of a cluster.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { remote } from 'shoal';
import { runProgram, startHeadAndGpuNode, withHomes } from './cluster-helpers.js';

const DRIVER = fileURLToPath(new URL('./fixtures/runtime-env-driver.ts', import.meta.url));
type Probe = { a: string | null; b: string | null; cwd: string; pid: number };
const run = (options: object, what: string, env: Record<string, string>, dir = '') =>
  runProgram(DRIVER, [JSON.stringify(options), what, dir, 'shoal-test-child'], { SHOAL_ADDRESS: '', ...env });

test('a task runs with its runtimeEnv (variables, working directory, require from there), over the node one; a default task does not', { timeout: 60_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'shoal-env-'));
  const nodeDir = mkdtempSync(join(tmpdir(), 'shoal-env-node-'));
  try {
    writeFileSync(join(dir, 'helper.cjs'), "module.exports = { value: 'from the working directory' };");
    await withHomes(1, async ([home]) => {
      const result = await run({ numCpus: 1, runtimeEnv: { env: { RUNTIME_ENV_A: 'node' }, cwd: nodeDir } }, 'local', { SHOAL_HOME: home! }, dir);
      assert.equal(result.code, 0, result.stderr);
      const seen = JSON.parse(result.stdout.trim().split('\n').at(-1)!) as { plain: Probe; own: Probe; again: Probe; required: string; missing: { name: string; message: string }; fromActor: string; workers: number[] };
      assert.deepEqual({ a: seen.plain.a, cwd: seen.plain.cwd }, { a: 'node', cwd: nodeDir }, "a plain task has the node's (init) runtimeEnv");
      assert.deepEqual({ a: seen.own.a, b: seen.own.b, cwd: seen.own.cwd }, { a: 'task', b: 'b', cwd: dir }, 'its own runtimeEnv over it');
      assert.notEqual(seen.own.pid, seen.plain.pid, 'on a worker started for it');
      assert.deepEqual({ a: seen.again.a, b: seen.again.b, pid: seen.again.pid }, { a: 'node', b: null, pid: seen.plain.pid }, 'the next plain task runs on a plain worker again');
      assert.equal(seen.required, 'from the working directory');
      assert.equal(seen.missing.name, 'RuntimeEnvError');
      assert.match(seen.missing.message, /^Task nowhere cannot run with its runtimeEnv: cwd \S+\/not-there is not a directory on node \S+\./);
      assert.equal(seen.fromActor, 'actor', 'an actor gets its runtimeEnv too');
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
    rmSync(nodeDir, { recursive: true, force: true });
  }
});

test('runtimeEnv is checked when the remote function is made', () => {
  const fn = () => 1;
  assert.throws(() => remote(fn, { runtimeEnv: { env: { SHOAL_NODE_SOCKET: '/x' } } }), /`runtimeEnv.env.SHOAL_NODE_SOCKET`: variables starting with SHOAL_ configure the worker itself and cannot be set/);
  assert.throws(() => remote(fn, { runtimeEnv: { cwd: 'relative/dir' } }), /Expected `runtimeEnv.cwd` to be an absolute path, got `"relative\/dir"`/);
  assert.throws(() => remote(fn, { runtimeEnv: { env: { A: 1 as unknown as string } } }), /Expected `runtimeEnv.env.A` to be a string, got `1`/);
  assert.throws(() => remote(fn, { runtimeEnv: { vars: {} } as never }), /Unknown runtimeEnv option `vars`/);
});

test("an attached program's init({ runtimeEnv }) reaches its tasks through a daemon and on another node", { timeout: 120_000 }, async () => {
  await withHomes(2, async ([homeA, homeB], pids) => {
    await startHeadAndGpuNode(homeA!, homeB!, pids);
    const result = await run({ runtimeEnv: { env: { RUNTIME_ENV_A: 'program' }, cwd: '/tmp' } }, 'gpu', { SHOAL_HOME: homeA! });
    assert.equal(result.code, 0, result.stderr);
    const { gpu } = JSON.parse(result.stdout.trim().split('\n').at(-1)!) as { gpu: Probe };
    assert.deepEqual({ a: gpu.a, cwd: gpu.cwd }, { a: 'program', cwd: '/tmp' }, 'the task on the gpu node had the attached program\'s runtimeEnv');
  });
});
