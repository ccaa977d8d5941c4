// How much heap decoding one authenticated message can make per byte of input (issue 18: "no
// extension type can turn a byte into kilobytes of heap"). The full decoder runs before a
// message's schema, so what it builds depends on the bytes, not on the message's type: each
// boundary's message is filled to its limit (head 16 MiB, data server 1 MiB, a local frame
// 16 MiB of its 256) with one worst case at a time. Each row is decoded by @shoal/protocol's
// decodeMessage (the extension check, then msgpackr) and, in the same run, by msgpackr alone
// with the same options (what decodeMessage was before the check): heap after decode, ratio to
// the input. Last, what the check costs on the task path (ns per message, both decoders).
//   node --expose-gc bench/dist/message-amplification.js [--quick]
import { DATA_SERVER_MAX_PAYLOAD_BYTES, HEAD_MAX_PAYLOAD_BYTES, checkMessageBytes, decodeMessage, encodeMessage } from '@shoal/protocol';
import { Packr } from 'msgpackr';
import { fmt, fmtInt, gc, median, parseFlags, renderTable, writeResults } from './common.js';

const flags = parseFlags(process.argv.slice(2), []);
const quick = flags.quick;
const MiB = 1 << 20;
const unchecked = new Packr({ useRecords: false, moreTypes: false, bundleStrings: false });
const more = new Packr({ moreTypes: true, useRecords: false });

/** Boundaries, the message each carries most, and the size a message may have there. */
const BOUNDARIES: [string, string, number][] = [
  ['head', 'heartbeat', HEAD_MAX_PAYLOAD_BYTES],
  ['data server', 'pull', DATA_SERVER_MAX_PAYLOAD_BYTES],
  ['local frame', 'done', 16 * MiB],
];

/** One value, `count` times, as the array field `fill` of a message of `type`. */
function filled(type: string, one: Uint8Array, bytes: number): Buffer {
  const head = encodeMessage({ type, fill: null });
  const count = Math.floor((bytes - head.length - 5) / one.length);
  const out = Buffer.alloc(head.length - 1 + 5 + count * one.length);
  head.copy(out, 0, 0, head.length - 1); // all but the nil of `fill`
  let at = head.length - 1;
  out[at++] = 0xdd;
  out.writeUInt32BE(count, at);
  at += 4;
  for (let i = 0; i < count; i++, at += one.length) out.set(one, at);
  return out;
}

const WORST: [string, (type: string, bytes: number) => Buffer][] = [
  ['Error extensions (0x65)', (type, bytes) => filled(type, Buffer.from([0xd4, 0x65, 0x00, 0x90]), bytes)],
  ['Set extensions (0x73)', (type, bytes) => filled(type, Buffer.from([0xd4, 0x73, 0x00, 0x90]), bytes)],
  ['Shoal tags (0x53)', (type, bytes) => filled(type, Buffer.from([0xd4, 0x53, 0x00, 0x90]), bytes)],
  ['typed arrays (0x74)', (type, bytes) => filled(type, more.pack(new Uint8Array(1)), bytes)],
  ['empty maps', (type, bytes) => filled(type, Buffer.from([0x80]), bytes)],
  ['empty arrays', (type, bytes) => filled(type, Buffer.from([0x90]), bytes)],
  ['nested arrays', (type, bytes) => filled(type, Buffer.alloc(31, 0x91).fill(0xc0, 30), bytes)],
  ['one-key maps', (type, bytes) => filled(type, Buffer.from([0x81, 0xa1, 0x6b, 0xc0]), bytes)],
  ['long string', (type, bytes) => encodeMessage({ type, fill: 'é'.repeat(Math.floor((bytes - 64) / 2)) })],
  ['binary data', (type, bytes) => encodeMessage({ type, fill: Buffer.alloc(bytes - 64) })],
];

/** Heap (bytes) held right after decoding `bytes`, with the decoded value alive; `refused` when it throws. */
function heapAfter(decode: (bytes: Uint8Array) => unknown, bytes: Uint8Array): number | 'refused' {
  gc?.();
  const before = process.memoryUsage().heapUsed;
  let value: unknown;
  try {
    value = decode(bytes);
  } catch {
    return 'refused';
  }
  const used = process.memoryUsage().heapUsed - before;
  if (value === Symbol.for('never')) throw new Error('unreachable: keeps the value alive until here');
  return used;
}

const rows: string[][] = [];
const report: Record<string, unknown>[] = [];
for (const [boundary, type, limit] of BOUNDARIES) {
  const size = quick ? Math.min(limit, MiB) : limit;
  for (const [kind, make] of WORST) {
    const bytes = make(type, size);
    const before = heapAfter((b) => unchecked.unpack(b), bytes);
    const after = heapAfter(decodeMessage, bytes);
    const ratio = (heap: number | 'refused') => (heap === 'refused' ? 'refused' : fmt(heap / bytes.length));
    const mb = (heap: number | 'refused') => (heap === 'refused' ? 'refused' : fmt(heap / MiB));
    rows.push([`${boundary} \`${type}\`: ${kind}`, fmtInt(bytes.length), mb(before), ratio(before), mb(after), ratio(after)]);
    report.push({ boundary, type, kind, inputBytes: bytes.length, heapBefore: before, heapAfter: after });
  }
}
process.stdout.write(`Heap after decoding one message filled with a worst case (MiB; ratio = heap bytes per input byte)\n`);
process.stdout.write(`${renderTable(['message', 'input bytes', 'msgpackr alone', 'ratio', 'decodeMessage', 'ratio'], rows)}\n\n`);

// The check's cost on the messages of the task path.
const taskPath = {
  execute: { type: 'execute', taskId: 4711, returnId: 'Zq3kP9xT2mWv8LcR0001', fn: { hash: '9f2c4e1ab03d77e5', name: 'add' }, args: [{ value: Buffer.alloc(24, 1) }, { ref: 'Zq3kP9xT2mWv8LcR0002', owner: 'K3mX9qLp2ZtA' }] },
  done: { type: 'done', taskId: 4711, result: { size: 24, bytes: Buffer.alloc(24, 2), contains: [] } },
};
const n = quick ? 20_000 : 500_000;
const timed = (decode: (bytes: Uint8Array) => unknown, bytes: Uint8Array) => {
  const start = process.hrtime.bigint();
  for (let i = 0; i < n; i++) decode(bytes);
  return Number(process.hrtime.bigint() - start) / n;
};
const costRows = Object.entries(taskPath).map(([type, message]) => {
  const bytes = encodeMessage(message);
  const alone: number[] = [];
  const checked: number[] = [];
  const check: number[] = [];
  for (let run = 0; run < 7; run++) {
    alone.push(timed((b) => unchecked.unpack(b), bytes));
    checked.push(timed(decodeMessage, bytes));
    check.push(timed(checkMessageBytes, bytes));
  }
  return [type, fmtInt(bytes.length), fmt(median(alone)), fmt(median(checked)), fmt(median(check))];
});
process.stdout.write(`Decoding a task-path message, ${n} times, median of 7 runs (ns/message)\n`);
process.stdout.write(`${renderTable(['message', 'bytes', 'msgpackr alone', 'decodeMessage', 'the check alone'], costRows)}\n`);
const file = writeResults(quick ? 'message-amplification-quick' : 'message-amplification', { date: new Date().toISOString(), rows: report, taskPath: costRows });
process.stdout.write(`wrote ${file}\n`);
