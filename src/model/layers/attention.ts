// GPT-NeoX causal self-attention with rotary position embeddings (half-split convention).
// B batch, T tokens, N = B*T, H heads, S head size, d = H*S, R rotary dims (even, R <= S).
// query_key_value's output is viewed per token as [H, 3, S]: q, k, v of head h are contiguous.
// P past positions (keys and values given, as a KV cache): the T tokens sit at positions
// P..P+T-1 and attend to the W = P+T keys; the past gets no gradient.

import { matmul } from '../../kernels/gemm.ts';
import type { LayerWeights } from '../weights.ts';
import { linearBackward, linearForward } from './linear.ts';

export interface AttentionShape {
  B: number;
  T: number;
  H: number;
  S: number;
  R: number;
  /** Past positions (default 0). */
  P?: number;
}

/** Rotated keys and values of P earlier positions, [B, H, P, S] each. */
export interface PastKeysValues {
  keys: Float32Array;
  values: Float32Array;
}

/** cos and sin of position * inv_freq_i, [T, R/2] (the duplicated half of HF's table is implied). */
export interface RotaryTable {
  cos: Float32Array;
  sin: Float32Array;
}

/**
 * Positions 0..T-1, R rotary dims, base (rotary_emb_base). Angles are formed in float32 exactly
 * as Hugging Face does (inv_freq = 1 / base^(2i/R) in float32, angle = float32(t * inv_freq)),
 * which matters at long positions where the float32 rounding of the angle is visible.
 */
export function rotaryTable(T: number, R: number, base: number): RotaryTable {
  const half = R >> 1;
  const cos = new Float32Array(T * half);
  const sin = new Float32Array(T * half);
  for (let i = 0; i < half; i++) {
    const invFreq = Math.fround(1 / Math.fround(Math.pow(base, Math.fround((2 * i) / R))));
    for (let t = 0; t < T; t++) {
      const angle = Math.fround(t * invFreq);
      cos[t * half + i] = Math.cos(angle);
      sin[t * half + i] = Math.sin(angle);
    }
  }
  return { cos, sin };
}

/**
 * qkv [N, H, 3, S] + bias [H, 3, S] -> heads [3, B, H, T, S] (q, k, v planes), rotating the first R
 * dims of q and k: y1 = x1 cos - x2 sin, y2 = x2 cos + x1 sin for the halves x1 = x[:R/2],
 * x2 = x[R/2:R]. (The projection's bias is added here to save a pass over qkv.)
 */
export function splitHeadsRotary(
  heads: Float32Array,
  qkv: Float32Array,
  bias: Float32Array,
  s: AttentionShape,
  rope: RotaryTable,
): void {
  const { B, T, H, S, R, P = 0 } = s;
  const half = R >> 1;
  const plane = B * T * H * S;
  const { cos, sin } = rope;
  for (let b = 0; b < B; b++)
    for (let t = 0; t < T; t++) {
      const pos = (P + t) * half;
      for (let h = 0; h < H; h++) {
        const src = ((b * T + t) * H + h) * 3 * S;
        const dst = ((b * H + h) * T + t) * S;
        for (let part = 0; part < 2; part++) {
          const from = src + part * S;
          const bf = (h * 3 + part) * S;
          const to = part * plane + dst;
          for (let i = 0; i < half; i++) {
            const x1 = qkv[from + i] + bias[bf + i];
            const x2 = qkv[from + i + half] + bias[bf + i + half];
            const c = cos[pos + i];
            const sn = sin[pos + i];
            heads[to + i] = x1 * c - x2 * sn;
            heads[to + i + half] = x2 * c + x1 * sn;
          }
          for (let i = R; i < S; i++) heads[to + i] = qkv[from + i] + bias[bf + i];
        }
        const from = src + 2 * S;
        const bf = (h * 3 + 2) * S;
        const to = 2 * plane + dst;
        for (let i = 0; i < S; i++) heads[to + i] = qkv[from + i] + bias[bf + i];
      }
    }
}

