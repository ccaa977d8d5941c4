// Runs every test (unit tests beside the code, integration tests in test/) with Node's test
// runner, then fails the run if anything was left behind: a /dev/shm/shoal-* directory or a
// process started by the tests.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
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

const shmBefore = new Set(readdirSync('/dev/shm').filter((name) => name.startsWith('shoal-')));
const result = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--expose-gc', '--test', '--test-reporter=spec', ...files],
  { cwd: root, stdio: 'inherit', env: { ...process.env, SHOAL_TEST: '1' } },
);

const leaked = readdirSync('/dev/shm').filter((name) => name.startsWith('shoal-') && !shmBefore.has(name));
const strays = spawnSync('pgrep', ['-f', 'shoal-test-child'], { encoding: 'utf8' }).stdout.trim();
let status = result.status ?? 1;
if (leaked.length > 0) {
  console.error(`\nLeft in /dev/shm after the tests: ${leaked.join(', ')}`);
  status = status || 1;
}
if (strays) {
  console.error(`\nProcesses left running after the tests: ${strays.replace(/\n/g, ', ')}`);
  status = status || 1;
}
process.exit(status);
