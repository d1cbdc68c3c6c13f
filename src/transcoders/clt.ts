// Cross-layer transcoders (CLT, Ameisen et al. 2025): an encoder at every layer l reads that
// layer's MLP input x_l (d wide) and its features write to the MLP outputs of every layer l' ≥ l
// through decoders of their own:
//   a_l = act(W_enc_l·x_l + b_enc_l),   ŷ_l' = Σ_{l ≤ l'} a_l·W_dec_l[:, l' − l, :] + b_dec_l'.
// Layouts follow circuit-tracer's CrossLayerTranscoder: W_enc_l [F, d], b_enc_l [F], b_dec_l [d],
// threshold_l [F] (JumpReLU), W_dec_l [F, n − l, d] (a feature's decoders side by side, so one
// GEMM with W_dec_l viewed as [F, (n − l)·d] decodes a layer into all its targets).
// N rows, d model width, F features per layer, n layers, m = n − l targets of layer l.

import { matmul } from '../kernels/gemm.ts';
import { topKRows } from '../sae/dictionary.ts';
import type { TranscoderActivation } from './transcoder.ts';

/** Where the decoders come from: in memory, or read from disk as the graph asks for them. */
export interface CltDecoders {
  /** Rows of the given features of W_dec_l: [ids.length, n − l, d]. */
  rows(l: number, ids: number[]): Float32Array;
  /** All of W_dec_l [F, n − l, d] (in memory: the array itself, which training updates). */
  layer(l: number): Float32Array;
}

export interface CrossLayerTranscoder {
  numLayers: number;
  dIn: number;
  width: number;
  activation: TranscoderActivation;
  /** TopK: features kept per row, at every layer. */
  k?: number;
  /** JumpReLU: per layer, a feature fires when its pre-activation exceeds its threshold [F]. */
  thresholds?: Float32Array[];
  encoders: Float32Array[]; // W_enc_l [F, d]
  encoderBiases: Float32Array[]; // b_enc_l [F]
  decoderBiases: Float32Array[]; // b_dec_l' [d], the output bias at layer l'
  decoders: CltDecoders;
}

/** Decoders held in memory: ws[l] is W_dec_l [F, n − l, d]. */
export function memoryDecoders(ws: Float32Array[], width: number, d: number): CltDecoders {
  const n = ws.length;
  return {
    layer: (l) => ws[l],
    rows(l, ids) {
      const row = (n - l) * d;
      const out = new Float32Array(ids.length * row);
      ids.forEach((i, j) => {
        if (!(i >= 0 && i < width)) throw new Error(`CLT layer ${l}: no feature ${i}`);
        out.set(ws[l].subarray(i * row, (i + 1) * row), j * row);
      });
      return out;
    },
  };
}

/** Checks every in-memory tensor's size against (n, d, F); errors name the tensor and layer. */
export function checkClt(clt: CrossLayerTranscoder, where = 'cross-layer transcoder'): void {
  const { numLayers: n, dIn: d, width: F } = clt;
  const perLayer = (name: string, ts: Float32Array[] | undefined, size: number) => {
    if (!ts || ts.length !== n)
      throw new Error(`${where}: ${name} has ${ts ? ts.length : 'no'} layers, expected ${n}`);
    ts.forEach((t, l) => {
      if (!(t instanceof Float32Array) || t.length !== size)
        throw new Error(
          `${where}: ${name}_${l} has ${t?.length} values, expected ${size} (d ${d}, F ${F})`,
        );
    });
  };
  perLayer('W_enc', clt.encoders, F * d);
  perLayer('b_enc', clt.encoderBiases, F);
  perLayer('b_dec', clt.decoderBiases, d);
  if (clt.activation === 'jumprelu') perLayer('threshold', clt.thresholds, F);
  if (clt.activation === 'topk' && !(Number.isInteger(clt.k) && clt.k! >= 1 && clt.k! <= F))
    throw new Error(`${where}: topk needs an integer k in 1..${F}, got ${clt.k}`);
}

/** Pre-activations W_enc_l·x + b_enc_l: x [N, d] -> [N, F]. */
export function cltPreActivations(
  clt: CrossLayerTranscoder,
  l: number,
  x: Float32Array,
  N: number,
): Float32Array {
  const F = clt.width;
  const pre = new Float32Array(N * F);
  matmul(x, clt.encoders[l], pre, N, F, clt.dIn, { transB: true });
  const b = clt.encoderBiases[l];
  for (let r = 0; r < N; r++) for (let i = 0; i < F; i++) pre[r * F + i] += b[i];
  return pre;
}

/** Applies layer l's activation in place to pre-activations [N, F]. */
export function cltActivate(
  clt: CrossLayerTranscoder,
  l: number,
  pre: Float32Array,
  N: number,
): Float32Array {
  const F = clt.width;
  if (clt.activation === 'relu') {
    for (let i = 0; i < N * F; i++) if (!(pre[i] > 0)) pre[i] = 0;
  } else if (clt.activation === 'jumprelu') {
    const th = clt.thresholds![l];
    for (let r = 0; r < N; r++)
      for (let i = 0; i < F; i++) if (!(pre[r * F + i] > th[i])) pre[r * F + i] = 0;
  } else topKRows(pre, N, F, clt.k!);
  return pre;
}

/** Feature activations of layer l: x_l [N, d] -> [N, F]. */
export function cltEncode(
  clt: CrossLayerTranscoder,
  l: number,
  x: Float32Array,
  N: number,
): Float32Array {
  return cltActivate(clt, l, cltPreActivations(clt, l, x, N), N);
}

/**
 * The prediction of layer t's MLP output from the activations of layers 0..t (acts[l] [N, F]),
 * reading only the decoder rows of features that fire: [N, d].
 */
export function cltDecode(
  clt: CrossLayerTranscoder,
  t: number,
  acts: Float32Array[],
  N: number,
): Float32Array {
  const { dIn: d, width: F, numLayers: n } = clt;
  const out = new Float32Array(N * d);
  for (let l = 0; l <= t; l++) {
    const a = acts[l];
    const fired = new Uint8Array(F);
    for (let i = 0; i < N * F; i++) if (a[i] !== 0) fired[i % F] = 1;
    const ids: number[] = [];
    fired.forEach((f, i) => f && ids.push(i));
    if (ids.length === 0) continue;
    // [ids, n − l, d] -> the target's slice [ids, d], then out += a[:, ids] · slice.
    const m = n - l;
    const rows = clt.decoders.rows(l, ids);
    const slice = new Float32Array(ids.length * d);
    ids.forEach((_, j) =>
      slice.set(rows.subarray((j * m + t - l) * d, (j * m + t - l + 1) * d), j * d),
    );
    const sub = new Float32Array(N * ids.length);
    for (let r = 0; r < N; r++) ids.forEach((i, j) => (sub[r * ids.length + j] = a[r * F + i]));
    matmul(sub, slice, out, N, d, ids.length, { accumulate: true });
  }
  const b = clt.decoderBiases[t];
  for (let r = 0; r < N; r++) for (let j = 0; j < d; j++) out[r * d + j] += b[j];
  return out;
}
