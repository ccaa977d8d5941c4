import assert from 'node:assert/strict';
import { afterEach, test } from 'node:test';
import { remote } from 'shoal';
import { cleanUp, start } from './runtime-helpers.js';

afterEach(cleanUp);

test('a task cannot read the cluster token from its environment', async () => {
  const saved = { token: process.env.SHOAL_TOKEN, config: process.env.SHOAL_DAEMON_CONFIG };
  // What a node's process has when it runs as a daemon (its config carries the token) or was given one.
  process.env.SHOAL_TOKEN = 'secret-token-1234';
  process.env.SHOAL_DAEMON_CONFIG = JSON.stringify({ token: 'secret-token-1234' });
  try {
    await start({ numCpus: 1 });
    const environment = remote(() => JSON.stringify(process.env));
    const seen = await environment();
    assert.doesNotMatch(seen, /secret-token-1234/, 'no variable of the worker holds the token');
    assert.match(seen, /SHOAL_SESSION_ID/, 'the worker has the variables it needs');
  } finally {
    for (const [name, value] of [['SHOAL_TOKEN', saved.token], ['SHOAL_DAEMON_CONFIG', saved.config]] as const) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  }
});
