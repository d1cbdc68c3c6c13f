// Each layer's backward against central finite differences of its own forward, plus hand-computed
// cases for rotary embeddings, the causal softmax, erf and GELU.
// Float32 forward passes limit finite differences, so each check compares a directional
// derivative (random direction over the whole tensor) and a few single coordinates, using
// Richardson-extrapolated central differences (steps 2h and h) and the metric phi = sum(r * out)
// accumulated in float64. Tolerance: 4e-4 of max(|derivative|, |g| |u| / sqrt(size)); the worst
// observed is ~1e-4 (single coordinates of the attention input).

import { Rng } from '../../src/random.ts';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  attentionBackward,
  attentionCache,
  attentionForward,
  attentionScratch,
  rotaryTable,
  splitHeadsRotary,
  type AttentionShape,
} from '../../src/model/layers/attention.ts';
import { embeddingBackward, embeddingForward } from '../../src/model/layers/embedding.ts';
import { layerNormBackward, layerNormForward } from '../../src/model/layers/layernorm.ts';
import { linearBackward, linearForward } from '../../src/model/layers/linear.ts';
import {
  erf,
  geluBackward,
  geluSlope,
  geluForward,
  mlpBackward,
  mlpForward,
} from '../../src/model/layers/mlp.ts';
import { unembeddingBackward, unembeddingForward } from '../../src/model/layers/unembedding.ts';
import { crossEntropy } from '../../src/model/loss.ts';
import type { LayerWeights } from '../../src/model/weights.ts';

// Normal samples from the project's seeded generator.
function rng(seed: number): () => number {
  const generator = new Rng(seed);
  return () => generator.normal();
}

function randn(n: number, next: () => number, scale = 1, offset = 0): Float32Array {
  return Float32Array.from({ length: n }, () => offset + scale * next());
}

function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

/**
 * run() computes the layer's output from the current contents of the tensors; analytic(r)
 * returns the backward's gradients of sum(r * out) for the named tensors.
 */
function checkGradients(
  label: string,
  tensors: Record<string, Float32Array>,
  run: () => Float32Array,
  analytic: (r: Float32Array) => Record<string, Float32Array>,
  seed = 1,
  h = 1e-2,
  tol = 4e-4,
): void {
  const next = rng(seed);
  const out = run();
  const r = randn(out.length, next);
  const grads = analytic(r);
  const phi = () => dot(r, run());
  for (const [name, x] of Object.entries(tensors)) {
    const g = grads[name];
    assert.equal(g.length, x.length, `${label}: gradient of ${name} has the wrong length`);
    const base = Float32Array.from(x);
    // Richardson: (4 D(h) - D(2h)) / 3 cancels the h^2 error term of the central difference.
    const derivative = (u: Float32Array): number => {
      const central = (step: number): number => {
        for (let i = 0; i < x.length; i++) x[i] = base[i] + step * u[i];
        const plus = phi();
        for (let i = 0; i < x.length; i++) x[i] = base[i] - step * u[i];
        const minus = phi();
        x.set(base);
        return (plus - minus) / (2 * step);
      };
      return (4 * central(h) - central(2 * h)) / 3;
    };
    const directions: Float32Array[] = [randn(x.length, next)];
    for (let k = 0; k < 3; k++) {
      const e = new Float32Array(x.length);
      e[Math.floor(Math.abs(next() * 1e6)) % x.length] = 1;
      directions.push(e);
    }
    for (const u of directions) {
      const fd = derivative(u);
      const an = dot(g, u);
      // |an| for a typical direction of this size; keeps the test meaningful when an ~ 0.
      const scale = Math.sqrt((dot(g, g) * dot(u, u)) / x.length) + 1e-9;
      assert.ok(
        Math.abs(fd - an) <= tol * Math.max(scale, Math.abs(an)),
        `${label}: d/d${name} finite difference ${fd} vs backward ${an} (scale ${scale})`,
      );
    }
  }
}

test('embedding backward scatters rows to their token ids', () => {
  const [N, d, V] = [5, 3, 4];
  const next = rng(2);
  const ids = Int32Array.from([1, 3, 1, 0, 2]);
  const table = randn(V * d, next);
  const out = new Float32Array(N * d);
  checkGradients(
    'embedding',
    { table },
    () => (embeddingForward(out, ids, table, N, d), out),
    (r) => {
      const dTable = new Float32Array(V * d);
      embeddingBackward(dTable, r, ids, N, d);
      return { table: dTable };
    },
  );
  embeddingForward(out, ids, table, N, d);
  assert.deepEqual(Array.from(out.subarray(3, 6)), Array.from(table.subarray(9, 12)));
});

