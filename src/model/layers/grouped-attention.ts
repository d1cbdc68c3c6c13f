// Causal self-attention for every family on the generic engine (transformer.ts): separate q, k, v
// projections with optional biases, grouped-query attention, a head dim independent of d/H,
// optional per-head q/k RMSNorm (Qwen3), rotary on the first R dims of each head (R = 0: none,
// GPT-2), a configurable score scale, attention-logit soft-capping and a sliding window (Gemma-2).
// GPT-NeoX's fused, faster path stays in attention.ts.
//
// B batch, T tokens, N = B·T rows, d model dim, H query heads, KV key/value heads (H % KV = 0),
// g = H/KV query heads per kv head, Dh head dim, R rotary dims. Query head h reads kv head
// floor(h / g). Heads are laid out [B, H, T, Dh] and [B, KV, T, Dh], so the g query heads of one
// kv head are contiguous: one batched product per (b, kv) of the [g·T, Dh] queries with the
// [T, Dh] keys. Key j is visible from query i iff j <= i and (no window or i - window < j).
// P past positions (rotated keys and values given, as a KV cache, [B, KV, P, Dh]): the T tokens sit
// at positions P..P+T-1 and attend to W = P+T keys; the past gets no gradient.
// The output is z [N, H·Dh], the heads' outputs concatenated per token (site attn_z_L), which
// the block then projects with o_proj.

import { matmul } from '../../kernels/gemm.ts';
import type { RotaryTable } from './attention.ts';
import { rmsNormBackward, rmsNormForward } from './rmsnorm.ts';
import { rotaryBackward, rotaryForward } from './rotary.ts';

export interface GroupedAttentionShape {
  B: number;
  T: number;
  H: number;
  KV: number;
  Dh: number;
  R: number;
  /** Multiplies q·k (1/sqrt(Dh), or Gemma-2's query_pre_attn_scalar^-0.5). */
  scale: number;
  /** Scores become cap·tanh(score/cap) before the mask (null: no capping). */
  softcap: number | null;
  /** Sliding window in tokens (null: global causal attention). */
  window: number | null;
  /** eps of the q/k RMSNorm (Qwen3). */
  normEps: number;
  /** Past positions (default 0). */
  P?: number;
}

/** Rotated keys and values of P earlier positions, [B, KV, P, Dh] each. */
export interface PastKeysValues {
  keys: Float32Array;
  values: Float32Array;
}

/** q, k, v projections [out, d] (PyTorch layout) with optional biases; q/k norms [Dh] or null. */
export interface GroupedAttentionWeights {
  qWeight: Float32Array; // [H·Dh, d]
  qBias: Float32Array | null; // [H·Dh]
  kWeight: Float32Array; // [KV·Dh, d]
  kBias: Float32Array | null;
  vWeight: Float32Array; // [KV·Dh, d]
  vBias: Float32Array | null;
  qNorm: Float32Array | null; // [Dh]
  kNorm: Float32Array | null; // [Dh]
}

/**
 * What the backward needs: q [B, H, T, Dh] and k [B, KV, T, Dh] as they enter the scores (after
 * norm and rotary), v [B, KV, T, Dh]; with q/k norms their inputs qPre, kPre and rstd per head row;
 * probs [B·H, T, W]; capped [B·H, T, W] = tanh(scale·s/cap) when soft-capping (else empty); with a
 * past, keys and values [B, KV, W, Dh] (past then own), else empty.
 */
export interface GroupedAttentionCache {
  q: Float32Array;
  k: Float32Array;
  v: Float32Array;
  qPre: Float32Array;
  kPre: Float32Array;
  qRstd: Float64Array;
  kRstd: Float64Array;
  probs: Float32Array;
  capped: Float32Array;
  keys: Float32Array;
  values: Float32Array;
}

export function groupedAttentionCache(
  s: GroupedAttentionShape,
  qkNorm: boolean,
): GroupedAttentionCache {
  const { B, T, H, KV, Dh, P = 0 } = s;
  const nq = B * H * T * Dh;
  const nk = B * KV * T * Dh;
  const W = P + T;
  const all = P > 0 ? B * KV * W * Dh : 0;
  return {
    q: new Float32Array(nq),
    k: new Float32Array(nk),
    v: new Float32Array(nk),
    qPre: new Float32Array(qkNorm ? nq : 0),
    kPre: new Float32Array(qkNorm ? nk : 0),
    qRstd: new Float64Array(qkNorm ? B * H * T : 0),
    kRstd: new Float64Array(qkNorm ? B * KV * T : 0),
    probs: new Float32Array(B * H * T * W),
    capped: new Float32Array(s.softcap !== null ? B * H * T * W : 0),
    keys: new Float32Array(all),
    values: new Float32Array(all),
  };
}

