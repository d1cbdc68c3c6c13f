// Backward through a GPT-NeoX block's two branches (layernorm then attention, layernorm then
// MLP), each from the branch output's gradient to the gradient at the branch input. The attention
// branch is two steps, output projection then heads, so the gradient at attn_z_L (between them)
// can be reported, seeded and stopped.
// B batch, T tokens, N = B*T rows, d model dim, f MLP dim.

import { gatherRows } from '../kernels/rows.ts';
import type { LayerWeights } from './weights.ts';
import {
  attentionHeadsBackward,
  attentionHeadsBackwardLast,
  denseBackward,
  type AttentionShape,
  type RotaryTable,
} from './layers/attention.ts';
import { layerNormBackward } from './layers/layernorm.ts';
import { mlpBackward } from './layers/mlp.ts';
import type { LayerCache, Workspace } from './workspace.ts';

/**
 * The attention's output projection, backward: dOut [N, d] (the gradient at attn_L) -> dZ [N, d]
 * (overwritten: the gradient at attn_z_L). For a last-rows top layer, `last` lists the rows where
 * dOut is non-zero (nothing else reads the layer) and dZ is zero at the other rows.
 */
export function attentionOutputBackward(
  dZ: Float32Array,
  grads: LayerWeights | null,
  dOut: Float32Array,
  lc: LayerCache,
  w: LayerWeights,
  s: AttentionShape,
  last: Int32Array | null = null,
): void {
  const d = s.H * s.S;
  if (!last) {
    denseBackward(dZ, grads, dOut, lc.attn.concat, w, s.B * s.T, d);
    return;
  }
  const dZRows = new Float32Array(last.length * d);
  denseBackward(dZRows, grads, gatherRows(dOut, last, d), lc.attn.concat, w, last.length, d);
  dZ.fill(0);
  last.forEach((n, b) => dZ.set(dZRows.subarray(b * d, (b + 1) * d), n * d));
}

/**
 * The heads, then input_layernorm, backward: dZ [N, d] (the gradient at attn_z_L) -> dx [N, d]
 * += gradient at x (the LN input). For a last-rows top layer, dZ is read at the rows `last` only;
 * dx still gets the gradient at every row of x.
 */
export function attentionHeadsBranchBackward(
  dx: Float32Array,
  grads: LayerWeights | null,
  dZ: Float32Array,
  x: Float32Array,
  lc: LayerCache,
  w: LayerWeights,
  s: AttentionShape,
  rope: RotaryTable,
  ws: Workspace,
  last: Int32Array | null = null,
): void {
  const N = s.B * s.T;
  const d = s.H * s.S;
  if (last) {
    const positions = Int32Array.from(last, (n, b) => n - b * s.T);
    const dZRows = gatherRows(dZ, last, d);
    attentionHeadsBackwardLast(
      ws.dLn,
      grads,
      dZRows,
      lc.ln1Out,
      lc.attn,
      w,
      s,
      rope,
      ws.attn,
      positions,
    );
  } else attentionHeadsBackward(ws.dLn, grads, dZ, lc.ln1Out, lc.attn, w, s, rope, ws.attn);
  layerNormBackward(
    dx,
    grads?.ln1Weight ?? null,
    grads?.ln1Bias ?? null,
    ws.dLn,
    x,
    lc.ln1Mean,
    lc.ln1Rstd,
    w.ln1Weight,
    N,
    d,
  );
}

/**
 * post_attention_layernorm then MLP, backward: dOut [N, d] -> dx [N, d] += gradient at x (the LN
 * input). Both are row-local, so when few rows of dOut are nonzero (the last layer under a
 * last-token metric) only those rows are gathered and processed.
 */
export function mlpBranchBackward(
  dx: Float32Array,
  grads: LayerWeights | null,
  dOut: Float32Array,
  x: Float32Array,
  lc: LayerCache,
  w: LayerWeights,
  N: number,
  d: number,
  f: number,
  ws: Workspace,
): void {
  const rows: number[] = [];
  for (let n = 0; n < N && rows.length * 2 < N; n++) {
    const o = n * d;
    for (let i = 0; i < d; i++)
      if (dOut[o + i] !== 0) {
        rows.push(n);
        break;
      }
  }
  if (rows.length * 2 >= N) {
    mlpBackward(ws.dLn, grads, dOut, lc.ln2Out, lc.mlp, w, N, d, f, ws.dAct);
    layerNormBackward(
      dx,
      grads?.ln2Weight ?? null,
      grads?.ln2Bias ?? null,
      ws.dLn,
      x,
      lc.ln2Mean,
      lc.ln2Rstd,
      w.ln2Weight,
      N,
      d,
    );
    return;
  }
  if (rows.length === 0) return;
  const g = (src: Float32Array, width: number) => gatherRows(src, rows, width);
  const part: LayerCache = {
    ...lc,
    mid: g(x, d),
    ln2Out: g(lc.ln2Out, d),
    ln2Mean: Float64Array.from(rows, (n) => lc.ln2Mean[n]),
    ln2Rstd: Float64Array.from(rows, (n) => lc.ln2Rstd[n]),
    mlp: { pre: g(lc.mlp.pre, f), act: g(lc.mlp.act, f) },
  };
  mlpRowsBackward(dx, grads, g(dOut, d), part, w, rows, d, f, ws);
}

/**
 * The MLP branch backward at R rows whose ln2 input (lc.mid) and cache are stored compactly
 * [R, ..]: dOut [R, d] -> dx row rows[r] += the gradient at the ln2 input's row r.
 */
export function mlpRowsBackward(
  dx: Float32Array,
  grads: LayerWeights | null,
  dOut: Float32Array,
  lc: LayerCache,
  w: LayerWeights,
  rows: ArrayLike<number>,
  d: number,
  f: number,
  ws: Workspace,
): void {
  const R = rows.length;
  const dLn = new Float32Array(R * d);
  mlpBackward(dLn, grads, dOut, lc.ln2Out, lc.mlp, w, R, d, f, ws.dAct);
  const dxRows = new Float32Array(R * d);
  layerNormBackward(
    dxRows,
    grads?.ln2Weight ?? null,
    grads?.ln2Bias ?? null,
    dLn,
    lc.mid,
    lc.ln2Mean,
    lc.ln2Rstd,
    w.ln2Weight,
    R,
    d,
  );
  for (let r = 0; r < R; r++) {
    const to = rows[r] * d;
    const from = r * d;
    for (let i = 0; i < d; i++) dx[to + i] += dxRows[from + i];
  }
}
