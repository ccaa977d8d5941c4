// The puller's bulk streams against a fake holder that sends what a real one never would: bytes
// before the answer that says where they go, more bytes than the object has, a stream cut in
// the middle. A real holder's side (and a real puller against it) is in data-server.test.ts.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { WebSocketServer, type WebSocket } from 'ws';
import { ObjectLostError, decodeMessage, encodeMessage, fromWireFailure, type FromHolder, type ToHolder } from '@shoal/protocol';
import { ObjectStore } from '@shoal/store';
import { ObjectPuller } from './object-puller.js';

const TOKEN = 'bulk-stream-test-token';
const ID = 'Zq3kP9xT2mWv8LcR0001';

type Pull = Extract<ToHolder, { type: 'pull' }>;

/** What the fake holder does with a pull: `send` answers on the data connection, `bulk` is the pull's stream. */
type OnPull = (pull: Pull, send: (message: FromHolder) => void, bulk: Socket) => void;

/**
 * A data server that speaks the protocol's shape but sends what `onPull` says, and a puller
 * writing into a store of its own; `bulkClosed` resolves when the puller closes a stream.
 */
async function fakeHolder(onPull: OnPull) {
  const root = mkdtempSync('/dev/shm/shoal-test-root-');
  writeFileSync(join(root, 'owner.json'), JSON.stringify({ pid: process.pid, startTime: null }));
  const store = new ObjectStore({ shmRoot: root, handleSignals: false, objectStoreMemory: 64 << 20 });
  const streams = new Map<number, Socket>();
  let bulkClosed!: () => void;
  const closed = new Promise<void>((resolve) => (bulkClosed = resolve));
  const http = createServer();
  const wss = new WebSocketServer({ noServer: true });
  http.on('upgrade', (request: IncomingMessage, socket: Socket, head: Buffer) => {
    if (request.headers.upgrade !== 'shoal-bulk') {
      wss.handleUpgrade(request, socket, head, (ws) => serve(ws));
      return;
    }
    const number = streams.size + 1;
    streams.set(number, socket);
    socket.on('close', bulkClosed);
    // Reading, so that the puller's close is seen (the HTTP server's sockets are half-open on EOF).
    socket.resume();
    socket.on('end', () => socket.destroy());
    socket.on('error', () => {});
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: shoal-bulk\r\nx-shoal-stream: ${number}\r\n\r\n`);
  });
  const serve = (ws: WebSocket) => {
    const send = (message: FromHolder) => ws.send(encodeMessage(message));
    ws.on('message', (data: Buffer) => {
      const message = decodeMessage(data) as ToHolder;
      if (message.type === 'hello') send({ type: 'welcome', nodeId: 'fakeholder01', connection: 1 });
      if (message.type === 'pull') onPull(message, send, streams.get(message.stream)!);
    });
  };
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const url = `ws://127.0.0.1:${(http.address() as AddressInfo).port}`;
  const puller = new ObjectPuller(TOKEN, (id, size) => store.acceptIncoming(id, size));
  return {
    url,
    store,
    puller,
    bulkClosed: closed,
    pull: () => puller.pull(ID, [url], fromWireFailure),
    /** The bytes of the object pulled, once registered. */
    stored: (size: number) => {
      store.register(ID, { size, contains: [] });
      return readFileSync(join(store.directory, ID));
    },
    async [Symbol.asyncDispose]() {
      puller.close();
      for (const socket of streams.values()) socket.destroy();
      for (const client of wss.clients) client.terminate();
      await new Promise((resolve) => http.close(resolve));
      store.close();
      rmSync(root, { recursive: true, force: true });
    },
  };
}

test('bytes that come before the answer saying where they go are kept, and the object arrives whole', async () => {
  // More than the 64 KiB the stream keeps early: the rest waits in the socket while it is paused.
  const bytes = randomBytes(300_000);
  await using holder = await fakeHolder((pull, send, bulk) => {
    bulk.write(bytes);
    setTimeout(() => send({ type: 'object', requestId: pull.requestId, size: bytes.length }), 100);
  });
  const pulled = await holder.pull();
  assert.equal(pulled.size, bytes.length);
  assert.ok(holder.stored(bytes.length).equals(bytes));
});

test('bytes past the object are never written into it: the object is whole and the stream is closed', async () => {
  const bytes = randomBytes(200_000);
  await using holder = await fakeHolder((pull, send, bulk) => {
    send({ type: 'object', requestId: pull.requestId, size: bytes.length });
    setTimeout(() => bulk.write(Buffer.concat([bytes, Buffer.alloc(5000, 0xee)])), 50);
  });
  await holder.pull();
  await holder.bulkClosed;
  assert.ok(holder.stored(bytes.length).equals(bytes));
});

test('a stream cut in the middle of an object fails the pull (no other holder: ObjectLostError) and gives its memory back', async () => {
  await using holder = await fakeHolder((pull, send, bulk) => {
    send({ type: 'object', requestId: pull.requestId, size: 1 << 20 });
    bulk.write(randomBytes(300_000), () => bulk.destroy());
  });
  await assert.rejects(holder.pull(), (error: unknown) => error instanceof ObjectLostError && /bulk connection to .* closed/.test(error.message));
  assert.equal(holder.store.stats().usedBytes, 0, 'the reservation is given back');
  assert.equal(holder.store.status(ID).state, 'freed');
});

test('bytes on the stream of a pull answered inline break the protocol: the pull fails', async () => {
  await using holder = await fakeHolder((pull, send, bulk) => {
    bulk.write(Buffer.alloc(100, 1));
    setTimeout(() => send({ type: 'object', requestId: pull.requestId, size: 3, bytes: Buffer.from([1, 2, 3]) }), 50);
  });
  await assert.rejects(holder.pull(), (error: unknown) => error instanceof ObjectLostError && /bytes for a pull answered without any/.test(error.message));
});

test('more early bytes than the object has close the stream and fail the pull', async () => {
  await using holder = await fakeHolder((pull, send, bulk) => {
    bulk.write(Buffer.alloc(1000, 2));
    setTimeout(() => send({ type: 'object', requestId: pull.requestId, size: 500 }), 50);
  });
  await assert.rejects(holder.pull(), (error: unknown) => error instanceof ObjectLostError && /sent 1000 bytes for an object of 500/.test(error.message));
  await holder.bulkClosed;
  assert.equal(holder.store.stats().usedBytes, 0);
});

test('a stream that closes before the answer fails its pull at once, not when (or if) the answer comes', async () => {
  await using holder = await fakeHolder((_pull, _send, bulk) => bulk.destroy());
  await assert.rejects(holder.pull(), (error: unknown) => error instanceof ObjectLostError && /bulk connection to .* closed/.test(error.message));
});

test('an object discarded while it arrives stops its stream before the memory is given back', async () => {
  let discard!: () => void;
  await using holder = await fakeHolder((pull, send, bulk) => {
    send({ type: 'object', requestId: pull.requestId, size: 1 << 20 });
    bulk.write(randomBytes(100_000), () =>
      setTimeout(() => {
        discard();
        bulk.write(randomBytes(100_000));
      }, 50),
    );
  });
  discard = () => holder.store.discardUnclaimed(ID);
  await assert.rejects(holder.pull(), (error: unknown) => error instanceof ObjectLostError && /was discarded while it arrived/.test(error.message));
  await holder.bulkClosed;
  assert.equal(holder.store.stats().usedBytes, 0);
});
