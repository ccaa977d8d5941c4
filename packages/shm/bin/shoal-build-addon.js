#!/usr/bin/env node
// `node node_modules/@shoal/shm/bin/shoal-build-addon.js` (`npx shoal-build-addon` where npm linked it): builds @shoal/shm's native addon from source, for a platform the package
// has no prebuilt binary for (it ships linux-x64 glibc). Needs python3, make, a C++17 compiler and
// node-gyp: the one installed with the project if any, else node-gyp@11 from the npm registry.
// The addon lands in native/build/Release, which the package loads before any prebuilt one.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const native = join(dirname(dirname(fileURLToPath(import.meta.url))), 'native');
const require = createRequire(import.meta.url);

let command = [process.execPath];
try {
  command.push(require.resolve('node-gyp/bin/node-gyp.js'));
} catch {
  command = [process.platform === 'win32' ? 'npm.cmd' : 'npm', 'exec', '--yes', '--package=node-gyp@11', '--', 'node-gyp'];
}
const args = ['rebuild', '--release'];
const prefix = dirname(dirname(process.execPath));
if (existsSync(join(prefix, 'include', 'node', 'node_api.h'))) args.push(`--nodedir=${prefix}`);

console.log(`@shoal/shm: building the native addon in ${native}`);
const result = spawnSync(command[0], [...command.slice(1), ...args], { cwd: native, stdio: 'inherit' });
if (result.status !== 0) {
  console.error(
    '\n@shoal/shm: the build failed (see above). It needs python3, make and a C++17 compiler ' +
      '(Debian: apt-get install python3 make g++; Alpine: apk add python3 make g++).',
  );
  process.exit(result.status ?? 1);
}
console.log('@shoal/shm: built native/build/Release/shoal_shm.node; it is used from now on.');
