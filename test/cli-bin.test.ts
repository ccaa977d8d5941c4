// The `shoal` command as the README uses it: after `npm ci && npm run build`, `npx shoal` runs the
// CLI (npm links node_modules/.bin/shoal to packages/shoal/bin/shoal.js at install time).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const root = fileURLToPath(new URL('..', import.meta.url));

test('npx shoal --help prints the usage, and --version the package version', async () => {
  assert.ok(existsSync(`${root}node_modules/.bin/shoal`), 'npm linked the shoal bin at install time');
  const run = (args: string[]) => promisify(execFile)('npx', ['--no-install', 'shoal', ...args], { cwd: root });
  const help = await run(['--help']);
  assert.match(help.stdout, /^Usage: shoal <command> \[options\]/);
  assert.match(help.stdout, /start --head/);
  const { version } = JSON.parse(readFileSync(`${root}packages/shoal/package.json`, 'utf8')) as { version: string };
  assert.match((await run(['--version'])).stdout, new RegExp(`^shoal ${version.replace(/\./g, '\\.')} `));
});
