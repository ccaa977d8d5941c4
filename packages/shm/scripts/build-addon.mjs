// Builds the native addon with node-gyp as part of the workspace build (npm 11 blocks dependency
// install scripts, so nothing may rely on an install hook). Uses the headers that ship with the
// running Node when they exist, so no download is ever needed.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(dirname(fileURLToPath(import.meta.url)));
const require = createRequire(import.meta.url);
const gyp = require.resolve('node-gyp/bin/node-gyp.js');

const args = [gyp, 'rebuild', '--release', '--loglevel=warn'];
const prefix = dirname(dirname(process.execPath));
if (existsSync(join(prefix, 'include', 'node', 'node_api.h'))) args.push(`--nodedir=${prefix}`);

const result = spawnSync(process.execPath, args, { cwd: here, stdio: 'inherit' });
if (result.status !== 0) {
  console.error(
    '\n@shoal/shm: building the native addon failed. It needs python3, make and a C++17 compiler ' +
      '(Debian: apt-get install python3 make g++), and Node headers (shipped with Node under ' +
      `${join(prefix, 'include', 'node')}, or set npm_config_nodedir).`,
  );
  process.exit(result.status ?? 1);
}
