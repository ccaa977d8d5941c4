// Type-aware lint for what the compiler does not catch (promises nobody awaits or handles), and
// the layers of the code: which package and which folder may import what. The import rules below
// are the documentation of the layers (docs/internals.md has the map in prose).
import tseslint from 'typescript-eslint';

const runtime = 'packages/runtime/src';

/** Relative imports that leave a folder of packages/runtime/src for one of `folders`. */
const into = (folders, message) => ({ regex: `^(\\.\\./)+(${folders.join('|')})(/|\\.js$)`, message });

/** One `no-restricted-imports` rule: module names and patterns that may not be imported. */
const restrict = ({ paths = [], patterns = [] }) => ({
  '@typescript-eslint/no-restricted-imports': ['error', { paths, patterns }],
});

const noShm = { name: '@shoal/shm', message: 'Only @shoal/store touches segment files and the addon: use the store API.' };
const noStore = { name: '@shoal/store', message: 'Only node/ and client/ use the store (runtime/src/node owns this machine\'s store).' };
const noStoreValues = { ...noStore, allowTypeImports: true };
const io = ['node:net', 'node:fs', 'node:fs/promises', 'node:child_process', 'node:http', 'node:dgram', 'ws'].map((name) => ({
  name,
  message: 'scheduling/ does no I/O: it decides, and node/ or workers/ act.',
}));

export default tseslint.config(
  { ignores: ['**/dist/**', '**/node_modules/**', '**/build/**', '.scratch/**', 'scripts/**', 'eslint.config.js'] },
  {
    files: ['**/*.ts'],
    languageOptions: {
      parser: tseslint.parser,
      parserOptions: { project: './tsconfig.test.json', tsconfigRootDir: import.meta.dirname },
    },
    plugins: { '@typescript-eslint': tseslint.plugin },
    rules: {
      '@typescript-eslint/no-floating-promises': [
        'error',
        // node:test's test() and describe() return promises the runner itself tracks.
        { allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['test', 'describe', 'it', 'suite'] }] },
      ],
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: false }],
    },
  },
  // ---- packages: shm ← protocol ← store ← runtime ← shoal ----------------------------------
  {
    files: ['packages/shm/src/**/*.ts'],
    rules: restrict({ patterns: [{ group: ['@shoal/*'], message: '@shoal/shm depends on no other package.' }] }),
  },
  {
    files: ['packages/protocol/src/**/*.ts'],
    rules: restrict({ patterns: [{ group: ['@shoal/shm', '@shoal/store', '@shoal/runtime', 'shoal'], message: '@shoal/protocol depends on no other package.' }] }),
  },
  {
    files: ['packages/store/src/**/*.ts'],
    rules: restrict({ patterns: [{ group: ['@shoal/runtime', 'shoal'], message: 'The store knows nothing of the runtime.' }] }),
  },
  {
    files: ['packages/shoal/src/**/*.ts'],
    rules: restrict({
      paths: [noShm],
      patterns: [{ group: ['@shoal/store', '@shoal/protocol'], message: 'The public package is a face over @shoal/runtime: import from there.' }],
    }),
  },
  // ---- packages/runtime/src folders ---------------------------------------------------------
  {
    // Default for the runtime: never the addon; the store's types only (its instance belongs to node/).
    files: [`${runtime}/**/*.ts`],
    rules: restrict({ paths: [noShm, noStoreValues] }),
  },
  {
    // node/ and client/ use the store; so does the worker process's entry, for one thing: asking
    // the kernel to kill the worker with its node (the addon call lives behind the store).
    files: [`${runtime}/node/**/*.ts`, `${runtime}/client/**/*.ts`, `${runtime}/workers/worker-main.ts`],
    rules: restrict({ paths: [noShm] }),
  },
  {
    files: [`${runtime}/transport/**/*.ts`],
    rules: restrict({
      paths: [noShm, noStore],
      patterns: [{ regex: '^\\.\\./', message: 'transport/ moves bytes and messages: it imports only @shoal/protocol (and ws), nothing of the runtime.' }],
    }),
  },
  {
    files: [`${runtime}/scheduling/**/*.ts`],
    rules: restrict({
      paths: [noShm, noStore, ...io],
      patterns: [
        into(['node', 'workers', 'client', 'transport', 'cluster'], 'scheduling/ is state and pure policies: it reaches workers and objects only through the interfaces it declares.'),
      ],
    }),
  },
  {
    files: [`${runtime}/scheduling/policies/**/*.ts`],
    rules: restrict({
      paths: [noShm, noStore, ...io],
      patterns: [
        into(['node', 'workers', 'client', 'transport', 'cluster', 'api'], 'A policy is a pure function over a snapshot.'),
        { regex: '^\\.\\./(local-scheduler|worker-leases)\\.js$', message: 'A policy is a pure function over a snapshot: it does not reach the scheduler.' },
      ],
    }),
  },
  {
    files: [`${runtime}/api/**/*.ts`],
    rules: restrict({
      paths: [noShm, noStoreValues],
      patterns: [into(['node', 'workers', 'transport', 'cluster', 'scheduling'], 'api/ is what user code calls; it reaches a node only through the Runtime interface.')],
    }),
  },
  {
    files: [`${runtime}/cluster/head/**/*.ts`],
    rules: restrict({
      paths: [noShm, noStore],
      patterns: [into(['node', 'workers', 'client', 'transfer'], 'The head knows nodes only by their messages.')],
    }),
  },
  {
    // Tests compose real parts (a real store under a data server): every layer but the addon.
    files: [`${runtime}/**/*.test.ts`],
    rules: restrict({ paths: [noShm] }),
  },
);
