// The layers the families add to the engine: RMSNorm (and Gemma's 1 + w), rotary with Llama 3's
// frequency bands, grouped-query attention with head_dim != d/H, q/k norms, soft-capping and a
// sliding window, dense and gated MLPs with each activation, learned positions, logit capping.
// Every backward against finite differences (test/model/finite-differences.ts: float32 forward,
// float64 metric, Richardson central differences; tolerance 4e-4 relative, as layers.test.ts),
// and hand-computed cases for the values.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmsNormBackward, rmsNormForward } from '../../src/model/layers/rmsnorm.ts';
import {
  inverseFrequencies,
  rotaryBackward,
  rotaryForward,
  rotaryTableFrom,
} from '../../src/model/layers/rotary.ts';
import {
  groupedAttentionBackward,
  groupedAttentionCache,
  groupedAttentionForward,
  type GroupedAttentionShape,
  type GroupedAttentionWeights,
} from '../../src/model/layers/grouped-attention.ts';
import {
  activationForward,
  feedForwardBackward,
  feedForwardCache,
  feedForwardForward,
  softcapBackward,
  softcapForward,
  type Activation,
  type FeedForwardWeights,
} from '../../src/model/layers/mlp.ts';
import {
  positionEmbeddingBackward,
  positionEmbeddingForward,
} from '../../src/model/layers/embedding.ts';
import { checkGradients, randn, rng } from './finite-differences.ts';

for (const offset of [0, 1]) {
  test(`rmsnorm (offset ${offset}): x rsqrt(mean x² + eps)(${offset ? '1 + w' : 'w'}), backward by finite differences`, () => {
    const [N, D] = [3, 5];
    const next = rng(20 + offset);
    const x = randn(N * D, next, 2, 0.5);
    const weight = randn(D, next, 0.3, offset ? 0 : 1);
    const out = new Float32Array(N * D);
    const rstd = new Float64Array(N);
    const run = () => (rmsNormForward(out, rstd, x, weight, N, D, 1e-6, offset), out);
    run();
    // row 1 by hand
    let ms = 0;
    for (let i = 0; i < D; i++) ms += x[D + i] ** 2 / D;
    for (let i = 0; i < D; i++) {
      const want = (x[D + i] / Math.sqrt(ms + 1e-6)) * (offset + weight[i]);
      assert.ok(Math.abs(out[D + i] - want) < 1e-6, `out[1][${i}] ${out[D + i]} vs ${want}`);
    }
    checkGradients('rmsnorm', { x, weight }, run, (r) => {
      run();
      const dx = new Float32Array(N * D).fill(0.5); // accumulates
      const dWeight = new Float32Array(D);
      rmsNormBackward(dx, dWeight, r, x, rstd, weight, N, D, offset);
      return { x: dx.map((v) => v - 0.5), weight: dWeight };
    });
  });
}

test('rotary: llama3 scaling keeps high frequencies, divides low ones, interpolates between', () => {
  // R = 8, theta 10^4: inv_freq = 1, 0.1, 0.01, 0.001, wavelengths 2π/f = 6.3, 63, 628, 6283.
  // Original context 1000, low_freq_factor 1, high_freq_factor 4: wavelengths above 1000 are
  // low frequencies (f / 8), below 250 high ones (kept); 628 lies between: with
  // s = (1000/628.3 - 1) / 3, f' = (1 - s) f / 8 + s f.
  const plain = inverseFrequencies(8, 10000);
  [1, 0.1, 0.01, 0.001].forEach((f, i) =>
    assert.ok(Math.abs(plain[i] - f) < 1e-7 * f + 1e-9, `${plain[i]} vs ${f}`),
  );
  const scaled = inverseFrequencies(8, 10000, {
    factor: 8,
    lowFreqFactor: 1,
    highFreqFactor: 4,
    originalContext: 1000,
  });
  const s = (1000 / ((2 * Math.PI) / 0.01) - 1) / 3;
  const want = [1, 0.1, (1 - s) * (0.01 / 8) + s * 0.01, 0.001 / 8];
  want.forEach((f, i) =>
    assert.ok(Math.abs(scaled[i] - f) < 1e-6 * f, `band ${i}: ${scaled[i]} vs ${f}`),
  );
  assert.ok(s > 0.19 && s < 0.2); // the middle band really is between the two
});

