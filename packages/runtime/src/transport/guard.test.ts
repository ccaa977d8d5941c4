import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { WebSocket, WebSocketServer } from 'ws';
import { CLOSE_INTERNAL_ERROR, CLOSE_PROTOCOL_ERROR, HELLO_MAX_BYTES, encodeMessage } from '@shoal/protocol';
import { CLOSE_REASON_MAX_BYTES, PRE_AUTH_MAX_PAYLOAD, closeWith, guard } from './guard.js';

type Message = { readonly type: 'hello'; readonly token: string } | { readonly type: 'data'; readonly bytes: Uint8Array };

/** Data of this many bytes makes the handler throw (a bug of ours); of LONG_REASON, close with a long reason. */
const POISON = 13;
const LONG_REASON = 7;

/** A guarded server that answers each later message with its byte count. */
async function server(maxPayload: number): Promise<{ url: string; warnings: string[] } & AsyncDisposable> {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', maxPayload: PRE_AUTH_MAX_PAYLOAD });
  await new Promise((resolve) => wss.once('listening', resolve));
  const warnings: string[] = [];
  wss.on('connection', (socket) =>
    guard<Message>(socket, {
      remote: 'test',
      kind: 'connection',
      token: 'the-token',
      helloTimeoutMs: 5000,
      maxPayload,
      logger: { warn: (_fields, message) => warnings.push(message) },
      decode: (raw) => raw as Message,
      welcome: () => socket.send('welcome'),
      message: (message) => {
        const length = message.type === 'data' ? message.bytes.length : -1;
        if (length === POISON) throw new Error('a handler bug');
        if (length === LONG_REASON) closeWith(socket, CLOSE_PROTOCOL_ERROR, `node id ${'é'.repeat(100)} is taken`);
        else socket.send(String(length));
      },
    }),
  );
  return {
    url: `ws://127.0.0.1:${(wss.address() as AddressInfo).port}`,
    warnings,
    [Symbol.asyncDispose]: () => new Promise<void>((resolve) => wss.close(() => resolve())),
  };
}

/** Sends `messages` in order; resolves with what came back and the close code, or when `answers` came. */
function exchange(url: string, messages: Buffer[], answers: number): Promise<{ answers: string[]; code: number | undefined; reason?: string }> {
  return new Promise((resolve) => {
    const socket = new WebSocket(url);
    const got: string[] = [];
    socket.once('open', () => messages.forEach((message) => socket.send(message)));
    socket.on('message', (data) => {
      got.push(String(data));
      if (got.length === answers) {
        socket.terminate();
        resolve({ answers: got, code: undefined });
      }
    });
    socket.once('close', (code, reason) => resolve({ answers: got, code, reason: String(reason) }));
    socket.on('error', () => {});
  });
}

test('the guard takes only a small plain hello before the token, then the real limit and codec', async () => {
  await using guarded = await server(1 << 20);
  const hello = encodeMessage({ type: 'hello', token: 'the-token' });
  const big = encodeMessage({ type: 'data', bytes: Buffer.alloc(512 * 1024) });
  // Authenticated: a message far above the hello's limit passes, in the same write as the hello.
  assert.deepEqual(await exchange(guarded.url, [hello, big], 2), { answers: ['welcome', String(512 * 1024)], code: undefined });
  // Before: the same message closes the connection from its header (1009), and is logged.
  assert.equal((await exchange(guarded.url, [big], 1)).code, 1009);
  assert.ok(guarded.warnings.some((line) => line.includes(`a first message above ${HELLO_MAX_BYTES} bytes`)));
  // A small first message with binary data (which only the full codec reads) is refused too.
  assert.equal((await exchange(guarded.url, [encodeMessage({ type: 'data', bytes: Buffer.alloc(10) })], 1)).code, CLOSE_PROTOCOL_ERROR);
});

test('a handler that throws closes only its own connection (1011), and the server goes on', async () => {
  await using guarded = await server(1 << 20);
  const hello = encodeMessage({ type: 'hello', token: 'the-token' });
  const data = (length: number) => encodeMessage({ type: 'data', bytes: Buffer.alloc(length) });
  const other = new WebSocket(guarded.url);
  await new Promise((resolve) => other.once('open', resolve));
  other.send(hello);

  const poisoned = await exchange(guarded.url, [hello, data(POISON)], 3);
  assert.equal(poisoned.code, CLOSE_INTERNAL_ERROR);
  assert.ok(guarded.warnings.some((line) => line.includes('handling its message failed') && line.includes('a handler bug')));
  // The connection that was open all along still gets answers, and new ones are served.
  const answer = new Promise((resolve) => other.on('message', (reply) => String(reply) !== 'welcome' && resolve(String(reply))));
  other.send(data(5));
  assert.equal(await answer, '5');
  other.close();
  assert.deepEqual((await exchange(guarded.url, [hello, data(3)], 2)).answers, ['welcome', '3']);
});

test('closeWith cuts a long reason to what a close frame holds, on a character boundary', async () => {
  await using guarded = await server(1 << 20);
  const hello = encodeMessage({ type: 'hello', token: 'the-token' });
  const { code, reason } = await exchange(guarded.url, [hello, encodeMessage({ type: 'data', bytes: Buffer.alloc(LONG_REASON) })], 3);
  assert.equal(code, CLOSE_PROTOCOL_ERROR);
  assert.ok(reason !== undefined && reason.startsWith('node id éé'));
  assert.ok(Buffer.byteLength(reason) <= CLOSE_REASON_MAX_BYTES && Buffer.byteLength(reason) >= CLOSE_REASON_MAX_BYTES - 1);
  assert.ok(!reason.includes('\uFFFD'));
});
