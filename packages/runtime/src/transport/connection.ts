import { FrameDecoder, encodeFrame } from '@shoal/protocol';

/**
 * What a {@link Connection} runs over: a local stream socket (`net.Socket`), or a WebSocket
 * adapted by `wsStream` for programs that join a cluster from a machine without a node.
 */
export interface MessageStream {
  on(event: 'data', listener: (chunk: Buffer) => void): unknown;
  on(event: 'error', listener: (error: Error) => void): unknown;
  on(event: 'close', listener: () => void): unknown;
  /** The stream took everything written before it returned false: write again. */
  on(event: 'drain', listener: () => void): unknown;
  /** Returns false when the stream's buffer is full: nothing more should be written until 'drain'. */
  write(data: Buffer): boolean;
  /** Bytes written and not yet handed to the kernel, where the stream knows (net.Socket does). */
  readonly writableLength?: number;
  destroy(): unknown;
  /** Closes after what was written has gone out (a socket's FIN, a WebSocket's close frame). */
  end?(): unknown;
  /** Whether the stream keeps the process alive. */
  ref(): unknown;
  unref(): unknown;
  setNoDelay?(noDelay?: boolean): unknown;
}

/**
 * Frames sent in one tick are joined into one write up to this many bytes; a larger frame (a big
 * put from a remote driver, up to 1 GiB) is written as it is, not copied into a bigger buffer.
 */
const BATCH_BYTES = 1024 * 1024;
/**
 * A local socket's write() says "full" past its 16 KiB high-water mark, which thousands of small
 * task messages pass in one tick. Waiting for 'drain' each time leaves the peer idle while the
 * kernel empties the buffer (measured: -6% task throughput), so writing stops only once this
 * much is queued in the stream; a stream that does not report its backlog stops at its "full".
 */
const BACKLOG_BYTES = 8 * 1024 * 1024;

/**
 * A message connection over a stream: length-prefixed msgpackr frames, with every
 * message sent in the same tick written in one `write` (batching matters when thousands of small
 * task messages are queued at once). When the stream's buffer is full (`write` returned false),
 * frames wait here, in order, until it drains, so a sender of large objects does not pile them
 * up in the stream's memory.
 *
 * @example
 * ```ts
 * const connection = new Connection<NodeToWorker, WorkerToNode>(connect(path), {
 *   decode: decodeNodeMessage,
 *   message: (message) => client.handle(message),
 *   close: (error) => client.closed(error),
 * });
 * connection.send({ type: 'attach', pid: process.pid });
 * ```
 */
export class Connection<In, Out> {
  readonly socket: MessageStream;
  readonly #decoder: FrameDecoder;
  readonly #onClose: (error?: Error) => void;
  readonly #flushSoon = () => this.flush();
  #queue: Buffer[] = [];
  #queuedBytes = 0;
  #flushScheduled = false;
  /** The stream's buffer is full: wait for 'drain' before writing more. */
  #blocked = false;
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
    this.#onClose = handlers.close;
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
    socket.on('drain', () => {
      this.#blocked = false;
      this.flush();
    });
    socket.on('error', (error) => this.destroy(error));
    socket.on('close', () => {
      if (!this.#closed) {
        this.#closed = true;
        handlers.close();
      }
    });
  }

  get closed(): boolean {
    return this.#closed;
  }

  send(message: Out): void {
    if (this.#closed) return;
    const frame = encodeFrame(message);
    this.#queue.push(frame);
    this.#queuedBytes += frame.length;
    // While blocked, 'drain' flushes.
    if (!this.#flushScheduled && !this.#blocked) {
      this.#flushScheduled = true;
      process.nextTick(this.#flushSoon);
    }
  }

  /**
   * Writes what is queued: as one write when it is small (the usual case), else in batches of
   * at most BATCH_BYTES, stopping when the stream is full; the rest waits for 'drain'.
   */
  flush(): void {
    this.#flushScheduled = false;
    if (this.#queue.length === 0 || this.#closed || this.#blocked) return;
    if (this.#queuedBytes <= BATCH_BYTES || this.#queue.length === 1) {
      const data = this.#queue.length === 1 ? this.#queue[0]! : Buffer.concat(this.#queue, this.#queuedBytes);
      this.#queue = [];
      this.#queuedBytes = 0;
      this.#blocked = this.#full(this.socket.write(data));
      return;
    }
    this.#writeBatches();
  }

  #writeBatches(): void {
    const queue = this.#queue;
    let start = 0;
    while (start < queue.length && !this.#blocked) {
      let end = start + 1;
      let bytes = queue[start]!.length;
      while (end < queue.length && bytes + queue[end]!.length <= BATCH_BYTES) bytes += queue[end++]!.length;
      const data = end - start === 1 ? queue[start]! : Buffer.concat(queue.slice(start, end), bytes);
      this.#queuedBytes -= bytes;
      start = end;
      this.#blocked = this.#full(this.socket.write(data));
    }
    this.#queue = start === queue.length ? [] : queue.slice(start);
  }

  /** Whether to wait for 'drain' after a write that returned `written`. */
  #full(written: boolean): boolean {
    if (written) return false;
    return (this.socket.writableLength ?? Number.POSITIVE_INFINITY) >= BACKLOG_BYTES;
  }

  /**
   * Closes gracefully: everything queued is written (past backpressure: the stream buffers it),
   * then the stream ends once it has gone out. A stream without `end` is destroyed.
   */
  end(): void {
    if (this.#closed) return;
    if (this.#queue.length > 0) {
      this.socket.write(this.#queue.length === 1 ? this.#queue[0]! : Buffer.concat(this.#queue, this.#queuedBytes));
      this.#queue = [];
      this.#queuedBytes = 0;
    }
    this.#closed = true;
    if (this.socket.end) this.socket.end();
    else this.socket.destroy();
    this.#onClose();
  }

  destroy(error?: Error): void {
    if (this.#closed) return;
    this.#closed = true;
    this.socket.destroy();
    this.#onClose(error);
  }
}
