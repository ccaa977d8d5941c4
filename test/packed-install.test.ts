// Shoal as a user gets it from npm: every package packed (`npm pack`), the tarballs installed into
// a fresh project outside the repository with install scripts blocked (`--ignore-scripts`, as
// npm 11's allowScripts policy, pnpm's default and strict set-ups do), and there: the quickstart
// (put a 64 MB array, sum it in a task), the published types checked by a consumer with
// `skipLibCheck: false`, and `npx shoal start --head / status / stop`. Needs only the npm
// registry (the packages' dependencies; a warm cache after `npm ci` serves them).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const root = fileURLToPath(new URL('..', import.meta.url));
const exec = promisify(execFile);
const PACKAGES = ['@shoal/shm', '@shoal/protocol', '@shoal/store', '@shoal/runtime', 'shoal'];

let work: string; // holds the tarballs and the project
let project: string;
let tarballs: { name: string; filename: string; files: { path: string }[] }[];
/** Processes this test started in the project (and the daemon): a session directory they own must be gone at the end. */
const started = new Set<number>();

/** Runs a command in the project, with its own SHOAL_HOME and no cluster of the caller's; rejects (with its output) when it fails. */
function inProject(file: string, args: string[], timeout = 120_000): Promise<{ stdout: string; stderr: string }> {
  const env: NodeJS.ProcessEnv = { ...process.env, SHOAL_HOME: join(project, '.shoal') };
  for (const name of ['SHOAL_ADDRESS', 'SHOAL_TOKEN', 'SHOAL_TEST', 'NODE_OPTIONS']) delete env[name];
  return new Promise((resolve, reject) => {
    const child = execFile(file, args, { cwd: project, env, timeout, maxBuffer: 16 << 20 }, (error, stdout, stderr) => {
      if (error) reject(Object.assign(error, { stdout, stderr }));
      else resolve({ stdout, stderr });
    });
    if (child.pid !== undefined) started.add(child.pid);
  });
}

/** Session directories in /dev/shm whose owner is a process this test started. */
function sessionsLeft(): string[] {
  return readdirSync('/dev/shm').filter((name) => {
    if (!name.startsWith('shoal-')) return false;
    try {
      return started.has((JSON.parse(readFileSync(join('/dev/shm', name, 'owner.json'), 'utf8')) as { pid: number }).pid);
    } catch {
      return false; // Not a session, or another one going away.
    }
  });
}

/** Live processes started from the project's node_modules (its daemon and workers). */
function projectProcesses(): { pid: string; command: string }[] {
  const found: { pid: string; command: string }[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const argv = readFileSync(`/proc/${name}/cmdline`, 'utf8');
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      if (argv.includes(project) && stat[stat.lastIndexOf(')') + 2] !== 'Z') found.push({ pid: name, command: argv.replaceAll('\0', ' ') });
    } catch {
      // Exited while we looked.
    }
  }
  return found;
}

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'shoal-packed-'));
  const packs = join(work, 'packs');
  mkdirSync(packs);
  const { stdout } = await exec('npm', ['pack', '--json', '--workspace', 'packages', '--pack-destination', packs], { cwd: root, maxBuffer: 16 << 20 });
  tarballs = JSON.parse(stdout) as typeof tarballs;
  project = join(work, 'app');
  mkdirSync(project);
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true, type: 'module' }));
  const files = tarballs.map((pack) => join(packs, pack.filename));
  await exec('npm', ['install', '--ignore-scripts', '--prefer-offline', '--no-audit', '--no-fund', ...files], { cwd: project, maxBuffer: 16 << 20 });
});

after(async () => {
  if (project && existsSync(join(project, '.shoal'))) await inProject('npx', ['--no-install', 'shoal', 'stop']).catch(() => undefined);
  const left = project ? projectProcesses() : [];
  // Whatever survived is killed first (and its sessions swept), then reported.
  for (const line of left) {
    const pid = Number(line.pid);
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Gone meanwhile.
    }
  }
  const shmLeft = sessionsLeft();
  for (const name of shmLeft) rmSync(join('/dev/shm', name), { recursive: true, force: true });
  if (work) rmSync(work, { recursive: true, force: true });
  assert.deepEqual(left.map((process) => process.command), [], 'nothing of the project runs after shoal stop');
  assert.deepEqual(shmLeft, [], 'nothing of the project is left in /dev/shm');
});

test('every package packs as a publishable one: not private, licensed, types first, no install step', () => {
  assert.deepEqual(tarballs.map((pack) => pack.name).sort(), [...PACKAGES].sort());
  for (const pack of tarballs) {
    const manifest = JSON.parse(readFileSync(join(project, 'node_modules', pack.name, 'package.json'), 'utf8')) as Record<string, unknown>;
    assert.equal(manifest.private, undefined, `${pack.name} is publishable`);
    assert.equal(manifest.license, 'MIT', `${pack.name} has a license`);
    assert.ok(pack.files.some((file) => file.path === 'LICENSE'), `${pack.name} ships its LICENSE`);
    for (const [entry, conditions] of Object.entries(manifest.exports as Record<string, Record<string, string>>)) {
      assert.equal(Object.keys(conditions)[0], 'types', `${pack.name} export ${entry} lists types first`);
    }
    const scripts = (manifest.scripts ?? {}) as Record<string, string>;
    for (const hook of ['preinstall', 'install', 'postinstall']) assert.equal(scripts[hook], undefined, `${pack.name} has no ${hook} script`);
    // A binding.gyp at a package's root makes npm run `node-gyp rebuild` as an implicit install script.
    assert.ok(!pack.files.some((file) => file.path === 'binding.gyp'), `${pack.name} has no root binding.gyp`);
    assert.ok(!pack.files.some((file) => /\.test\.|\.test-d\./.test(file.path)), `${pack.name} ships no tests`);
  }
  assert.ok(tarballs.find((pack) => pack.name === 'shoal')!.files.some((file) => file.path === 'README.md'), 'shoal has a README for its npm page');
  const shm = tarballs.find((pack) => pack.name === '@shoal/shm')!;
  assert.ok(shm.files.some((file) => file.path === 'native/prebuilds/linux-x64/shoal_shm.glibc.node'), 'the addon ships prebuilt for linux-x64 glibc');
  assert.ok(shm.files.some((file) => file.path === 'native/binding.gyp'), 'and its sources for a source build');
});

