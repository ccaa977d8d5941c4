// What WebSocket masking costs, the reason Shoal's bulk transfers flow from the server side of
// the data connection and its remote drivers send with a zero mask: 1 GiB in 1 MiB messages on
// loopback, server -> client (never masked), client -> server masked (ws XORs every byte in
// JavaScript), and client -> server with a zero mask (ws then skips the XOR). Runs interleaved,
// median of 3 each; ratios to the server -> client run of the same round.
//   node bench/dist/ws-masking.js [--quick] [--runs=N]
import { type AddressInfo } from 'node:net';
import { WebSocket, WebSocketServer } from 'ws';
import { fmt, median, parseFlags, progress, renderTable, writeResults } from './common.js';

type Direction = 'server to client' | 'client to server, masked' | 'client to server, zero mask';
const DIRECTIONS: Direction[] = ['server to client', 'client to server, masked', 'client to server, zero mask'];
const CHUNK = 1 << 20;

/** Sends `total` bytes on `socket` in CHUNK messages, keeping at most 16 MiB buffered. */
function pump(socket: WebSocket, total: number, payload: Buffer): void {
  let sent = 0;
  const step = () => {
    while (sent < total && socket.bufferedAmount < 16 << 20) {
      socket.send(payload);
      sent += CHUNK;
    }
    if (sent < total) setImmediate(step);
  };
  step();
}

/** Resolves once `total` bytes arrived on `socket`. */
function drain(socket: WebSocket, total: number): Promise<void> {
  return new Promise((resolve) => {
    let received = 0;
    socket.on('message', (data: Buffer) => {
      received += data.length;
      if (received >= total) resolve();
    });
  });
}

/** GB/s of one transfer of `total` bytes in `direction`. */
async function transfer(direction: Direction, total: number, payload: Buffer): Promise<number> {
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false, maxPayload: 64 << 20 });
  await new Promise((resolve) => server.once('listening', resolve));
  const accepted = new Promise<WebSocket>((resolve) => server.once('connection', resolve));
  const client = new WebSocket(`ws://127.0.0.1:${(server.address() as AddressInfo).port}`, {
    perMessageDeflate: false,
    maxPayload: 64 << 20,
    ...(direction === 'client to server, zero mask' ? { generateMask: (mask: Buffer) => void mask.fill(0) } : {}),
  });
  await new Promise((resolve) => client.once('open', resolve));
  const peer = await accepted;
  const [sender, receiver] = direction === 'server to client' ? [peer, client] : [client, peer];
  const arrived = drain(receiver, total);
  const started = performance.now();
  pump(sender, total, payload);
  await arrived;
  const seconds = (performance.now() - started) / 1000;
  client.terminate();
  await new Promise((resolve) => server.close(resolve));
  return total / seconds / 1e9;
}

const flags = parseFlags(process.argv.slice(2), []);
const quick = flags.quick === true;
const runs = flags.runs ?? (quick ? 1 : 3);
const total = quick ? 64 << 20 : 1 << 30;
const payload = Buffer.alloc(CHUNK, 7);
const results = new Map<Direction, number[]>(DIRECTIONS.map((direction) => [direction, []]));
for (let run = 0; run < runs; run++) {
  for (const direction of DIRECTIONS) {
    progress(`ws masking: run ${run + 1}/${runs}, ${direction}`);
    results.get(direction)!.push(await transfer(direction, total, payload));
  }
}
progress('');
const reference = median(results.get('server to client')!);
const rows = DIRECTIONS.map((direction) => {
  const gbps = median(results.get(direction)!);
  return [direction, fmt(gbps), fmt(gbps / reference)];
});
process.stdout.write(`WebSocket throughput, ${total / (1 << 20)} MiB in 1 MiB messages on loopback, median of ${runs}\n`);
process.stdout.write(`${renderTable(['', 'GB/s', '÷ server to client'], rows)}\n`);
const file = writeResults(quick ? 'ws-masking-quick' : 'ws-masking', {
  total,
  chunk: CHUNK,
  runs,
  gbps: Object.fromEntries(DIRECTIONS.map((direction) => [direction, results.get(direction)])),
});
process.stdout.write(`wrote ${file}\n`);
