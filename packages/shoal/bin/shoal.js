#!/usr/bin/env node
// The `shoal` command. It runs the built CLI (dist/cli.js); this file is there before any build,
// so npm links `node_modules/.bin/shoal` to it at install time (a bin whose target does not exist
// yet is not linked), and `npx shoal` finds it.
try {
  await import('../dist/cli.js');
} catch (error) {
  if (error?.code !== 'ERR_MODULE_NOT_FOUND' || !String(error.message).includes('dist/cli.js')) throw error;
  process.stderr.write('shoal: the CLI is not built yet (no dist/cli.js): run `npm run build` at the repository root first.\n');
  process.exit(1);
}
