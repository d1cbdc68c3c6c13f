// GPT-NeoX causal self-attention with rotary position embeddings (half-split convention).
// B batch, T tokens, N = B*T, H heads, S head size, d = H*S, R rotary dims (even, R <= S).
// query_key_value's output is viewed per token as [H, 3, S]: q, k, v of head h are contiguous.

import { matmul } from '../../kernels/gemm.ts';
import type { LayerWeights } from '../weights.ts';
import { linearBackward, linearForward } from './linear.ts';

export interface AttentionShape {
  B: number;
  T: number;
  H: number;
  S: number;
  R: number;
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
  const { B, T, H, S, R } = s;
  const half = R >> 1;
  const plane = B * T * H * S;
  const { cos, sin } = rope;
  for (let b = 0; b < B; b++)
    for (let t = 0; t < T; t++) {
      const pos = t * half;
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
export function splitHeadsRotaryBackward(
  dQkv: Float32Array,
  dHeads: Float32Array,
  s: AttentionShape,
  rope: RotaryTable,
): void {
  const { B, T, H, S, R } = s;
  const half = R >> 1;
  const plane = B * T * H * S;
  const { cos, sin } = rope;
  for (let b = 0; b < B; b++)
    for (let t = 0; t < T; t++) {
      const pos = t * half;
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

/** scores [G, T, T] (G = B*H) -> in place softmax(scale * scores) over keys j <= i; 0 above. */
export function causalSoftmax(p: Float32Array, G: number, T: number, scale: number): void {
  for (let row = 0; row < G * T; row++) {
    const i = row % T;
    const o = row * T;
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
    for (let j = i + 1; j < T; j++) p[o + j] = 0;
  }
}

/** dProbs, probs [G, T, T] -> in place dScores = scale * P (dP - sum_j P dP), the raw-score gradient. */
export function causalSoftmaxBackward(
  dp: Float32Array,
  probs: Float32Array,
  G: number,
  T: number,
  scale: number,
): void {
  for (let row = 0; row < G * T; row++) {
    const i = row % T;
    const o = row * T;
    let dot = 0;
    for (let j = 0; j <= i; j++) dot += probs[o + j] * dp[o + j];
    for (let j = 0; j <= i; j++) dp[o + j] = scale * probs[o + j] * (dp[o + j] - dot);
    for (let j = i + 1; j < T; j++) dp[o + j] = 0;
  }
}

/** What the backward needs: heads [3, B, H, T, S] (rotated q, k; v), probs [B*H, T, T], concat [N, d]. */
export interface AttentionCache {
  heads: Float32Array;
  probs: Float32Array;
  concat: Float32Array;
}

/** Temporaries, any contents: qkv [N, 3d], headsOut [N*d]; backward: dConcat, dHeadsOut [N*d],
 * dProbs [B*H*T*T], dHeads [3*N*d], dQkv [N, 3d]. */
export interface AttentionScratch {
  qkv: Float32Array;
  headsOut: Float32Array;
  dConcat: Float32Array;
  dHeadsOut: Float32Array;
  dProbs: Float32Array;
  dHeads: Float32Array;
  dQkv: Float32Array;
}

export function attentionScratch(s: AttentionShape): AttentionScratch {
  const Nd = s.B * s.T * s.H * s.S;
  return {
    qkv: new Float32Array(3 * Nd),
    headsOut: new Float32Array(Nd),
    dConcat: new Float32Array(Nd),
    dHeadsOut: new Float32Array(Nd),
    dProbs: new Float32Array(s.B * s.H * s.T * s.T),
    dHeads: new Float32Array(3 * Nd),
    dQkv: new Float32Array(3 * Nd),
  };
}

export function attentionCache(s: AttentionShape): AttentionCache {
  const Nd = s.B * s.T * s.H * s.S;
  return {
    heads: new Float32Array(3 * Nd),
    probs: new Float32Array(s.B * s.H * s.T * s.T),
    concat: new Float32Array(Nd),
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
): void {
  const { B, T, H, S } = s;
  const d = H * S;
  const N = B * T;
  const Nd = N * d;
  const G = B * H;
  const { heads, probs } = cache;
  linearForward(scratch.qkv, x, w.qkvWeight, null, N, d, 3 * d);
  splitHeadsRotary(heads, scratch.qkv, w.qkvBias, s, rope);
  const q = heads.subarray(0, Nd);
  const k = heads.subarray(Nd, 2 * Nd);
  const v = heads.subarray(2 * Nd, 3 * Nd);
  matmul(q, k, probs, T, T, S, { batch: G, transB: true });
  causalSoftmax(probs, G, T, 1 / Math.sqrt(S));
  matmul(probs, v, scratch.headsOut, T, S, T, { batch: G });
  headsToTokens(cache.concat, scratch.headsOut, s);
  linearForward(out, cache.concat, w.denseWeight, w.denseBias, N, d, d);
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
  const { B, T, H, S } = s;
  const d = H * S;
  const N = B * T;
  const Nd = N * d;
  const G = B * H;
  const { heads, probs } = cache;
  const { dConcat, dHeadsOut, dProbs, dHeads } = scratch;
  linearBackward(
    dConcat,
    grads?.denseWeight ?? null,
    grads?.denseBias ?? null,
    dOut,
    cache.concat,
    w.denseWeight,
    N,
    d,
    d,
  );
  tokensToHeads(dHeadsOut, dConcat, s);
  const q = heads.subarray(0, Nd);
  const k = heads.subarray(Nd, 2 * Nd);
  const v = heads.subarray(2 * Nd, 3 * Nd);
  const dq = dHeads.subarray(0, Nd);
  const dk = dHeads.subarray(Nd, 2 * Nd);
  const dv = dHeads.subarray(2 * Nd, 3 * Nd);
  matmul(dHeadsOut, v, dProbs, T, T, S, { batch: G, transB: true });
  matmul(probs, dHeadsOut, dv, T, S, T, { batch: G, transA: true });
  causalSoftmaxBackward(dProbs, probs, G, T, 1 / Math.sqrt(S));
  matmul(dProbs, k, dq, T, S, T, { batch: G });
  matmul(dProbs, q, dk, T, S, T, { batch: G, transA: true });
  splitHeadsRotaryBackward(scratch.dQkv, dHeads, s, rope);
  linearBackward(
    dx,
    grads?.qkvWeight ?? null,
    grads?.qkvBias ?? null,
    scratch.dQkv,
    x,
    w.qkvWeight,
    N,
    d,
    3 * d,
  );
}
