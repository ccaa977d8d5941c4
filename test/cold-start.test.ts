// Start-up and shut-down of an embedded session with workers that are slow to start: init() and
// the first task wait for the first worker only, and shutdown() ends the workers still starting
// (they have no connection to be asked on) without leaving a process or a session directory.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { remote, shutdown, type InitOptions, type ShoalSession } from 'shoal';
import { cleanUp, isAlive, markerDirectory, start, until, workerPids } from './runtime-helpers.js';

const HOLD = fileURLToPath(new URL('./fixtures/held-worker-start.cjs', import.meta.url));

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
