import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { test } from 'node:test';
import { FrameDecoder } from '@shoal/protocol';
import { Connection, type MessageStream } from './connection.js';

type Message = { n: number; pad?: string };

/** A stream whose buffer is "full" after `capacity` writes, until the test drains it. */
class FakeStream extends EventEmitter implements MessageStream {
  readonly writes: Buffer[] = [];
  /** Writes accepted while the buffer was full: a Connection that honours backpressure makes none. */
  overruns = 0;
  #full = false;

  constructor(readonly capacity: number) {
    super();
  }

  write(data: Buffer): boolean {
    if (this.#full) this.overruns++;
    this.writes.push(data);
    this.#full = this.writes.length % this.capacity === 0;
    return !this.#full;
  }

  drain(): void {
    this.#full = false;
    this.emit('drain');
  }

  messages(): Message[] {
    return new FrameDecoder().push(Buffer.concat(this.writes)) as Message[];
  }

  destroy(): void {}
  ref(): void {}
  unref(): void {}
}

function over(stream: FakeStream): Connection<Message, Message> {
  return new Connection<Message, Message>(stream, { decode: (raw) => raw as Message, message: () => {}, close: () => {} });
}

test('messages of one tick are written in one write', async () => {
  const stream = new FakeStream(100);
  const connection = over(stream);
  for (let n = 0; n < 1000; n++) connection.send({ n });
  await nextTurn();
  assert.equal(stream.writes.length, 1);
  assert.deepEqual(stream.messages().map((message) => message.n), [...Array(1000).keys()]);
});

test('after write() returns false nothing is written until drain, and nothing is lost or reordered', async () => {
  const stream = new FakeStream(1);
  const connection = over(stream);
  connection.send({ n: 0 });
  await nextTurn();
  assert.equal(stream.writes.length, 1);
  // The stream is full: these wait, across ticks.
  connection.send({ n: 1 });
  await nextTurn();
  connection.send({ n: 2 });
  connection.send({ n: 3 });
  await nextTurn();
  connection.flush();
  assert.equal(stream.writes.length, 1, 'nothing written while the stream is full');
  stream.drain();
  assert.equal(stream.writes.length, 2, 'drain writes what waited, in one write');
  connection.send({ n: 4 });
  await nextTurn();
  stream.drain();
  await nextTurn();
  assert.equal(stream.overruns, 0);
  assert.deepEqual(stream.messages().map((message) => message.n), [0, 1, 2, 3, 4]);
});

test('large batches go out in parts, each after the previous one drained', async () => {
  const stream = new FakeStream(1);
  const connection = over(stream);
  const pad = 'x'.repeat(300 * 1024);
  const big = 'y'.repeat(3 * 1024 * 1024);
  // Small frames around large ones, all in one tick: more than one write's worth.
  const sent: Message[] = [{ n: 0 }, { n: 1, pad }, { n: 2, pad: big }, { n: 3 }, { n: 4, pad }, { n: 5, pad }, { n: 6, pad }, { n: 7, pad }];
  for (const message of sent) connection.send(message);
  await nextTurn();
  let drains = 0;
  while (stream.writes.length > drains) {
    drains++;
    stream.drain();
    await nextTurn();
  }
  assert.equal(stream.overruns, 0);
  assert.ok(stream.writes.length >= 3, `expected several writes, got ${stream.writes.length}`);
  assert.ok(
    stream.writes.some((data) => data.length > 3 * 1024 * 1024 && data.length < 3 * 1024 * 1024 + 64),
    'the large frame is written alone',
  );
  assert.deepEqual(stream.messages(), sent);
});

/** A socket-like stream that reports its backlog: "full" past a small mark, like net.Socket's 16 KiB. */
class BackloggedStream extends FakeStream {
  writableLength = 0;
  override write(data: Buffer): boolean {
    super.write(data);
    this.writableLength += data.length;
    return this.writableLength < 16 * 1024;
  }
}

test('a stream past its small high-water mark but with a modest backlog keeps being written', async () => {
  const stream = new BackloggedStream(1_000_000);
  const connection = over(stream);
  connection.send({ n: 0, pad: 'x'.repeat(32 * 1024) });
  await nextTurn();
  connection.send({ n: 1 });
  await nextTurn();
  assert.equal(stream.writes.length, 2, 'the second tick is written without waiting for drain');
});

test('a stream whose backlog is large waits for drain', async () => {
  const stream = new BackloggedStream(1_000_000);
  const connection = over(stream);
  stream.writableLength = 64 * 1024 * 1024;
  connection.send({ n: 0 });
  await nextTurn();
  connection.send({ n: 1 });
  await nextTurn();
  assert.equal(stream.writes.length, 1, 'nothing more until drain');
  stream.writableLength = 0;
  stream.drain();
  assert.equal(stream.writes.length, 2);
  assert.deepEqual(stream.messages().map((message) => message.n), [0, 1]);
});

test('end() writes what is queued, even past backpressure, then ends the stream', async () => {
  const stream = new FakeStream(1) as FakeStream & { ended?: boolean; end?: () => void };
  stream.end = () => (stream.ended = true);
  const connection = over(stream);
  connection.send({ n: 0 });
  await nextTurn(); // the stream is now "full"
  connection.send({ n: 1 });
  connection.send({ n: 2 });
  connection.end();
  assert.equal(stream.ended, true);
  assert.deepEqual(stream.messages().map((message) => message.n), [0, 1, 2]);
  connection.send({ n: 3 });
  await nextTurn();
  assert.deepEqual(stream.messages().map((message) => message.n), [0, 1, 2], 'nothing is sent after end()');
});
