// Rewrites a package's built entry points (dist/index.js, and any other file its `exports` name)
// as bundles of the package's own modules: Node 20's ES module loader pays per file (open, read,
// compile, link), and every Shoal process loads each package's ~15-25 files before it can work.
// Entries share one chunk, so a class (an error, ObjectRef) still has exactly one copy however it
// is imported. Dependencies (msgpackr, nanoid, ...) and other @shoal packages stay imports, as
// npm installs them. The source maps chain to src/*.ts through tsc's maps.
//
//   node ../../scripts/bundle-dist.mjs          (a package's build, after tsc; run in the package)
//
// The per-file modules tsc wrote stay in dist (their .d.ts describe the API); nothing imports
// them once the entries are bundles. Without esbuild (a build without dev dependencies) the entries
// stay as tsc wrote them: correct, only slower to load.
import { readFileSync, readdirSync, rmSync } from 'node:fs';
import { relative } from 'node:path';
import { join } from 'node:path';

const packageDir = process.cwd();
const manifest = JSON.parse(readFileSync(join(packageDir, 'package.json'), 'utf8'));
const entries = Object.values(manifest.exports).map((target) => join(packageDir, typeof target === 'string' ? target : target.default));

let esbuild;
try {
  esbuild = await import('esbuild');
} catch {
  process.stderr.write(`bundle-dist: esbuild is not installed; ${manifest.name}'s entries stay unbundled\n`);
  process.exit(0);
}
const dist = join(packageDir, 'dist');
// A previous build's chunk (its name is a hash of its content) would stay beside the new one.
for (const name of readdirSync(dist)) if (name.startsWith('bundle-')) rmSync(join(dist, name));
await esbuild.build({
  entryPoints: entries,
  outdir: dist,
  outbase: dist,
  allowOverwrite: true,
  bundle: true,
  splitting: true,
  chunkNames: 'bundle-[hash]',
  packages: 'external',
  format: 'esm',
  platform: 'node',
  target: 'node20',
  sourcemap: true,
  // Error classes name themselves after their constructor; a bundle must not rename them.
  keepNames: true,
  logLevel: 'warning',
});

// esbuild keeps `export * from 'other-package'` only in an entry's own module: one in a module
// the entries share (moved to a chunk) exports nothing from them. Say so rather than ship that.
for (const name of readdirSync(dist)) {
  if (!name.startsWith('bundle-') || !name.endsWith('.js')) continue;
  const star = /^export \* from "([^"]+)";$/m.exec(readFileSync(join(dist, name), 'utf8'));
  if (star) {
    process.stderr.write(
      `bundle-dist: ${manifest.name}: a module shared by its entries re-exports \`${star[1]}\` with \`export *\`, which the bundle loses; ` +
        `re-export it from each entry module itself (${relative(packageDir, join(dist, name))})\n`,
    );
    process.exit(1);
  }
}
