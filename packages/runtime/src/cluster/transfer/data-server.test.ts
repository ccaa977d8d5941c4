// The data server and the puller against each other on loopback, with a real store: what
// crosses, what a holder without the object answers, how bad connections are closed, and what
// close() and destroy() do to transfers in flight.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { WebSocket } from 'ws';
import { ObjectLostError, TaskError, decodeMessage, encodeMessage, fromWireFailure, type WireFailure } from '@shoal/protocol';
import { ObjectStore } from '@shoal/store';
import { DataServer, type DataServerOptions } from './data-server.js';
import { ObjectPuller } from './object-puller.js';

const TOKEN = 'data-server-test-token';

/** A holder store in a temporary shm root, a data server for it, and a puller writing into a temporary directory. */
async function setUp(
  options: Partial<DataServerOptions> = {},
): Promise<{ store: ObjectStore; server: DataServer; puller: ObjectPuller; into: string; intoStore: ObjectStore } & AsyncDisposable> {
  const root = mkdtempSync('/dev/shm/shoal-test-root-');
  // Marks the root as this process's, so other sessions' sweeps leave it alone.
  writeFileSync(join(root, 'owner.json'), JSON.stringify({ pid: process.pid, startTime: null }));
  const store = new ObjectStore({ shmRoot: root, handleSignals: false, objectStoreMemory: 512 * 1024 ** 2 });
  // The puller's own store, in the same root: what it pulls arrives there.
  const pulledInto = new ObjectStore({ shmRoot: root, handleSignals: false, objectStoreMemory: 256 * 1024 ** 2 });
  const into = pulledInto.directory;
  const server = await DataServer.start(store, { host: '127.0.0.1', token: TOKEN, nodeId: store.sessionId, ...options });
  const puller = new ObjectPuller(TOKEN, (id, size) => pulledInto.acceptIncoming(id, size));
  return {
    store,
    server,
    puller,
    into,
    intoStore: pulledInto,
    async [Symbol.asyncDispose]() {
      puller.close();
      await server.destroy();
      store.close();
      pulledInto.close();
      rmSync(root, { recursive: true, force: true });
    },
  };
}

const asError = (failure: WireFailure): Error => fromWireFailure(failure);

/** Opens a raw connection, sends `frames`; resolves with the close code the server chose. */
function closeCodeFor(url: string, frames: Buffer[]): Promise<number> {
  return new Promise((resolve) => {
    const socket = new WebSocket(url, { perMessageDeflate: false, headers: { 'x-shoal-token': TOKEN } });
    socket.once('open', () => frames.forEach((frame) => socket.send(frame)));
    socket.once('close', (code) => resolve(code));
    socket.on('error', () => {});
  });
}

test('objects in segments cross on a bulk stream byte for byte, one after another, past one write of the holder', async () => {
  await using setup = await setUp();
  // 40 MiB, then 80 MiB: more than the holder's 64 MiB per write.
  for (const elements of [5 << 20, 10 << 20]) {
    const values = new Float64Array(elements).map((_, i) => i * 0.5);
    const ref = setup.store.put(values);
    const pulled = await setup.puller.pull(ref.id, [setup.server.url], asError);
    assert.equal(pulled.bytes, undefined, 'it came as a segment file');
    // Registered as the node does once a pull is whole: only then does the file take the object's name.
    setup.intoStore.register(ref.id, { size: pulled.size, contains: [] });
    assert.ok(readFileSync(join(setup.into, ref.id)).equals(readFileSync(join(setup.store.directory, ref.id))));
    setup.store.freeId(ref.id);
    setup.intoStore.freeId(ref.id);
  }
  assert.equal(setup.puller.stats.pulls, 2);
});

test('different objects pulled at once from one holder each take a stream of their own, after streams were opened before', async () => {
  await using setup = await setUp();
  const first = setup.store.put(new Float64Array(100_000).fill(1));
  await setup.puller.pull(first.id, [setup.server.url], asError);
  const refs = [2, 3, 4].map((value) => setup.store.put(new Float64Array(100_000 * value).fill(value)));
  const pulled = await Promise.all(refs.map((ref) => setup.puller.pull(ref.id, [setup.server.url], asError)));
  for (const [i, ref] of refs.entries()) {
    setup.intoStore.register(ref.id, { size: pulled[i]!.size, contains: [] });
    assert.ok(readFileSync(join(setup.into, ref.id)).equals(readFileSync(join(setup.store.directory, ref.id))));
  }
});

