// Property-based tests of the message handlers at each boundary (issue 18, "a fuzz suite that
// stays"): messages generated from the boundary's schemas, mostly valid with wrong values, sent
// through real connections to a real node's attach socket, a real head and a real data server.
// Every message must close only its own connection or be answered, and the server must keep
// serving a legitimate peer. The counts and the seed are printed for the closing note.
import assert from 'node:assert/strict';
import { after, afterEach, test } from 'node:test';
import { connect } from 'node:net';
import fc from 'fast-check';
import { WebSocket } from 'ws';
import { decodeMessage, encodeMessage, fromWireFailure } from '@shoal/protocol';
import { queryStatus } from '@shoal/runtime/cluster';
import { store } from 'shoal';
import { TO_HOLDER } from '../../packages/protocol/src/data-protocol.js';
import { ObjectPuller } from '../../packages/runtime/src/cluster/transfer/object-puller.js';
import { FuzzCounts, fuzzParameters, garbage, messagesOf } from '../../packages/protocol/src/fuzz.test-helpers.js';
import { TO_HEAD } from '../../packages/protocol/src/head-protocol.js';
import { TO_NODE } from '../../packages/protocol/src/local-protocol.js';
import { cleanUp, start } from '../runtime-helpers.js';
import { attachRaw } from '../support/attach-raw.js';
import { startCluster } from '../support/start-cluster.js';

afterEach(cleanUp);
const counts = new FuzzCounts();
after(() => console.log(counts.report()));

/** `check`, counting its failure as a crash of `boundary` (the server stopped serving). */
async function counted(boundary: string, check: Promise<void>): Promise<void> {
  try {
    await check;
  } catch (error) {
    counts.crashed(boundary);
    throw error;
  }
}

test('the attach socket: a fuzzed message closes only its connection or is answered; the node serves a legitimate client', { timeout: 120_000 }, async () => {
  const session = await start({ numCpus: 0 });
  const socketPath = session.address.replace(/^unix:/, '');
  const ref = store.put(new Float64Array(10_000).fill(3));
  const bystander = await attachRaw(socketPath);
  const probe = { type: 'resolve', requestId: 7, ids: [ref.id], owners: [ref.owner] };
  const stillServes = async (what: string) => {
    bystander.send(probe);
    const answer = (await bystander.next('resolved')) as { locations: Record<string, { kind: string }> };
    const kind = answer.locations[ref.id]?.kind;
    assert.ok(kind === 'inline' || kind === 'segment', `after ${what}, a legitimate client still resolves objects (got ${kind})`);
    assert.ok(Number.isFinite(store.stats().usedBytes), `after ${what}, the store's accounting is a number`);
  };
  await fc.assert(
    fc.asyncProperty(fc.oneof(messagesOf(TO_NODE).map((message) => ({ message })), garbage.map((bytes) => ({ bytes }))), async (input) => {
      counts.tried('attach socket');
      const attacker = await attachRaw(socketPath);
      if ('message' in input) attacker.send(input.message);
      else attacker.socket.write(Buffer.concat([Buffer.from(Uint32Array.of(input.bytes.length).buffer), input.bytes]));
      // Answered, or closed: the probe after it is answered on a connection that is still open.
      attacker.send(probe);
      await Promise.race([attacker.closed, attacker.next('resolved')]);
      attacker.socket.destroy();
      await counted('attach socket', stillServes(JSON.stringify(input).slice(0, 200)));
    }),
    fuzzParameters(400),
  );
  assert.equal((await ref)[0], 3, 'the driver still reads its objects');
  bystander.socket.destroy();
});

/** Opens `url` with `token`, says `hello`, waits for the welcome; then `send` sends, `answer` resolves with the next message or the close code. */
async function authenticated(url: string, token: string, hello: unknown) {
  const socket = new WebSocket(url, { perMessageDeflate: false, headers: { 'x-shoal-token': token } });
  const messages: unknown[] = [];
  let wake = () => {};
  socket.on('message', (data: Buffer) => {
    messages.push(decodeMessage(data));
    wake();
  });
  const closed = new Promise<number>((resolve) => socket.once('close', resolve));
  socket.on('error', () => {});
  await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
  socket.send(encodeMessage(hello));
  const next = () => (messages.length > 0 ? Promise.resolve(messages.shift()) : new Promise((resolve) => (wake = () => resolve(messages.shift()))));
  const welcome = await Promise.race([next(), closed]);
  assert.equal((welcome as { type?: string }).type, 'welcome');
  return { socket, closed, next, send: (bytes: Uint8Array) => socket.send(bytes) };
}

