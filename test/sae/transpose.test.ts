// The blocked transpose against the definition out[c][r] = a[r][c] (· scale[c]), on shapes that
// leave partial tiles (rows not a multiple of 8, columns not of 128) and, streamed from a file,
// several read chunks; plus a 2 x 3 case written out by hand.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { readTransposedF32, transpose } from '../../src/sae/transpose.ts';
import { Rng } from '../../src/random.ts';

function naive(a: Float32Array, rows: number, cols: number, scale?: Float64Array): Float32Array {
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++)
    for (let c = 0; c < cols; c++) out[c * rows + r] = a[r * cols + c] * (scale ? scale[c] : 1);
  return out;
}

function random(n: number, rng: Rng): Float32Array {
  return Float32Array.from({ length: n }, () => rng.normal());
}

test('a 2 x 3 matrix transposed, and scaled per output row, by hand', () => {
  const a = Float32Array.of(1, 2, 3, 4, 5, 6);
  assert.deepEqual([...transpose(a, 2, 3)], [1, 4, 2, 5, 3, 6]);
  assert.deepEqual([...transpose(a, 2, 3, Float64Array.of(1, 10, -2))], [1, 4, 20, 50, -6, -12]);
});

test('partial tiles: every value lands where the definition puts it, bit for bit', () => {
  const rng = new Rng(3);
  for (const [rows, cols] of [
    [1, 1],
    [7, 129],
    [8, 128],
    [13, 300],
    [300, 13],
  ]) {
    const a = random(rows * cols, rng);
    a[0] = NaN; // a NaN moved as bits stays a NaN
    const scale = Float64Array.from({ length: cols }, () => 0.5 + rng.next());
    assert.deepEqual(transpose(a, rows, cols), naive(a, rows, cols), `${rows} x ${cols}`);
    assert.deepEqual(
      transpose(a, rows, cols, scale),
      naive(a, rows, cols, scale),
      `${rows} x ${cols} scaled`,
    );
  }
});

test('streamed from a file over several read chunks, with and without the CRC check', () => {
  // 4 MiB chunks of 2000 floats per row: 524 rows each, so 600 rows are one full chunk and a
  // partial one of 76 rows (not a multiple of 8).
  const [rows, cols] = [600, 2000];
  const rng = new Rng(5);
  const a = random(rows * cols, rng);
  const scale = Float64Array.from({ length: cols }, () => 0.5 + rng.next());
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sfc-transpose-'));
  try {
    const file = path.join(dir, 'matrix.bin');
    const prefix = Uint8Array.of(9, 9, 9);
    fs.writeFileSync(file, Buffer.concat([prefix, new Uint8Array(a.buffer)]));
    assert.deepEqual(readTransposedF32(file, 3, rows, cols), naive(a, rows, cols));
    assert.deepEqual(readTransposedF32(file, 3, rows, cols, scale), naive(a, rows, cols, scale));
    const bytes = new Uint8Array(a.buffer);
    const crc = { prefix, what: 'm.npy' };
    const expected = zlibCrc(bytes, prefix);
    assert.deepEqual(
      readTransposedF32(file, 3, rows, cols, undefined, { ...crc, expected }),
      naive(a, rows, cols),
    );
    assert.throws(
      () => readTransposedF32(file, 3, rows, cols, undefined, { ...crc, expected: expected ^ 1 }),
      /matrix\.bin: corrupt zip archive \(record m\.npy fails its CRC-32 check\)/,
    );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

function zlibCrc(bytes: Uint8Array, prefix: Uint8Array): number {
  return zlib.crc32(bytes, zlib.crc32(prefix)) >>> 0;
}
