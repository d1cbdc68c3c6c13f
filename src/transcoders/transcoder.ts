// Per-layer transcoders: a sparse dictionary that reads what a layer's MLP reads (its normalised
// input x, d wide) and predicts what the MLP writes (y, d wide):
//   a = act(W_enc·x + b_enc),   ŷ = W_dec·a + b_dec (+ W_skip·x).
// Layouts follow circuit-tracer's SingleLayerTranscoder: W_enc [F, d], W_dec [F, d] (one row per
// feature), b_enc [F], b_dec [d], W_skip [d, d] applied as x·W_skipᵀ, threshold [F] (JumpReLU).
// N rows, d model width, F features.

import { matmul } from '../kernels/gemm.ts';
import { topKRows } from '../sae/dictionary.ts';

export type TranscoderActivation = 'relu' | 'jumprelu' | 'topk';

export interface Transcoder {
  layer: number;
  dIn: number;
  width: number;
  activation: TranscoderActivation;
  /** TopK: features kept per row. */
  k?: number;
  /** JumpReLU: a feature fires when its pre-activation exceeds its threshold [F]. */
  threshold?: Float32Array;
  encoder: Float32Array; // W_enc [F, d]
  encoderBias: Float32Array; // b_enc [F]
  decoder: Float32Array; // W_dec [F, d]
  decoderBias: Float32Array; // b_dec [d]
  skip?: Float32Array; // W_skip [d, d]
}

/** Checks every tensor's size against (d, F); errors name the tensor and the layer. */
export function checkTranscoder(tc: Transcoder, where = `transcoder layer ${tc.layer}`): void {
  const { dIn: d, width: F } = tc;
  const want: [string, Float32Array | undefined, number][] = [
    ['W_enc', tc.encoder, F * d],
    ['b_enc', tc.encoderBias, F],
    ['W_dec', tc.decoder, F * d],
    ['b_dec', tc.decoderBias, d],
  ];
  if (tc.skip) want.push(['W_skip', tc.skip, d * d]);
  if (tc.activation === 'jumprelu') want.push(['threshold', tc.threshold, F]);
  for (const [name, t, n] of want)
    if (!(t instanceof Float32Array) || t.length !== n)
      throw new Error(
        `${where}: ${name} has ${t ? t.length : 'no'} values, expected ${n} (d ${d}, F ${F})`,
      );
  if (tc.activation === 'topk' && !(Number.isInteger(tc.k) && tc.k! >= 1 && tc.k! <= F))
    throw new Error(`${where}: topk needs an integer k in 1..${F}, got ${tc.k}`);
}

/** Pre-activations W_enc·x + b_enc: x [N, d] -> [N, F]. */
export function transcoderPreActivations(tc: Transcoder, x: Float32Array, N: number): Float32Array {
  const F = tc.width;
  const pre = new Float32Array(N * F);
  matmul(x, tc.encoder, pre, N, F, tc.dIn, { transB: true });
  for (let n = 0; n < N; n++) for (let i = 0; i < F; i++) pre[n * F + i] += tc.encoderBias[i];
  return pre;
}

/** Applies the activation in place to pre-activations [N, F]. */
export function applyActivation(tc: Transcoder, pre: Float32Array, N: number): Float32Array {
  const F = tc.width;
  if (tc.activation === 'relu') {
    for (let i = 0; i < N * F; i++) if (!(pre[i] > 0)) pre[i] = 0;
  } else if (tc.activation === 'jumprelu') {
    const th = tc.threshold!;
    for (let n = 0; n < N; n++)
      for (let i = 0; i < F; i++) if (!(pre[n * F + i] > th[i])) pre[n * F + i] = 0;
  } else topKRows(pre, N, F, tc.k!);
  return pre;
}

/** Feature activations a: x [N, d] -> [N, F]. */
export function transcoderEncode(tc: Transcoder, x: Float32Array, N: number): Float32Array {
  return applyActivation(tc, transcoderPreActivations(tc, x, N), N);
}

/** The prediction ŷ = a·W_dec + b_dec (+ x·W_skipᵀ): a [N, F], x [N, d] -> [N, d]. */
export function transcoderDecode(
  tc: Transcoder,
  a: Float32Array,
  x: Float32Array,
  N: number,
): Float32Array {
  const d = tc.dIn;
  const out = new Float32Array(N * d);
  matmul(a, tc.decoder, out, N, d, tc.width);
  if (tc.skip) matmul(x, tc.skip, out, N, d, d, { transB: true, accumulate: true });
  for (let n = 0; n < N; n++) for (let j = 0; j < d; j++) out[n * d + j] += tc.decoderBias[j];
  return out;
}
