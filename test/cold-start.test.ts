// Start-up and shut-down of an embedded session with workers that are slow to start: init() and
// the first task wait for the first worker only, and shutdown() ends the workers still starting
// (they have no connection to be asked on) without leaving a process or a session directory.
// And what an embedded program and its workers load: not the cluster's modules.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { remote, shutdown, type InitOptions, type ShoalSession } from 'shoal';
import { cleanUp, isAlive, markerDirectory, start, until, workerPids } from './runtime-helpers.js';

const HOLD = fileURLToPath(new URL('./fixtures/held-worker-start.cjs', import.meta.url));
const MODULE_LOG = fileURLToPath(new URL('./fixtures/module-log.mjs', import.meta.url));

afterEach(cleanUp);

/**
 * Starts a session whose workers but the first wait at `gate` (see held-worker-start.cjs) until
 * a file `open` is written there. Workers take the environment of the moment they are spawned,
 * which is during init(): it is set back right after.
 */
async function startHeld(options: InitOptions): Promise<{ session: ShoalSession; gate: string }> {
  const gate = markerDirectory();
  const saved = { NODE_OPTIONS: process.env.NODE_OPTIONS, SHOAL_TEST_START_GATE: process.env.SHOAL_TEST_START_GATE };
  process.env.NODE_OPTIONS = `${saved.NODE_OPTIONS ?? ''} --require ${HOLD}`.trim();
  process.env.SHOAL_TEST_START_GATE = gate;
  try {
    return { session: await start(options), gate };
  } finally {
    for (const [name, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  }
}

const held = (gate: string) => readdirSync(gate).filter((name) => name.startsWith('held-')).length;

// The held workers wait up to 60 s: an init() that waited for every worker would outlast the timeout.
test('init() and the first task do not wait for every worker to start', { timeout: 30_000 }, async () => {
  const { session, gate } = await startHeld({ numCpus: 3 });
  const pids = workerPids(session);
  assert.equal(pids.length, 3, 'every worker was started at init()');
  const ranIn = await remote(() => process.pid)();
  assert.ok(pids.includes(ranIn), `the task ran in a worker (${ranIn} in ${pids.join(', ')})`);
  await until(() => held(gate) === 2, 'the two other workers to be held at the gate');
  assert.deepEqual(session.workerPids().sort(), [...pids].sort(), 'the held workers are still starting');

  // Once let through, they connect and take tasks too.
  writeFileSync(join(gate, 'open'), '');
  const ran = new Set<number>();
  const block = remote(async () => {
    await new Promise((resolve) => setTimeout(resolve, 300));
    return process.pid;
  });
  await until(async () => {
    for (const pid of await Promise.all([block(), block(), block()])) ran.add(pid);
    return ran.size === 3;
  }, 'tasks to run on all three workers');
});

test('shutdown() ends workers that are still starting: no process and no session directory is left', { timeout: 30_000 }, async () => {
  const { session, gate } = await startHeld({ numCpus: 3 });
  const pids = workerPids(session);
  assert.equal(await remote((x: number) => x + 1)(1), 2);
  await until(() => held(gate) === 2, 'the two other workers to be held at the gate');
  await shutdown();
  assert.ok(pids.every((pid) => !isAlive(pid)), 'every worker is gone when shutdown() resolves');
  assert.ok(!existsSync(session.directory), 'the session directory is removed');
});

/**
 * Runs `program` (an ES module's text, importing 'shoal') in a fresh node process and returns
 * the modules each of its processes (the program's and its workers') loaded: pid → URLs.
 */
async function modulesLoadedBy(program: string): Promise<Map<number, string[]>> {
  const log = join(markerDirectory(), 'modules.log');
  const child = spawn(process.execPath, ['--input-type=module', '-e', program, 'shoal-test-child'], {
    cwd: fileURLToPath(new URL('.', import.meta.url)),
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, SHOAL_ADDRESS: 'embedded', SHOAL_TEST_MODULE_LOG: log, NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import ${MODULE_LOG}`.trim() },
  });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  const [code] = (await once(child, 'exit')) as [number | null];
  clearTimeout(timer);
  assert.equal(code, 0, `the program exited with code ${code}; printed: ${out}`);
  const loaded = new Map<number, string[]>();
  for (const line of readFileSync(log, 'utf8').trim().split('\n')) {
    const [pid, url] = line.split(' ') as [string, string];
    loaded.set(Number(pid), [...(loaded.get(Number(pid)) ?? []), url]);
  }
  return loaded;
}

// The head, the cluster agent, the daemon and ws are ~50 modules an embedded program never uses,
// and a worker compiles the functions it is sent without the parser of remote()'s closure check;
// Node's loader pays for each file, at every start.
test('an embedded program and its workers load no module of the cluster, nor ws; its workers no parser', { timeout: 30_000 }, async () => {
  const loaded = await modulesLoadedBy(`
    import { init, remote, shutdown, store } from 'shoal';
    await init({ numCpus: 1 });
    const ref = store.put(new Float64Array(100_000).fill(2));
    console.log(await remote((a) => a[0] + a.length)(ref));
    await shutdown();
  `);
  const parser = (url: string) => /\/node_modules\/(acorn|periscopic)\//.test(url);
  // The runtime's dist is bundled (scripts/bundle-dist.mjs): there, cluster code that leaked into
  // the main entry's chunks shows as ws, which the head and the cluster agent import.
  const cluster = (url: string) => (/\/runtime\/dist\/cluster\//.test(url) && !url.endsWith('/cluster/daemon/home.js')) || /\/node_modules\/ws\//.test(url);
  assert.equal(loaded.size, 2, `the program and its one worker loaded modules (${[...loaded.keys()].join(', ')})`);
  for (const [pid, urls] of loaded) {
    assert.ok(urls.some((url) => url.includes('/packages/')), `process ${pid} loaded Shoal`);
    assert.deepEqual(urls.filter(cluster), [], `process ${pid} loaded the cluster's modules`);
  }
  const [driver, worker] = [...loaded.values()] as [string[], string[]];
  assert.ok(driver.some(parser), 'the program checks its remote functions with the parser');
  assert.deepEqual(worker.filter(parser), [], 'the worker loaded the parser');
});
