// SAEs held in half precision (--dtype bf16|f16): every product equals the float32 SAE whose
// weights are the rounded values (the block-by-block conversion changes nothing else), the
// rounding is within half a unit in the last place of each format, and what cannot be done in
// half precision fails with a clear error.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Rng } from '../../src/random.ts';
import { SparseAutoencoder, type WeightDtype } from '../../src/sae/dictionary.ts';
import {
  bf16BitsToF32,
  encodeBF16,
  f16BitsToF32,
  f32ToBF16Bits,
  f32ToF16Bits,
} from '../../src/io/float16.ts';
import { saveDictionary } from '../../src/sae/formats.ts';
import { openSaes } from '../../src/sae/library.ts';

// Wide enough that a product spans more than one converted block (2^20 floats: 1024 rows of
// 1024), the last one partial. N rows, d input width, F features.
const [N, d, F] = [3, 1024, 1100];

function randomSae(rng: Rng, kind: 'relu' | 'jumprelu' | 'topk' = 'relu') {
  const r = (n: number, s: number) => Float32Array.from({ length: n }, () => rng.normal() * s);
  return new SparseAutoencoder({
    site: 'resid_0',
    kind,
    dIn: d,
    width: F,
    encoder: r(F * d, 1 / Math.sqrt(d)),
    encoderBias: r(F, 0.1),
    decoder: r(F * d, 1 / Math.sqrt(d)),
    decoderBias: r(d, 0.1),
    threshold: Float32Array.from({ length: F }, () => 0.05 * rng.next()),
    k: 20, // 20 of 1100 on: runSparse takes its sparse decode path
  });
}

/** The float32 SAE holding exactly the half SAE's rounded weights. */
function rounded(half: SparseAutoencoder): SparseAutoencoder {
  const rows = (row: (i: number) => Float32Array) => {
    const out = new Float32Array(F * d);
    for (let i = 0; i < F; i++) out.set(row(i), i * d);
    return out;
  };
  const { site, kind, dIn, width, encoderBias, decoderBias, threshold, k, centerInput } = half;
  return new SparseAutoencoder({
    ...{ site, kind, dIn, width, encoderBias, decoderBias, threshold, k, centerInput },
    encoder: rows((i) => half.encoderRow(i)),
    decoder: rows((i) => half.decoderRow(i)),
  });
}

function assertClose(a: Float32Array, b: Float32Array, what: string) {
  assert.equal(a.length, b.length, what);
  let scale = 0;
  for (const v of b) scale = Math.max(scale, Math.abs(v));
  for (let i = 0; i < a.length; i++)
    assert.ok(
      Math.abs(a[i] - b[i]) <= 1e-5 * scale,
      `${what}[${i}]: ${a[i]} vs ${b[i]} (scale ${scale})`,
    );
}

for (const dtype of ['bf16', 'f16'] as const) {
  for (const kind of ['relu', 'jumprelu', 'topk'] as const) {
    test(`a ${dtype} ${kind} SAE computes what the float32 SAE of its rounded weights does`, () => {
      const rng = new Rng(dtype === 'bf16' ? 1 : 2);
      const sae = randomSae(rng, kind);
      const half = sae.inPrecision(dtype);
      assert.equal(half.dtype, dtype);
      assert.equal(half.weightBytes, sae.weightBytes / 2);
      const ref = rounded(half);
      const x = Float32Array.from({ length: N * d }, () => rng.normal());
      const f = half.encode(x, N);
      assertClose(f, ref.encode(x, N), 'encode');
      assertClose(half.decode(f, N), ref.decode(f, N), 'decode (dense)');
      const sparse = new Float32Array(N * F);
      sparse[5] = 1.5;
      sparse[F + 700] = -2;
      assertClose(half.decode(sparse, N), ref.decode(sparse, N), 'decode (sparse)');
      const out = half.runSparse(x, N);
      const want = ref.runSparse(x, N);
      assert.deepEqual(out.features.index, want.features.index);
      assertClose(out.features.value, want.features.value, 'runSparse features');
      assertClose(out.error, want.error, 'runSparse error');
      const g = Float32Array.from({ length: N * d }, () => rng.normal());
      assertClose(half.featureGradient(g, N), ref.featureGradient(g, N), 'featureGradient');
    });
  }

  test(`${dtype} rounding is within half a unit in the last place`, () => {
    const sae = randomSae(new Rng(3));
    const half = sae.inPrecision(dtype);
    // Significant bits: bf16 8, f16 11; f16 below 2^-14 is subnormal (absolute steps of 2^-24).
    const u = dtype === 'bf16' ? 2 ** -8 : 2 ** -11;
    for (const i of [0, 1023, 1024, F - 1]) {
      const [exact, got] = [sae.decoderRow(i), half.decoderRow(i)];
      for (let j = 0; j < d; j++) {
        const bound = Math.max(u * Math.abs(exact[j]), dtype === 'f16' ? 2 ** -25 : 0);
        assert.ok(Math.abs(got[j] - exact[j]) <= bound, `row ${i}[${j}]: ${got[j]} vs ${exact[j]}`);
      }
    }
  });
}

