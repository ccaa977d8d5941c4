// Spilling (issue "Memory beyond RAM"): what writing objects out of a full store and reading
// them back costs, against Node writing and reading the same bytes on the same disk, and what
// streaming a working set bigger than the store through tasks costs against a store that holds
// it all.
//
//   node --expose-gc bench/dist/spill.js [--quick] [--runs=N]
//
// Per run (contenders rotated each run):
//   spill         a store of `capacity` bytes takes 4x that in 64 MiB objects (put by the
//                 node's own process): the spill throughput is the bytes spilled over the time
//                 spent writing them (store.stats().spill)                             GB/s
//     peer        fs.promises.writeFile of the same 64 MiB buffers into the same directory GB/s
//   restore       every object read back by a get (the store restores, spilling others) GB/s
//     peer        fs.promises.readFile of those files                                  GB/s
//   stream        64 chunks of 64 MiB (4x the 1 GiB store) put one by one, a task summing
//                 each submitted as it is put (2 workers), every result awaited: total ms
//     peer        the same with a store big enough for all of them                      ms
//   serve         a spilled 256 MiB object sent over a loopback TCP socket the way a holder
//                 serves a pull: read back into the store (store.get), then written from its
//                 mapping                                                               GB/s
//     peer        the same bytes streamed from a file on the spill disk (fs read into two
//                 8 MiB buffers, each written once the last write drained), not restored  GB/s
// --quick divides every size by 16. Writes bench/results/spill.json.
import { mkdtempSync, rmSync } from 'node:fs';
import { open, readFile, writeFile } from 'node:fs/promises';
import { createServer, connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { init, remote, shutdown, store, type ObjectRef } from 'shoal';
import { fmt, machine, parseFlags, progress, renderTable, rotate, stats, writeResults, type Stats } from './common.js';

const flags = parseFlags(process.argv.slice(2), []);
const quick = flags.quick;
const runs = flags.runs ?? (quick ? 1 : 3);
const scale = quick ? 16 : 1;
const MIB = 2 ** 20;
const objectBytes = (64 * MIB) / scale;
const capacity = (256 * MIB) / scale;
const objects = (4 * capacity) / objectBytes;

const chunks = 64;
const chunkBytes = (64 * MIB) / scale;
const streamCapacity = (1024 * MIB) / scale;
const serveBytes = (256 * MIB) / scale;

const root = mkdtempSync(join(tmpdir(), 'shoal-bench-spill-'));
process.on('exit', () => rmSync(root, { recursive: true, force: true }));

/** GB/s (10^9 bytes) of `bytes` in `ms`. */
const gbps = (bytes: number, ms: number) => bytes / ms / 1e6;

function values(seed: number, bytes: number): Float64Array {
  return new Float64Array(bytes / 8).fill(seed);
}

/** Spill and restore throughput of a store (a local node's) taking 4x its capacity. */
async function spillRun(): Promise<{ spill: number; restore: number }> {
  const spillRoot = mkdtempSync(join(root, 'store-'));
  await init({ numCpus: 0, objectStoreMemory: capacity, spillDirectory: spillRoot });
  try {
    const refs: ObjectRef<Float64Array>[] = [];
    for (let i = 0; i < objects; i++) refs.push(store.put(values(i, objectBytes)));
    const written = store.stats().spill;
    for (const [i, ref] of refs.entries()) {
      if ((await store.get(ref))[0] !== i) throw new Error('a restored object differs');
    }
    const after = store.stats().spill;
    return { spill: gbps(written.spillBytesTotal, written.spillMs), restore: gbps(after.restoreBytesTotal, after.restoreMs) };
  } finally {
    await shutdown();
    rmSync(spillRoot, { recursive: true, force: true });
  }
}

/** The same bytes written and read with fs.promises in the same directory. */
async function fsRun(): Promise<{ write: number; read: number }> {
  const directory = mkdtempSync(join(root, 'fs-'));
  try {
    const buffers = Array.from({ length: objects }, (_, i) => values(i, objectBytes));
    let started = performance.now();
    for (const [i, buffer] of buffers.entries()) await writeFile(join(directory, String(i)), buffer);
    const writeMs = performance.now() - started;
    started = performance.now();
    for (let i = 0; i < objects; i++) await readFile(join(directory, String(i)));
    const readMs = performance.now() - started;
    const bytes = objects * objectBytes;
    return { write: gbps(bytes, writeMs), read: gbps(bytes, readMs) };
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
}

/**
 * Milliseconds to stream `chunks` chunks through tasks with a store of `capacity` bytes: each put
 * (the data made in the driver's one reused buffer), a task summing it submitted at once; the
 * refs are all kept (the working set is every chunk), every sum checked.
 */
async function streamRun(capacity: number): Promise<number> {
  const spillRoot = mkdtempSync(join(root, 'stream-'));
  await init({ numCpus: 2, objectStoreMemory: capacity, spillDirectory: spillRoot });
  try {
    const sum = remote((chunk: Float64Array) => {
      let total = 0;
      for (let i = 0; i < chunk.length; i++) total += chunk[i]!;
      return total;
    });
    const data = new Float64Array(chunkBytes / 8);
    const refs: ObjectRef<Float64Array>[] = [];
    const sums: ObjectRef<number>[] = [];
    const started = performance.now();
    for (let i = 0; i < chunks; i++) {
      refs.push(store.put(data.fill(i)));
      sums.push(sum(refs[i]!));
    }
    for (const [i, total] of (await Promise.all(sums)).entries()) {
      if (total !== i * data.length) throw new Error(`chunk ${i} summed to ${total}, not ${i * data.length}`);
    }
    return performance.now() - started;
  } finally {
    await shutdown();
    rmSync(spillRoot, { recursive: true, force: true });
  }
}

/** A loopback TCP receiver that discards, and a connected socket to it: `send` resolves once `bytes` more arrived. */
async function discardingPeer(): Promise<{ socket: Socket; received: (bytes: number) => Promise<void>; close: () => void }> {
  let total = 0;
  let waiter: { until: number; resolve: () => void } | undefined;
  const server = createServer((peer) => {
    peer.on('data', (chunk: Buffer) => {
      total += chunk.length;
      if (waiter && total >= waiter.until) {
        waiter.resolve();
        waiter = undefined;
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  const socket = connect(port, '127.0.0.1');
  await new Promise<void>((resolve) => socket.once('connect', resolve));
  return {
    socket,
    received: (bytes) => new Promise<void>((resolve) => (waiter = { until: total + bytes, resolve })),
    close: () => {
      socket.destroy();
      server.close();
    },
  };
}

/**
 * GB/s of serving a spilled object over TCP: read back into the store then written from its
 * mapping (what a holder does), against the same bytes streamed from a file on the spill disk.
 */
async function serveRun(): Promise<{ restored: number; fromDisk: number }> {
  const spillRoot = mkdtempSync(join(root, 'serve-'));
  // Room for one of the two objects: getting one spills the other.
  await init({ numCpus: 0, objectStoreMemory: serveBytes + serveBytes / 2, spillDirectory: spillRoot });
  const peer = await discardingPeer();
  try {
    const a = store.put(values(1, serveBytes));
    const b = store.put(values(2, serveBytes)); // a is on disk
    const file = join(spillRoot, 'peer.bin');
    await writeFile(file, values(3, serveBytes));
    let started = performance.now();
    const arrived = peer.received(serveBytes);
    let view: Float64Array | undefined = await store.get(a); // read back (b spilled)
    peer.socket.write(Buffer.from(view.buffer, view.byteOffset, view.byteLength));
    await arrived;
    const restored = gbps(serveBytes, performance.now() - started);
    view = undefined; // so that a can be spilled again
    await store.get(b); // a goes to disk again (its copy is kept: nothing written)
    started = performance.now();
    const done = peer.received(serveBytes);
    const handle = await open(file, 'r');
    try {
      const buffers = [Buffer.allocUnsafe(8 * MIB), Buffer.allocUnsafe(8 * MIB)];
      let drained: Promise<void> = Promise.resolve();
      for (let offset = 0, turn = 0; offset < serveBytes; turn++) {
        const buffer = buffers[turn % 2]!;
        const { bytesRead } = await handle.read(buffer, 0, Math.min(buffer.length, serveBytes - offset), offset);
        await drained;
        drained = new Promise<void>((resolve) => peer.socket.write(buffer.subarray(0, bytesRead), () => resolve()));
        offset += bytesRead;
      }
      await drained;
    } finally {
      await handle.close();
    }
    await done;
    return { restored, fromDisk: gbps(serveBytes, performance.now() - started) };
  } finally {
    peer.close();
    await shutdown();
    rmSync(spillRoot, { recursive: true, force: true });
  }
}

const results = { serveRestored: [] as number[], serveFromDisk: [] as number[], spill: [] as number[], write: [] as number[], restore: [] as number[], read: [] as number[], streamSpilling: [] as number[], streamInMemory: [] as number[] };
const contenders: { name: string; run: () => Promise<void> }[] = [
  {
    name: 'spill and restore',
    run: async () => {
      const { spill, restore } = await spillRun();
      results.spill.push(spill);
      results.restore.push(restore);
    },
  },
  {
    name: 'fs.promises',
    run: async () => {
      const { write, read } = await fsRun();
      results.write.push(write);
      results.read.push(read);
    },
  },
  {
    name: 'serve a spilled object',
    run: async () => {
      const { restored, fromDisk } = await serveRun();
      results.serveRestored.push(restored);
      results.serveFromDisk.push(fromDisk);
    },
  },
  {
    name: `stream through a ${fmt(streamCapacity / MIB)} MiB store`,
    run: async () => {
      results.streamSpilling.push(await streamRun(streamCapacity));
    },
  },
  {
    name: 'stream through a store holding every chunk',
    run: async () => {
      results.streamInMemory.push(await streamRun(chunks * chunkBytes + 64 * MIB));
    },
  },
];

for (let run = 0; run < runs; run++) {
  for (const contender of rotate(contenders, run)) {
    progress(`spill: run ${run + 1}/${runs} ${contender.name}`);
    await contender.run();
  }
}

const median = (values: number[]): Stats => stats(values);
const report = {
  date: new Date().toISOString(),
  machine: machine(),
  options: { quick, runs, objectBytes, capacity, objects, chunks, chunkBytes, streamCapacity, serveBytes },
  spillGbps: median(results.spill),
  writeFileGbps: median(results.write),
  restoreGbps: median(results.restore),
  readFileGbps: median(results.read),
  serveRestoredGbps: median(results.serveRestored),
  serveFromDiskGbps: median(results.serveFromDisk),
  streamSpillingMs: median(results.streamSpilling),
  streamInMemoryMs: median(results.streamInMemory),
  ratios: {
    serveRestoredVsFromDisk: median(results.serveRestored).median / median(results.serveFromDisk).median,
    streamSpillingVsInMemory: median(results.streamSpilling).median / median(results.streamInMemory).median,
    spillVsWriteFile: median(results.spill).median / median(results.write).median,
    restoreVsReadFile: median(results.restore).median / median(results.read).median,
  },
};
writeResults('spill', report);
console.log(
  renderTable(
    ['', 'median', 'ratio', 'goal'],
    [
      [`spill (${objects} × ${fmt(objectBytes / MIB)} MiB into a ${fmt(capacity / MIB)} MiB store), GB/s`, fmt(report.spillGbps.median), fmt(report.ratios.spillVsWriteFile), '≥ 0.8'],
      ['  peer: fs.promises.writeFile, GB/s', fmt(report.writeFileGbps.median), '1', ''],
      ['restore (every object read back), GB/s', fmt(report.restoreGbps.median), fmt(report.ratios.restoreVsReadFile), '≥ 0.8'],
      ['  peer: fs.promises.readFile, GB/s', fmt(report.readFileGbps.median), '1', ''],
      [`serve a spilled ${fmt(serveBytes / MIB)} MiB object over TCP: read back, then sent, GB/s`, fmt(report.serveRestoredGbps.median), fmt(report.ratios.serveRestoredVsFromDisk), ''],
      ['  peer: streamed from a file on the spill disk, GB/s', fmt(report.serveFromDiskGbps.median), '1', ''],
      [`stream ${chunks} × ${fmt(chunkBytes / MIB)} MiB through tasks, ${fmt(streamCapacity / MIB)} MiB store, ms`, fmt(report.streamSpillingMs.median), fmt(report.ratios.streamSpillingVsInMemory), '≤ 1.5'],
      ['  peer: a store holding every chunk, ms', fmt(report.streamInMemoryMs.median), '1', ''],
    ],
  ),
);
