import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { WebSocket, WebSocketServer } from 'ws';
import { CLOSE_PROTOCOL_ERROR, HELLO_MAX_BYTES, encodeMessage } from '@shoal/protocol';
import { PRE_AUTH_MAX_PAYLOAD, guard } from './guard.js';

type Message = { readonly type: 'hello'; readonly token: string } | { readonly type: 'data'; readonly bytes: Uint8Array };

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
      message: (message) => socket.send(String(message.type === 'data' ? message.bytes.length : -1)),
    }),
  );
  return {
    url: `ws://127.0.0.1:${(wss.address() as AddressInfo).port}`,
    warnings,
    [Symbol.asyncDispose]: () => new Promise<void>((resolve) => wss.close(() => resolve())),
  };
}

/** Sends `messages` in order; resolves with what came back and the close code, or when `answers` came. */
function exchange(url: string, messages: Buffer[], answers: number): Promise<{ answers: string[]; code: number | undefined }> {
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
    socket.once('close', (code) => resolve({ answers: got, code }));
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