test('a pull that does not fit the puller fails with ObjectStoreFullError; the next pull on that connection works', async () => {
  await using setup = await setUp();
  const big = setup.store.put(new Float64Array(40 << 20)); // 320 MiB: within the holder’s 512 MiB, more than the puller’s 256 MiB
  await assert.rejects(setup.puller.pull(big.id, [setup.server.url], asError), { name: 'ObjectStoreFullError' });
  const small = setup.store.put(new Float64Array(100_000).fill(8));
  const pulled = await setup.puller.pull(small.id, [setup.server.url], asError);
  setup.intoStore.register(small.id, { size: pulled.size, contains: [] });
  assert.ok(readFileSync(join(setup.into, small.id)).equals(readFileSync(join(setup.store.directory, small.id))));
});

test('an inline object comes in one message; concurrent pulls of one object are one pull', async () => {
  await using setup = await setUp();
  const ref = setup.store.put({ small: [1, 2, 3] });
  const [first, second] = await Promise.all([
    setup.puller.pull(ref.id, [setup.server.url], asError),
    setup.puller.pull(ref.id, [setup.server.url], asError),
  ]);
  assert.ok(first.bytes && first.bytes.length === first.size);
  assert.equal(first, second);
  assert.equal(setup.puller.stats.pulls, 1);
});

test('a holder without the object: ObjectLostError naming it; a failed object: its own failure', async () => {
  await using setup = await setUp();
  await assert.rejects(setup.puller.pull('missingXXXXXXXXXXXXXXX', [setup.server.url], asError), (error: unknown) => {
    assert.ok(error instanceof ObjectLostError);
    assert.match(error.message, /does not have it \(freed\)/);
    return true;
  });
  setup.store.expect('failedXXXXXXXXXXXXXXXX');
  setup.store.hold('failedXXXXXXXXXXXXXXXX'); // as a pending task's return is held
  setup.store.fail('failedXXXXXXXXXXXXXXXX', new TaskError('f', new Error('the task threw')));
  await assert.rejects(setup.puller.pull('failedXXXXXXXXXXXXXXXX', [setup.server.url], asError), {
    name: 'TaskError',
    code: 'ERR_TASK_FAILED',
    message: 'Task f failed: Error: the task threw',
  });
});

test('a pull fails over to the next holder; none left is ObjectLostError', async () => {
  await using setup = await setUp();
  const ref = setup.store.put(new Float64Array(100_000).fill(2));
  const pulled = await setup.puller.pull(ref.id, ['ws://127.0.0.1:1', setup.server.url], asError);
  assert.equal(pulled.size, setup.store.status(ref.id).state === 'ready' ? (setup.store.status(ref.id) as { size: number }).size : -1);
  await assert.rejects(setup.puller.pull('otherXXXXXXXXXXXXXXXXX', [], asError), /no node of the cluster holds it/);
});

test('the data server closes garbage (4002), a pull before hello (4002) and an oversized frame (1009), and goes on serving', async () => {
  await using setup = await setUp();
  const { url } = setup.server;
  assert.equal(await closeCodeFor(url, [Buffer.from([0xc1, 0xff, 0x00])]), 4002);
  assert.equal(await closeCodeFor(url, [encodeMessage({ type: 'pull', requestId: 1, id: 'x'.repeat(21), stream: 1 })]), 4002);
  assert.equal(await closeCodeFor(url, [Buffer.alloc(2 << 20)]), 1009);
  const ref = setup.store.put(new Float64Array(100_000).fill(3));
  assert.ok((await setup.puller.pull(ref.id, [url], asError)).size > 0);
});