/** x [B, T, heads, Dh] -> out [B, heads, T, Dh]. */
export function tokensToHeadRows(
  out: Float32Array,
  x: Float32Array,
  B: number,
  T: number,
  heads: number,
  Dh: number,
): void {
  for (let b = 0; b < B; b++)
    for (let h = 0; h < heads; h++)
      for (let t = 0; t < T; t++) {
        const src = ((b * T + t) * heads + h) * Dh;
        out.set(x.subarray(src, src + Dh), ((b * heads + h) * T + t) * Dh);
      }
}

/** x [B, heads, T, Dh] -> out [B, T, heads, Dh]. */
export function headRowsToTokens(
  out: Float32Array,
  x: Float32Array,
  B: number,
  T: number,
  heads: number,
  Dh: number,
): void {
  for (let b = 0; b < B; b++)
    for (let h = 0; h < heads; h++)
      for (let t = 0; t < T; t++) {
        const src = ((b * heads + h) * T + t) * Dh;
        out.set(x.subarray(src, src + Dh), ((b * T + t) * heads + h) * Dh);
      }
}

/** The first visible key of query i (keys first..i are visible). */
function firstKey(i: number, window: number | null): number {
  return window === null ? 0 : Math.max(0, i - window + 1);
}

/**
 * scores [B·H, T, P+T] raw q·k -> in place probabilities: u = scale·s, u = cap·tanh(u/cap) when
 * capping (tanh kept in capped), softmax over the keys visible from query i (at key index P + i),
 * 0 elsewhere.
 */
export function maskedSoftmaxForward(
  p: Float32Array,
  capped: Float32Array,
  G: number,
  T: number,
  scale: number,
  softcap: number | null,
  window: number | null,
  P = 0,
): void {
  const W = P + T;
  for (let row = 0; row < G * T; row++) {
    const i = P + (row % T);
    const o = row * W;
    const first = firstKey(i, window);
    let max = -Infinity;
    for (let j = first; j <= i; j++) {
      let u = p[o + j] * scale;
      if (softcap !== null) {
        const th = Math.tanh(u / softcap);
        capped[o + j] = th;
        u = softcap * th;
      }
      p[o + j] = u;
      if (u > max) max = u;
    }
    let sum = 0;
    for (let j = first; j <= i; j++) {
      const e = Math.exp(p[o + j] - max);
      p[o + j] = e;
      sum += e;
    }
    const inv = 1 / sum;
    for (let j = 0; j < first; j++) p[o + j] = 0;
    for (let j = first; j <= i; j++) p[o + j] *= inv;
    for (let j = i + 1; j < W; j++) p[o + j] = 0;
  }
}

/** dProbs [B·H, T, P+T] -> in place the gradient at the raw scores q·k. */
export function maskedSoftmaxBackward(
  dp: Float32Array,
  probs: Float32Array,
  capped: Float32Array,
  G: number,
  T: number,
  scale: number,
  softcap: number | null,
  window: number | null,
  P = 0,
): void {
  const W = P + T;
  for (let row = 0; row < G * T; row++) {
    const i = P + (row % T);
    const o = row * W;
    const first = firstKey(i, window);
    let dot = 0;
    for (let j = first; j <= i; j++) dot += probs[o + j] * dp[o + j];
    for (let j = 0; j < first; j++) dp[o + j] = 0;
    for (let j = first; j <= i; j++) {
      let du = probs[o + j] * (dp[o + j] - dot);
      if (softcap !== null) du *= 1 - capped[o + j] * capped[o + j];
      dp[o + j] = scale * du;
    }
    for (let j = i + 1; j < W; j++) dp[o + j] = 0;
  }
}

/**
 * With a past: cache.keys, cache.values [B, KV, P+T, Dh] = the past's rows then the batch's own
 * k, v [B, KV, T, Dh]; without one, k and v themselves.
 */