test('layernorm forward normalises each row, backward matches finite differences', () => {
  const [N, d] = [4, 7];
  const next = rng(3);
  const x = randn(N * d, next, 2, 0.5);
  const weight = randn(d, next, 0.3, 1);
  const bias = randn(d, next, 0.3);
  const out = new Float32Array(N * d);
  const mean = new Float64Array(N);
  const rstd = new Float64Array(N);
  const run = () => (layerNormForward(out, mean, rstd, x, weight, bias, N, d, 1e-5), out);
  // With unit weight and zero bias, every row has mean 0 and variance 1 (up to eps).
  layerNormForward(
    out,
    mean,
    rstd,
    x,
    new Float32Array(d).fill(1),
    new Float32Array(d),
    N,
    d,
    1e-5,
  );
  for (let n = 0; n < N; n++) {
    const row = Array.from(out.subarray(n * d, n * d + d));
    const m = row.reduce((a, b) => a + b, 0) / d;
    const v = row.reduce((a, b) => a + (b - m) ** 2, 0) / d;
    assert.ok(Math.abs(m) < 1e-6 && Math.abs(v - 1) < 1e-4, `row ${n}: mean ${m} var ${v}`);
  }
  checkGradients('layernorm', { x, weight, bias }, run, (r) => {
    run();
    const dx = new Float32Array(N * d).fill(0.25); // backward accumulates: subtract the prefill
    const dWeight = new Float32Array(d);
    const dBias = new Float32Array(d);
    layerNormBackward(dx, dWeight, dBias, r, x, mean, rstd, weight, N, d);
    return { x: dx.map((v) => v - 0.25), weight: dWeight, bias: dBias };
  });
});

test('linear backward matches finite differences; parameter gradients accumulate', () => {
  const [N, I, O] = [5, 6, 4];
  const next = rng(4);
  const x = randn(N * I, next);
  const weight = randn(O * I, next, 0.5);
  const bias = randn(O, next);
  const out = new Float32Array(N * O);
  const run = () => (linearForward(out, x, weight, bias, N, I, O), out);
  run();
  // out[1, 2] by hand
  let want = bias[2];
  for (let i = 0; i < I; i++) want += x[I + i] * weight[2 * I + i];
  assert.ok(Math.abs(out[O + 2] - want) < 1e-5);
  checkGradients('linear', { x, weight, bias }, run, (r) => {
    const dx = new Float32Array(N * I).fill(9); // overwritten
    const dWeight = new Float32Array(O * I).fill(1); // accumulated
    const dBias = new Float32Array(O).fill(1);
    linearBackward(dx, dWeight, dBias, r, x, weight, N, I, O);
    return { x: dx, weight: dWeight.map((v) => v - 1), bias: dBias.map((v) => v - 1) };
  });
});

test('rotary: head_size 4, rotary_pct 0.5 rotates dims (0, 1) by the position angle', () => {
  // R = 2: inv_freq = [1], angle = t; q = [a, b, c, e] -> [a cos t - b sin t, b cos t + a sin t, c, e].
  const s: AttentionShape = { B: 1, T: 3, H: 1, S: 4, R: 2 };
  const qkv = new Float32Array(3 * 12);
  for (let t = 0; t < 3; t++)
    for (let j = 0; j < 12; j++) qkv[t * 12 + j] = j < 4 ? [1, 2, 3, 4][j] : j < 8 ? 5 + t : 9;
  const heads = new Float32Array(3 * 12);
  splitHeadsRotary(heads, qkv, new Float32Array(12), s, rotaryTable(3, 2, 10000));
  for (let t = 0; t < 3; t++) {
    const q = Array.from(heads.subarray(t * 4, t * 4 + 4));
    const want = [Math.cos(t) - 2 * Math.sin(t), 2 * Math.cos(t) + Math.sin(t), 3, 4];
    q.forEach((v, i) =>
      assert.ok(Math.abs(v - want[i]) < 1e-6, `q[${t}][${i}] ${v} vs ${want[i]}`),
    );
    const k = Array.from(heads.subarray(12 + t * 4, 12 + t * 4 + 4));
    const kw = [
      (5 + t) * (Math.cos(t) - Math.sin(t)),
      (5 + t) * (Math.cos(t) + Math.sin(t)),
      5 + t,
      5 + t,
    ];
    k.forEach((v, i) => assert.ok(Math.abs(v - kw[i]) < 1e-5, `k[${t}][${i}] ${v} vs ${kw[i]}`));
    assert.deepEqual(Array.from(heads.subarray(24 + t * 4, 24 + t * 4 + 4)), [9, 9, 9, 9]);
  }
});

