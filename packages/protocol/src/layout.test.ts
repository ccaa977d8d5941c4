import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ObjectCorruptError } from './errors.js';
import {
  ALIGNMENT,
  LAYOUT_VERSION,
  MAGIC,
  PREFIX_BYTES,
  TABLE_ENTRY_BYTES,
  alignUp,
  frontLength,
  planLayout,
  readLayout,
  writeFront,
  type Layout,
} from './layout.js';

/** A complete object of the given layout: prefix, table and header written, buffers left zero. */
function objectBytes(layout: Layout, header = new Uint8Array(layout.headerLength).fill(0xc0)): Uint8Array {
  const bytes = new Uint8Array(layout.totalSize);
  writeFront(bytes, layout, header);
  return bytes;
}

/** Asserts the invariants every planned layout must satisfy. */
function assertWellFormed(layout: Layout, headerLength: number, bufferLengths: readonly number[]): void {
  assert.equal(layout.headerOffset, PREFIX_BYTES + TABLE_ENTRY_BYTES * bufferLengths.length);
  assert.equal(layout.headerLength, headerLength);
  assert.deepEqual(layout.bufferLengths, bufferLengths);
  assert.equal(layout.bufferOffsets.length, bufferLengths.length);
  let end = layout.headerOffset + headerLength;
  for (let i = 0; i < bufferLengths.length; i++) {
    const offset = layout.bufferOffsets[i]!;
    assert.equal(offset % ALIGNMENT, 0, `buffer ${i} starts at ${offset}, not 64-byte aligned`);
    assert.ok(offset >= end, `buffer ${i} at ${offset} overlaps what precedes it (ends at ${end})`);
    assert.ok(offset - end < ALIGNMENT, `buffer ${i} at ${offset} wastes ${offset - end} bytes of padding`);
    end = offset + bufferLengths[i]!;
  }
  assert.equal(layout.totalSize, end, 'the object ends where its last part ends');
}

describe('layout constants', () => {
  test('buffers are 64-byte aligned behind a 64-byte prefix and 16-byte table entries', () => {
    assert.equal(ALIGNMENT, 64);
    assert.equal(PREFIX_BYTES, 64);
    assert.equal(TABLE_ENTRY_BYTES, 16);
    assert.equal(LAYOUT_VERSION, 1);
    assert.equal(Buffer.from('SHOL', 'latin1').readUInt32LE(0), MAGIC, 'the magic number spells "SHOL" in memory');
  });
});

describe('alignUp', () => {
  test('rounds up to the next multiple of 64 and leaves multiples alone', () => {
    assert.equal(alignUp(0), 0);
    assert.equal(alignUp(1), 64);
    assert.equal(alignUp(63), 64);
    assert.equal(alignUp(64), 64);
    assert.equal(alignUp(65), 128);
    assert.equal(alignUp(1000), 1024);
  });

  test('rounds to a custom alignment', () => {
    assert.equal(alignUp(5, 8), 8);
    assert.equal(alignUp(16, 8), 16);
    assert.equal(alignUp(4097, 4096), 8192);
  });

  test('stays exact above 4 GiB', () => {
    assert.equal(alignUp(5 * 2 ** 30 + 1), 5 * 2 ** 30 + 64);
  });
});