test('the quickstart runs from the installed packages, on the prebuilt addon', async () => {
  writeFileSync(
    join(project, 'quickstart.mjs'),
    `import { remote, store, shutdown } from 'shoal';
const values = Float64Array.from({ length: 8 << 20 }, (_, i) => i % 1000); // 64 MB
const ref = store.put(values);
const sum = remote((a) => { let s = 0; for (let i = 0; i < a.length; i++) s += a[i]; return s; });
console.log(JSON.stringify({ total: await sum(ref) }));
await shutdown();
`,
  );
  const { stdout } = await inProject(process.execPath, ['quickstart.mjs']);
  const { total } = JSON.parse(stdout) as { total: number };
  // 8,388 whole runs of 0..999, then 0..607.
  assert.equal(total, 8_388 * 499_500 + (607 * 608) / 2);
  assert.ok(!existsSync(join(project, 'node_modules/@shoal/shm/native/build')), 'nothing was compiled: the prebuilt addon ran');
});

test('the published types check in a consumer with skipLibCheck: false', async () => {
  writeFileSync(
    join(project, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, skipLibCheck: false, noEmit: true },
      include: ['typed.ts'],
    }),
  );
  writeFileSync(
    join(project, 'typed.ts'),
    `import { actor, init, remote, shutdown, store, type ObjectRef } from 'shoal';
await init({ numCpus: 1 });
const ref: ObjectRef<Float64Array> = store.put(new Float64Array(4));
const length = remote((a: Float64Array) => a.length);
const n: number = await length(ref);
const Counter = actor(class { count = 0; add(by: number) { return (this.count += by); } });
const counter = new Counter();
const total: number = await counter.add(n);
console.log(total);
await shutdown();
`,
  );
  const tsc = join(root, 'node_modules/typescript/bin/tsc');
  // tsc exits non-zero on any error (printed on stdout); a crash shows on stderr.
  try {
    await inProject(process.execPath, [tsc, '-p', '.']);
  } catch (error) {
    const failed = error as { stdout: string; stderr: string };
    assert.fail(`tsc failed on the published types: ${failed.stdout}${failed.stderr}`);
  }
});

test('npx shoal starts a head, reports its status and stops it', async () => {
  const shoal = (...args: string[]) => inProject('npx', ['--no-install', 'shoal', ...args]);
  assert.match((await shoal('--help')).stdout, /^Usage: shoal <command>/);
  const head = await shoal('start', '--head', '--port', '0');
  assert.match(head.stdout, /head address: +ws:\/\/127\.0\.0\.1:\d+/);
  started.add((JSON.parse(readFileSync(join(project, '.shoal/daemon.json'), 'utf8')) as { pid: number }).pid);
  const status = await shoal('status');
  assert.match(status.stdout, /1 node\(s\)/);
  assert.match((await shoal('stop')).stdout, /Stopped the Shoal daemon/);
  assert.deepEqual(projectProcesses(), [], 'the daemon and its workers are gone');
  assert.deepEqual(sessionsLeft(), [], 'and so is its session directory');
});

test('without a binary for the platform, loading says which platform and how to build one, and that build works', async () => {
  const prebuilds = join(project, 'node_modules/@shoal/shm/native/prebuilds');
  renameSync(prebuilds, `${prebuilds}.away`);
  const load = "import('@shoal/shm').then((shm) => console.log(typeof shm.mapSegment))";
  try {
    const result = await inProject(process.execPath, ['-e', load]).catch((error: { stderr: string }) => error);
    assert.match(result.stderr, /@shoal\/shm: no native addon for linux-x64 \(glibc, Node \d+\.\d+\.\d+\)/);
    // The source build the message names (node-gyp@11 comes from the registry: the project has none).
    const command = /run `node (\S+shoal-build-addon\.js)`/.exec(result.stderr);
    assert.ok(command, `the message names the build command: ${result.stderr}`);
    assert.ok(command[1]!.startsWith(join(project, 'node_modules/@shoal/shm/')), 'by its path in the project');
    await inProject(process.execPath, [command[1]!], 300_000);
    assert.ok(existsSync(join(project, 'node_modules/@shoal/shm/native/build/Release/shoal_shm.node')));
    assert.equal((await inProject(process.execPath, ['-e', load])).stdout.trim(), 'function');
    // A binary the system will not load (an older glibc, a damaged file) is told apart from none.
    writeFileSync(join(project, 'node_modules/@shoal/shm/native/build/Release/shoal_shm.node'), 'not an ELF file');
    const broken = await inProject(process.execPath, ['-e', load]).catch((error: { stderr: string }) => error);
    assert.match(broken.stderr, /@shoal\/shm: the native addon for linux-x64 \(glibc, Node [\d.]+\) could not be loaded: .*(invalid ELF header|too short)/);
  } finally {
    renameSync(`${prebuilds}.away`, prebuilds);
  }
});
