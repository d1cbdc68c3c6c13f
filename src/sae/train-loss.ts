// The SAE training loss and its hand-written gradients, and the decoder-row constraint (unit rows,
// gradient along each row removed) that keeps the L1 penalty honest. See train.ts for the loss.
//
// Dims: B batch rows, d input width, F dictionary width.

import { matmul } from '../kernels/gemm.ts';
import { topKRows, type SparseAutoencoder } from './dictionary.ts';

/** The trained parameters of an SAE, in the optimizer's order (also SaeGradients' fields). */
export const PARAM_NAMES = ['encoder', 'encoderBias', 'decoder', 'decoderBias'] as const;

export interface SaeGradients {
  encoder: Float32Array; // [F, d]
  encoderBias: Float32Array; // [F]
  decoder: Float32Array; // [F, d]
  decoderBias: Float32Array; // [d]
}

/** Temporaries of one forward/backward at a batch size. */
export interface SaeWorkspace {
  B: number;
  xc: Float32Array; // [B, d] centred input
  f: Float32Array; // [B, F] features
  xHat: Float32Array; // [B, d]
  dxHat: Float32Array; // [B, d]
  dPre: Float32Array; // [B, F]
  dxc: Float32Array; // [B, d]
  mean: Float64Array; // [d] batch mean, for the variance the FVE divides by
}

export function saeWorkspace(B: number, d: number, F: number): SaeWorkspace {
  return {
    B,
    xc: new Float32Array(B * d),
    f: new Float32Array(B * F),
    xHat: new Float32Array(B * d),
    dxHat: new Float32Array(B * d),
    dPre: new Float32Array(B * F),
    dxc: new Float32Array(B * d),
    mean: new Float64Array(d),
  };
}

export function zeroGradients(d: number, F: number): SaeGradients {
  return {
    encoder: new Float32Array(F * d),
    encoderBias: new Float32Array(F),
    decoder: new Float32Array(F * d),
    decoderBias: new Float32Array(d),
  };
}

export interface BatchStats {
  loss: number;
  sumSquaredError: number; // Σ_n ||x_n - x̂_n||²
  sumSquaredDeviation: number; // Σ_n ||x_n - mean||²
  sumL1: number; // Σ_n ||f_n||₁
  activeCount: number; // Σ_n ||f_n||₀
}

/**
 * One forward and hand-written backward of the training loss on x [B*d]; writes (overwrites) the
 * gradients of every parameter into `grads`. `l1` is λ (ignored for topk). Leaves f in ws.f.
 */
export function saeLossAndGradients(
  sae: SparseAutoencoder,
  x: Float32Array,
  B: number,
  l1: number,
  grads: SaeGradients,
  ws: SaeWorkspace,
  fired?: Uint8Array, // [F], set to 1 for every feature active in the batch
): BatchStats {
  const { dIn: d, width: F, encoder: WE, encoderBias: bE, decoder: WD, decoderBias: bD } = sae;
  const { xc, f, xHat, dxHat, dPre, dxc, mean } = ws;
  const center = sae.centerInput;
  const lambda = sae.kind === 'topk' ? 0 : l1;

  // Forward: xc = x - b_D; f = act(xc W_Eᵀ + b_E); x̂ = f W_D + b_D.
  for (let n = 0; n < B; n++)
    for (let j = 0; j < d; j++) xc[n * d + j] = center ? x[n * d + j] - bD[j] : x[n * d + j];
  matmul(xc, WE, f, B, F, d, { transB: true });
  if (sae.kind !== 'relu' && sae.kind !== 'topk')
    throw new Error(`training supports relu and topk dictionaries, not ${sae.kind}`);
  const relu = sae.kind === 'relu';
  for (let n = 0; n < B; n++) {
    const row = n * F;
    for (let i = 0; i < F; i++) {
      const z = f[row + i] + bE[i];
      f[row + i] = relu && !(z > 0) ? 0 : z;
    }
  }
  if (!relu) topKRows(f, B, F, sae.k!);
  matmul(f, WD, xHat, B, d, F);

  mean.fill(0);
  for (let n = 0; n < B; n++) for (let j = 0; j < d; j++) mean[j] += x[n * d + j] / B;
  let sse = 0;
  let ssd = 0;
  for (let n = 0; n < B; n++)
    for (let j = 0; j < d; j++) {
      const o = n * d + j;
      xHat[o] += bD[j];
      const e = xHat[o] - x[o];
      sse += e * e;
      ssd += (x[o] - mean[j]) ** 2;
      dxHat[o] = (2 / B) * e;
    }

  // Backward. x̂ = f W_D + b_D:  dW_D = fᵀ dx̂,  db_D = Σ_n dx̂_n,  df = dx̂ W_Dᵀ (+ λ/B from the L1 term).
  matmul(f, dxHat, grads.decoder, F, d, B, { transA: true });
  grads.decoderBias.fill(0);
  for (let n = 0; n < B; n++) for (let j = 0; j < d; j++) grads.decoderBias[j] += dxHat[n * d + j];
  matmul(dxHat, WD, dPre, B, F, d, { transB: true });
  // Through the activation: both ReLU and TopK pass gradient exactly where f > 0.
  const l1Grad = lambda / B;
  let sumL1 = 0;
  let active = 0;
  grads.encoderBias.fill(0);
  for (let n = 0; n < B; n++) {
    const row = n * F;
    for (let i = 0; i < F; i++) {
      const a = f[row + i];
      if (a > 0) {
        sumL1 += a;
        active++;
        if (fired) fired[i] = 1;
        const g = dPre[row + i] + l1Grad;
        dPre[row + i] = g;
        grads.encoderBias[i] += g;
      } else dPre[row + i] = 0;
    }
  }
  // pre = xc W_Eᵀ + b_E:  dW_E = dpreᵀ xc,  dxc = dpre W_E,  and xc = x - b_D gives db_D -= Σ_n dxc_n.
  matmul(dPre, xc, grads.encoder, F, d, B, { transA: true });
  if (center) {
    matmul(dPre, WE, dxc, B, d, F);
    for (let n = 0; n < B; n++) for (let j = 0; j < d; j++) grads.decoderBias[j] -= dxc[n * d + j];
  }
  return {
    loss: sse / B + (lambda * sumL1) / B,
    sumSquaredError: sse,
    sumSquaredDeviation: ssd,
    sumL1,
    activeCount: active,
  };
}

/** Removes from each decoder-row gradient its component along the (unit) row. */
export function projectDecoderGradient(decoder: Float32Array, grad: Float32Array, d: number): void {
  const F = decoder.length / d;
  for (let i = 0; i < F; i++) {
    const r = i * d;
    let dot = 0;
    for (let j = 0; j < d; j++) dot += decoder[r + j] * grad[r + j];
    for (let j = 0; j < d; j++) grad[r + j] -= dot * decoder[r + j];
  }
}

/** Rescales each decoder row to unit norm (rows of zeros are left alone). */
export function normalizeRows(decoder: Float32Array, d: number): void {
  const F = decoder.length / d;
  for (let i = 0; i < F; i++) {
    const r = i * d;
    let s = 0;
    for (let j = 0; j < d; j++) s += decoder[r + j] * decoder[r + j];
    if (s === 0) continue;
    const inv = 1 / Math.sqrt(s);
    for (let j = 0; j < d; j++) decoder[r + j] *= inv;
  }
}
