// The SAE training loss and its hand-written gradients, and the decoder-row constraint (unit rows,
// gradient along each row removed) that keeps the L1 penalty honest. See train.ts for the loss.
//
// JumpReLU (Rajamanoharan et al. 2024, "Jumping Ahead"): f = z·H(z - θ) and an L0 penalty
// λ·Σ_i H(z_i - θ_i). Both are step functions of θ, so their true θ-derivatives are 0 almost
// everywhere; training uses the paper's straight-through pseudo-derivatives with a rectangle
// kernel K(u) = 1[|u| < 1/2] of bandwidth ε:
//   ∂f/∂θ := -(θ/ε)·K((z - θ)/ε)        ∂H(z - θ)/∂θ := -(1/ε)·K((z - θ)/ε)
// while ∂f/∂z = H(z - θ) is the true derivative and the L0 term sends no gradient to z.
//
// Dims: B batch rows, d input width, F dictionary width.

import { matmul } from '../kernels/gemm.ts';
import { topKRows, type ActivationKind, type SparseAutoencoder } from './dictionary.ts';

/** The trained parameters of every SAE, in the optimizer's order (also SaeGradients' fields). */
export const PARAM_NAMES = ['encoder', 'encoderBias', 'decoder', 'decoderBias'] as const;

export type ParamName = (typeof PARAM_NAMES)[number] | 'threshold';

/** The parameters trained for a kind of SAE, in the optimizer's order: JumpReLU adds θ. */
export function trainedParams(kind: ActivationKind): readonly ParamName[] {
  return kind === 'jumprelu' ? [...PARAM_NAMES, 'threshold'] : PARAM_NAMES;
}

export interface SaeGradients {
  encoder: Float32Array; // [F, d]
  encoderBias: Float32Array; // [F]
  decoder: Float32Array; // [F, d]
  decoderBias: Float32Array; // [d]
  threshold: Float32Array; // [F], written for jumprelu only
}

/** λ weighs the sparsity term (L1 of f for relu, L0 for jumprelu, unused for topk); ε is JumpReLU's kernel bandwidth. */
export interface SparsityPenalty {
  lambda: number;
  bandwidth?: number;
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
  pre: Float32Array; // [B, F] pre-activations (jumprelu only: allocated on its first batch)
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
    pre: new Float32Array(0),
    mean: new Float64Array(d),
  };
}

export function zeroGradients(d: number, F: number): SaeGradients {
  return {
    encoder: new Float32Array(F * d),
    encoderBias: new Float32Array(F),
    decoder: new Float32Array(F * d),
    decoderBias: new Float32Array(d),
    threshold: new Float32Array(F),
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
 * gradients of every trained parameter into `grads`. Leaves f in ws.f.
 */
export function saeLossAndGradients(
  sae: SparseAutoencoder,
  x: Float32Array,
  B: number,
  penalty: SparsityPenalty,
  grads: SaeGradients,
  ws: SaeWorkspace,
  fired?: Uint8Array, // [F], set to 1 for every feature active in the batch
): BatchStats {
  const { dIn: d, width: F, encoder: WE, encoderBias: bE, decoder: WD, decoderBias: bD } = sae;
  const { xc, f, xHat, dxHat, dPre, dxc, mean } = ws;
  const center = sae.centerInput;
  const lambda = sae.kind === 'topk' ? 0 : penalty.lambda;
  const th = sae.kind === 'jumprelu' ? sae.threshold! : undefined;
  const epsilon = penalty.bandwidth ?? 0;
  if (th && !(epsilon > 0))
    throw new Error(`jumprelu training needs a kernel bandwidth > 0, got ${penalty.bandwidth}`);

  // Forward: xc = x - b_D; f = act(xc W_Eᵀ + b_E); x̂ = f W_D + b_D.
  for (let n = 0; n < B; n++)
    for (let j = 0; j < d; j++) xc[n * d + j] = center ? x[n * d + j] - bD[j] : x[n * d + j];
  matmul(xc, WE, f, B, F, d, { transB: true });
  const topk = sae.kind === 'topk';
  // z is kept only when jumprelu needs it for θ's pseudo-derivative.
  if (th && ws.pre.length < B * F) ws.pre = new Float32Array(B * F);
  const pre = th ? ws.pre : undefined;
  for (let n = 0; n < B; n++) {
    const row = n * F;
    for (let i = 0; i < F; i++) {
      const z = f[row + i] + bE[i];
      if (pre) pre[row + i] = z;
      // The same test as SparseAutoencoder.activate: relu(z), times 1[z > θ] for jumprelu.
      f[row + i] = topk || (z > 0 && (!th || z > th[i])) ? z : 0;
    }
  }
  if (topk) topKRows(f, B, F, sae.k!);
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

  // Backward. x̂ = f W_D + b_D:  dW_D = fᵀ dx̂,  db_D = Σ_n dx̂_n,  df = dx̂ W_Dᵀ (+ λ/B from a ReLU's L1 term).
  matmul(f, dxHat, grads.decoder, F, d, B, { transA: true });
  grads.decoderBias.fill(0);
  for (let n = 0; n < B; n++) for (let j = 0; j < d; j++) grads.decoderBias[j] += dxHat[n * d + j];
  matmul(dxHat, WD, dPre, B, F, d, { transB: true });
  // θ's straight-through gradient reads ∂m/∂f (dPre before masking) and z near θ.
  if (th) thresholdGradient(pre!, dPre, th, B, F, lambda, epsilon, grads.threshold);
  // Through the activation: ReLU, JumpReLU and TopK all pass gradient exactly where f > 0.
  const l1Grad = th ? 0 : lambda / B;
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
    loss: sse / B + (lambda * (th ? active : sumL1)) / B,
    sumSquaredError: sse,
    sumSquaredDeviation: ssd,
    sumL1,
    activeCount: active,
  };
}

/**
 * JumpReLU's θ gradient [F] (overwritten) from the pre-activations z [B*F] and ∂loss/∂f [B*F],
 * with the L0 term λ/B·Σ_n H(z - θ).
 */
function thresholdGradient(
  z: Float32Array,
  dF: Float32Array,
  th: Float32Array,
  B: number,
  F: number,
  lambda: number,
  epsilon: number,
  out: Float32Array,
): void {
  out.fill(0);
  const l0Grad = lambda / B;
  for (let n = 0; n < B; n++) {
    const row = n * F;
    for (let i = 0; i < F; i++) {
      const v = z[row + i];
      // K((z - θ)/ε) = 1 when |z - θ| < ε/2: the only rows that move θ.
      if (!(Math.abs(v - th[i]) < epsilon / 2)) continue;
      out[i] -= (th[i] * dF[row + i] + l0Grad) / epsilon;
    }
  }
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