describe('planLayout', () => {
  test('with no buffers the object is exactly prefix plus header, unpadded', () => {
    const layout = planLayout(10, []);
    assert.deepEqual(layout, { totalSize: 74, headerOffset: 64, headerLength: 10, bufferOffsets: [], bufferLengths: [] });
    assert.equal(frontLength(layout), 74);
  });

  test('with no buffers and an empty header the object is only its prefix', () => {
    const layout = planLayout(0, []);
    assert.equal(layout.totalSize, PREFIX_BYTES);
    assert.equal(layout.headerOffset, PREFIX_BYTES);
  });

  test('one buffer starts at the first 64-byte boundary after the header and ends the object', () => {
    // 64 prefix + 16 table = header at 80; 80 + 10 = 90, rounded up to 128.
    const layout = planLayout(10, [100]);
    assert.equal(layout.headerOffset, 80);
    assert.deepEqual(layout.bufferOffsets, [128]);
    assert.equal(layout.totalSize, 228, 'no padding after the last buffer');
    assertWellFormed(layout, 10, [100]);
  });

  test('a header ending exactly on a boundary is followed directly by the first buffer', () => {
    const layout = planLayout(48, [8]); // 80 + 48 = 128
    assert.deepEqual(layout.bufferOffsets, [128]);
    assert.equal(layout.totalSize, 136);
  });

  test('many buffers, including zero-length ones, each start aligned and are padded to the next boundary', () => {
    const lengths = [0, 1, 64, 0, 65, 0];
    const layout = planLayout(5, lengths);
    // header at 64 + 6 * 16 = 160, ends at 165 -> first buffer at 192.
    assert.equal(layout.headerOffset, 160);
    assert.deepEqual(layout.bufferOffsets, [192, 192, 256, 320, 320, 448]);
    assert.equal(layout.totalSize, 448, 'a trailing zero-length buffer ends the object at its (aligned) offset');
    assertWellFormed(layout, 5, lengths);
  });

  test('a zero-length last buffer still lies inside the object', () => {
    const layout = planLayout(3, [0]);
    assert.deepEqual(layout.bufferOffsets, [128]);
    assert.equal(layout.totalSize, 128);
  });

  test('random shapes always produce aligned, non-overlapping, tightly packed buffers', () => {
    let seed = 12345;
    const next = (limit: number): number => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed % limit;
    };
    for (let round = 0; round < 500; round++) {
      const headerLength = next(300);
      const lengths = Array.from({ length: next(20) }, () => (next(4) === 0 ? 0 : next(5000)));
      assertWellFormed(planLayout(headerLength, lengths), headerLength, lengths);
    }
  });

  test('buffers larger than 4 GiB are planned exactly', () => {
    const big = 5 * 2 ** 30 + 3;
    const layout = planLayout(20, [big, 7]);
    assert.deepEqual(layout.bufferOffsets, [128, alignUp(128 + big)]);
    assert.equal(layout.totalSize, alignUp(128 + big) + 7);
  });
});

describe('writeFront and readLayout', () => {
  test('readLayout returns exactly the layout writeFront wrote', () => {
    for (const [headerLength, lengths] of [
      [0, []],
      [1, []],
      [17, [1]],
      [100, [0, 3, 64, 0, 200]],
    ] as const) {
      const layout = planLayout(headerLength, lengths);
      assert.deepEqual(readLayout(objectBytes(layout), 'test object'), layout);
    }
  });

  test('writeFront puts the header at headerOffset and the prefix fields where readers expect them', () => {
    const layout = planLayout(3, [10, 20]);
    const bytes = objectBytes(layout, Uint8Array.of(7, 8, 9));
    const view = new DataView(bytes.buffer);
    assert.equal(view.getUint32(0, true), MAGIC);
    assert.equal(view.getUint16(4, true), LAYOUT_VERSION);
    assert.equal(view.getUint32(8, true), 2, 'buffer count');
    assert.equal(view.getUint32(12, true), 3, 'header length');
    assert.equal(view.getUint32(16, true), layout.totalSize);
    assert.equal(view.getUint32(PREFIX_BYTES + TABLE_ENTRY_BYTES + 8, true), 20, 'second buffer length');
    assert.deepEqual([...bytes.subarray(layout.headerOffset, layout.headerOffset + 3)], [7, 8, 9]);
  });

  test('writeFront stores sizes above 4 GiB as full 64-bit values', () => {
    const big = 5 * 2 ** 30 + 3;
    const layout = planLayout(2, [big]);
    const front = new Uint8Array(frontLength(layout));
    writeFront(front, layout, Uint8Array.of(1, 2));
    const view = new DataView(front.buffer);
    const u64 = (at: number): number => view.getUint32(at, true) + view.getUint32(at + 4, true) * 2 ** 32;
    assert.equal(u64(16), layout.totalSize);
    assert.equal(u64(PREFIX_BYTES + 8), big);
    assert.equal(u64(PREFIX_BYTES), 128);
  });

  test('writeFront and readLayout work on views that do not start at byte 0 of their buffer', () => {
    const layout = planLayout(5, [9]);
    const backing = new Uint8Array(layout.totalSize + 128);
    const bytes = backing.subarray(64, 64 + layout.totalSize);
    writeFront(bytes, layout, new Uint8Array(5));
    assert.deepEqual(new Uint8Array(backing.buffer, 0, 64), new Uint8Array(64), 'nothing written before the view');
    assert.deepEqual(readLayout(bytes, 'shifted object'), layout);
  });

  test('readLayout accepts bytes longer than the object (e.g. a page-rounded segment)', () => {
    const layout = planLayout(5, [9]);
    const bytes = new Uint8Array(layout.totalSize + 4096);
    writeFront(bytes, layout, new Uint8Array(5));
    assert.deepEqual(readLayout(bytes, 'padded object'), layout);
  });
});

