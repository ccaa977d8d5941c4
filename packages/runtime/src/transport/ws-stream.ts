import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import type { WebSocket } from 'ws';
import type { MessageStream } from './connection.js';

/**
 * While the WebSocket holds fewer bytes than this not yet handed to the kernel, `write` says
 * "go on". A remote driver's put is one message of up to 1 GiB: past this, the Connection waits.
 */
const HIGH_WATER_BYTES = 1024 * 1024;

/**
 * A WebSocket as a {@link MessageStream}: each write is one binary message, each message received
 * is one `data` chunk. The frames inside are the same as on a unix socket, so a program on a
 * machine without a node speaks the attach protocol to a node over the network unchanged.
 *
 * Built on the WebSocket's own events rather than ws's `createWebSocketStream`: that duplex never
 * emits 'close' when the peer closes (only 'end'), cannot ref or unref the socket, and adds a
 * Writable's per-write bookkeeping; the client's zero mask (attach.ts) is an option of the
 * WebSocket and works either way. `tcp` is the socket under the WebSocket, which ws keeps private:
 * a client learns it from the upgrade response; for a server-side WebSocket pass it (the upgrade
 * request's socket) if `ref`/`unref` should act, else they do nothing.
 */
export function wsStream(socket: WebSocket, tcp?: Socket): MessageStream {
  const events = new EventEmitter();
  let closed = false;
  let raw = tcp;
  socket.on('message', (data: Buffer) => events.emit('data', data));
  socket.on('error', (error) => events.emit('error', error));
  socket.on('close', () => {
    closed = true;
    events.emit('close');
  });
  socket.once('upgrade', (response) => (raw = response.socket as Socket));
  // Until open, writes wait (the ws library refuses sends before the handshake completes).
  const queued: Buffer[] = [];
  // Whether the process should be kept alive by this socket (applied once it exists).
  let referenced = true;
  const apply = () => (referenced ? raw?.ref() : raw?.unref());
  // After a failed send the WebSocket is closing: its 'close' ends the Connection, no 'drain'.
  const drained = (error?: Error) => {
    if (!error) events.emit('drain');
  };
  socket.once('open', () => {
    apply();
    for (const data of queued.splice(0)) socket.send(data);
  });
  const stream: MessageStream = {
    on: (event: string, listener: (...args: never[]) => void) => events.on(event, listener as (...args: unknown[]) => void),
    write: (data: Buffer) => {
      if (closed) return false;
      if (socket.readyState === socket.CONNECTING) {
        queued.push(data);
        return true;
      }
      if (socket.bufferedAmount + data.length < HIGH_WATER_BYTES) {
        socket.send(data);
        return true;
      }
      // ws calls back when this message is written to the socket, and so is everything before it.
      socket.send(data, drained);
      return false;
    },
    destroy: () => socket.terminate(),
    // ws sends the close frame after the messages queued before it.
    end: () => socket.close(),
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