test('rotary: rotate-half over the whole head, and its backward is the transpose', () => {
  // Dh = R = 4, inv_freq [1, 0.5]: dims (0, 2) turn by t, dims (1, 3) by t/2.
  const inv = Float32Array.of(1, 0.5);
  const rope = rotaryTableFrom(3, inv);
  const x = Float32Array.from([0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4]); // G 1, T 3
  rotaryForward(x, 1, 3, 4, 4, rope);
  const [c1, s1, c2, s2] = [Math.cos(2), Math.sin(2), Math.cos(1), Math.sin(1)];
  const want = [1 * c1 - 3 * s1, 2 * c2 - 4 * s2, 3 * c1 + 1 * s1, 4 * c2 + 2 * s2];
  want.forEach((v, i) => assert.ok(Math.abs(x[8 + i] - v) < 1e-6, `${x[8 + i]} vs ${v}`));
  // partial rotary (R 2 of Dh 4) and a full one, backward by finite differences
  for (const R of [2, 4]) {
    const y = randn(2 * 3 * 4, rng(30 + R));
    const out = new Float32Array(y.length);
    const table = rotaryTableFrom(3, inverseFrequencies(R, 10000));
    checkGradients(
      `rotary R ${R}`,
      { y },
      () => (out.set(y), rotaryForward(out, 2, 3, 4, R, table), out),
      (r) => {
        const d = Float32Array.from(r);
        rotaryBackward(d, 2, 3, 4, R, table);
        return { y: d };
      },
    );
  }
});

function attentionWeights(
  d: number,
  H: number,
  KV: number,
  Dh: number,
  next: () => number,
  bias: boolean,
  qkNorm: boolean,
): GroupedAttentionWeights {
  return {
    qWeight: randn(H * Dh * d, next, 0.4),
    qBias: bias ? randn(H * Dh, next, 0.2) : null,
    kWeight: randn(KV * Dh * d, next, 0.4),
    kBias: bias ? randn(KV * Dh, next, 0.2) : null,
    vWeight: randn(KV * Dh * d, next, 0.4),
    vBias: bias ? randn(KV * Dh, next, 0.2) : null,
    qNorm: qkNorm ? randn(Dh, next, 0.3, 1) : null,
    kNorm: qkNorm ? randn(Dh, next, 0.3, 1) : null,
  };
}

function zerosLike(w: GroupedAttentionWeights): GroupedAttentionWeights {
  const z = (t: Float32Array | null) => (t ? new Float32Array(t.length) : null);
  return {
    qWeight: new Float32Array(w.qWeight.length),
    qBias: z(w.qBias),
    kWeight: new Float32Array(w.kWeight.length),
    kBias: z(w.kBias),
    vWeight: new Float32Array(w.vWeight.length),
    vBias: z(w.vBias),
    qNorm: z(w.qNorm),
    kNorm: z(w.kNorm),
  };
}

function runAttention(
  x: Float32Array,
  w: GroupedAttentionWeights,
  s: GroupedAttentionShape,
  d: number,
) {
  const cache = groupedAttentionCache(s, w.qNorm !== null);
  const z = new Float32Array(s.B * s.T * s.H * s.Dh);
  const rope = rotaryTableFrom(s.T, inverseFrequencies(s.R, 10000));
  groupedAttentionForward(z, cache, x, w, s, d, rope);
  return { z, cache, rope };
}

const attentionCases: [string, Partial<GroupedAttentionShape>, boolean, boolean][] = [
  [
    'GQA H 4 / KV 2, head_dim 6 != d/H, biases, q/k norms',
    { softcap: null, window: null },
    true,
    true,
  ],
  ['soft-capping 1.5 and a window of 2', { softcap: 1.5, window: 2 }, false, false],
  [
    'partial rotary (R 2), KV = H, window 3',
    { R: 2, KV: 4, window: 3, softcap: null },
    true,
    false,
  ],
];

