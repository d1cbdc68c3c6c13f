// ExactSums against independent truth: the exact sum of float32 values in BigInt (every float32 is
// an integer multiple of 2^-149), for terms spanning the whole float32 range; and the same bits
// for any grouping and order of the terms (what lets sharded means equal a single run's).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ExactSums } from '../../src/evaluation/exact-sums.ts';
import { Rng } from '../../src/random.ts';

/** x (a float32) as an integer count of 2^-149. */
function scaled(x: number): bigint {
  const f = new Float32Array([x]);
  const bits = new Uint32Array(f.buffer)[0];
  const e = (bits >>> 23) & 0xff;
  const m = BigInt(e === 0 ? bits & 0x7fffff : (bits & 0x7fffff) | 0x800000);
  const v = e === 0 ? m : m << BigInt(e - 1);
  return bits >>> 31 ? -v : v;
}

/** n float32 terms: mostly ordinary magnitudes, some tiny (subnormal) and huge ones, some zeros. */
function terms(rng: Rng, n: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const r = rng.next();
    const exp = r < 0.1 ? -149 + rng.int(30) : r < 0.2 ? 100 + rng.int(27) : -30 + rng.int(40);
    out[i] = r > 0.95 ? 0 : (rng.next() * 2 - 1) * 2 ** exp;
  }
  return out;
}

function sumsOf(values: Float32Array, width: number, rows: number[]): ExactSums {
  const s = new ExactSums(width);
  const bits = new Uint32Array(values.buffer);
  for (const r of rows) s.addFloat32(0, values, bits, r * width, width);
  return s;
}

test('exact sums: each element is the exact sum (BigInt truth), correctly placed in its bins', () => {
  const rng = new Rng(3);
  const width = 7;
  const rows = 400;
  const values = terms(rng, width * rows);
  const sums = sumsOf(values, width, [...Array(rows).keys()]);
  for (let i = 0; i < width; i++) {
    let exact = 0n;
    for (let r = 0; r < rows; r++) exact += scaled(values[r * width + i]);
    // The bins, scaled to 2^-150, add up to the exact sum (bin j counts units of 2^(32j-150)).
    let fromBins = 0n;
    sums.bins.forEach((b, j) => {
      if (!b) return;
      const units = b[i] / 2 ** (32 * j - 150);
      assert.ok(Number.isSafeInteger(units), `bin ${j} of element ${i}: ${units} units`);
      fromBins += BigInt(units) << BigInt(32 * j);
    });
    assert.equal(fromBins, exact * 2n, `element ${i}`);
  }
});

test('exact sums: any split into groups and any merge order gives the same bits', () => {
  const rng = new Rng(11);
  const width = 5;
  const rows = 300;
  const values = terms(rng, width * rows);
  const all = sumsOf(values, width, [...Array(rows).keys()]);
  const order = [...Array(rows).keys()].reverse();
  const reversed = sumsOf(values, width, order);
  const groups = [order.slice(0, 17), order.slice(17, 200), order.slice(200)];
  const merged = new ExactSums(width);
  for (const g of [groups[2], groups[0], groups[1]]) merged.addSums(sumsOf(values, width, g));
  const roundTrip = ExactSums.fromJSON(JSON.parse(JSON.stringify(merged)), 'test');
  for (let i = 0; i < width; i++) {
    assert.ok(Number.isFinite(all.value(i)));
    for (const other of [reversed, merged, roundTrip])
      assert.ok(Object.is(other.value(i), all.value(i)), `element ${i}`);
  }
  // Where a float64 sum depends on the order ((1 + 2^-60) - 1 is 0), the exact sum does not.
  const small = new Float32Array([1, 2 ** -60, -1]);
  for (const rowsOrder of [
    [0, 1, 2],
    [0, 2, 1],
  ])
    assert.equal(sumsOf(small, 1, rowsOrder).value(0), 2 ** -60);
  assert.notEqual(1 + 2 ** -60 - 1, 1 - 1 + 2 ** -60);
});

test('exact sums: refuse non-finite terms and corrupt bins', () => {
  const s = new ExactSums(1);
  const v = new Float32Array([Infinity]);
  assert.throws(() => s.addFloat32(0, v, new Uint32Array(v.buffer), 0, 1), /not finite/);
  const half = new Float64Array([2 ** -151]);
  const text = Buffer.from(half.buffer).toString('base64');
  assert.throws(
    () =>
      ExactSums.fromJSON(
        { length: 1, bins: [text, null, null, null, null, null, null, null, null] },
        'p',
      ),
    /p: bin 0 element 0 is not a multiple/,
  );
});