/** Backward of splitHeadsRotary: dHeads [3, B, H, T, S] -> dQkv [N, H, 3, S] (overwritten). */
function splitHeadsRotaryBackward(
  dQkv: Float32Array,
  dHeads: Float32Array,
  s: AttentionShape,
  rope: RotaryTable,
): void {
  const { B, T, H, S, R, P = 0 } = s;
  const half = R >> 1;
  const plane = B * T * H * S;
  const { cos, sin } = rope;
  for (let b = 0; b < B; b++)
    for (let t = 0; t < T; t++) {
      const pos = (P + t) * half;
      for (let h = 0; h < H; h++) {
        const dst = ((b * T + t) * H + h) * 3 * S;
        const src = ((b * H + h) * T + t) * S;
        for (let part = 0; part < 2; part++) {
          const from = part * plane + src;
          const to = dst + part * S;
          // the rotation's transpose is the rotation by -angle
          for (let i = 0; i < half; i++) {
            const g1 = dHeads[from + i];
            const g2 = dHeads[from + i + half];
            const c = cos[pos + i];
            const sn = sin[pos + i];
            dQkv[to + i] = g1 * c + g2 * sn;
            dQkv[to + i + half] = g2 * c - g1 * sn;
          }
          for (let i = R; i < S; i++) dQkv[to + i] = dHeads[from + i];
        }
        const from = 2 * plane + src;
        const to = dst + 2 * S;
        for (let i = 0; i < S; i++) dQkv[to + i] = dHeads[from + i];
      }
    }
}

/** [B, H, T, S] -> [B, T, H, S] (heads concatenated per token). */
function headsToTokens(out: Float32Array, x: Float32Array, s: AttentionShape): void {
  const { B, T, H, S } = s;
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++)
      for (let t = 0; t < T; t++) {
        const src = ((b * H + h) * T + t) * S;
        out.set(x.subarray(src, src + S), ((b * T + t) * H + h) * S);
      }
}

/** [B, T, H, S] -> [B, H, T, S]. */
function tokensToHeads(out: Float32Array, x: Float32Array, s: AttentionShape): void {
  const { B, T, H, S } = s;
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++)
      for (let t = 0; t < T; t++) {
        const src = ((b * T + t) * H + h) * S;
        out.set(x.subarray(src, src + S), ((b * H + h) * T + t) * S);
      }
}

/**
 * scores [G, T, P+T] (G = B*H) -> in place softmax(scale * scores) over keys j <= P + i (query i
 * at position P + i); 0 above.
 */
function causalSoftmax(p: Float32Array, G: number, T: number, scale: number, P = 0): void {
  const W = P + T;
  for (let row = 0; row < G * T; row++) causalSoftmaxRow(p, row * W, P + (row % T), W, scale);
}

/** One row p[o..o+W) of scores -> softmax over keys 0..i (scaled), zeros after (the mask). */
function causalSoftmaxRow(p: Float32Array, o: number, i: number, W: number, scale: number): void {
  let max = -Infinity;
  for (let j = 0; j <= i; j++) if (p[o + j] > max) max = p[o + j];
  let sum = 0;
  for (let j = 0; j <= i; j++) {
    const e = Math.exp((p[o + j] - max) * scale);
    p[o + j] = e;
    sum += e;
  }
  const inv = 1 / sum;
  for (let j = 0; j <= i; j++) p[o + j] *= inv;
  for (let j = i + 1; j < W; j++) p[o + j] = 0;
}

/** dProbs, probs [G, T, P+T] -> in place dScores = scale * P (dP - sum_j P dP), the raw-score gradient. */
function causalSoftmaxBackward(
  dp: Float32Array,
  probs: Float32Array,
  G: number,
  T: number,
  scale: number,
  P = 0,
): void {
  const W = P + T;
  for (let row = 0; row < G * T; row++) {
    const i = P + (row % T);
    const o = row * W;
    let dot = 0;
    for (let j = 0; j <= i; j++) dot += probs[o + j] * dp[o + j];
    for (let j = 0; j <= i; j++) dp[o + j] = scale * probs[o + j] * (dp[o + j] - dot);
    for (let j = i + 1; j < W; j++) dp[o + j] = 0;
  }
}

/**
 * With a past: keys, values [G, P+T, S] = the past's rows then the batch's own k, v planes
 * [G, T, S]; without one, the planes themselves.
 */
