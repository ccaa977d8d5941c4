import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { WebSocket, WebSocketServer } from 'ws';
import { CLOSE_INTERNAL_ERROR, CLOSE_PROTOCOL_ERROR, TOKEN_HEADER, encodeMessage } from '@shoal/protocol';
import { CLOSE_REASON_MAX_BYTES, closeWith, guard, sameToken, upgradeRefusal } from './guard.js';

type Message = { readonly type: 'hello' } | { readonly type: 'data'; readonly bytes: Uint8Array };

/** Data of this many bytes makes the handler throw (a bug of ours); of LONG_REASON, close with a long reason. */
const POISON = 13;
const LONG_REASON = 7;

/** A guarded server (token `the-token`) that answers each later message with its byte count. */
async function server(maxPayload: number): Promise<{ url: string; warnings: string[] } & AsyncDisposable> {
  const wss = new WebSocketServer({
    port: 0,
    host: '127.0.0.1',
    maxPayload,
    verifyClient: ({ req }, accept) => {
      const refusal = upgradeRefusal(req, 'the-token', []);
      if (refusal) accept(false, Number.parseInt(refusal.status, 10), refusal.reason);
      else accept(true);
    },
  });
  await new Promise((resolve) => wss.once('listening', resolve));
  const warnings: string[] = [];
  wss.on('connection', (socket) =>
    guard<Message>(socket, {
      remote: 'test',
      kind: 'connection',
      helloTimeoutMs: 5000,
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

const AUTHENTICATED = { [TOKEN_HEADER]: 'the-token' };

/**
 * Upgrades with `headers` and sends `messages` in order; resolves with what came back and the
 * close code (an HTTP status when the upgrade was refused), or when `answers` came.
 */
function exchange(
  url: string,
  messages: Buffer[],
  answers: number,
  headers: Record<string, string> = AUTHENTICATED,
): Promise<{ answers: string[]; code: number | undefined; reason?: string }> {
  return new Promise((resolve) => {
    const socket = new WebSocket(url, { headers });
    socket.once('unexpected-response', (_request, response) => {
      let body = '';
      response.on('data', (chunk: Buffer) => (body += chunk.toString()));
      response.on('end', () => resolve({ answers: [], code: response.statusCode, reason: body }));
    });
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

test('an upgrade without the token is refused (401) before any frame is read; with it, the real limit applies from the first message', async () => {
  await using guarded = await server(1 << 20);
  const hello = encodeMessage({ type: 'hello' });
  const big = encodeMessage({ type: 'data', bytes: Buffer.alloc(512 * 1024) });
  for (const headers of [{}, { [TOKEN_HEADER]: 'not-the-token' }, { [TOKEN_HEADER]: 'the-tokeN' }] as Record<string, string>[]) {
    assert.deepEqual(await exchange(guarded.url, [hello, big], 2, headers), { answers: [], code: 401, reason: 'wrong or missing token' });
  }
  // A web page (an Origin header) is refused even with the token.
  assert.equal((await exchange(guarded.url, [hello], 1, { ...AUTHENTICATED, Origin: 'http://evil.example' })).code, 403);
  // Authenticated: a large message passes, in the same write as the hello.
  assert.deepEqual(await exchange(guarded.url, [hello, big], 2), { answers: ['welcome', String(512 * 1024)], code: undefined });
  // Past the server's limit: closed from the frame's header (1009), and logged.
  assert.equal((await exchange(guarded.url, [hello, encodeMessage({ type: 'data', bytes: Buffer.alloc(2 << 20) })], 2)).code, 1009);
  assert.ok(guarded.warnings.some((line) => line.includes('message too large')));
  // The first message must be the hello.
  const notHello = await exchange(guarded.url, [encodeMessage({ type: 'data', bytes: Buffer.alloc(10) })], 1);
  assert.equal(notHello.code, CLOSE_PROTOCOL_ERROR);
  assert.ok(guarded.warnings.some((line) => line.includes('its first message was `data`, not a hello')));
});

test('a handler that throws closes only its own connection (1011), and the server goes on', async () => {
  await using guarded = await server(1 << 20);
  const hello = encodeMessage({ type: 'hello' });
  const data = (length: number) => encodeMessage({ type: 'data', bytes: Buffer.alloc(length) });
  const other = new WebSocket(guarded.url, { headers: AUTHENTICATED });
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
  const hello = encodeMessage({ type: 'hello' });
  const { code, reason } = await exchange(guarded.url, [hello, encodeMessage({ type: 'data', bytes: Buffer.alloc(LONG_REASON) })], 3);
  assert.equal(code, CLOSE_PROTOCOL_ERROR);
  assert.ok(reason !== undefined && reason.startsWith('node id éé'));
  assert.ok(Buffer.byteLength(reason) <= CLOSE_REASON_MAX_BYTES && Buffer.byteLength(reason) >= CLOSE_REASON_MAX_BYTES - 1);
  assert.ok(!reason.includes('\uFFFD'));
});
test('sameToken: only the same token matches, whatever the lengths', () => {
  assert.equal(sameToken('s3cret-token', 's3cret-token'), true);
  assert.equal(sameToken('s3cret-tokem', 's3cret-token'), false);
  assert.equal(sameToken('s3cret', 's3cret-token'), false, 'a prefix');
  assert.equal(sameToken('s3cret-token-and-more', 's3cret-token'), false, 'longer');
  assert.equal(sameToken('', 's3cret-token'), false);
  assert.equal(sameToken('ü', 'ü'), true, 'beyond ASCII');
});
