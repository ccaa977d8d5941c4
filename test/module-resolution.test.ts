// A task or an actor resolves imports and require() as the file that called remote() or actor()
// would: from a project directory outside this repository, as an ES module, as CommonJS, and
// through tsx, each run from another working directory (so nothing resolves from the cwd).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const SHOAL_PACKAGE = fileURLToPath(new URL('../packages/shoal', import.meta.url));
const TSX = import.meta.resolve('tsx');

let project: string;
let elsewhere: string;
let home: string;

// What every program runs: each probe is a task or actor method that loads something next to
// the program, or a package only the project has; it reports the value or the error's message.
const PROBES = `
const probes = {
  importRelative: remote(async () => (await import('./helper.mjs')).value),
  importBare: remote(async () => (await import('project-only')).default.value),
  actorImport: async () => {
    const Loader = actor(class Loader { async load() { return (await import('./helper.mjs')).value; } });
    const loader = new Loader();
    try { return await loader.load(); } finally { kill(loader); }
  },
  REQUIRE_PROBES
};
const seen = {};
for (const [name, probe] of Object.entries(probes)) {
  try { seen[name] = await probe(); } catch (error) { seen[name] = 'failed: ' + error.message.split('\\n')[0]; }
}
console.log(JSON.stringify(seen));
await shutdown();
`;

const REQUIRES = `requireRelative: remote(() => require('./helper.cjs').value),
  requireBare: remote(() => require('project-only').value),
  actorRequire: async () => {
    const Loader = actor(class Loader { load() { return require('./helper.cjs').value; } });
    const loader = new Loader();
    try { return await loader.load(); } finally { kill(loader); }
  },`;

const IMPORTS = "import { actor, init, kill, remote, shutdown } from 'shoal';\nawait init({ numCpus: 1, address: 'embedded' });\n";

before(() => {
  project = mkdtempSync(join(tmpdir(), 'shoal-project-'));
  elsewhere = mkdtempSync(join(tmpdir(), 'shoal-cwd-'));
  home = mkdtempSync(join(tmpdir(), 'shoal-home-'));
  mkdirSync(join(project, 'node_modules', 'project-only'), { recursive: true });
  symlinkSync(SHOAL_PACKAGE, join(project, 'node_modules', 'shoal'));
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'user-project', type: 'module' }));
  writeFileSync(join(project, 'node_modules', 'project-only', 'package.json'), JSON.stringify({ name: 'project-only', main: 'index.cjs' }));
  writeFileSync(join(project, 'node_modules', 'project-only', 'index.cjs'), "module.exports = { value: 'project-only' };\n");
  writeFileSync(join(project, 'helper.mjs'), "export const value = 'helper.mjs';\n");
  writeFileSync(join(project, 'helper.cjs'), "module.exports = { value: 'helper.cjs' };\n");
  writeFileSync(join(project, 'helper-ts.ts'), "export const value: string = 'helper-ts.ts';\n");
  writeFileSync(join(project, 'main.mjs'), IMPORTS + PROBES.replace('REQUIRE_PROBES', ''));
  // CommonJS: Shoal is ESM-only, so a CommonJS program imports it (Node 20 has no require(esm)).
  writeFileSync(
    join(project, 'main.cjs'),
    "(async () => {\nconst { actor, init, kill, remote, shutdown } = await import('shoal');\nawait init({ numCpus: 1, address: 'embedded' });\n" +
      PROBES.replace('REQUIRE_PROBES', REQUIRES) +
      '})();\n',
  );
  writeFileSync(
    join(project, 'main.ts'),
    IMPORTS + PROBES.replace('REQUIRE_PROBES', "importTypeScript: remote(async () => (await import('./helper-ts.ts')).value),"),
  );
});

after(() => {
  for (const dir of [project, elsewhere, home]) rmSync(dir, { recursive: true, force: true });
});

/** Runs `node ...args` from another directory; resolves with what the program printed last. */
function run(args: string[], env: Record<string, string> = {}): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...args, 'shoal-test-child'], {
      cwd: elsewhere,
      env: { ...process.env, SHOAL_ADDRESS: '', SHOAL_HOME: home, NODE_OPTIONS: '', ...env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk));
    child.once('error', reject);
    child.once('exit', (code) => {
      if (code !== 0) return reject(new Error(`${args.join(' ')} exited with ${code}: ${stderr}`));
      resolve(JSON.parse(stdout.trim().split('\n').at(-1)!) as Record<string, unknown>);
    });
  });
}

const FROM_PROJECT = { importRelative: 'helper.mjs', importBare: 'project-only', actorImport: 'helper.mjs' };

test('an ES module program: tasks and actors import next to it and from its node_modules', { timeout: 60_000 }, async () => {
  assert.deepEqual(await run([join(project, 'main.mjs')]), FROM_PROJECT);
});

test('a CommonJS program: import() and require() in tasks and actors resolve from it', { timeout: 60_000 }, async () => {
  assert.deepEqual(await run([join(project, 'main.cjs')]), {
    ...FROM_PROJECT,
    requireRelative: 'helper.cjs',
    requireBare: 'project-only',
    actorRequire: 'helper.cjs',
  });
});

test('a program run through tsx: the same; its workers load .ts files when tsx is in NODE_OPTIONS', { timeout: 60_000 }, async () => {
  const driverOnly = await run(['--import', TSX, join(project, 'main.ts')]);
  assert.deepEqual({ ...driverOnly, importTypeScript: undefined }, { ...FROM_PROJECT, importTypeScript: undefined });
  assert.match(String(driverOnly.importTypeScript), /^failed: .*Unknown file extension "\.ts"/, 'a worker is plain Node unless told otherwise');
  assert.deepEqual(await run([join(project, 'main.ts')], { NODE_OPTIONS: `--import ${TSX}` }), { ...FROM_PROJECT, importTypeScript: 'helper-ts.ts' });
});
