import { MAX_OUTPUT_CHARS, type OutputStream, type WorkerToNode } from '@shoal/protocol';

/**
 * Makes what this worker's tasks write to `process.stdout` and `process.stderr` (console.log,
 * console.error, warnings) go to its node as `output` messages, on the connection that carries
 * the task's result, so the node knows which task wrote each line and passes it to the program
 * that submitted it (node/task-output.ts). Writes to the file descriptors themselves (a child
 * process inheriting them) bypass it and land on the node's own stdout/stderr.
 */
export function forwardOutput(connection: { send(message: WorkerToNode): void }): void {
  for (const [stream, target] of [
    ['out', process.stdout],
    ['err', process.stderr],
  ] as const) {
    target.write = function write(chunk: string | Uint8Array, encoding?: BufferEncoding | ((error?: Error | null) => void), done?: (error?: Error | null) => void): boolean {
      const callback = typeof encoding === 'function' ? encoding : done;
      const charset = typeof encoding === 'string' ? encoding : undefined;
      const text = typeof chunk === 'string' && (charset === undefined || charset === 'utf8' || charset === 'utf-8') ? chunk : Buffer.from(chunk as string, charset).toString('utf8');
      send(connection, stream, text);
      if (callback) process.nextTick(callback);
      return true;
    } as typeof target.write;
  }
}

function send(connection: { send(message: WorkerToNode): void }, stream: OutputStream, text: string): void {
  for (let start = 0; start < text.length; start += MAX_OUTPUT_CHARS) {
    connection.send({ type: 'output', stream, text: text.slice(start, start + MAX_OUTPUT_CHARS) });
  }
}