test('close() lets a transfer in flight finish, then refuses pulls; both close() and destroy() are idempotent', async () => {
  await using setup = await setUp();
  const ref = setup.store.put(new Float64Array(8 * 1024 * 1024).fill(4)); // 64 MiB: several windows
  const pulling = setup.puller.pull(ref.id, [setup.server.url], asError);
  // Closing once the holder has answered (the transfer streams): it still completes.
  while (setup.server.state === 'running' && setup.puller.stats.pulls === 0) {
    await new Promise((resolve) => setImmediate(resolve));
    if (arriving(setup.into)) break;
  }
  const closing = setup.server.close();
  assert.equal(setup.server.close(), closing, 'close() is idempotent');
  assert.equal((await pulling).size, (setup.store.status(ref.id) as { size: number }).size);
  await closing;
  assert.equal(setup.server.state, 'closed');
  await setup.server.destroy();
  assert.equal(setup.server.state, 'closed');
});

test('destroy() cuts a transfer in flight: the pull fails over, and with no other holder the object is lost', async () => {
  await using setup = await setUp();
  const ref = setup.store.put(new Float64Array(8 * 1024 * 1024).fill(5));
  const pulling = setup.puller.pull(ref.id, [setup.server.url], asError);
  while (!arriving(setup.into)) await new Promise((resolve) => setImmediate(resolve));
  await setup.server.destroy();
  await assert.rejects(pulling, (error: unknown) => error instanceof ObjectLostError && /could send it/.test(error.message));
  const names = readdirNames(setup.into);
  assert.ok(!names.includes(ref.id), 'the partly written object never got its name');
  assert.ok(!names.some((name) => name.startsWith('new.')), 'its file went back to the pool (pool.N), to be reused');
});

function readdirNames(directory: string): string[] {
  return readdirSync(directory);
}

/** Whether an object is being written into `directory`: its file has a `new.N` name until whole. */
function arriving(directory: string): boolean {
  return readdirNames(directory).some((name) => name.startsWith('new.'));
}

