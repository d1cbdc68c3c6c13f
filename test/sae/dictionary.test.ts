import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../src/random.ts';
import { SparseAutoencoder, toSparseRows, topKRows } from '../../src/sae/dictionary.ts';

// Dims: N rows, d input width, F dictionary width.
const [N, d, F] = [6, 5, 40];

function randomSae(kind: 'relu' | 'jumprelu' | 'topk', rng: Rng, centerInput = true) {
  const r = (n: number, s: number) => Float32Array.from({ length: n }, () => rng.normal() * s);
  return new SparseAutoencoder({
    site: 'attn_0',
    kind,
    dIn: d,
    width: F,
    encoder: r(F * d, 1),
    encoderBias: r(F, 0.5),
    decoder: r(F * d, 1), // deliberately not unit norm
    decoderBias: r(d, 0.5),
    threshold: Float32Array.from({ length: F }, () => rng.next()),
    k: 3,
    centerInput,
  });
}

/** Independent truth in float64. */
function reference(sae: SparseAutoencoder, x: Float32Array) {
  const f = new Float64Array(N * F);
  const xHat = new Float64Array(N * d);
  for (let n = 0; n < N; n++) {
    const pre: number[] = [];
    for (let i = 0; i < F; i++) {
      let z = sae.encoderBias[i];
      for (let j = 0; j < d; j++)
        z += sae.encoder[i * d + j] * (x[n * d + j] - (sae.centerInput ? sae.decoderBias[j] : 0));
      pre.push(z);
    }
    const kth = [...pre].sort((a, b) => b - a)[(sae.k ?? 1) - 1];
    for (let i = 0; i < F; i++) {
      const z = pre[i];
      if (sae.kind === 'relu') f[n * F + i] = Math.max(0, z);
      else if (sae.kind === 'jumprelu') f[n * F + i] = z > sae.threshold![i] && z > 0 ? z : 0;
      else f[n * F + i] = z >= kth ? Math.max(0, z) : 0;
    }
    for (let j = 0; j < d; j++) {
      let s = sae.decoderBias[j];
      for (let i = 0; i < F; i++) s += f[n * F + i] * sae.decoder[i * d + j];
      xHat[n * d + j] = s;
    }
  }
  return { f, xHat };
}

function assertClose(a: ArrayLike<number>, b: ArrayLike<number>, tol: number, what: string) {
  assert.equal(a.length, b.length, what);
  for (let i = 0; i < a.length; i++)
    assert.ok(
      Math.abs(a[i] - b[i]) <= tol * (1 + Math.abs(b[i])),
      `${what}[${i}]: ${a[i]} vs ${b[i]}`,
    );
}

test('encode/decode/run match a float64 reference for relu, jumprelu, topk, uncentred', () => {
  const rng = new Rng(1);
  const x = Float32Array.from({ length: N * d }, () => rng.normal());
  for (const [kind, center] of [
    ['relu', true],
    ['jumprelu', true],
    ['topk', true],
    ['relu', false],
  ] as const) {
    const sae = randomSae(kind, rng, center);
    const want = reference(sae, x);
    const out = sae.run(x, N);
    assertClose(out.features, want.f, 1e-5, `${kind} features`);
    assertClose(out.reconstruction, want.xHat, 1e-5, `${kind} reconstruction`);
    for (let i = 0; i < N * d; i++)
      assert.ok(Math.abs(out.error[i] - (x[i] - want.xHat[i])) < 1e-4);
  }
});

test('runSparse equals run (features as CSR, error) on the sparse and the dense decode path', () => {
  const rng = new Rng(5);
  const x = Float32Array.from({ length: N * d }, () => rng.normal());
  for (const kind of ['relu', 'jumprelu', 'topk'] as const)
    for (const shift of [0, 6]) {
      const sae = randomSae(kind, rng);
      // A large negative bias leaves few features active (topk too: its ReLU follows the top k):
      // the sparse decode path.
      for (let i = 0; i < F; i++) sae.encoderBias[i] -= shift;
      const want = sae.run(x, N);
      const got = sae.runSparse(x, N);
      const sparse = got.features.index.length < (N * F) / 32;
      assert.equal(sparse, shift > 0, `${kind} ${shift} decode path`);
      assert.deepEqual(got.features, toSparseRows(want.features, N, F), `${kind} ${shift}`);
      assert.deepEqual(got.error, want.error, `${kind} ${shift} error`);
    }
});