function allKeysValues(
  cache: AttentionCache,
  k: Float32Array,
  v: Float32Array,
  past: PastKeysValues | null,
  s: AttentionShape,
): [Float32Array, Float32Array] {
  const { B, T, H, S, P = 0 } = s;
  if (P === 0 || !past) return [k, v];
  const W = P + T;
  for (let g = 0; g < B * H; g++) {
    cache.keys.set(past.keys.subarray(g * P * S, (g + 1) * P * S), g * W * S);
    cache.keys.set(k.subarray(g * T * S, (g + 1) * T * S), (g * W + P) * S);
    cache.values.set(past.values.subarray(g * P * S, (g + 1) * P * S), g * W * S);
    cache.values.set(v.subarray(g * T * S, (g + 1) * T * S), (g * W + P) * S);
  }
  return [cache.keys, cache.values];
}

/** The keys and values a forward attended over, as allKeysValues gave them, from its cache. */
function cachedKeysValues(cache: AttentionCache, s: AttentionShape): [Float32Array, Float32Array] {
  const Nd = s.B * s.T * s.H * s.S;
  if (s.P) return [cache.keys, cache.values];
  return [cache.heads.subarray(Nd, 2 * Nd), cache.heads.subarray(2 * Nd, 3 * Nd)];
}

/** Keys or values [G, P+T, S] -> the gradient of the batch's own rows into [G, T, S]. */
function ownRows(out: Float32Array, all: Float32Array, s: AttentionShape): void {
  const { B, T, H, S, P = 0 } = s;
  const W = P + T;
  for (let g = 0; g < B * H; g++)
    out.set(all.subarray((g * W + P) * S, (g + 1) * W * S), g * T * S);
}

/**
 * What the backward needs: heads [3, B, H, T, S] (rotated q, k; v), probs [B*H, T, P+T],
 * concat [N, d]; with a past, keys and values [B*H, P+T, S] (past and own), else empty.
 */
export interface AttentionCache {
  heads: Float32Array;
  probs: Float32Array;
  concat: Float32Array;
  keys: Float32Array;
  values: Float32Array;
}

/** Temporaries, any contents: qkv [N, 3d], headsOut [N*d]; backward: dConcat, dHeadsOut [N*d],
 * dProbs [B*H*T*(P+T)], dHeads [3*N*d], dQkv [N, 3d], dAll [B*H*(P+T)*S] (with a past). */
export interface AttentionScratch {
  qkv: Float32Array;
  headsOut: Float32Array;
  dConcat: Float32Array;
  dHeadsOut: Float32Array;
  dProbs: Float32Array;
  dHeads: Float32Array;
  dQkv: Float32Array;
  dAll: Float32Array;
}

export function attentionScratch(s: AttentionShape): AttentionScratch {
  const Nd = s.B * s.T * s.H * s.S;
  const W = (s.P ?? 0) + s.T;
  return {
    qkv: new Float32Array(3 * Nd),
    headsOut: new Float32Array(Nd),
    dConcat: new Float32Array(Nd),
    dHeadsOut: new Float32Array(Nd),
    dProbs: new Float32Array(s.B * s.H * s.T * W),
    dHeads: new Float32Array(3 * Nd),
    dQkv: new Float32Array(3 * Nd),
    dAll: new Float32Array(s.P ? s.B * s.H * W * s.S : 0),
  };
}

export function attentionCache(s: AttentionShape): AttentionCache {
  const Nd = s.B * s.T * s.H * s.S;
  const W = (s.P ?? 0) + s.T;
  const kv = s.P ? s.B * s.H * W * s.S : 0;
  return {
    heads: new Float32Array(3 * Nd),
    probs: new Float32Array(s.B * s.H * s.T * W),
    concat: new Float32Array(Nd),
    keys: new Float32Array(kv),
    values: new Float32Array(kv),
  };
}

/** x [N, d] (input_layernorm output) -> out [N, d] = dense(attention(qkv(x))); fills cache. */
export function attentionForward(
  out: Float32Array,
  cache: AttentionCache,
  x: Float32Array,
  w: LayerWeights,
  s: AttentionShape,
  rope: RotaryTable,
  scratch: AttentionScratch,
  past: PastKeysValues | null = null,
): void {
  const N = s.B * s.T;
  const d = s.H * s.S;
  attentionHeadsForward(cache, x, w, s, rope, scratch, past);
  linearForward(out, cache.concat, w.denseWeight, w.denseBias, N, d, d);
}