function allKeysValues(
  cache: GroupedAttentionCache,
  past: PastKeysValues | null,
  s: GroupedAttentionShape,
): [Float32Array, Float32Array] {
  const { B, T, KV, Dh, P = 0 } = s;
  if (P === 0 || !past) return [cache.k, cache.v];
  const W = P + T;
  for (let g = 0; g < B * KV; g++) {
    cache.keys.set(past.keys.subarray(g * P * Dh, (g + 1) * P * Dh), g * W * Dh);
    cache.keys.set(cache.k.subarray(g * T * Dh, (g + 1) * T * Dh), (g * W + P) * Dh);
    cache.values.set(past.values.subarray(g * P * Dh, (g + 1) * P * Dh), g * W * Dh);
    cache.values.set(cache.v.subarray(g * T * Dh, (g + 1) * T * Dh), (g * W + P) * Dh);
  }
  return [cache.keys, cache.values];
}

/** Keys or values [B·KV, P+T, Dh] -> the batch's own rows [B·KV, T, Dh]. */
function ownRows(out: Float32Array, all: Float32Array, s: GroupedAttentionShape): void {
  const { B, T, KV, Dh, P = 0 } = s;
  const W = P + T;
  for (let g = 0; g < B * KV; g++)
    out.set(all.subarray((g * W + P) * Dh, (g + 1) * W * Dh), g * T * Dh);
}

/** x [N, I], weight [O, I], bias [O] or null -> out [N, O] = x·Wᵀ + b. */
function project(
  out: Float32Array,
  x: Float32Array,
  weight: Float32Array,
  bias: Float32Array | null,
  N: number,
  I: number,
  O: number,
): void {
  matmul(x, weight, out, N, O, I, { transB: true });
  if (bias)
    for (let n = 0; n < N; n++) {
      const o = n * O;
      for (let j = 0; j < O; j++) out[o + j] += bias[j];
    }
}

/** dOut [N, O] -> dx [N, I] += dOut·W; dWeight [O, I], dBias [O] += (when given). */
function projectBackward(
  dx: Float32Array,
  dWeight: Float32Array | null,
  dBias: Float32Array | null,
  dOut: Float32Array,
  x: Float32Array,
  weight: Float32Array,
  N: number,
  I: number,
  O: number,
): void {
  matmul(dOut, weight, dx, N, I, O, { accumulate: true });
  if (dWeight) matmul(dOut, x, dWeight, O, I, N, { transA: true, accumulate: true });
  if (dBias)
    for (let n = 0; n < N; n++) {
      const o = n * O;
      for (let j = 0; j < O; j++) dBias[j] += dOut[o + j];
    }
}

/**
 * x [N, d] (the block's normed input) -> z [N, H·Dh], the concatenated head outputs; fills cache.
 * q = x·Wqᵀ + bq per head, optionally RMS-normed over Dh, then rotated (R dims); likewise k;
 * v = x·Wvᵀ + bv; softmax of the scaled, capped, masked scores; heads mix v.
 */
export function groupedAttentionForward(
  z: Float32Array,
  cache: GroupedAttentionCache,
  x: Float32Array,
  w: GroupedAttentionWeights,
  s: GroupedAttentionShape,
  d: number,
  rope: RotaryTable,
  past: PastKeysValues | null = null,
): void {
  const { B, T, H, KV, Dh, R, P = 0 } = s;
  const N = B * T;
  const g = H / KV;
  const W = P + T;
  const proj = new Float32Array(N * H * Dh);
  const pre = (qkNorm: Float32Array | null, store: Float32Array, out: Float32Array) =>
    qkNorm ? store : out;
  // q
  project(proj, x, w.qWeight, w.qBias, N, d, H * Dh);
  tokensToHeadRows(pre(w.qNorm, cache.qPre, cache.q), proj, B, T, H, Dh);
  if (w.qNorm)
    rmsNormForward(cache.q, cache.qRstd, cache.qPre, w.qNorm, B * H * T, Dh, s.normEps, 0);
  if (R > 0) rotaryForward(cache.q, B * H, T, Dh, R, rope, P);
  // k
  const projKv = proj.subarray(0, N * KV * Dh);
  project(projKv, x, w.kWeight, w.kBias, N, d, KV * Dh);
  tokensToHeadRows(pre(w.kNorm, cache.kPre, cache.k), projKv, B, T, KV, Dh);
  if (w.kNorm)
    rmsNormForward(cache.k, cache.kRstd, cache.kPre, w.kNorm, B * KV * T, Dh, s.normEps, 0);
  if (R > 0) rotaryForward(cache.k, B * KV, T, Dh, R, rope, P);
  // v
  project(projKv, x, w.vWeight, w.vBias, N, d, KV * Dh);
  tokensToHeadRows(cache.v, projKv, B, T, KV, Dh);
  const [keys, values] = allKeysValues(cache, past, s);
  // scores [B·KV, g·T, W] = [B·H, T, W]
  matmul(cache.q, keys, cache.probs, g * T, W, Dh, { batch: B * KV, transB: true });
  maskedSoftmaxForward(cache.probs, cache.capped, B * H, T, s.scale, s.softcap, s.window, P);
  const heads = proj; // [B, H, T, Dh]
  matmul(cache.probs, values, heads, g * T, Dh, W, { batch: B * KV });
  headRowsToTokens(z, heads, B, T, H, Dh);
}

