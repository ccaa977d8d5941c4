// The sending side of the cluster suite's raw TCP peer (cluster.ts), a process of its own as
// Shoal's sending node is: on each `{ targets, bytes }` from the parent it connects to every
// target (host and port) and writes `bytes` to each at once, from one preallocated buffer (every page
// touched before, like a sealed object's) in 1 MiB writes, waiting for 'drain' whenever a socket
// asks to; then it closes them and replies.
import { once } from 'node:events';
import { connect } from 'node:net';

/** The same size as Shoal's chunk messages. */
const WRITE_BYTES = 1 << 20;

export interface SendRequest {
  targets: { host: string; port: number }[];
  bytes: number;
}
export type SendReply = { ok: true; sent: number } | { ok: false; error: string };

const capacity = Number(process.argv[2]);
if (!Number.isSafeInteger(capacity) || capacity < 1 || !process.send) throw new Error('Usage: forked by cluster.ts: cluster-tcp-sender.js BYTES');
const source = Buffer.allocUnsafeSlow(capacity).fill(1);

async function sendTo({ host, port }: SendRequest['targets'][number], bytes: number): Promise<void> {
  const socket = connect({ port, host, noDelay: true });
  try {
    await once(socket, 'connect');
    for (let offset = 0; offset < bytes; offset += WRITE_BYTES) {
      if (!socket.write(source.subarray(offset, Math.min(bytes, offset + WRITE_BYTES)))) await once(socket, 'drain');
    }
    socket.end();
    await once(socket, 'finish');
  } finally {
    socket.destroySoon();
  }
}

async function send({ targets, bytes }: SendRequest): Promise<number> {
  if (bytes > capacity) throw new RangeError(`Expected at most ${capacity} bytes, got ${bytes}`);
  await Promise.all(targets.map((target) => sendTo(target, bytes)));
  return bytes * targets.length;
}

process.on('message', (request: SendRequest) => {
  send(request).then(
    (sent) => process.send!({ ok: true, sent } satisfies SendReply),
    (error: unknown) => process.send!({ ok: false, error: error instanceof Error ? error.message : String(error) } satisfies SendReply),
  );
});
process.on('disconnect', () => process.exit(0));
process.send({ ready: true });