describe('readLayout rejects malformed objects', () => {
  const valid = (): Uint8Array => objectBytes(planLayout(8, [16, 32]));
  const rejects = (bytes: Uint8Array, detail: RegExp): void => {
    assert.throws(
      () => readLayout(bytes, 'object xyz'),
      (error: unknown) => {
        assert.ok(error instanceof ObjectCorruptError, `expected ObjectCorruptError, got ${String(error)}`);
        assert.equal(error.code, 'ERR_OBJECT_CORRUPT');
        assert.match(error.message, /^object xyz is not a valid Shoal object: /);
        assert.match(error.message, detail);
        return true;
      },
    );
  };

  test('empty input', () => rejects(new Uint8Array(0), /only 0 bytes/));

  test('input shorter than the 64-byte prefix, even with a valid start', () => {
    rejects(valid().subarray(0, 63), /only 63 bytes/);
    rejects(valid().subarray(0, 1), /only 1 bytes/);
  });

  test('a wrong magic number', () => {
    const bytes = valid();
    bytes[0] = bytes[0]! ^ 0xff;
    rejects(bytes, /bad magic number/);
  });

  test('64 zero bytes', () => rejects(new Uint8Array(64), /bad magic number/));

  test('another layout version', () => {
    const bytes = valid();
    new DataView(bytes.buffer).setUint16(4, 2, true);
    rejects(bytes, /layout version 2/);
  });

  test('a truncated object (totalSize beyond the bytes available)', () => {
    const bytes = valid();
    rejects(bytes.subarray(0, bytes.byteLength - 1), /exceed the \d+ bytes available/);
    rejects(bytes.subarray(0, 100), /exceed the 100 bytes available/);
  });

  test('a header that extends past the end of the object', () => {
    const bytes = valid();
    new DataView(bytes.buffer).setUint32(12, bytes.byteLength, true);
    rejects(bytes, /exceed/);
  });

  test('a buffer count so large the table cannot fit, without trying to read it', () => {
    const bytes = valid();
    new DataView(bytes.buffer).setUint32(8, 0xffff_ffff, true);
    const start = performance.now();
    rejects(bytes, /exceed/);
    assert.ok(performance.now() - start < 100, 'rejected without walking the table');
  });

  test('a totalSize near 2^64', () => {
    const bytes = valid();
    const view = new DataView(bytes.buffer);
    view.setUint32(16, 0xffff_ffff, true);
    view.setUint32(20, 0xffff_ffff, true);
    rejects(bytes, /exceed/);
  });

  test('a buffer offset that is not 64-byte aligned', () => {
    const layout = planLayout(8, [16, 32]);
    const bytes = objectBytes(layout);
    new DataView(bytes.buffer).setUint32(PREFIX_BYTES + TABLE_ENTRY_BYTES, layout.bufferOffsets[1]! + 8, true);
    rejects(bytes, /buffer 1 lies outside the object or is misaligned/);
  });

  test('a buffer that extends past the end of the object', () => {
    const bytes = valid();
    new DataView(bytes.buffer).setUint32(PREFIX_BYTES + 8, 10_000, true);
    rejects(bytes, /buffer 0 lies outside the object/);
  });

  test('a buffer offset far outside the object (high 32 bits set)', () => {
    const bytes = valid();
    new DataView(bytes.buffer).setUint32(PREFIX_BYTES + TABLE_ENTRY_BYTES + 4, 1, true);
    rejects(bytes, /buffer 1 lies outside the object/);
  });
});
