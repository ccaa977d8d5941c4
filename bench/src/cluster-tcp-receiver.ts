// The receiving side of the cluster suite's raw TCP peer (cluster.ts), a process of its own as
// each of Shoal's receiving nodes is. It listens on its one argument's address (default 127.0.0.1),
// port 0, and says its port; for each
// `{ bytes, file }` from the parent it replies `armed`, takes the next connection, reads `bytes`
// and discards them or, with `file`, pwrites each read at its offset into that new file (what
// Shoal's receiver does with a chunk), closes it, and replies `done`. The parent removes the file.
import { closeSync, openSync, writeSync } from 'node:fs';
import { createServer, type AddressInfo, type Socket } from 'node:net';

export interface ReceiveRequest {
  bytes: number;
  /** A new file to write into (created, must not exist); without it the bytes are discarded. */
  file?: string;
}
export type ReceiverMessage =
  | { ok: true; type: 'ready'; port: number }
  | { ok: true; type: 'armed' }
  | { ok: true; type: 'done'; received: number }
  | { ok: false; error: string };

const host = process.argv[2] ?? '127.0.0.1';
if (!process.send) throw new Error('Usage: forked by cluster.ts: cluster-tcp-receiver.js [HOST]');
const reply = (message: ReceiverMessage): void => void process.send!(message);

let expected: ReceiveRequest | undefined;

function receive(socket: Socket, { bytes, file }: ReceiveRequest): void {
  let fd: number | undefined;
  let got = 0;
  let finished = false;
  const finish = (error?: Error): void => {
    if (finished) return;
    finished = true;
    if (fd !== undefined) closeSync(fd);
    fd = undefined;
    socket.destroy();
    reply(error ? { ok: false, error: error.message } : { ok: true, type: 'done', received: got });
  };
  try {
    fd = file === undefined ? undefined : openSync(file, 'wx', 0o600);
  } catch (error) {
    finish(error as Error);
    return;
  }
  socket.on('data', (chunk: Buffer) => {
    if (finished) return;
    try {
      if (fd !== undefined) writeSync(fd, chunk, 0, chunk.length, got);
    } catch (error) {
      finish(error as Error);
      return;
    }
    got += chunk.length;
    if (got >= bytes) finish();
  });
  socket.on('error', (error) => {
    if (got < bytes) finish(error);
  });
  socket.on('close', () => {
    if (got < bytes) finish(new Error(`the connection closed after ${got} of ${bytes} bytes`));
  });
}

const server = createServer((socket) => {
  const request = expected;
  expected = undefined;
  if (!request) {
    socket.destroy();
    reply({ ok: false, error: 'a connection nobody announced' });
    return;
  }
  receive(socket, request);
});
server.listen(0, host, () => reply({ ok: true, type: 'ready', port: (server.address() as AddressInfo).port }));
process.on('message', (request: ReceiveRequest) => {
  expected = request;
  reply({ ok: true, type: 'armed' });
});
process.on('disconnect', () => process.exit(0));
