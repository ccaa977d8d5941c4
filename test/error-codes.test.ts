// docs/errors.md lists every error code (issue "The API a Node developer expects"): each code of
// the registry is documented with its class, and each code documented exists.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { ERROR_CLASSES, SharedMemoryError, errorClassOf } from '@shoal/protocol';

const DOC = readFileSync(new URL('../docs/errors.md', import.meta.url), 'utf8');

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
    const known = errorClassOf(code.replace('<errno>', 'ENOSPC'));
    assert.ok(known, `${code} in docs/errors.md is a code Shoal has`);
    assert.equal(known.name, className, `${code} is a ${known.name}`);
  }
  assert.equal(rows.length, Object.keys(ERROR_CLASSES).length + 1);
});