/**
 * dZ [N, H·Dh], x [N, d] (the forward input), cache from groupedAttentionForward:
 * dx [N, d] += input gradient; grads (when given) accumulate the parameter gradients.
 */
export function groupedAttentionBackward(
  dx: Float32Array,
  grads: GroupedAttentionWeights | null,
  dZ: Float32Array,
  x: Float32Array,
  cache: GroupedAttentionCache,
  w: GroupedAttentionWeights,
  s: GroupedAttentionShape,
  d: number,
  rope: RotaryTable,
): void {
  const { B, T, H, KV, Dh, R, P = 0 } = s;
  const N = B * T;
  const g = H / KV;
  const W = P + T;
  const [keys, values] = P > 0 ? [cache.keys, cache.values] : [cache.k, cache.v];
  const dHeads = new Float32Array(N * H * Dh);
  tokensToHeadRows(dHeads, dZ, B, T, H, Dh);
  const dProbs = new Float32Array(B * H * T * W);
  const dq = new Float32Array(N * H * Dh);
  const dk = new Float32Array(N * KV * Dh);
  const dv = new Float32Array(N * KV * Dh);
  // gradients of all W keys and values, of which the past's are dropped
  const dAll = P > 0 ? new Float32Array(B * KV * W * Dh) : null;
  // heads = P·V: dP = dHeads·Vᵀ, dV = Pᵀ·dHeads (summing the g query heads of each kv head)
  matmul(dHeads, values, dProbs, g * T, W, Dh, { batch: B * KV, transB: true });
  matmul(cache.probs, dHeads, dAll ?? dv, W, Dh, g * T, { batch: B * KV, transA: true });
  if (dAll) ownRows(dv, dAll, s);
  maskedSoftmaxBackward(
    dProbs,
    cache.probs,
    cache.capped,
    B * H,
    T,
    s.scale,
    s.softcap,
    s.window,
    P,
  );
  // scores = Q·Kᵀ: dQ = dS·K, dK = dSᵀ·Q
  matmul(dProbs, keys, dq, g * T, Dh, W, { batch: B * KV });
  matmul(dProbs, cache.q, dAll ?? dk, W, Dh, g * T, { batch: B * KV, transA: true });
  if (dAll) ownRows(dk, dAll, s);
  const tokens = new Float32Array(N * H * Dh);
  const toInput = (
    dHeadRows: Float32Array,
    heads: number,
    norm: Float32Array | null,
    normGrad: Float32Array | null,
    preNorm: Float32Array,
    rstd: Float64Array,
    rotate: boolean,
    weight: Float32Array,
    dWeight: Float32Array | null,
    dBias: Float32Array | null,
  ) => {
    if (rotate && R > 0) rotaryBackward(dHeadRows, B * heads, T, Dh, R, rope, P);
    let dPre = dHeadRows;
    if (norm) {
      dPre = new Float32Array(dHeadRows.length);
      rmsNormBackward(dPre, normGrad, dHeadRows, preNorm, rstd, norm, B * heads * T, Dh, 0);
    }
    const dProj = tokens.subarray(0, N * heads * Dh);
    headRowsToTokens(dProj, dPre, B, T, heads, Dh);
    projectBackward(dx, dWeight, dBias, dProj, x, weight, N, d, heads * Dh);
  };
  toInput(
    dq,
    H,
    w.qNorm,
    grads?.qNorm ?? null,
    cache.qPre,
    cache.qRstd,
    true,
    w.qWeight,
    grads?.qWeight ?? null,
    grads?.qBias ?? null,
  );
  toInput(
    dk,
    KV,
    w.kNorm,
    grads?.kNorm ?? null,
    cache.kPre,
    cache.kRstd,
    true,
    w.kWeight,
    grads?.kWeight ?? null,
    grads?.kBias ?? null,
  );
  toInput(
    dv,
    KV,
    null,
    null,
    cache.v,
    cache.kRstd,
    false,
    w.vWeight,
    grads?.vWeight ?? null,
    grads?.vBias ?? null,
  );
}