/**
 * x [N, d] (input_layernorm output) -> cache.concat [N, d], the heads' outputs concatenated per
 * token before the dense projection (site attn_z_L); fills the rest of the cache.
 */
export function attentionHeadsForward(
  cache: AttentionCache,
  x: Float32Array,
  w: LayerWeights,
  s: AttentionShape,
  rope: RotaryTable,
  scratch: AttentionScratch,
  past: PastKeysValues | null = null,
): void {
  const { B, T, H, S, P = 0 } = s;
  const d = H * S;
  const N = B * T;
  const Nd = N * d;
  const G = B * H;
  const W = P + T;
  const { heads, probs } = cache;
  linearForward(scratch.qkv, x, w.qkvWeight, null, N, d, 3 * d);
  splitHeadsRotary(heads, scratch.qkv, w.qkvBias, s, rope);
  const q = heads.subarray(0, Nd);
  const [k, v] = allKeysValues(
    cache,
    heads.subarray(Nd, 2 * Nd),
    heads.subarray(2 * Nd, 3 * Nd),
    past,
    s,
  );
  matmul(q, k, probs, T, W, S, { batch: G, transB: true });
  causalSoftmax(probs, G, T, 1 / Math.sqrt(S), P);
  matmul(probs, v, scratch.headsOut, T, S, W, { batch: G });
  headsToTokens(cache.concat, scratch.headsOut, s);
}

/** dHeads (dq, dk, dv by head) -> dx [N, d] through the rotation and the qkv projection. */
function qkvBackward(
  dx: Float32Array,
  grads: LayerWeights | null,
  dHeads: Float32Array,
  x: Float32Array,
  w: LayerWeights,
  s: AttentionShape,
  rope: RotaryTable,
  scratch: AttentionScratch,
): void {
  const d = s.H * s.S;
  splitHeadsRotaryBackward(scratch.dQkv, dHeads, s, rope);
  linearBackward(
    dx,
    grads?.qkvWeight ?? null,
    grads?.qkvBias ?? null,
    scratch.dQkv,
    x,
    w.qkvWeight,
    s.B * s.T,
    d,
    3 * d,
  );
}

/**
 * dOut [N, d], x [N, d] (the forward input), cache from attentionForward:
 * dx [N, d] is overwritten; grads (when given) accumulate the attention's parameter gradients.
 */
export function attentionBackward(
  dx: Float32Array,
  grads: LayerWeights | null,
  dOut: Float32Array,
  x: Float32Array,
  cache: AttentionCache,
  w: LayerWeights,
  s: AttentionShape,
  rope: RotaryTable,
  scratch: AttentionScratch,
): void {
  const d = s.H * s.S;
  const { dConcat } = scratch;
  denseBackward(dConcat, grads, dOut, cache.concat, w, s.B * s.T, d);
  attentionHeadsBackward(dx, grads, dConcat, x, cache, w, s, rope, scratch);
}

/**
 * The dense projection's backward: dOut [M, d] -> dConcat [M, d] (overwritten; the gradient at
 * attn_z_L), concat [M, d] its forward input; grads accumulate the dense weight and bias.
 */
export function denseBackward(
  dConcat: Float32Array,
  grads: LayerWeights | null,
  dOut: Float32Array,
  concat: Float32Array,
  w: LayerWeights,
  M: number,
  d: number,
): void {
  linearBackward(
    dConcat,
    grads?.denseWeight ?? null,
    grads?.denseBias ?? null,
    dOut,
    concat,
    w.denseWeight,
    M,
    d,
    d,
  );
}

/**
 * dConcat [N, d] (the gradient at the heads' concatenated outputs), x [N, d] (the forward input):
 * dx [N, d] is overwritten; grads accumulate the qkv projection's parameter gradients.
 */