test('rotary: the half-split pairs dim i with dim i + R/2, inv_freq = base^(-2i/R)', () => {
  // S = R = 4, base 10000: dims (0, 2) turn at angle t, dims (1, 3) at angle t / 100.
  const s: AttentionShape = { B: 1, T: 2, H: 1, S: 4, R: 4 };
  const qkv = new Float32Array(2 * 12);
  qkv.set([1, 2, 3, 4], 12); // q at position 1
  const heads = new Float32Array(2 * 12);
  // bias [1, 3, 4]: q gets [0.5, 0, 0, 0] added before the rotation
  const bias = new Float32Array(12);
  bias[0] = 0.5;
  splitHeadsRotary(heads, qkv, bias, s, rotaryTable(2, 4, 10000));
  const [c1, s1, c2, s2] = [Math.cos(1), Math.sin(1), Math.cos(0.01), Math.sin(0.01)];
  const want = [1.5 * c1 - 3 * s1, 2 * c2 - 4 * s2, 3 * c1 + 1.5 * s1, 4 * c2 + 2 * s2];
  Array.from(heads.subarray(4, 8)).forEach((v, i) =>
    assert.ok(Math.abs(v - want[i]) < 1e-6, `dim ${i}: ${v} vs ${want[i]}`),
  );
});

function attentionWeights(d: number, next: () => number): LayerWeights {
  return {
    qkvWeight: randn(3 * d * d, next, 0.4),
    qkvBias: randn(3 * d, next, 0.2),
    denseWeight: randn(d * d, next, 0.4),
    denseBias: randn(d, next, 0.2),
    fcInWeight: new Float32Array(0),
    fcInBias: new Float32Array(0),
    fcOutWeight: new Float32Array(0),
    fcOutBias: new Float32Array(0),
    ln1Weight: new Float32Array(0),
    ln1Bias: new Float32Array(0),
    ln2Weight: new Float32Array(0),
    ln2Bias: new Float32Array(0),
  };
}

test('attention: the first position attends only to itself', () => {
  // Whatever the scores, the causal softmax at t = 0 has one entry: the output is dense(v_0).
  const s: AttentionShape = { B: 1, T: 3, H: 2, S: 4, R: 2 };
  const d = 8;
  const w = attentionWeights(d, rng(5));
  const x = randn(3 * d, rng(6));
  const out = new Float32Array(3 * d);
  attentionForward(out, attentionCache(s), x, w, s, rotaryTable(3, 2, 10000), attentionScratch(s));
  // v_0 of head h = rows h*12 + 8 .. h*12 + 12 of qkv(x_0); concat then dense.
  const concat = new Float64Array(d);
  for (let h = 0; h < 2; h++)
    for (let i = 0; i < 4; i++) {
      const row = h * 12 + 8 + i;
      let v = w.qkvBias[row];
      for (let j = 0; j < d; j++) v += w.qkvWeight[row * d + j] * x[j];
      concat[h * 4 + i] = v;
    }
  for (let o = 0; o < d; o++) {
    let want = w.denseBias[o];
    for (let j = 0; j < d; j++) want += w.denseWeight[o * d + j] * concat[j];
    assert.ok(Math.abs(out[o] - want) < 1e-4, `out[0][${o}] ${out[o]} vs ${want}`);
  }
});

test('attention backward (rotary, causal softmax, projections) matches finite differences', () => {
  const s: AttentionShape = { B: 2, T: 5, H: 2, S: 8, R: 4 };
  const d = 16;
  const N = 10;
  const next = rng(7);
  const w = attentionWeights(d, next);
  const x = randn(N * d, next);
  const cache = attentionCache(s);
  const scratch = attentionScratch(s);
  const rope = rotaryTable(5, 4, 10000);
  const out = new Float32Array(N * d);
  const run = () => (attentionForward(out, cache, x, w, s, rope, scratch), out);
  checkGradients(
    'attention',
    {
      x,
      qkvWeight: w.qkvWeight,
      qkvBias: w.qkvBias,
      denseWeight: w.denseWeight,
      denseBias: w.denseBias,
    },
    run,
    (r) => {
      run();
      const grads = attentionWeights(d, () => 0);
      const dx = new Float32Array(N * d);
      attentionBackward(dx, grads, r, x, cache, w, s, rope, scratch);
      return {
        x: dx,
        qkvWeight: grads.qkvWeight,
        qkvBias: grads.qkvBias,
        denseWeight: grads.denseWeight,
        denseBias: grads.denseBias,
      };
    },
  );
});

