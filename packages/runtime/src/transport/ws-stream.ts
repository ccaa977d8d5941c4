import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { WebSocket } from 'ws';
import type { MessageStream } from './connection.js';

/**
 * A WebSocket as a {@link MessageStream}: each write is one binary message, each message received
 * is one `data` chunk. The frames inside are the same as on a unix socket, so a program on a
 * machine without a node speaks the attach protocol to a node over the network unchanged.
 */
export function wsStream(socket: WebSocket): MessageStream {
  const events = new EventEmitter();
  let closed = false;
  const tcp = () => (socket as unknown as { _socket?: Socket })._socket;
  socket.on('message', (data: Buffer) => events.emit('data', data));
  socket.on('error', (error) => events.emit('error', error));
  socket.on('close', () => {
    closed = true;
    events.emit('close');
  });
  // Until open, writes wait (the ws library refuses sends before the handshake completes).
  const queued: Buffer[] = [];
  // Whether the process should be kept alive by this socket (applied once it exists).
  let referenced = true;
  const apply = () => (referenced ? tcp()?.ref() : tcp()?.unref());
  socket.once('open', () => {
    apply();
    for (const data of queued.splice(0)) socket.send(data);
  });
  const stream: MessageStream = {
    on: (event: string, listener: (...args: never[]) => void) => events.on(event, listener as (...args: unknown[]) => void),
    write: (data: Buffer) => {
      if (closed) return false;
      if (socket.readyState === WebSocket.CONNECTING) queued.push(data);
      else socket.send(data);
      return true;
    },
    destroy: () => socket.terminate(),
    ref: () => {
      referenced = true;
      apply();
    },
    unref: () => {
      referenced = false;
      apply();
    },
  };
  return stream;
}
