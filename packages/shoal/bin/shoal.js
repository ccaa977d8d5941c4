#!/usr/bin/env node
// The `shoal` command. It runs the built CLI (dist/cli.js); this file is there before any build,
// so npm links `node_modules/.bin/shoal` to it at install time (a bin whose target does not exist
// yet is not linked), and `npx shoal` finds it.
import { existsSync } from 'node:fs';

const cli = new URL('../dist/cli.js', import.meta.url);
if (!existsSync(cli)) {
  process.stderr.write('shoal: the CLI is not built yet (no dist/cli.js): run `npm run build` at the repository root first.\n');
  process.exit(1);
}
await import(cli.href);
