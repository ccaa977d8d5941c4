// A message link over a stream socket with @shoal/protocol's length-prefixed msgpackr frames,
// used by the transport comparison in tasks.ts (parent side) and tasks-socket-child.ts.
//
// It mirrors what packages/runtime/src/transport/connection.ts does (frames sent in the same tick go out in
// one write) without the runtime's message validation, so the comparison measures the transport
// and not Shoal's scheduler. `batch: false` writes each frame on its own, to show what batching
// is worth.
import type { Socket } from 'node:net';
import { FrameDecoder, encodeFrame } from '@shoal/protocol';

export class FramedLink {
  readonly #socket: Socket;
  readonly #batch: boolean;
  readonly #decoder = new FrameDecoder();
  #queue: Buffer[] = [];
  #queuedBytes = 0;
  #flushScheduled = false;
  onMessage: (message: unknown) => void = () => {};

  constructor(socket: Socket, batch = true) {
    this.#socket = socket;
    this.#batch = batch;
    // Nagle does not apply to unix sockets, but the runtime sets it too; keep the same socket set-up.
    socket.setNoDelay?.(true);
    socket.on('data', (chunk: Buffer) => {
      for (const message of this.#decoder.push(chunk)) this.onMessage(message);
    });
  }

  send(message: unknown): void {
    const frame = encodeFrame(message);
    if (!this.#batch) {
      this.#socket.write(frame);
      return;
    }
    this.#queue.push(frame);
    this.#queuedBytes += frame.length;
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      process.nextTick(() => this.#flush());
    }
  }

  #flush(): void {
    this.#flushScheduled = false;
    if (this.#queue.length === 0) return;
    const data = this.#queue.length === 1 ? this.#queue[0]! : Buffer.concat(this.#queue, this.#queuedBytes);
    this.#queue = [];
    this.#queuedBytes = 0;
    this.#socket.write(data);
  }
}