export function attentionHeadsBackward(
  dx: Float32Array,
  grads: LayerWeights | null,
  dConcat: Float32Array,
  x: Float32Array,
  cache: AttentionCache,
  w: LayerWeights,
  s: AttentionShape,
  rope: RotaryTable,
  scratch: AttentionScratch,
): void {
  const { B, T, H, S, P = 0 } = s;
  const d = H * S;
  const N = B * T;
  const Nd = N * d;
  const G = B * H;
  const W = P + T;
  const { heads, probs } = cache;
  const { dHeadsOut, dProbs, dHeads, dAll } = scratch;
  tokensToHeads(dHeadsOut, dConcat, s);
  const q = heads.subarray(0, Nd);
  const [k, v] = cachedKeysValues(cache, s);
  const dq = dHeads.subarray(0, Nd);
  const dk = dHeads.subarray(Nd, 2 * Nd);
  const dv = dHeads.subarray(2 * Nd, 3 * Nd);
  // dk, dv of all W keys, of which the past's are dropped
  matmul(dHeadsOut, v, dProbs, T, W, S, { batch: G, transB: true });
  matmul(probs, dHeadsOut, P > 0 ? dAll : dv, W, S, T, { batch: G, transA: true });
  if (P > 0) ownRows(dv, dAll, s);
  causalSoftmaxBackward(dProbs, probs, G, T, 1 / Math.sqrt(S), P);
  matmul(dProbs, k, dq, T, S, W, { batch: G });
  matmul(dProbs, q, P > 0 ? dAll : dk, W, S, T, { batch: G, transA: true });
  if (P > 0) ownRows(dk, dAll, s);
  qkvBackward(dx, grads, dHeads, x, w, s, rope, scratch);
}

// One query per example: what the top layer computes when only each example's last real token
// is read (ForwardOptions.topLayerRows 'last'). K and V are still needed at every row, so qkv and
// the rotation run on all N rows; the scores, the mix and the output projection only on the B
// query rows. last[b] = lengths[b] - 1 is example b's query position.

/** probs [B*H, P+T] of the queries (0 above each query); concat [B, d]; the rest as in AttentionCache. */
export function attentionCacheLast(s: AttentionShape): AttentionCache {
  const Nd = s.B * s.T * s.H * s.S;
  const W = (s.P ?? 0) + s.T;
  const kv = s.P ? s.B * s.H * W * s.S : 0;
  return {
    heads: new Float32Array(3 * Nd),
    probs: new Float32Array(s.B * s.H * W),
    concat: new Float32Array(s.B * s.H * s.S),
    keys: new Float32Array(kv),
    values: new Float32Array(kv),
  };
}

/** x [N, d] (input_layernorm output) -> out [B, d] = the attention output at rows b*T + last[b]. */
export function attentionForwardLast(
  out: Float32Array,
  cache: AttentionCache,
  x: Float32Array,
  w: LayerWeights,
  s: AttentionShape,
  rope: RotaryTable,
  scratch: AttentionScratch,
  last: ArrayLike<number>,
  past: PastKeysValues | null = null,
): void {
  const d = s.H * s.S;
  attentionHeadsForwardLast(cache, x, w, s, rope, scratch, last, past);
  linearForward(out, cache.concat, w.denseWeight, w.denseBias, s.B, d, d);
}

/** x [N, d] (input_layernorm output) -> cache.concat [B, d], attn_z at rows b*T + last[b]. */
export function attentionHeadsForwardLast(
  cache: AttentionCache,
  x: Float32Array,
  w: LayerWeights,
  s: AttentionShape,
  rope: RotaryTable,
  scratch: AttentionScratch,
  last: ArrayLike<number>,
  past: PastKeysValues | null = null,
): void {
  const { B, T, H, S, P = 0 } = s;
  const d = H * S;
  const N = B * T;
  const Nd = N * d;
  const W = P + T;
  const { heads, probs, concat } = cache;
  const scale = 1 / Math.sqrt(S);
  linearForward(scratch.qkv, x, w.qkvWeight, null, N, d, 3 * d);
  splitHeadsRotary(heads, scratch.qkv, w.qkvBias, s, rope);
  const [keys, values] = allKeysValues(
    cache,
    heads.subarray(Nd, 2 * Nd),
    heads.subarray(2 * Nd, 3 * Nd),
    past,
    s,
  );
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++) {
      const i = P + last[b]; // the query's key index
      const g = (b * H + h) * W; // key 0 of (b, h) in keys, values [B, H, W, S]
      const q = ((b * H + h) * T + last[b]) * S;
      const p = (b * H + h) * W;
      // the same float32 scores and softmax as matmul + causalSoftmax on the query's row
      for (let j = 0; j <= i; j++) {
        const k = (g + j) * S;
        let dot = 0;
        for (let e = 0; e < S; e++) dot += heads[q + e] * keys[k + e];
        probs[p + j] = dot;
      }
      causalSoftmaxRow(probs, p, i, W, scale);
      const o = b * d + h * S;
      for (let e = 0; e < S; e++) concat[o + e] = 0;
      for (let j = 0; j <= i; j++) {
        const v = (g + j) * S;
        const pj = probs[p + j];
        for (let e = 0; e < S; e++) concat[o + e] += pj * values[v + e];
      }
    }
}

