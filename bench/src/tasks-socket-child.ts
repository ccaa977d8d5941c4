// Child of the transport comparison in tasks.ts: connects to the unix socket in argv[2] and echoes
// every frame it receives. argv[3] is `batch` (replies written in the same tick go out in one
// write, as Shoal's Connection does) or `nobatch` (one write per reply).
import { connect } from 'node:net';
import { FramedLink } from './framed-link.js';

const [path, mode] = process.argv.slice(2);
if (path === undefined || (mode !== 'batch' && mode !== 'nobatch')) {
  throw new Error('usage: tasks-socket-child.js <socket path> batch|nobatch');
}
const socket = connect(path);
const link = new FramedLink(socket, mode === 'batch');
// The decoded message (its payload a Buffer viewing the received bytes) is encoded again: the
// same decode + encode work the IPC children do.
link.onMessage = (message) => link.send(message);
// The parent closing the socket is the signal to go; no process is left behind.
socket.on('close', () => process.exit(0));
socket.on('error', () => process.exit(1));
