#!/usr/bin/env node
// The Debian packages the tests need, installed when missing, so `npm test` stays one command on a
// fresh machine: chromium (the dashboard test drives it with playwright-core). As root it runs
// apt-get (updating the package lists first when the install cannot find the package); as anyone
// else it says what to run and fails.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

/** Binary → the Debian package that provides it. */
const NEEDED = { '/usr/bin/chromium': 'chromium' };

const missing = Object.entries(NEEDED).filter(([binary]) => !existsSync(binary)).map(([, pkg]) => pkg);
if (missing.length === 0) process.exit(0);

const apt = (args) => spawnSync('apt-get', args, { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } }).status === 0;
if (process.getuid?.() !== 0) {
  console.error(`The tests need ${missing.join(', ')}: run \`sudo apt-get install -y ${missing.join(' ')}\`, then npm test again.`);
  process.exit(1);
}
console.error(`Installing ${missing.join(', ')} for the tests (apt-get)...`);
const install = ['install', '-y', '--no-install-recommends', ...missing];
if (!apt(install) && !(apt(['update']) && apt(install))) {
  console.error(`apt-get could not install ${missing.join(', ')}; install it by hand and run npm test again.`);
  process.exit(1);
}