/**
 * dOut [B, d] (at the query rows), x [N, d] (the forward input), cache from attentionForwardLast:
 * dx [N, d] is overwritten (dq reaches the query rows only, dk and dv every earlier row); grads
 * (when given) accumulate the attention's parameter gradients.
 */
export function attentionBackwardLast(
  dx: Float32Array,
  grads: LayerWeights | null,
  dOut: Float32Array,
  x: Float32Array,
  cache: AttentionCache,
  w: LayerWeights,
  s: AttentionShape,
  rope: RotaryTable,
  scratch: AttentionScratch,
  last: ArrayLike<number>,
): void {
  const { dConcat } = scratch;
  denseBackward(dConcat, grads, dOut, cache.concat, w, s.B, s.H * s.S);
  attentionHeadsBackwardLast(dx, grads, dConcat, x, cache, w, s, rope, scratch, last);
}

/** attentionHeadsBackward for attentionForwardLast: dConcat [B, d] at the query rows. */
export function attentionHeadsBackwardLast(
  dx: Float32Array,
  grads: LayerWeights | null,
  dConcat: Float32Array,
  x: Float32Array,
  cache: AttentionCache,
  w: LayerWeights,
  s: AttentionShape,
  rope: RotaryTable,
  scratch: AttentionScratch,
  last: ArrayLike<number>,
): void {
  const { B, T, H, S, P = 0 } = s;
  const d = H * S;
  const N = B * T;
  const Nd = N * d;
  const W = P + T;
  const { heads, probs } = cache;
  const [keys, values] = cachedKeysValues(cache, s);
  const { dProbs, dHeads } = scratch;
  const scale = 1 / Math.sqrt(S);
  dHeads.fill(0);
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++) {
      const i = P + last[b];
      const g = (b * H + h) * W; // key 0 of (b, h) in keys, values
      const own = (b * H + h) * T - P; // + j: key j's row in a [B, H, T, S] plane (j >= P)
      const q = ((b * H + h) * T + last[b]) * S;
      const p = (b * H + h) * W;
      const o = b * d + h * S;
      // dP_j = dOut·v_j, dv_j = P_j dOut (own keys only: the past gets no gradient); then the
      // softmax and score backward as in attentionBackward
      let dotPdP = 0;
      for (let j = 0; j <= i; j++) {
        const v = (g + j) * S;
        const dv = 2 * Nd + (own + j) * S;
        const pj = probs[p + j];
        let dp = 0;
        for (let e = 0; e < S; e++) dp += dConcat[o + e] * values[v + e];
        if (j >= P) for (let e = 0; e < S; e++) dHeads[dv + e] = pj * dConcat[o + e];
        dProbs[p + j] = dp;
        dotPdP += pj * dp;
      }
      for (let j = 0; j <= i; j++) {
        const k = (g + j) * S;
        const dk = Nd + (own + j) * S;
        const ds = scale * probs[p + j] * (dProbs[p + j] - dotPdP);
        for (let e = 0; e < S; e++) dHeads[q + e] += ds * keys[k + e];
        if (j >= P) for (let e = 0; e < S; e++) dHeads[dk + e] = ds * heads[q + e];
      }
    }
  qkvBackward(dx, grads, dHeads, x, w, s, rope, scratch);
}