/** Resolves with the close code of an authenticated raw connection, or 'open' if it lasts `ms`. */
function closeAfterHello(url: string, ms: number): Promise<number | 'open'> {
  return new Promise((resolve) => {
    const socket = new WebSocket(url, { perMessageDeflate: false, headers: { 'x-shoal-token': TOKEN } });
    const timer = setTimeout(() => {
      resolve('open');
      socket.terminate();
    }, ms);
    socket.once('open', () => socket.send(encodeMessage({ type: 'hello' })));
    socket.once('close', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
    socket.on('error', () => {});
  });
}

/** The answer to a WebSocket upgrade of `url` with `headers`: 101 when it opens, else the refusal's status and body. */
function upgradeAnswer(url: string, headers: Record<string, string> = {}): Promise<{ status: number | undefined; body: string }> {
  return new Promise((resolve) => {
    const socket = new WebSocket(url, { perMessageDeflate: false, headers });
    socket.once('unexpected-response', (_request, response) => {
      let body = '';
      response.on('data', (chunk: Buffer) => (body += chunk.toString()));
      response.on('end', () => resolve({ status: response.statusCode, body }));
    });
    socket.once('open', () => {
      resolve({ status: 101, body: '' });
      socket.terminate();
    });
    socket.on('error', () => {});
  });
}

test('an upgrade without the token, or with a wrong one, is refused with 401 and the reason before any message', async () => {
  await using setup = await setUp();
  for (const headers of [{}, { 'x-shoal-token': 'not-the-token' }] as Record<string, string>[]) {
    assert.deepEqual(await upgradeAnswer(setup.server.url, headers), { status: 401, body: 'wrong or missing token' });
  }
  // A puller with a wrong token cannot pull.
  const ref = setup.store.put(new Float64Array(10).fill(1));
  const wrong = new ObjectPuller('not-the-token', () => assert.fail('nothing arrives'));
  await assert.rejects(wrong.pull(ref.id, [setup.server.url], asError), /refused this node’s cluster token \(401\): start every node of the cluster with the same token/);
  wrong.close();
});

test('an authenticated data connection that carries nothing past idleTimeoutMs is closed (4004); the next pull connects again', async () => {
  await using setup = await setUp({ idleTimeoutMs: 200 });
  assert.equal(await closeAfterHello(setup.server.url, 5000), 4004);
  const ref = setup.store.put(new Float64Array(100_000).fill(4));
  assert.equal((await setup.puller.pull(ref.id, [setup.server.url], asError)).size > 0, true);
  // The puller's connection is closed as idle in turn; a pull after that opens a new one.
  await new Promise((resolve) => setTimeout(resolve, 600));
  const other = setup.store.put(new Float64Array(100_000).fill(5));
  assert.ok((await setup.puller.pull(other.id, [setup.server.url], asError)).size > 0);
});

test('connections past maxConnectionsPerSource are refused with 503 and the reason; one closed makes room', async () => {
  await using setup = await setUp({ budget: { maxConnectionsPerSource: 2 } });
  const { hostname, port } = new URL(setup.server.url);
  const held = await Promise.all(
    [0, 1].map(
      () =>
        new Promise<Socket>((resolve) => {
          const socket = connect({ host: hostname, port: Number(port) }, () => resolve(socket));
          socket.on('error', () => {});
        }),
    ),
  );
  const refused = await upgradeAnswer(setup.server.url);
  assert.equal(refused.status, 503);
  assert.match(refused.body, /holds 2 connections, the limit per source address \(maxConnectionsPerSource 2\)/);
  held[0]!.destroy();
  await new Promise((resolve) => setTimeout(resolve, 100));
  const ref = setup.store.put(new Float64Array(100_000).fill(1));
  assert.ok((await setup.puller.pull(ref.id, [setup.server.url], asError)).size > 0);
  held[1]!.destroy();
});

/** Asks `url`'s data port for a bulk connection with `headers`; resolves with the answer's status line, its stream number (a 101) or body, and the socket. */
function bulkUpgrade(url: string, headers: Record<string, string>): Promise<{ status: string; stream: number; body: string; socket: Socket }> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = connect({ host: hostname, port: Number(port) }, () => {
      const lines = Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`);
      socket.write(`GET / HTTP/1.1\r\nHost: ${hostname}\r\nConnection: Upgrade\r\nUpgrade: shoal-bulk\r\n${lines.join('')}\r\n`);
    });
    let text = '';
    const settle = () => {
      const end = text.indexOf('\r\n\r\n');
      const stream = Number(/^x-shoal-stream: (\d+)\r$/im.exec(text)?.[1] ?? -1);
      resolve({ status: text.split('\r\n')[0] ?? '', stream, body: end < 0 ? '' : text.slice(end + 4).trim(), socket });
    };
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1');
      if (text.startsWith('HTTP/1.1 101') && text.includes('\r\n\r\n')) settle();
    });
    socket.on('close', settle);
    socket.on('error', () => {});
  });
}

/** A data connection that said hello: its welcome (with the connection's number) and the socket. */
async function welcomed(url: string): Promise<{ socket: WebSocket; connection: number; closed: Promise<number> }> {
  const socket = new WebSocket(url, { perMessageDeflate: false, headers: { 'x-shoal-token': TOKEN } });
  const closed = new Promise<number>((resolve) => socket.once('close', resolve));
  socket.on('error', () => {});
  await new Promise((resolve) => socket.once('open', resolve));
  socket.send(encodeMessage({ type: 'hello' }));
  const data = await new Promise<Buffer>((resolve) => socket.once('message', (raw: Buffer) => resolve(raw)));
  const welcome = decodeMessage(data) as { connection: number };
  return { socket, connection: welcome.connection, closed };
}

test('a bulk upgrade needs the token, a data connection of this server and room; a stream that sends bytes is closed', async () => {
  await using setup = await setUp();
  const { url } = setup.server;
  const data = await welcomed(url);
  const headers = { 'x-shoal-token': TOKEN, 'x-shoal-connection': String(data.connection) };
  const noToken = await bulkUpgrade(url, { 'x-shoal-connection': String(data.connection) });
  assert.deepEqual([noToken.status, noToken.body], ['HTTP/1.1 401 Unauthorized', 'wrong or missing token']);
  const unknown = await bulkUpgrade(url, { ...headers, 'x-shoal-connection': '999' });
  assert.equal(unknown.status, 'HTTP/1.1 400 Bad Request');
  assert.match(unknown.body, /names no data connection of this server/);
  const accepted: Socket[] = [];
  for (let i = 0; i < 8; i += 1) {
    const answer = await bulkUpgrade(url, headers);
    assert.equal(answer.status, 'HTTP/1.1 101 Switching Protocols');
    accepted.push(answer.socket);
  }
  const tooMany = await bulkUpgrade(url, headers);
  assert.equal(tooMany.status, 'HTTP/1.1 429 Too Many Requests');
  // A puller never writes on a stream: one that does is cut.
  const writer = accepted[0]!;
  const cut = new Promise((resolve) => writer.once('close', resolve));
  writer.write('unexpected');
  await cut;
  for (const socket of accepted) socket.destroy();
  data.socket.terminate();
  // A real puller is not disturbed.
  const ref = setup.store.put(new Float64Array(100_000).fill(6));
  assert.ok((await setup.puller.pull(ref.id, [url], asError)).size > 0);
});

test('a pull naming a stream that is not an idle one of its connection closes that connection (4002)', async () => {
  await using setup = await setUp();
  const { url } = setup.server;
  const ref = setup.store.put(new Float64Array(100_000).fill(7));
  const data = await welcomed(url);
  data.socket.send(encodeMessage({ type: 'pull', requestId: 1, id: ref.id, stream: 12345 }));
  assert.equal(await data.closed, 4002);
  // Another connection's stream is not this one's either.
  const owner = await welcomed(url);
  const stream = await bulkUpgrade(url, { 'x-shoal-token': TOKEN, 'x-shoal-connection': String(owner.connection) });
  assert.ok(stream.stream > 0, 'the 101 gives the stream its number');
  const other = await welcomed(url);
  other.socket.send(encodeMessage({ type: 'pull', requestId: 1, id: ref.id, stream: stream.stream }));
  assert.equal(await other.closed, 4002);
  stream.socket.destroy();
  owner.socket.terminate();
});

test('a spilled object pulled by another node is sent from the holder\'s spill file (not read back) and arrives intact', async (t) => {
  const root = mkdtempSync('/dev/shm/shoal-test-root-');
  writeFileSync(join(root, 'owner.json'), JSON.stringify({ pid: process.pid, startTime: null }));
  const spillRoot = mkdtempSync(join(tmpdir(), 'shoal-spill-test-'));
  const holder = new ObjectStore({ shmRoot: root, handleSignals: false, objectStoreMemory: 48 << 20, spillDirectory: spillRoot });
  const into = new ObjectStore({ shmRoot: root, handleSignals: false, objectStoreMemory: 64 << 20 });
  const server = await DataServer.start(holder, { host: '127.0.0.1', token: TOKEN, nodeId: holder.sessionId });
  const puller = new ObjectPuller(TOKEN, (id, size) => into.acceptIncoming(id, size));
  t.after(async () => {
    puller.close();
    await server.destroy();
    holder.close();
    into.close();
    rmSync(root, { recursive: true, force: true });
    rmSync(spillRoot, { recursive: true, force: true });
  });
  const first = holder.put(new Float64Array(4 << 20).map((_, i) => i)); // 32 MiB
  holder.put(new Float64Array(3 << 20).fill(1)); // 24 MiB: the first goes to disk
  assert.equal(holder.stats().spill.spilledObjects, 1);
  const pulled = await puller.pull(first.id, [server.url], asError);
  into.register(first.id, { size: pulled.size, contains: [] });
  assert.deepEqual([holder.stats().spill.restores, holder.stats().spill.spilledObjects], [0, 1], 'the holder sent it from disk, where it stays');
  const copy = readFileSync(join(into.directory, first.id));
  await holder.get(first); // read back now, to compare
  assert.ok(copy.equals(readFileSync(join(holder.directory, first.id))), 'the copy is the object as stored');
  const values = new Float64Array(copy.buffer, copy.byteOffset + copy.length - (4 << 23), 4 << 20);
  assert.deepEqual([values[0], values[(4 << 20) - 1]], [0, (4 << 20) - 1]);
});
