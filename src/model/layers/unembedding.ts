// The model's head: final_layer_norm then embed_out (no bias), on a chosen subset of token rows
// (every row for full logits, one per example for last-token logits).
// N = B*T residual rows, R selected rows, d model dim, V vocab.

import { matmul } from '../../kernels/gemm.ts';
import { gatherRows } from '../../kernels/rows.ts';
import type { GptNeoXWeights } from '../weights.ts';
import { layerNormBackward, layerNormForward } from './layernorm.ts';

export type HeadWeights = Pick<GptNeoXWeights, 'lnFinalWeight' | 'lnFinalBias' | 'embedOut'>;

/** rows [R] (indices into the N residual rows), x [R, d] gathered input, lnOut [R, d], mean/rstd [R]. */
export interface UnembeddingCache {
  rows: Int32Array;
  x: Float32Array;
  lnOut: Float32Array;
  mean: Float64Array;
  rstd: Float64Array;
}

/** resid [N, d], rows [R] -> logits [R, V]; returns the cache for the backward. */
export function unembeddingForward(
  logits: Float32Array,
  resid: Float32Array,
  rows: Int32Array,
  w: HeadWeights,
  eps: number,
  d: number,
  V: number,
): UnembeddingCache {
  const R = rows.length;
  const x = gatherRows(resid, rows, d);
  const cache = {
    rows,
    x,
    lnOut: new Float32Array(R * d),
    mean: new Float64Array(R),
    rstd: new Float64Array(R),
  };
  layerNormForward(
    cache.lnOut,
    cache.mean,
    cache.rstd,
    x,
    w.lnFinalWeight,
    w.lnFinalBias,
    R,
    d,
    eps,
  );
  matmul(cache.lnOut, w.embedOut, logits, R, V, d, { transB: true });
  return cache;
}

/**
 * dLogits [R, V] -> dResid [N, d] += the gradient at the selected rows; grads (when given)
 * accumulate the head's parameter gradients. Rows of dLogits that are all zero cost nothing.
 */
export function unembeddingBackward(
  dResid: Float32Array,
  grads: HeadWeights | null,
  dLogits: Float32Array,
  cache: UnembeddingCache,
  w: HeadWeights,
  d: number,
  V: number,
): void {
  const R = cache.rows.length;
  const live: number[] = [];
  for (let r = 0; r < R; r++) {
    const o = r * V;
    for (let j = 0; j < V; j++)
      if (dLogits[o + j] !== 0) {
        live.push(r);
        break;
      }
  }
  const L = live.length;
  if (L === 0) return;
  // Gather the live rows so the products only touch them.
  let dL = dLogits;
  let x = cache.x;
  let lnOut = cache.lnOut;
  let mean = cache.mean;
  let rstd = cache.rstd;
  if (L < R) {
    dL = new Float32Array(L * V);
    x = new Float32Array(L * d);
    lnOut = new Float32Array(L * d);
    mean = new Float64Array(L);
    rstd = new Float64Array(L);
    for (let i = 0; i < L; i++) {
      const r = live[i];
      dL.set(dLogits.subarray(r * V, r * V + V), i * V);
      x.set(cache.x.subarray(r * d, r * d + d), i * d);
      lnOut.set(cache.lnOut.subarray(r * d, r * d + d), i * d);
      mean[i] = cache.mean[r];
      rstd[i] = cache.rstd[r];
    }
  }
  const dLn = new Float32Array(L * d);
  matmul(dL, w.embedOut, dLn, L, d, V);
  if (grads) matmul(dL, lnOut, grads.embedOut, V, d, L, { transA: true, accumulate: true });
  const dx = new Float32Array(L * d);
  layerNormBackward(
    dx,
    grads?.lnFinalWeight ?? null,
    grads?.lnFinalBias ?? null,
    dLn,
    x,
    mean,
    rstd,
    w.lnFinalWeight,
    L,
    d,
  );
  for (let i = 0; i < L; i++) {
    const to = cache.rows[live[i]] * d;
    const from = i * d;
    for (let j = 0; j < d; j++) dResid[to + j] += dx[from + j];
  }
}
