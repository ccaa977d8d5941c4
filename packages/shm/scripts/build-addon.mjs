// Builds the native addon as part of the workspace build (npm 11 blocks dependencies' install
// scripts, so nothing may rely on an install hook), with prebuildify: it compiles with node-gyp
// into native/build/Release and copies the binary to native/prebuilds/<platform>-<arch>/, which the published
// package ships and node-gyp-build loads (src/native.ts). N-API: one binary for every Node version.
// Uses the headers that ship with the running Node when they exist, so no download is ever needed.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(dirname(fileURLToPath(import.meta.url)));
const require = createRequire(import.meta.url);
const prebuildify = join(dirname(require.resolve('prebuildify/package.json')), 'bin.js');

const env = { ...process.env, npm_config_loglevel: 'warn' };
const prefix = dirname(dirname(process.execPath));
if (!env.npm_config_nodedir && existsSync(join(prefix, 'include', 'node', 'node_api.h'))) env.npm_config_nodedir = prefix;

const result = spawnSync(process.execPath, [prebuildify, '--napi', '--strip', '--tag-libc', '--name', 'shoal_shm'], { cwd: join(here, 'native'), stdio: 'inherit', env });
if (result.status !== 0) {
  console.error(
    '\n@shoal/shm: building the native addon failed. It needs python3, make and a C++17 compiler ' +
      '(Debian: apt-get install python3 make g++), and Node headers (shipped with Node under ' +
      `${join(prefix, 'include', 'node')}, or set npm_config_nodedir).`,
  );
  process.exit(result.status ?? 1);
}