for (const [label, shape, bias, qkNorm] of attentionCases) {
  test(`grouped attention backward by finite differences: ${label}`, () => {
    const d = 8;
    const s: GroupedAttentionShape = {
      B: 2,
      T: 5,
      H: 4,
      KV: 2,
      Dh: 6,
      R: 6,
      scale: 1 / Math.sqrt(6),
      softcap: null,
      window: null,
      normEps: 1e-6,
      ...shape,
    };
    const next = rng(40);
    const w = attentionWeights(d, s.H, s.KV, s.Dh, next, bias, qkNorm);
    const x = randn(s.B * s.T * d, next);
    const tensors: Record<string, Float32Array> = { x };
    for (const [k, v] of Object.entries(w)) if (v) tensors[k] = v;
    checkGradients(
      `attention (${label})`,
      tensors,
      () => runAttention(x, w, s, d).z,
      (r) => {
        const { cache, rope } = runAttention(x, w, s, d);
        const grads = zerosLike(w);
        const dx = new Float32Array(x.length);
        groupedAttentionBackward(dx, grads, r, x, cache, w, s, d, rope);
        const out: Record<string, Float32Array> = { x: dx };
        for (const [k, v] of Object.entries(grads)) if (v) out[k] = v;
        return out;
      },
    );
  });
}

test('grouped attention: query head h reads kv head floor(h / (H/KV)), as repeat_kv', () => {
  // The same computation with KV = H and each kv head's weights repeated for its g query heads.
  const [d, H, KV, Dh] = [8, 6, 2, 4];
  const s: GroupedAttentionShape = {
    B: 1,
    T: 4,
    H,
    KV,
    Dh,
    R: 4,
    scale: 0.5,
    softcap: null,
    window: null,
    normEps: 1e-6,
  };
  const w = attentionWeights(d, H, KV, Dh, rng(41), true, false);
  const repeat = (t: Float32Array, width: number) => {
    const out = new Float32Array(H * width);
    for (let h = 0; h < H; h++) {
      const kv = Math.floor(h / (H / KV));
      out.set(t.subarray(kv * width, (kv + 1) * width), h * width);
    }
    return out;
  };
  const full: GroupedAttentionWeights = {
    ...w,
    kWeight: repeat(w.kWeight, Dh * d),
    kBias: repeat(w.kBias!, Dh),
    vWeight: repeat(w.vWeight, Dh * d),
    vBias: repeat(w.vBias!, Dh),
  };
  const x = randn(4 * d, rng(42));
  const grouped = runAttention(x, w, s, d).z;
  const reference = runAttention(x, full, { ...s, KV: H }, d).z;
  grouped.forEach((v, i) => assert.ok(Math.abs(v - reference[i]) < 1e-6, `z[${i}]`));
});

test('grouped attention: key j is visible from query i iff i - window < j <= i; capping bounds scores', () => {
  const [d, T, window] = [4, 6, 3];
  const s: GroupedAttentionShape = {
    B: 1,
    T,
    H: 1,
    KV: 1,
    Dh: 4,
    R: 0,
    scale: 1,
    softcap: null,
    window,
    normEps: 1e-6,
  };
  const w = attentionWeights(d, 1, 1, 4, rng(43), false, false);
  const x = randn(T * d, rng(44));
  const { cache } = runAttention(x, w, s, d);
  for (let i = 0; i < T; i++)
    for (let j = 0; j < T; j++) {
      const p = cache.probs[i * T + j];
      const visible = j <= i && i - window < j;
      assert.ok(visible ? p > 0 : p === 0, `query ${i} key ${j}: p ${p}`);
    }
  // Huge scores capped at 2: probabilities within e^±4 of each other on each row.
  w.qWeight.forEach((_, i) => (w.qWeight[i] *= 100));
  const capped = runAttention(x, w, { ...s, window: null, softcap: 2 }, d).cache;
  for (let i = 1; i < T; i++) {
    const row = Array.from(capped.probs.subarray(i * T, i * T + i + 1));
    assert.ok(Math.max(...row) / Math.min(...row) <= Math.exp(4) * (1 + 1e-5), `row ${i}`);
  }
});

test('activations: gelu_tanh (gelu_new), exact gelu and silu at hand-computed points', () => {
  const x = Float32Array.of(1, -0.5, 2);
  const value = (act: Activation) => {
    const out = new Float32Array(3);
    activationForward(act, out, x, 3);
    return out;
  };
  const tanhGelu = (v: number) =>
    0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3)));
  assert.ok(Math.abs(value('gelu_tanh')[0] - 0.8411919906082768) < 1e-7);
  assert.ok(Math.abs(value('gelu_tanh')[1] - tanhGelu(-0.5)) < 1e-7);
  assert.ok(Math.abs(value('gelu')[0] - 0.8413447460685429) < 1e-7);
  assert.ok(Math.abs(value('silu')[0] - 0.7310585786300049) < 1e-7);
  assert.ok(Math.abs(value('silu')[2] - 2 / (1 + Math.exp(-2))) < 1e-6);
});

