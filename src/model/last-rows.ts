// The top layer of a GPT-NeoX forward computed for 'last' logits only (topLayerRows 'last').

import type { GptNeoXConfig } from './config.ts';
import type { LayerWeights } from './weights.ts';
import {
  attentionForwardLast,
  type AttentionShape,
  type PastKeysValues,
  type RotaryTable,
} from './layers/attention.ts';
import { layerNormForward } from './layers/layernorm.ts';
import { mlpForward } from './layers/mlp.ts';
import type { LayerCache, Workspace } from './workspace.ts';

/**
 * A top layer computed for 'last' logits: x [N, d] (its input) -> resid [B, d] at the last rows
 * `last` [B] (row indices b*T + lengths[b] - 1). The attention needs K, V of every row; everything
 * after it is row-local, so it runs on the B last rows only.
 */
export function lastRowsLayerForward(
  x: Float32Array,
  lc: LayerCache,
  lw: LayerWeights,
  s: AttentionShape,
  rope: RotaryTable,
  ws: Workspace,
  last: Int32Array,
  f: number,
  eps: number,
  c: GptNeoXConfig,
  past: PastKeysValues | null,
): Float32Array {
  const { B, T } = s;
  const d = s.H * s.S;
  layerNormForward(lc.ln1Out, lc.ln1Mean, lc.ln1Rstd, x, lw.ln1Weight, lw.ln1Bias, B * T, d, eps);
  const a = new Float32Array(B * d);
  attentionForwardLast(
    a,
    lc.attn,
    lc.ln1Out,
    lw,
    s,
    rope,
    ws.attn,
    Int32Array.from(last, (n, b) => n - b * T),
    past,
  );
  const ln2In = lc.mid; // [B, d]: x, or x + attn with a sequential residual
  for (let b = 0; b < B; b++) {
    const from = last[b] * d;
    const to = b * d;
    if (c.useParallelResidual) ln2In.set(x.subarray(from, from + d), to);
    else for (let i = 0; i < d; i++) ln2In[to + i] = x[from + i] + a[to + i];
  }
  layerNormForward(lc.ln2Out, lc.ln2Mean, lc.ln2Rstd, ln2In, lw.ln2Weight, lw.ln2Bias, B, d, eps);
  const m = new Float32Array(B * d);
  mlpForward(m, lc.mlp, lc.ln2Out, lw, B, d, f);
  const resid = new Float32Array(B * d);
  for (let b = 0; b < B; b++) {
    const from = last[b] * d;
    const to = b * d;
    if (c.useParallelResidual)
      for (let i = 0; i < d; i++) resid[to + i] = x[from + i] + a[to + i] + m[to + i];
    else for (let i = 0; i < d; i++) resid[to + i] = ln2In[to + i] + m[to + i];
  }
  return resid;
}
