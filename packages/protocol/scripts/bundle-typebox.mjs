// Replaces dist/typebox.js (tsc's re-export of TypeBox) with one file holding the part of TypeBox
// it re-exports (see src/typebox.ts for why). Run by `npm run build` after tsc. Without esbuild (a
// build without dev dependencies) the re-export stays as it is: correct, only slower to load.
import { fileURLToPath } from 'node:url';

const outfile = fileURLToPath(new URL('../dist/typebox.js', import.meta.url));
let esbuild;
try {
  esbuild = await import('esbuild');
} catch {
  process.stderr.write('bundle-typebox: esbuild is not installed; dist/typebox.js re-exports @sinclair/typebox unbundled\n');
  process.exit(0);
}
await esbuild.build({
  entryPoints: [outfile],
  outfile,
  allowOverwrite: true,
  bundle: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  minify: true,
  legalComments: 'eof',
  logLevel: 'warning',
});