// erf(x) = 2/sqrt(pi) * integral_0^x exp(-t^2) dt, Simpson with 2000 panels (error ~1e-14).
function erfBySimpson(x: number): number {
  const n = 2000;
  const step = x / n;
  let sum = 1 + Math.exp(-x * x);
  for (let i = 1; i < n; i++) sum += (i % 2 ? 4 : 2) * Math.exp(-((i * step) ** 2));
  return ((2 / Math.sqrt(Math.PI)) * sum * step) / 3;
}

test('erf matches known values and a Simpson integral to 1e-9', () => {
  const known: [number, number][] = [
    [0, 0],
    [0.5, 0.5204998778130465],
    [1, 0.8427007929497149],
    [2, 0.9953222650189527],
    [-1, -0.8427007929497149],
    [3, 0.9999779095030014],
    [0.1, 0.1124629160182849],
  ];
  for (const [x, want] of known) assert.ok(Math.abs(erf(x) - want) < 1e-9, `erf(${x}) = ${erf(x)}`);
  assert.equal(erf(10), 1);
  assert.equal(erf(-10), -1);
  assert.ok(Number.isNaN(erf(NaN)));
  for (let x = -6.3; x <= 6.3; x += 0.0937) {
    const want = erfBySimpson(x);
    assert.ok(Math.abs(erf(x) - want) < 1e-9, `erf(${x}) = ${erf(x)} vs ${want}`);
  }
});

test('the gelu slope is Phi(x) + x phi(x) to 1e-9', () => {
  for (let x = -10.1; x <= 10.1; x += 0.0731) {
    const phi = Math.exp((-x * x) / 2) / Math.sqrt(2 * Math.PI);
    const want = 0.5 * (1 + erfBySimpson(x / Math.SQRT2)) + x * phi;
    assert.ok(Math.abs(geluSlope(x) - want) < 1e-9, `slope(${x}) = ${geluSlope(x)} vs ${want}`);
  }
});

test('gelu is x * Phi(x) with the exact erf; its backward matches finite differences', () => {
  const x = Float32Array.from([-3, -1, -0.5, 0, 0.5, 1, 2, 4]);
  const y = new Float32Array(x.length);
  geluForward(y, x, x.length);
  // x * Phi(x) with Phi(1) = 0.8413447460685429, Phi(2) = 0.9772498680518208
  assert.ok(Math.abs(y[5] - 0.8413447460685429) < 1e-7);
  assert.ok(Math.abs(y[1] - -0.15865525393145707) < 1e-7);
  assert.ok(Math.abs(y[6] - 2 * 0.9772498680518208) < 1e-7);
  assert.equal(y[3], 0);
  // Not the tanh approximation: that gives 0.8411919906082768 at 1.
  assert.ok(Math.abs(y[5] - 0.8411919906082768) > 1e-4);
  // x Phi(x) against the Simpson erf across the whole range (float32 output).
  const grid = Float32Array.from({ length: 300 }, (_, i) => -10.5 + i * 0.0703);
  const g = new Float32Array(grid.length);
  geluForward(g, grid, grid.length);
  grid.forEach((x, i) => {
    const want = 0.5 * x * (1 + erfBySimpson(x / Math.SQRT2));
    assert.ok(
      Math.abs(g[i] - want) <= 1e-7 * Math.abs(want) + 1e-9,
      `gelu(${x}) = ${g[i]} vs ${want}`,
    );
  });
  const nan = new Float32Array(1);
  geluForward(nan, Float32Array.of(NaN), 1);
  assert.ok(Number.isNaN(nan[0]));
  const xs = randn(50, rng(8), 2);
  const out = new Float32Array(50);
  checkGradients(
    'gelu',
    { xs },
    () => (geluForward(out, xs, 50), out),
    (r) => {
      const dx = new Float32Array(50);
      geluBackward(dx, r, xs, 50);
      return { xs: dx };
    },
  );
});

