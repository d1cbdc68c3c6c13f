// The GPT-NeoX forward's per-layer buffers: what a layer's backward needs from its forward
// (LayerCache), and the temporaries reused by every pass of one batch shape (Workspace).
// B batch, T tokens, N = B*T rows, d model dim, f MLP dim.

import {
  attentionCache,
  attentionCacheLast,
  type AttentionCache,
  type AttentionScratch,
  type AttentionShape,
} from './layers/attention.ts';
import type { MlpCache } from './layers/mlp.ts';

/** What one layer's backward needs from its forward. */
export interface LayerCache {
  ln1Out: Float32Array; // [N, d]
  ln1Mean: Float64Array; // [N]
  ln1Rstd: Float64Array; // [N]
  attn: AttentionCache;
  // The post_attention_layernorm input when it is not x: x + attn (sequential residual), and in a
  // last-rows top layer x or x + attn at the B last rows.
  mid: Float32Array; // [M, d]
  ln2Out: Float32Array; // [M, d]
  ln2Mean: Float64Array; // [M]
  ln2Rstd: Float64Array; // [M]
  mlp: MlpCache;
}
// M = N, or B in a last-rows top layer (everything after the attention is at the last rows only).

export function layerCache(
  s: AttentionShape,
  f: number,
  sequential: boolean,
  lastRows = false,
): LayerCache {
  const N = s.B * s.T;
  const d = s.H * s.S;
  const M = lastRows ? s.B : N;
  return {
    ln1Out: new Float32Array(N * d),
    ln1Mean: new Float64Array(N),
    ln1Rstd: new Float64Array(N),
    attn: lastRows ? attentionCacheLast(s) : attentionCache(s),
    mid: new Float32Array(sequential || lastRows ? M * d : 0),
    ln2Out: new Float32Array(M * d),
    ln2Mean: new Float64Array(M),
    ln2Rstd: new Float64Array(M),
    mlp: { pre: new Float32Array(M * f), act: new Float32Array(M * f) },
  };
}

/** Temporaries for one (B, T) shape, reused by every forward and backward of that shape. */
export interface Workspace {
  B: number;
  T: number;
  P: number;
  attn: AttentionScratch;
  dLn: Float32Array; // [N, d] gradient at a block's layernorm output
  dAct: Float32Array; // [N, f]
  // Internals of a forward run without forBackward (nothing keeps them afterwards).
  layer: LayerCache;
  layerLast: LayerCache | null; // a last-rows top layer's, made on first use
}