test('encodeBF16 (a whole array at once) rounds every value as f32ToBF16Bits does', () => {
  const rng = new Rng(6);
  const tie = bf16BitsToF32(0x3f80) + 2 ** -8; // halfway between 1 and the next bf16: to even
  const special = [0, -0, 1, tie, -tie, 3.4e38, -3.4e38, Infinity, -Infinity, NaN, 1e-40, -1e-45];
  const values = Float32Array.from([
    ...special,
    ...Array.from({ length: 1000 }, () => rng.normal() * 10 ** rng.int(8)),
  ]);
  const out = new Uint16Array(values.length);
  encodeBF16(values, out);
  values.forEach((v, i) => assert.equal(out[i], f32ToBF16Bits(v), `value ${v}`));
  assert.equal(out[3], 0x3f80);
});

test('what needs float32 weights, or does not fit float16, says so', () => {
  const sae = randomSae(new Rng(4));
  const half = sae.inPrecision('bf16');
  assert.throws(() => half.encoder, /resid_0: the dictionary is held in bf16.*float32 encoder/);
  assert.throws(() => half.normalizeDecoder(), /held in bf16/);
  assert.throws(() => half.inPrecision('f16'), /converts from f32 only/);
  sae.decoder[7] = 1e5;
  assert.throws(() => sae.inPrecision('f16'), /weight 100000 is outside float16's range/);
  assert.throws(
    () =>
      new SparseAutoencoder({
        site: 'mlp_1',
        kind: 'relu',
        dIn: 2,
        width: 1,
        encoder: new Float32Array(2),
        encoderBias: new Float32Array(1),
        decoder: new Float32Array(2),
        decoderBias: new Float32Array(2),
        dtype: 'bf16',
      }),
    /mlp_1: encoder must be a Uint16Array of bf16 bits/,
  );
});

test('openSaes with a dtype holds each loaded SAE in it', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sfc-half-'));
  try {
    const rng = new Rng(5);
    const r = (n: number) => Float32Array.from({ length: n }, () => rng.normal());
    const sae = new SparseAutoencoder({
      site: 'resid_0',
      kind: 'relu',
      dIn: 4,
      width: 6,
      encoder: r(24),
      encoderBias: r(6),
      decoder: r(24),
      decoderBias: r(4),
    });
    saveDictionary(dir, sae);
    // Loading renormalises decoder rows: the float32 load is the reference.
    const exact = openSaes(dir, 1, { modelWidth: 4 }).get('resid_0').decoderRow(2);
    for (const dtype of ['f32', 'bf16', 'f16'] as WeightDtype[]) {
      const got = openSaes(dir, 1, { modelWidth: 4, dtype }).get('resid_0') as SparseAutoencoder;
      assert.equal(got.dtype, dtype);
      // The saved row, each value rounded to the dtype on its own.
      const round = (x: number) =>
        dtype === 'f32'
          ? x
          : dtype === 'bf16'
            ? bf16BitsToF32(f32ToBF16Bits(x))
            : f16BitsToF32(f32ToF16Bits(x));
      assert.deepEqual(got.decoderRow(2), exact.map(round));
    }
    assert.throws(
      () => openSaes(dir, 1, { modelWidth: 4, dtype: 'f8' as WeightDtype }),
      /--dtype: expected one of f32, bf16, f16, got f8/,
    );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
