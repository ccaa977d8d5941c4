// The head's lifecycle and logging, on real sockets on port 0.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { test } from 'node:test';
import { WebSocket } from 'ws';
import { DRIVER_PATH, ShoalError, decodeFromHead, decodeMessage, encodeMessage, type ToHead } from '@shoal/protocol';
import type { Logger } from '../../log.js';
import { nodeReport } from './head-fakes.test.js';
import { Head } from './head.js';

const TOKEN = 'lifecycle-test-token';

interface LogCall {
  readonly level: string;
  readonly fields: Readonly<Record<string, unknown>>;
  readonly message: string;
}

/** A logger keeping every call; `logged(prefix)` resolves with the first call whose message starts so. */
function recorder() {
  const calls: LogCall[] = [];
  const waiting: { prefix: string; resolve: (call: LogCall) => void }[] = [];
  const at =
    (level: string) =>
    (fields: Readonly<Record<string, unknown>>, message: string): void => {
      const call = { level, fields, message };
      calls.push(call);
      for (const waiter of waiting.filter((waiter) => message.startsWith(waiter.prefix))) {
        waiting.splice(waiting.indexOf(waiter), 1);
        waiter.resolve(call);
      }
    };
  const logger: Logger = { info: at('info'), warn: at('warn'), error: at('error') };
  const logged = (prefix: string): Promise<LogCall> => {
    const call = calls.find((call) => call.message.startsWith(prefix));
    return call ? Promise.resolve(call) : new Promise((resolve) => waiting.push({ prefix, resolve }));
  };
  return { logger, logged };
}

/** A node connected and registered with `head`. */
async function registered(head: Head, nodeId: string): Promise<WebSocket> {
  const socket = new WebSocket(head.url, { perMessageDeflate: false, headers: { 'x-shoal-token': TOKEN } });
  // Listening before anything is sent: welcome and registered may come in one read.
  const done = new Promise<void>((resolve) => {
    socket.on('message', (data: Buffer) => {
      if (decodeFromHead(decodeMessage(data)).type === 'registered') resolve();
    });
  });
  await once(socket, 'open');
  const send = (message: ToHead) => socket.send(encodeMessage(message));
  send({ type: 'hello', role: 'node' });
  send({ type: 'register', node: nodeReport(nodeId) });
  await done;
  return socket;
}

test('a head goes idle, starting, running, closing, closed; close is idempotent and start after it is refused', async () => {
  const head = new Head({ port: 0, token: TOKEN });
  assert.equal(head.state, 'idle');
  const started = head.start();
  assert.equal(head.state, 'starting');
  assert.equal(head.start(), started, 'starting twice is one start');
  await started;
  assert.equal(head.state, 'running');
  assert.notEqual(head.port, 0);

  const closed = head.close();
  assert.equal(head.state, 'closing');
  assert.equal(head.close(), closed);
  await closed;
  assert.equal(head.state, 'closed');
  await head.close();
  await head.destroy();
  await assert.rejects(head.start(), /it is closed/);
});

test('the constructor does no I/O: a taken port fails start() with ERR_HEAD_LISTEN, and the head is closed', async () => {
  await using first = await Head.start({ port: 0, token: TOKEN });
  const second = new Head({ port: first.port, token: TOKEN });
  assert.equal(second.state, 'idle');
  await assert.rejects(second.start(), (error: unknown) => {
    assert.ok(error instanceof ShoalError);
    assert.equal(error.code, 'ERR_HEAD_LISTEN');
    assert.match(error.message, new RegExp(`cannot listen on 127\\.0\\.0\\.1:${first.port}: port ${first.port} is in use`));
    return true;
  });
  assert.equal(second.state, 'closed');
  await second.close();
});

test('a bad token is refused when the head is built', () => {
  assert.throws(() => new Head({ port: 0, token: 'short' }), TypeError);
});

test('close() ends members with a close handshake and resolves once they are gone', async () => {
  const head = await Head.start({ port: 0, token: TOKEN });
  const node = await registered(head, 'nodeAAAAAAAA');
  const ended = once(node, 'close');
  await head.close();
  const [code] = (await ended) as [number];
  assert.equal(code, 1001, 'going away, not a dropped connection');
  assert.equal(node.readyState, WebSocket.CLOSED);
});

test('destroy() drops members at once, also while a close is under way', async () => {
  const head = await Head.start({ port: 0, token: TOKEN });
  const node = await registered(head, 'nodeAAAAAAAA');
  // It reads nothing more, so it never answers the close handshake.
  node.pause();
  const closing = head.close();
  assert.equal(head.destroy(), closing, 'one shutdown');
  await closing;
  assert.equal(head.state, 'closed');
  node.resume();
  const [code] = (await once(node, 'close')) as [number];
  assert.ok(code === 1001 || code === 1006, `closed (${code})`);
});

test('close() does not wait on a member that never answers the close handshake', { timeout: 10_000 }, async () => {
  const head = await Head.start({ port: 0, token: TOKEN });
  const node = await registered(head, 'nodeAAAAAAAA');
  // ws alone would wait 30 s for its answer (beyond this test's timeout).
  node.pause();
  try {
    await head.close();
    assert.equal(head.state, 'closed');
  } finally {
    node.terminate();
  }
});

test('close() while starting waits for the start, then closes the listener', async () => {
  const head = new Head({ port: 0, token: TOKEN });
  // Runs as soon as it listens, before the close goes on.
  const listened = head.start().then(() => head.port);
  await head.close();
  const port = await listened;
  assert.notEqual(port, 0);
  assert.equal(head.state, 'closed');
  const socket = new WebSocket(`ws://127.0.0.1:${port}`);
  const [error] = (await once(socket, 'error')) as [NodeJS.ErrnoException];
  assert.equal(error.code, 'ECONNREFUSED');
});

test('destroy() after close() while starting still ends with nothing listening', async () => {
  const head = new Head({ port: 0, token: TOKEN });
  const listened = head.start().then(() => head.port);
  const closing = head.close();
  assert.equal(head.destroy(), closing);
  await closing;
  const socket = new WebSocket(`ws://127.0.0.1:${await listened}`);
  const [error] = (await once(socket, 'error')) as [NodeJS.ErrnoException];
  assert.equal(error.code, 'ECONNREFUSED');
});

test('await using closes the head', async () => {
  let kept: Head | undefined;
  {
    await using head = await Head.start({ port: 0, token: TOKEN });
    kept = head;
    assert.equal(head.state, 'running');
  }
  assert.equal(kept.state, 'closed');
});

test('the head logs through the given logger, with structured fields', async () => {
  const { logger, logged } = recorder();
  await using head = await Head.start({ port: 0, token: TOKEN, logger });
  const node = await registered(head, 'nodeAAAAAAAA');
  const joined = await logged('node nodeAAAAAAAA joined from');
  assert.equal(joined.level, 'info');
  assert.equal(joined.fields.nodeId, 'nodeAAAAAAAA');
  assert.equal(typeof joined.fields.remote, 'string');

  node.terminate();
  const left = await logged('node nodeAAAAAAAA left');
  assert.deepEqual(left.fields, { nodeId: 'nodeAAAAAAAA', reason: 'disconnected' });

  const driver = new WebSocket(`${head.url}${DRIVER_PATH}`, { headers: { 'x-shoal-token': 'wrong-token-here' } });
  driver.on('error', () => {}); // terminating before the handshake completed
  await once(driver, 'unexpected-response');
  driver.terminate();
  const refused = await logged('refused a driver connection');
  assert.equal(refused.level, 'warn');
  assert.equal(refused.fields.reason, 'wrong or missing token');
});
