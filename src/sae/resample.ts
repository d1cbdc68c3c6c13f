// Resampling dead features, after Anthropic's "Towards Monosemanticity" (2023).
//
// Dims: d input width, F dictionary width, S resampling inputs.

import type { AdamW } from '../model/adamw.ts';
import type { Rng } from '../random.ts';
import type { SparseAutoencoder } from './dictionary.ts';

/**
 * Scores the S inputs `sample` [S, d] by their squared reconstruction loss, and for each dead
 * feature picks an input with probability ∝ loss²; its centred direction becomes the decoder row,
 * and (scaled to 0.2 × the mean alive encoder norm) the encoder row; encoder bias 0; a JumpReLU
 * threshold back to `threshold`; Adam state of those rows reset. `opt` optimises [encoder,
 * encoderBias, decoder, decoderBias] in that order, then the threshold for JumpReLU.
 */
export function resampleDeadFeatures(
  sae: SparseAutoencoder,
  opt: AdamW,
  dead: number[],
  sample: Float32Array,
  S: number,
  rng: Rng,
  threshold = 0,
): void {
  const { dIn: d, width: F } = sae;
  // Per-input reconstruction loss, in chunks so that [rows, F] stays small.
  const weight = new Float64Array(S);
  const rows = Math.max(1, Math.min(S, Math.floor((1 << 22) / F)));
  const f = new Float32Array(rows * F);
  const xHat = new Float32Array(rows * d);
  for (let s0 = 0; s0 < S; s0 += rows) {
    const n = Math.min(rows, S - s0);
    const xs = sample.subarray(s0 * d, (s0 + n) * d);
    sae.encode(xs, n, f);
    sae.decode(f, n, xHat);
    for (let r = 0; r < n; r++) {
      let e = 0;
      for (let j = 0; j < d; j++) e += (xs[r * d + j] - xHat[r * d + j]) ** 2;
      weight[s0 + r] = e * e;
    }
  }
  const cumulative = new Float64Array(S);
  let total = 0;
  for (let s = 0; s < S; s++) cumulative[s] = total += weight[s];
  const isDead = new Uint8Array(F);
  for (const i of dead) isDead[i] = 1;
  let aliveNorm = 0;
  let alive = 0;
  for (let i = 0; i < F; i++) {
    if (isDead[i]) continue;
    let s = 0;
    for (let j = 0; j < d; j++) s += sae.encoder[i * d + j] ** 2;
    aliveNorm += Math.sqrt(s);
    alive++;
  }
  aliveNorm = alive ? aliveNorm / alive : 1;
  const { m, v } = opt;
  // Per-feature rows: encoder, encoderBias, decoder, and the threshold when trained.
  const rowParams = sae.threshold ? [0, 1, 2, 4] : [0, 1, 2];
  for (const i of dead) {
    let pick: number;
    if (total > 0) {
      const r = rng.next() * total;
      let lo = 0;
      let hi = S - 1;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (cumulative[mid] > r) hi = mid;
        else lo = mid + 1;
      }
      pick = lo;
    } else pick = rng.int(S);
    const dir = new Float64Array(d);
    let norm = 0;
    for (let j = 0; j < d; j++) {
      dir[j] = sample[pick * d + j] - (sae.centerInput ? sae.decoderBias[j] : 0);
      norm += dir[j] ** 2;
    }
    norm = Math.sqrt(norm) || 1;
    for (let j = 0; j < d; j++) {
      sae.decoder[i * d + j] = dir[j] / norm;
      sae.encoder[i * d + j] = (dir[j] / norm) * aliveNorm * 0.2;
    }
    sae.encoderBias[i] = 0;
    if (sae.threshold) sae.threshold[i] = threshold;
    for (const p of rowParams) {
      const width = p === 1 || p === 4 ? 1 : d;
      m[p].fill(0, i * width, (i + 1) * width);
      v[p].fill(0, i * width, (i + 1) * width);
    }
  }
}
