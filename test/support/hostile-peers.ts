// Hostile WebSocket peers for the tests of issue 18 (hostile-auth, hostile-client, fuzz): messages
// built to make a decoder blow up, sent with or without the token, and upgrades from a web page.
// A peer without the token is refused at the upgrade (401), so it never gets to send them.
import { Packr } from 'msgpackr';
import { WebSocket } from 'ws';

/**
 * `bytes` of one msgpack array of Error extensions: each 14 bytes makes an Error in the full
 * decoder (16 MiB of them took it 6 s and 800 MB of heap).
 */
export function errorRecords(bytes: number): Buffer {
  const one = new Packr({ moreTypes: true, useRecords: false }).pack(new Error(''));
  const count = Math.floor((bytes - 5) / one.length);
  const message = Buffer.alloc(5 + count * one.length);
  message[0] = 0xdd; // array32
  message.writeUInt32BE(count, 1);
  for (let i = 0; i < count; i++) one.copy(message, 5 + i * one.length);
  return message;
}

export interface Refusal {
  /** The upgrade's HTTP status (101 if it was accepted: then `message` was sent). */
  readonly status: number;
  /** Whether the WebSocket opened and `message` went out. */
  readonly sent: boolean;
  /** From the upgrade request to the answer. */
  readonly refusedAfterMs: number;
}

/**
 * Tries to send `message` on a fresh connection whose upgrade carries `token` (none when
 * undefined); resolves with the server's answer to the upgrade, after sending `message` if it
 * was accepted (and then once the server closed the connection).
 */
export function sendUnauthenticated(url: string, message: Buffer, token?: string): Promise<Refusal> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const socket = new WebSocket(url, { perMessageDeflate: false, headers: token === undefined ? {} : { 'x-shoal-token': token } });
    socket.once('unexpected-response', (_request, response) => {
      resolve({ status: response.statusCode ?? 0, sent: false, refusedAfterMs: performance.now() - started });
      response.destroy();
      socket.terminate();
    });
    socket.once('open', () => socket.send(message));
    socket.once('close', () => resolve({ status: 101, sent: true, refusedAfterMs: performance.now() - started }));
    socket.once('error', (error) => {
      if (socket.readyState !== WebSocket.CLOSED && socket.readyState !== WebSocket.CLOSING) reject(error);
    });
  });
}

/** The HTTP status a WebSocket upgrade to `url` gets (101 when it opens). */
export function upgradeStatus(url: string, headers: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, { perMessageDeflate: false, headers });
    socket.once('open', () => {
      socket.close();
      resolve(101);
    });
    socket.once('unexpected-response', (_request, response) => {
      resolve(response.statusCode ?? 0);
      response.destroy();
    });
    socket.once('error', (error) => {
      if (!/Unexpected server response/.test(error.message)) reject(error);
    });
  });
}

/**
 * Connects to `url` with `token`, says `hello`, waits for the server's first answer (its welcome),
 * then sends `message`: what a peer holding the token can do. Resolves with the close code when
 * the server closes the connection, or `open` if it still holds it `waitMs` after the message.
 */
export function sendAuthenticated(url: string, token: string, hello: unknown, message: Buffer, waitMs = 3000): Promise<number | 'open'> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, { perMessageDeflate: false, headers: { 'x-shoal-token': token } });
    let timer: NodeJS.Timeout | undefined;
    socket.once('open', () => socket.send(new Packr({ useRecords: false }).pack(hello)));
    socket.once('message', () =>
      socket.send(message, () => {
        timer = setTimeout(() => {
          resolve('open');
          socket.terminate();
        }, waitMs);
      }),
    );
    socket.once('close', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
    socket.once('error', (error) => {
      if (socket.readyState !== WebSocket.CLOSED && socket.readyState !== WebSocket.CLOSING) reject(error);
    });
  });
}