test('normalising decoder rows keeps reconstructions and scales features by the old norms', () => {
  const rng = new Rng(2);
  const x = Float32Array.from({ length: N * d }, () => rng.normal() * 2);
  for (const kind of ['relu', 'jumprelu'] as const) {
    const sae = randomSae(kind, rng);
    const before = sae.run(x, N);
    const norms = sae.normalizeDecoder();
    const after = sae.run(x, N);
    assertClose(after.reconstruction, before.reconstruction, 1e-5, `${kind} reconstruction`);
    for (let n = 0; n < N; n++)
      for (let i = 0; i < F; i++)
        assert.ok(
          Math.abs(after.features[n * F + i] - before.features[n * F + i] * norms[i]) <
            1e-4 * (1 + after.features[n * F + i]),
          `${kind} feature ${i}`,
        );
    for (let i = 0; i < F; i++) assert.ok(Math.abs(Math.hypot(...sae.decoderRow(i)) - 1) < 1e-6);
  }
  assert.throws(
    () => randomSae('topk', rng).normalizeDecoder(),
    /topk dictionary cannot be renormalised/,
  );
});

test('sparse and dense decoding agree', () => {
  const rng = new Rng(3);
  const sae = randomSae('relu', rng);
  const dense = Float32Array.from({ length: N * F }, () => rng.normal());
  const sparse = new Float32Array(N * F);
  sparse[3] = 1.5; // one active feature in all: takes the sparse path
  sparse[2 * F + 7] = -0.25;
  for (const f of [dense, sparse]) {
    const got = sae.decode(f, N);
    const want = new Float64Array(N * d);
    for (let n = 0; n < N; n++)
      for (let j = 0; j < d; j++) {
        let s = sae.decoderBias[j];
        for (let i = 0; i < F; i++) s += f[n * F + i] * sae.decoder[i * d + j];
        want[n * d + j] = s;
      }
    assertClose(got, want, 1e-5, 'decode');
  }
});

test('featureGradient is W_Dᵀ g for every feature, the chain rule through x = W_D f + b_D + ε', () => {
  const rng = new Rng(4);
  const sae = randomSae('relu', rng);
  const g = Float32Array.from({ length: N * d }, () => rng.normal());
  const got = sae.featureGradient(g, N);
  for (let n = 0; n < N; n++)
    for (let i = 0; i < F; i++) {
      let s = 0;
      for (let j = 0; j < d; j++) s += g[n * d + j] * sae.decoder[i * d + j];
      assert.ok(Math.abs(got[n * F + i] - s) < 1e-4 * (1 + Math.abs(s)));
    }
});

test('topKRows keeps the k largest (lower index on ties) and ReLUs them', () => {
  const z = Float32Array.from([3, -1, 5, 5, 0.5, -2, /* row 2 */ -3, -1, -2, -5, -4, -6]);
  topKRows(z, 2, 6, 3);
  assert.deepEqual([...z], [3, 0, 5, 5, 0, 0, 0, 0, 0, 0, 0, 0]);
  const ties = Float32Array.from([1, 1, 1, 1]);
  topKRows(ties, 1, 4, 2);
  assert.deepEqual([...ties], [1, 1, 0, 0]);
});

test('toSparseRows lists the non-zero features of each row', () => {
  const f = Float32Array.from([0, 2, 0, /**/ 0, 0, 0, /**/ 1, 0, 3]);
  const s = toSparseRows(f, 3, 3);
  assert.deepEqual([...s.rowStart], [0, 1, 1, 3]);
  assert.deepEqual([...s.index], [1, 0, 2]);
  assert.deepEqual([...s.value], [2, 1, 3]);
});

test('constructor and inputs are checked with clear errors', () => {
  const ok = {
    site: 'mlp_0',
    kind: 'relu' as const,
    dIn: 2,
    width: 3,
    encoder: new Float32Array(6),
    encoderBias: new Float32Array(3),
    decoder: new Float32Array(6),
    decoderBias: new Float32Array(2),
  };
  assert.throws(
    () => new SparseAutoencoder({ ...ok, decoder: new Float32Array(5) }),
    /SAE for site mlp_0: decoder has 5 values, expected \[3, 2\] = 6/,
  );
  assert.throws(() => new SparseAutoencoder({ ...ok, kind: 'topk', k: 4 }), /k in 1..3/);
  const sae = new SparseAutoencoder(ok);
  assert.throws(
    () => sae.encode(new Float32Array(3), 2),
    /mlp_0: encode input: has 3 values, expected N\*2 = 4/,
  );
  assert.throws(() => sae.decoderRow(3), /feature 3 out of range 0..2/);
});