test('mlp backward matches finite differences', () => {
  const [N, d, f] = [6, 5, 12];
  const next = rng(9);
  const w = attentionWeights(0, next);
  w.fcInWeight = randn(f * d, next, 0.5);
  w.fcInBias = randn(f, next, 0.3);
  w.fcOutWeight = randn(d * f, next, 0.5);
  w.fcOutBias = randn(d, next, 0.3);
  const x = randn(N * d, next);
  const cache = { pre: new Float32Array(N * f), act: new Float32Array(N * f) };
  const out = new Float32Array(N * d);
  const run = () => (mlpForward(out, cache, x, w, N, d, f), out);
  checkGradients(
    'mlp',
    {
      x,
      fcInWeight: w.fcInWeight,
      fcInBias: w.fcInBias,
      fcOutWeight: w.fcOutWeight,
      fcOutBias: w.fcOutBias,
    },
    run,
    (r) => {
      run();
      const grads = attentionWeights(0, () => 0);
      grads.fcInWeight = new Float32Array(f * d);
      grads.fcInBias = new Float32Array(f);
      grads.fcOutWeight = new Float32Array(d * f);
      grads.fcOutBias = new Float32Array(d);
      const dx = new Float32Array(N * d);
      mlpBackward(dx, grads, r, x, cache, w, N, d, f, new Float32Array(N * f));
      return { x: dx, ...grads };
    },
  );
});

test('unembedding backward matches finite differences and skips zero rows', () => {
  const [N, d, V] = [6, 5, 9];
  const next = rng(10);
  const resid = randn(N * d, next);
  const w = {
    lnFinalWeight: randn(d, next, 0.3, 1),
    lnFinalBias: randn(d, next, 0.3),
    embedOut: randn(V * d, next, 0.5),
  };
  const rows = Int32Array.from([4, 1, 5]);
  const logits = new Float32Array(3 * V);
  const run = () => (unembeddingForward(logits, resid, rows, w, 1e-5, d, V), logits);
  const analytic = (r: Float32Array) => {
    const cache = unembeddingForward(logits, resid, rows, w, 1e-5, d, V);
    const grads = {
      lnFinalWeight: new Float32Array(d),
      lnFinalBias: new Float32Array(d),
      embedOut: new Float32Array(V * d),
    };
    const dResid = new Float32Array(N * d);
    unembeddingBackward(dResid, grads, r, cache, w, d, V);
    return { resid: dResid, ...grads };
  };
  checkGradients('unembedding', { resid, ...w }, run, analytic);
  // A zero row of dLogits contributes nothing: same result as the dense computation.
  const r = randn(3 * V, next);
  r.fill(0, V, 2 * V);
  const sparse = analytic(r);
  assert.ok(sparse.resid.subarray(1 * d, 2 * d).every((v) => v === 0));
  assert.ok(sparse.resid.subarray(4 * d, 5 * d).some((v) => v !== 0));
  checkGradients('unembedding with a zero row', { resid, ...w }, run, (rr) => {
    rr.fill(0, V, 2 * V);
    return analytic(rr);
  });
});

test('crossEntropy: hand-computed loss, ignored targets and finite-difference gradient', () => {
  const logits = Float32Array.from([0, Math.log(3), 5, 5, 1, 2]);
  const { loss, dLogits } = crossEntropy(logits, Int32Array.from([1, -1, 0]), 2);
  // row 0: softmax [1/4, 3/4], -log(3/4); row 2: -log(e/(e+e^2)) = log(1 + e)
  const want = (-Math.log(0.75) + Math.log(1 + Math.E)) / 2;
  assert.ok(Math.abs(loss - want) < 1e-6, `${loss} vs ${want}`);
  assert.deepEqual(Array.from(dLogits.subarray(2, 4)), [0, 0]);
  assert.ok(Math.abs(dLogits[0] - 0.25 / 2) < 1e-7 && Math.abs(dLogits[1] - (0.75 - 1) / 2) < 1e-7);
  assert.throws(() => crossEntropy(logits, Int32Array.from([1, 2, 0]), 2), /target 2 at row 1/);
  const x = randn(12, rng(11));
  const targets = Int32Array.from([2, 0, -1]);
  checkGradients(
    'crossEntropy',
    { x },
    () => Float32Array.of(crossEntropy(x, targets, 4).loss),
    (r) => ({ x: crossEntropy(x, targets, 4).dLogits.map((v) => v * r[0]) }),
  );
});