/**
 * Bulk upgrades to a data port with the token, a fuzzed connection number (of a real data
 * connection or not) and fuzzed bytes after the request: each is refused or accepted and then
 * closed for the bytes, never crashing the server; `check` runs after each.
 */
async function fuzzBulkUpgrades(url: string, token: string, check: () => Promise<void>, numRuns: number) {
  const { hostname, port } = new URL(url);
  const connection = fc.oneof(fc.constant('1'), fc.string({ maxLength: 30 }).filter((text) => !/[\r\n]/.test(text)), fc.nat().map(String));
  await fc.assert(
    fc.asyncProperty(connection, garbage, async (number, bytes) => {
      counts.tried('bulk upgrade');
      const data = await authenticated(url, token, { type: 'hello' });
      const socket = connect({ host: hostname, port: Number(port) });
      socket.on('error', () => {});
      const closed = new Promise((resolve) => socket.once('close', resolve));
      socket.write(`GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: shoal-bulk\r\nx-shoal-token: ${token}\r\nx-shoal-connection: ${number}\r\n\r\n`);
      socket.write(bytes);
      socket.resume();
      await Promise.race([closed, new Promise((resolve) => setTimeout(resolve, 50))]);
      socket.destroy();
      data.socket.terminate();
      await data.closed;
      await counted('bulk upgrade', check());
    }),
    fuzzParameters(numRuns),
  );
}

/** A fuzz property for a WebSocket boundary: each input on a fresh authenticated connection, then `check`. */
async function fuzzWebSocket(boundary: string, url: string, token: string, hello: unknown, messages: fc.Arbitrary<Record<string, unknown>>, check: () => Promise<void>, numRuns: number) {
  await fc.assert(
    fc.asyncProperty(fc.oneof(messages.map((message) => encodeMessage(message)), garbage), async (bytes) => {
      counts.tried(boundary);
      const peer = await authenticated(url, token, hello);
      peer.send(bytes);
      // Answered, closed, or neither within a moment (a message that asks for nothing).
      await Promise.race([peer.next(), peer.closed, new Promise((resolve) => setTimeout(resolve, 20))]);
      peer.socket.terminate();
      await peer.closed;
      await counted(boundary, check());
    }),
    fuzzParameters(numRuns),
  );
}

test('the head and a data server: fuzzed authenticated messages leave both serving, the node still in the cluster', { timeout: 150_000 }, async () => {
  await using cluster = await startCluster({ nodes: 1 });
  const [a] = cluster.nodes;
  const nodeKept = async () => {
    const status = await queryStatus(cluster.url, cluster.token);
    assert.ok(status.nodes.some((node) => node.nodeId === a!.nodeId), 'the legitimate node is still in the cluster');
  };
  await fuzzWebSocket('head', cluster.url, cluster.token, { type: 'hello', role: 'cli' }, messagesOf(TO_HEAD), nodeKept, 400);
  const dataServes = async () => {
    // A real puller (a data connection and a bulk stream), asking for an object the node lacks.
    const puller = new ObjectPuller(cluster.token, () => assert.fail('nothing arrives'));
    try {
      await assert.rejects(puller.pull('notHeldHereXXXXXXXXX', [a!.dataUrl], fromWireFailure), /does not have it \(freed\)/, 'the data server answers a legitimate pull');
    } finally {
      puller.close();
    }
  };
  await fuzzWebSocket('data server', a!.dataUrl, cluster.token, { type: 'hello' }, messagesOf(TO_HOLDER), dataServes, 400);
  await fuzzBulkUpgrades(a!.dataUrl, cluster.token, dataServes, 200);
  await nodeKept();
});
