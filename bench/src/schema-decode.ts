// What validating a message costs on the task path, to choose the schema library of
// @shoal/protocol: msgpackr bytes of an 'execute', 'done', 'submit' and 'refs' message (as a
// node and its workers exchange them) decoded and validated N times: with valibot schemas of the
// same fields, with the hand decoder the protocol had before (which checked `type` only), and
// with @shoal/protocol's own decoder (typebox, compiled) as the node and its workers run it.
// Rounds alternate the decoders. The table shows medians in ns per message and the ratio to unpacking alone.
//   node bench/dist/schema-decode.js [--quick] [--runs=N] [--n=N]
import { decodeNodeMessage, decodeWorkerMessage } from '@shoal/protocol';
import { Packr } from 'msgpackr';
import * as v from 'valibot';
import { fmt, median, parseFlags, progress, renderTable, rotate, writeResults } from './common.js';

const packr = new Packr({ useRecords: false, moreTypes: false, bundleStrings: false });
const ID = /^[0-9A-Za-z_-]{1,64}$/;
const id = (n: number) => `Zq3kP9xT2mWv8LcR${String(n).padStart(4, '0')}`;

const MESSAGES = {
  execute: {
    type: 'execute',
    taskId: 4711,
    returnId: id(1),
    fn: { hash: '9f2c4e1ab03d77e5', name: 'add' },
    args: [{ value: Buffer.alloc(24, 1) }, { ref: id(2), owner: 'K3mX9qLp2ZtA' }],
  },
  done: { type: 'done', taskId: 4711, result: { size: 24, bytes: Buffer.alloc(24, 2), contains: [] } },
  submit: {
    type: 'submit',
    task: {
      returnId: id(3),
      fn: { hash: '9f2c4e1ab03d77e5', name: 'add', source: '(a, b) => a + b' },
      args: [{ value: Buffer.alloc(24, 1) }, { ref: id(4) }],
      contains: [],
      options: { numCpus: 1, resources: {}, maxRetries: 3, retryExceptions: false, timeoutMs: null },
    },
  },
  refs: { type: 'refs', hold: [id(5), id(6)], release: [id(7)] },
} as const;
type Kind = keyof typeof MESSAGES;
const KINDS = Object.keys(MESSAGES) as Kind[];

// ---- valibot ------------------------------------------------------------------------------
const vId = v.pipe(v.string(), v.regex(ID));
const vCount = v.pipe(v.number(), v.safeInteger(), v.minValue(0));
const vBytes = v.instance(Uint8Array);
const vArg = v.union([v.object({ value: vBytes }), v.object({ ref: vId, owner: v.optional(vId) })]);
const vFn = v.object({ hash: v.string(), name: v.string(), source: v.optional(v.string()) });
const valibot: Record<Kind, v.GenericSchema> = {
  execute: v.object({ type: v.literal('execute'), taskId: vCount, returnId: vId, fn: vFn, args: v.array(vArg) }),
  done: v.object({ type: v.literal('done'), taskId: vCount, result: v.object({ size: vCount, bytes: v.optional(vBytes), contains: v.array(vId) }) }),
  submit: v.object({
    type: v.literal('submit'),
    task: v.object({
      returnId: vId,
      fn: v.object({ hash: v.string(), name: v.string(), source: v.string() }),
      args: v.array(vArg),
      contains: v.array(vId),
      options: v.object({
        numCpus: v.pipe(v.number(), v.minValue(0)),
        resources: v.record(v.string(), v.number()),
        maxRetries: vCount,
        retryExceptions: v.union([v.boolean(), v.array(v.string())]),
        timeoutMs: v.nullable(v.number()),
      }),
    }),
  }),
  refs: v.object({ type: v.literal('refs'), hold: v.array(vId), release: v.array(vId) }),
};

// ---- the decoders measured ----------------------------------------------------------------
const TYPES = new Set(['ready', 'attach', 'done', 'failed', 'put', 'submit', 'resolve', 'wait', 'cancel', 'free', 'refs', 'execute']);
type Decoder = (message: unknown) => unknown;
const typeOf = (message: unknown) => (message as { type: Kind }).type;
const DECODERS: Record<string, Decoder> = {
  'unpack only': (message) => message,
  'hand (type only, as before)': (message) => {
    if (message === null || typeof message !== 'object' || !TYPES.has((message as { type?: unknown }).type as string)) throw new TypeError('bad');
    return message;
  },
  'valibot parse': (message) => v.parse(valibot[typeOf(message)], message),
  'valibot is': (message) => {
    if (!v.is(valibot[typeOf(message)], message)) throw new TypeError('bad');
    return message;
  },
  // What the node and its workers run: typebox schemas of every message, compiled (the
  // protocol's own, not a copy of them), and the field named when one is wrong.
  '@shoal/protocol decoder': (message) => (typeOf(message) === 'execute' ? decodeNodeMessage(message) : decodeWorkerMessage(message)),
};
const NAMES = Object.keys(DECODERS);

/** ns per message of `n` decodes of `bytes` through `decode` (after unpacking). */
function measure(decode: Decoder, bytes: Buffer, n: number): number {
  let sink = 0;
  const started = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    const decoded = decode(packr.unpack(bytes)) as { type: string };
    sink += decoded.type.length;
  }
  const ns = Number(process.hrtime.bigint() - started) / n;
  if (sink === 0) throw new Error('unreachable');
  return ns;
}

const flags = parseFlags(process.argv.slice(2), ['n']);
const quick = flags.quick === true;
const runs = flags.runs ?? (quick ? 1 : 7);
const n = flags.n ?? (quick ? 5_000 : 200_000);
const encoded = Object.fromEntries(KINDS.map((kind) => [kind, packr.pack(MESSAGES[kind])])) as Record<Kind, Buffer>;
for (const kind of KINDS) {
  for (const name of NAMES) DECODERS[name]!(packr.unpack(encoded[kind])); // every decoder accepts every message
  for (const name of NAMES) measure(DECODERS[name]!, encoded[kind], Math.min(n, 20_000)); // warm up the JIT
}
const samples = new Map<string, number[]>(KINDS.flatMap((kind) => NAMES.map((name) => [`${kind} ${name}`, []])));
for (let run = 0; run < runs; run++) {
  progress(`schema decode: run ${run + 1}/${runs}`);
  for (const kind of KINDS) {
    for (const name of rotate(NAMES, run)) samples.get(`${kind} ${name}`)!.push(measure(DECODERS[name]!, encoded[kind], n));
  }
}
progress('');
const rows = KINDS.flatMap((kind) => {
  const unpack = median(samples.get(`${kind} unpack only`)!);
  return NAMES.map((name) => {
    const ns = median(samples.get(`${kind} ${name}`)!);
    return [`${kind}: ${name}`, fmt(ns), fmt(ns - unpack), fmt(ns / unpack)];
  });
});
process.stdout.write(`Decoding a message (msgpackr bytes -> validated message), ${n} times, median of ${runs} runs\n`);
process.stdout.write(`${renderTable(['', 'ns/message', 'ns validating', '÷ unpack only'], rows)}\n`);
const file = writeResults(quick ? 'schema-decode-quick' : 'schema-decode', {
  n,
  runs,
  bytes: Object.fromEntries(KINDS.map((kind) => [kind, encoded[kind].length])),
  nsPerMessage: Object.fromEntries(samples),
});
process.stdout.write(`wrote ${file}\n`);
