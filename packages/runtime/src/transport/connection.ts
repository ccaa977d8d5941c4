import { FrameDecoder, encodeFrame } from '@shoal/protocol';

/**
 * What a {@link Connection} runs over: a local stream socket (`net.Socket`), or a WebSocket
 * adapted by `wsStream` for programs that join a cluster from a machine without a node.
 */
export interface MessageStream {
  on(event: 'data', listener: (chunk: Buffer) => void): unknown;
  on(event: 'error', listener: (error: Error) => void): unknown;
  on(event: 'close', listener: () => void): unknown;
  write(data: Buffer): unknown;
  destroy(): unknown;
  /** Whether the stream keeps the process alive. */
  ref(): unknown;
  unref(): unknown;
  setNoDelay?(noDelay?: boolean): unknown;
}

/**
 * A message connection over a stream: length-prefixed msgpackr frames, with every
 * message sent in the same tick written in one `write` (batching matters when thousands of small
 * task messages are queued at once).
 */
export class Connection<In, Out> {
  readonly socket: MessageStream;
  readonly #decoder: FrameDecoder;
  #queue: Buffer[] = [];
  #queuedBytes = 0;
  #flushScheduled = false;
  #closed = false;

  constructor(
    socket: MessageStream,
    handlers: {
      message: (message: In) => void;
      close: (error?: Error) => void;
      decode: (raw: unknown) => In;
    },
    maxFrameBytes?: number,
  ) {
    this.socket = socket;
    this.#decoder = new FrameDecoder(maxFrameBytes);
    socket.setNoDelay?.(true);
    socket.on('data', (chunk: Buffer) => {
      let messages: unknown[];
      try {
        messages = this.#decoder.push(chunk);
      } catch (error) {
        this.destroy(error as Error);
        return;
      }
      for (const raw of messages) {
        if (this.#closed) return;
        let message: In;
        try {
          message = handlers.decode(raw);
        } catch (error) {
          this.destroy(error as Error);
          return;
        }
        try {
          handlers.message(message);
        } catch (error) {
          // What one peer sent must not take the process down: only its connection goes.
          this.destroy(error as Error);
          return;
        }
      }
    });
    socket.on('error', (error) => this.destroy(error));
    socket.on('close', () => {
      if (!this.#closed) {
        this.#closed = true;
        handlers.close();
      }
    });
    this.#onClose = handlers.close;
  }

  readonly #onClose: (error?: Error) => void;

  get closed(): boolean {
    return this.#closed;
  }

  send(message: Out): void {
    if (this.#closed) return;
    const frame = encodeFrame(message);
    this.#queue.push(frame);
    this.#queuedBytes += frame.length;
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      process.nextTick(() => this.flush());
    }
  }

  /** Writes everything queued now, as one write. */
  flush(): void {
    this.#flushScheduled = false;
    if (this.#queue.length === 0 || this.#closed) return;
    const data = this.#queue.length === 1 ? this.#queue[0]! : Buffer.concat(this.#queue, this.#queuedBytes);
    this.#queue = [];
    this.#queuedBytes = 0;
    this.socket.write(data);
  }

  destroy(error?: Error): void {
    if (this.#closed) return;
    this.#closed = true;
    this.socket.destroy();
    this.#onClose(error);
  }
}
