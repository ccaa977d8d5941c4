// Relays between pullers (packages/runtime/src/cluster/transfer/relay.ts): a holder sending a
// large object to one puller sends a second puller of it to the first, which passes the bytes on
// as they arrive. The first puller runs in a process of its own (test/fixtures/relay-node.ts)
// that stops itself at the first bytes of its transfer, so the second pull comes while that
// transfer is surely in flight; it is then resumed (the relay works) or killed (the second
// puller finishes from the holder). Bytes are counted at the holder.
import assert from 'node:assert/strict';
import { fork, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { RELAY_MIN_BYTES, fromWireFailure } from '@shoal/protocol';
import { ObjectStore } from '@shoal/store';
import { DataServer } from '../packages/runtime/src/cluster/transfer/data-server.js';
import { ObjectPuller } from '../packages/runtime/src/cluster/transfer/object-puller.js';
import { until } from './runtime-helpers.js';

const TOKEN = 'relay-test-token';
const RELAY_NODE = fileURLToPath(new URL('./fixtures/relay-node.ts', import.meta.url));
/** Far more than loopback's socket buffers hold: a stopped receiver stalls the holder's transfer. */
const ELEMENTS = 32 << 20; // 256 MiB of doubles

interface Setup extends AsyncDisposable {
  readonly holder: ObjectStore;
  readonly holderServer: DataServer;
  /** The first puller's process. */
  readonly relay: ChildProcess;
  readonly relayUrl: string;
  /** The second puller, in this process, relaying too (its server passes on what arrives). */
  readonly puller: ObjectPuller;
  readonly pullerStore: ObjectStore;
  /** The object's ref at the holder, held so it is not freed. */
  readonly ref: { readonly id: string };
  readonly id: string;
  readonly sha256: string;
}

/** A holder with a 256 MiB object, a relaying puller process, and a second relaying puller here. */
async function setUp(): Promise<Setup> {
  const root = mkdtempSync('/dev/shm/shoal-test-root-');
  writeFileSync(join(root, 'owner.json'), JSON.stringify({ pid: process.pid, startTime: null }));
  const holder = new ObjectStore({ shmRoot: root, handleSignals: false, objectStoreMemory: 512 * 1024 ** 2 });
  const holderServer = await DataServer.start(holder, { host: '127.0.0.1', token: TOKEN, nodeId: holder.sessionId });
  const values = new Float64Array(ELEMENTS);
  for (let i = 0; i < values.length; i += 4096) values[i] = i;
  const ref = holder.put(values); // held by the setup: a dropped ref frees the object
  const { id } = ref;
  const sha256 = createHash('sha256').update(readFileSync(join(holder.directory, id))).digest('hex');
  const relay = fork(RELAY_NODE, [TOKEN, root, 'shoal-test-child'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const [ready] = (await once(relay, 'message')) as [{ url: string }];
  const pullerStore = new ObjectStore({ shmRoot: root, handleSignals: false, objectStoreMemory: 512 * 1024 ** 2 });
  let server: DataServer | undefined;
  const puller = new ObjectPuller(TOKEN, (pulled, size) => pullerStore.acceptIncoming(pulled, size), { relayUrl: () => server?.url });
  server = await DataServer.start(pullerStore, { host: '127.0.0.1', token: TOKEN, nodeId: pullerStore.sessionId, arriving: (pulled) => puller.arriving(pulled) });
  return {
    holder,
    holderServer,
    relay,
    relayUrl: ready.url,
    puller,
    pullerStore,
    ref,
    id,
    sha256,
    async [Symbol.asyncDispose]() {
      if (relay.exitCode === null && relay.signalCode === null) {
        relay.kill('SIGCONT');
        relay.kill('SIGKILL');
        await once(relay, 'exit');
      }
      puller.close();
      await server?.destroy();
      await holderServer.destroy();
      holder.close();
      pullerStore.close();
      rmSync(root, { recursive: true, force: true });
    },
  };
}

/** The process state letter of `pid` in /proc (T: stopped). */
const processState = (pid: number): string => /\) (\S)/.exec(readFileSync(`/proc/${pid}/stat`, 'utf8'))?.[1] ?? '?';

/** The next message of `child` that `wanted` accepts. */
function nextMessage<T>(child: ChildProcess, wanted: (message: { type: string }) => boolean): Promise<T> {
  return new Promise((resolve) => {
    const listen = (message: { type: string }) => {
      if (!wanted(message)) return;
      child.off('message', listen);
      resolve(message as T);
    };
    child.on('message', listen);
  });
}

/** The relay process's answer to a pull: `pulled` with the object's hash, or `failed`. */
interface PullAnswer {
  readonly type: string;
  readonly sha256?: string;
  readonly message?: string;
}

/**
 * Tells the relay process to pull the object, and waits until it stopped itself at the first
 * bytes. The answer comes wrapped: an async function returning a bare promise would wait for it.
 */
async function startFirstPull(setup: Setup): Promise<{ readonly answer: Promise<PullAnswer> }> {
  const answer = once(setup.relay, 'message').then(([message]) => message as PullAnswer);
  setup.relay.send({ type: 'pull', id: setup.id, from: setup.holderServer.url });
  await until(() => processState(setup.relay.pid!) === 'T', 'the relay process stopped at its first bytes');
  return { answer };
}

/** The pulled object's bytes (its file, once registered) in `store`. */
function registeredSha(store: ObjectStore, id: string, size: number): string {
  store.register(id, { size, contains: [] });
  return createHash('sha256').update(readFileSync(join(store.directory, id))).digest('hex');
}

test('a second puller of a large object is sent to the first, which passes it on as it arrives: the holder sends it once', async () => {
  await using setup = await setUp();
  const size = (setup.holder.status(setup.id) as { size: number }).size;
  assert.ok(size >= RELAY_MIN_BYTES);
  const { answer: first } = await startFirstPull(setup);
  const second = setup.puller.pull(setup.id, [setup.holderServer.url], fromWireFailure);
  await until(() => setup.holderServer.stats.relayed === 1, 'the holder sent the second puller to the first');
  setup.relay.kill('SIGCONT');
  const [firstDone, pulled] = await Promise.all([first, second]);
  assert.deepEqual(firstDone, { type: 'pulled', sha256: setup.sha256 }, 'the first puller has the object intact');
  assert.equal(registeredSha(setup.pullerStore, setup.id, pulled.size), setup.sha256, 'the second has it intact');
  assert.deepEqual(setup.puller.relayStats, { relayed: 1, relayFailed: 0 });
  setup.relay.send({ type: 'exit' });
  const [stats] = (await once(setup.relay, 'message')) as [{ server: DataServer['stats'] }];
  assert.deepEqual(stats.server, { sentBytes: size, relayed: 0, passedOn: 1, awaitingArrival: 0 }, 'the first puller sent it on, whole');
  await until(() => setup.holderServer.stats.sentBytes === size, 'the holder’s last write was taken');
  assert.equal(setup.holderServer.stats.sentBytes, size, 'the holder sent the object once');
});

test('a relay that dies in the middle: the puller it served finishes from the holder, intact', async () => {
  await using setup = await setUp();
  const size = (setup.holder.status(setup.id) as { size: number }).size;
  void (await startFirstPull(setup)).answer.catch(() => {});
  const second = setup.puller.pull(setup.id, [setup.holderServer.url], fromWireFailure);
  await until(() => setup.holderServer.stats.relayed === 1, 'the holder sent the second puller to the first');
  setup.relay.kill('SIGKILL');
  const pulled = await second;
  assert.equal(registeredSha(setup.pullerStore, setup.id, pulled.size), setup.sha256);
  assert.deepEqual(setup.puller.relayStats, { relayed: 0, relayFailed: 1 });
  // The holder sent it whole to the second puller, and part of it to the one that died.
  await until(() => setup.holderServer.stats.sentBytes >= size, 'the holder’s last write was taken');
  assert.ok(setup.holderServer.stats.sentBytes < 2 * size);
});

test('objects below the relay size, and pullers that relay nothing, are always sent by the holder', async () => {
  await using setup = await setUp();
  // Small: two pullers at once, the first one stopped mid-transfer of the big object meanwhile.
  const small = setup.holder.put(new Float64Array(RELAY_MIN_BYTES / 8 / 2).fill(7));
  const { answer: first } = await startFirstPull(setup);
  const plain = new ObjectPuller(TOKEN, (pulled, bytes) => setup.pullerStore.acceptIncoming(pulled, bytes));
  try {
    // A puller without a relay URL asking for the big object while the relay's transfer is stalled: sent by the holder.
    const big = await plain.pull(setup.id, [setup.holderServer.url], fromWireFailure);
    assert.equal(registeredSha(setup.pullerStore, setup.id, big.size), setup.sha256);
    setup.pullerStore.freeId(setup.id);
    const pulledSmall = await setup.puller.pull(small.id, [setup.holderServer.url], fromWireFailure);
    assert.ok(pulledSmall.size < RELAY_MIN_BYTES);
    // (small is used here too: held until its pull is done, as a dropped ref frees the object)
    assert.equal(pulledSmall.size, (setup.holder.status(small.id) as { size: number }).size);
    assert.equal(setup.holderServer.stats.relayed, 0);
    assert.deepEqual(setup.puller.relayStats, { relayed: 0, relayFailed: 0 });
  } finally {
    plain.close();
  }
  setup.relay.kill('SIGCONT');
  assert.equal((await first).type, 'pulled');
});

test('a puller sent to a relay before the relay’s own pull of it was answered waits for it to arrive there, then gets it passed on', async () => {
  await using setup = await setUp();
  // An object the holder will have (a task's result, say): pulls of it wait at the holder.
  const late = 'LateObject0000000000';
  setup.holder.expect(late);
  setup.holder.hold(late); // as a task's caller holds its result
  const relayPulled = nextMessage<PullAnswer>(setup.relay, (message) => message.type === 'pulled' || message.type === 'failed');
  setup.relay.send({ type: 'pull', id: late, from: setup.holderServer.url, stop: false });
  const probe = async (): Promise<{ pulling: boolean; server: DataServer['stats'] }> => {
    const answer = nextMessage<{ pulling: boolean; server: DataServer['stats'] }>(setup.relay, (message) => message.type === 'probe');
    setup.relay.send({ type: 'probe', id: late });
    return answer;
  };
  await until(async () => (await probe()).pulling, 'the relay is pulling it');
  // Asked of the relay directly, as a holder's relay answer would send it there.
  const second = setup.puller.pull(late, [setup.relayUrl], fromWireFailure);
  await until(async () => (await probe()).server.awaitingArrival === 1, 'the pull waits at the relay');
  // The holder gets the object now (the bytes of the big one), and answers the relay.
  const bytes = readFileSync(join(setup.holder.directory, setup.id));
  const incoming = setup.holder.acceptIncoming(late, bytes.byteLength);
  incoming.write(bytes, 0);
  incoming.seal([]);
  const [relayAnswer, pulled] = await Promise.all([relayPulled, second]);
  assert.deepEqual(relayAnswer, { type: 'pulled', sha256: setup.sha256 });
  assert.equal(registeredSha(setup.pullerStore, late, pulled.size), setup.sha256, 'passed on intact');
  const { server } = await probe();
  assert.deepEqual({ passedOn: server.passedOn, awaitingArrival: server.awaitingArrival }, { passedOn: 1, awaitingArrival: 0 });
  await until(() => setup.holderServer.stats.sentBytes === bytes.byteLength, 'the holder’s last write was taken');
  assert.equal(setup.holderServer.stats.sentBytes, bytes.byteLength, 'the holder sent it once');
});
