// docs/errors.md lists every error code (issue "The API a Node developer expects"): each code of
// the registry, and each argument error code, is documented with its class, and each code
// documented exists.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, test } from 'node:test';
import { ARGUMENT_ERROR_CODES, ERROR_CLASSES, SharedMemoryError, errorClassOf } from '@shoal/protocol';
import { init, remote, shutdown, store } from 'shoal';

const DOC = readFileSync(new URL('../docs/errors.md', import.meta.url), 'utf8');

after(() => shutdown());

/** The table rows of docs/errors.md: code and class, as written. */
const rows = [...DOC.matchAll(/^\| `(ERR_[A-Z_<>a-z]+)` \| `(\w+)` \|/gm)].map(([, code, className]) => ({ code: code!, className: className! }));

test('every error code is in docs/errors.md with its class, and every code there exists', () => {
  const documented = new Map(rows.map(({ code, className }) => [code, className]));
  assert.equal(documented.size, rows.length, 'no code is documented twice');
  for (const [code, errorClass] of Object.entries(ERROR_CLASSES)) {
    assert.equal(documented.get(code), errorClass.name, `${code} is documented as ${errorClass.name}`);
  }
  assert.equal(documented.get(`${SharedMemoryError.code}<errno>`), SharedMemoryError.name, 'the ERR_SHM_<errno> family is documented');
  for (const { code, className } of rows) {
    if (ARGUMENT_ERROR_CODES.includes(code as never)) continue;
    const known = errorClassOf(code.replace('<errno>', 'ENOSPC'));
    assert.ok(known, `${code} in docs/errors.md is a code Shoal has`);
    assert.equal(known.name, className, `${code} is a ${known.name}`);
  }
  assert.equal(rows.length, Object.keys(ERROR_CLASSES).length + 1 + ARGUMENT_ERROR_CODES.length);
});

test('every argument error code is in docs/errors.md, and argument errors carry their codes', async () => {
  for (const code of ARGUMENT_ERROR_CODES) {
    const row = rows.find((documented) => documented.code === code);
    assert.equal(row?.className, code === 'ERR_OUT_OF_RANGE' ? 'RangeError' : 'TypeError', `${code} is documented with its class`);
  }
  const thrown = (call: () => unknown): unknown => {
    try {
      call();
    } catch (error) {
      return error;
    }
    assert.fail('expected a throw');
  };
  const codeOf = (error: unknown) => (error instanceof TypeError || error instanceof RangeError ? (error as { code?: string }).code : error);
  // Bad init() options are refused before a session starts (the store's calls below start one).
  assert.equal(codeOf(await init({ cpus: 2 } as never).catch((error: unknown) => error)), 'ERR_UNKNOWN_OPTION');
  assert.equal(codeOf(await init({ numCpus: -1 }).catch((error: unknown) => error)), 'ERR_INVALID_ARGUMENT');
  assert.equal(codeOf(thrown(() => store.put({ on: () => 1 } as never))), 'ERR_NOT_STORABLE');
  assert.equal(codeOf(await store.makeRoom(-1).catch((error: unknown) => error)), 'ERR_OUT_OF_RANGE');
  const outside = 1;
  assert.equal(codeOf(thrown(() => remote(() => outside))), 'ERR_NOT_REMOTABLE');
  assert.equal(codeOf(thrown(() => remote(42 as never))), 'ERR_INVALID_ARGUMENT');
});
