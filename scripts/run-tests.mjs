// Runs every test (unit tests beside the code, integration tests in test/) with Node's test
// runner, then fails the run if anything was left behind: a /dev/shm/shoal-* directory, a
// process marked `shoal-test-child`, or a daemon or worker process of this checkout.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const only = process.argv.slice(2);

function find(directory, found = []) {
  for (const name of readdirSync(directory)) {
    if (name === 'node_modules' || name === 'dist' || name.startsWith('.')) continue;
    const path = join(directory, name);
    if (statSync(path).isDirectory()) find(path, found);
    else if (name.endsWith('.test.ts')) found.push(relative(root, path));
  }
  return found;
}

const files = [...find(join(root, 'packages')), ...find(join(root, 'test'))]
  .filter((file) => only.length === 0 || only.some((pattern) => file.includes(pattern)))
  .sort();
if (files.length === 0) {
  console.error(`No test files match ${only.join(' ')}`);
  process.exit(2);
}

// Daemons and workers run these files of this checkout: other checkouts' (other engineers on
// the machine, other branches) have other paths and are not this run's leftovers.
const entries = ['packages/runtime/dist/cluster/daemon/daemon.js', 'packages/runtime/dist/workers/worker-main.js'].map((path) => join(root, path));

/** Live (not zombie) processes running a daemon or worker entry of this checkout: pid → command line. */
function entryProcesses() {
  const found = new Map();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const argv = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0');
      if (!argv.some((arg) => entries.includes(arg))) continue;
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      if (stat[stat.lastIndexOf(')') + 2] !== 'Z') found.set(Number(name), argv.join(' ').trim());
    } catch {
      // Exited while we looked.
    }
  }
  return found;
}

// Whatever ran before (a daemon someone started by hand from this checkout) is not the tests'.
const entriesBefore = entryProcesses();
const shmBefore = new Set(readdirSync('/dev/shm').filter((name) => name.startsWith('shoal-')));
// Test files at once: one by default. SHOAL_TEST_CONCURRENCY=2 takes 7.5 min instead of 10.8 on
// 2 cores, but a loaded machine then starves the in-process clusters' heartbeats (1.5 s in
// test/support/start-cluster.ts): a node dropped mid-transfer fails its spilled tasks.
const concurrency = Number(process.env.SHOAL_TEST_CONCURRENCY ?? 1);
const home = mkdtempSync(join(tmpdir(), 'shoal-test-home-'));
const result = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--expose-gc', '--test', `--test-concurrency=${concurrency}`, '--test-reporter=spec', ...files],
  // A SHOAL_HOME of their own: a daemon someone runs on this machine (`shoal start`, found through
  // ~/.shoal) would otherwise be where every test's init() attaches.
  { cwd: root, stdio: 'inherit', env: { ...process.env, SHOAL_TEST: '1', SHOAL_HOME: home } },
);
rmSync(home, { recursive: true, force: true });

const leaked = readdirSync('/dev/shm').filter((name) => name.startsWith('shoal-') && !shmBefore.has(name));
const strays = spawnSync('pgrep', ['-f', 'shoal-test-child'], { encoding: 'utf8' }).stdout.trim();
const strayEntries = [...entryProcesses()].filter(([pid]) => !entriesBefore.has(pid));
let status = result.status ?? 1;
if (leaked.length > 0) {
  console.error(`\nLeft in /dev/shm after the tests: ${leaked.join(', ')}`);
  status = status || 1;
}
if (strays) {
  console.error(`\nProcesses left running after the tests: ${strays.replace(/\n/g, ', ')}`);
  status = status || 1;
}
if (strayEntries.length > 0) {
  console.error(`\nDaemons or workers of this checkout left running after the tests:\n${strayEntries.map(([pid, command]) => `  ${pid} ${command}`).join('\n')}`);
  status = status || 1;
}
process.exit(status);