const mlpCases: [string, boolean, Activation, boolean][] = [
  ['dense gelu_new with biases (GPT-2)', false, 'gelu_tanh', true],
  ['dense exact gelu (GPT-NeoX)', false, 'gelu', true],
  ['SwiGLU (Llama, Qwen)', true, 'silu', false],
  ['GeGLU with tanh GELU (Gemma-2)', true, 'gelu_tanh', false],
];

for (const [label, gated, act, bias] of mlpCases) {
  test(`feed-forward backward by finite differences: ${label}`, () => {
    const [N, d, f] = [5, 6, 10];
    const next = rng(50);
    const w: FeedForwardWeights = {
      upWeight: randn(f * d, next, 0.5),
      upBias: bias ? randn(f, next, 0.3) : null,
      gateWeight: gated ? randn(f * d, next, 0.5) : null,
      gateBias: null,
      downWeight: randn(d * f, next, 0.5),
      downBias: bias ? randn(d, next, 0.3) : null,
    };
    const x = randn(N * d, next);
    const cache = feedForwardCache(N, f, gated);
    const out = new Float32Array(N * d);
    const run = () => (feedForwardForward(out, cache, x, w, act, N, d, f), out);
    run();
    // row 0, output 0 by hand
    const pre = (W: Float32Array, b: Float32Array | null, j: number) => {
      let v = b ? b[j] : 0;
      for (let i = 0; i < d; i++) v += W[j * d + i] * x[i];
      return v;
    };
    const a = (v: number) => {
      const o = new Float32Array(1);
      activationForward(act, o, Float32Array.of(v), 1);
      return o[0];
    };
    let want = w.downBias ? w.downBias[0] : 0;
    for (let j = 0; j < f; j++) {
      const h = gated
        ? a(pre(w.gateWeight!, null, j)) * pre(w.upWeight, null, j)
        : a(pre(w.upWeight, w.upBias, j));
      want += w.downWeight[j] * h;
    }
    assert.ok(Math.abs(out[0] - want) < 1e-5, `${out[0]} vs ${want}`);
    const tensors: Record<string, Float32Array> = { x };
    for (const [k, v] of Object.entries(w)) if (v) tensors[k] = v;
    checkGradients(label, tensors, run, (r) => {
      run();
      const z = (t: Float32Array | null) => (t ? new Float32Array(t.length) : null);
      const grads: FeedForwardWeights = {
        upWeight: new Float32Array(f * d),
        upBias: z(w.upBias),
        gateWeight: z(w.gateWeight),
        gateBias: null,
        downWeight: new Float32Array(d * f),
        downBias: z(w.downBias),
      };
      const dx = new Float32Array(N * d);
      feedForwardBackward(dx, grads, r, x, cache, w, act, N, d, f);
      const result: Record<string, Float32Array> = { x: dx };
      for (const [k, v] of Object.entries(grads)) if (v) result[k] = v;
      return result;
    });
  });
}

test('logit soft-capping cap·tanh(x/cap) and learned positions: backward by finite differences', () => {
  const x = randn(12, rng(60), 20);
  const out = new Float32Array(12);
  const run = () => (out.set(x), softcapForward(out, 30, 12), out);
  run();
  assert.ok(Math.abs(out[0] - 30 * Math.tanh(x[0] / 30)) < 1e-5);
  checkGradients('softcap', { x }, run, (r) => {
    run();
    const dx = new Float32Array(12);
    softcapBackward(dx, r, out, 30, 12);
    return { x: dx };
  });
  const [B, T, d] = [2, 3, 4];
  const positions = randn(5 * d, rng(61));
  const emb = new Float32Array(B * T * d);
  checkGradients(
    'position embedding',
    { positions },
    () => (emb.fill(1), positionEmbeddingForward(emb, positions, B, T, d), emb),
    (r) => {
      const dp = new Float32Array(5 * d);
      positionEmbeddingBackward(dp, r, B, T, d);
      return { positions: dp };
    },
  );
});
