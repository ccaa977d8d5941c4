// A program attached to a node's unix socket by hand, sending whatever a test tells it to (the
// attach-hostile, hostile-client and fuzz tests).
import { connect, type Socket } from 'node:net';
import { FrameDecoder, encodeFrame } from '@shoal/protocol';
import { LIVENESS_MS } from '../runtime-helpers.js';

/** A program attached to the node's socket by hand, sending whatever it is told to. */
export async function attachRaw(socketPath: string) {
  const socket: Socket = connect(socketPath);
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  const decoder = new FrameDecoder();
  const received: Record<string, unknown>[] = [];
  let notify = () => {};
  socket.on('data', (chunk) => {
    received.push(...(decoder.push(chunk) as Record<string, unknown>[]));
    notify();
  });
  socket.on('error', () => {});
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  const client = {
    socket,
    closed,
    send: (message: unknown) => socket.write(encodeFrame(message)),
    /** The next message of `type` (a liveness bound, not a timing assertion). */
    async next(type: string): Promise<Record<string, unknown>> {
      const deadline = Date.now() + LIVENESS_MS;
      for (;;) {
        const index = received.findIndex((message) => message.type === type);
        if (index >= 0) return received.splice(index, 1)[0]!;
        if (Date.now() > deadline || socket.destroyed) throw new Error(`no \`${type}\` message came`);
        await new Promise<void>((resolve) => {
          notify = resolve;
          setTimeout(resolve, 50);
        });
      }
    },
  };
  client.send({ type: 'attach', pid: process.pid });
  await client.next('welcome');
  return client;
}
