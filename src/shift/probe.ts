// A linear probe on a model's residual stream: the classifier SHIFT edits. Its input is the mean
// of one residual site over an example's real (non-padding) tokens; its output is one logit z,
// class 1 when z > 0. Trained with logistic loss and an L2 penalty by Newton's method, which on
// d+1 parameters converges in a few exact steps, with no learning rate to tune.
// n examples, d model width.

import { makeBatch, type SiteHook } from '../model/gptneox.ts';
import { siteRef, type LanguageModel } from '../model/language-model.ts';
import type { OnProgress } from '../progress.ts';

export interface Probe {
  /** The residual site it reads (mean over real tokens). */
  site: string;
  weight: Float64Array; // [d]
  bias: number;
}

export interface PooledOptions {
  /** Hooks for every forward (e.g. ablations); they see and may replace each site's output. */
  hooks?: Record<string, SiteHook>;
  batchSize?: number;
  onProgress?: OnProgress;
}

/**
 * Mean activation of `site` over each sequence's tokens [n*d]. Only the layers up to the site
 * run (a residual site's logits are never needed).
 */
export function pooledActivations(
  model: LanguageModel,
  sequences: number[][],
  site: string,
  options: PooledOptions = {},
): Float32Array {
  const batchSize = options.batchSize ?? 32;
  if (!model.sites.includes(site))
    throw new Error(`probe: site ${site} is not a site of this model (${model.sites.join(', ')})`);
  const d = model.siteWidth(site);
  const ref = siteRef(model, site);
  const layers = ref.kind === 'embed' ? 0 : ref.layer + 1;
  const upTo = layers === model.shape.numLayers ? model : model.slice(0, layers);
  const out = new Float32Array(sequences.length * d);
  for (let start = 0; start < sequences.length; start += batchSize) {
    const chunk = sequences.slice(start, start + batchSize);
    const batch = makeBatch(chunk);
    const T = batch.seqLen;
    const pass = upTo.forward(batch, { hooks: options.hooks, logits: 'none' });
    const act = pass.activation(site);
    chunk.forEach((seq, b) => {
      const row = out.subarray((start + b) * d, (start + b + 1) * d);
      for (let t = 0; t < seq.length; t++) {
        const o = (b * T + t) * d;
        for (let j = 0; j < d; j++) row[j] += act[o + j];
      }
      for (let j = 0; j < d; j++) row[j] /= seq.length;
    });
    options.onProgress?.(Math.min(start + batchSize, sequences.length), sequences.length);
  }
  return out;
}

/** z = w·x + b for row i of X [n*d]. */
export function probeLogit(probe: Probe, X: Float32Array, i: number): number {
  const d = probe.weight.length;
  let z = probe.bias;
  for (let j = 0; j < d; j++) z += probe.weight[j] * X[i * d + j];
  return z;
}

export interface TrainProbeOptions {
  /** L2 penalty on the weight (not the bias), per example: loss = mean logloss + l2/2 |w|². */
  l2?: number;
  iterations?: number;
}

/** Logistic regression of labels y (0/1) on rows of X [n*d]. */
export function trainProbe(
  site: string,
  X: Float32Array,
  y: ArrayLike<number>,
  options: TrainProbeOptions = {},
): Probe {
  const n = y.length;
  if (n === 0) throw new Error('probe: no training examples');
  const d = X.length / n;
  if (!Number.isInteger(d)) throw new Error(`probe: ${X.length} inputs is not n=${n} rows`);
  const l2 = options.l2 ?? 1e-3;
  const iterations = options.iterations ?? 50;
  const P = d + 1; // weight then bias
  const theta = new Float64Array(P);
  const grad = new Float64Array(P);
  const hess = new Float64Array(P * P);
  const x = new Float64Array(P);
  x[d] = 1;
  for (let it = 0; it < iterations; it++) {
    grad.fill(0);
    hess.fill(0);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < d; j++) x[j] = X[i * d + j];
      let z = 0;
      for (let j = 0; j < P; j++) z += theta[j] * x[j];
      const p = 1 / (1 + Math.exp(-z));
      const r = (p - y[i]) / n;
      const s = Math.max(p * (1 - p), 1e-12) / n;
      for (let j = 0; j < P; j++) {
        grad[j] += r * x[j];
        const sx = s * x[j];
        for (let k = 0; k <= j; k++) hess[j * P + k] += sx * x[k];
      }
    }
    for (let j = 0; j < d; j++) {
      grad[j] += l2 * theta[j];
      hess[j * P + j] += l2;
    }
    hess[d * P + d] += 1e-9; // keeps the bias row positive definite when every p saturates
    const step = solveSpd(hess, grad, P);
    let size = 0;
    for (let j = 0; j < P; j++) {
      theta[j] -= step[j];
      size = Math.max(size, Math.abs(step[j]));
    }
    if (size < 1e-10) break;
  }
  return { site, weight: theta.slice(0, d), bias: theta[d] };
}

/** Solves A s = b for symmetric positive definite A (lower triangle filled) by Cholesky. */
function solveSpd(A: Float64Array, b: Float64Array, P: number): Float64Array {
  const L = new Float64Array(P * P);
  for (let j = 0; j < P; j++) {
    let diag = A[j * P + j];
    for (let k = 0; k < j; k++) diag -= L[j * P + k] ** 2;
    if (!(diag > 0)) throw new Error('probe: the Newton system is not positive definite');
    const ljj = Math.sqrt(diag);
    L[j * P + j] = ljj;
    for (let i = j + 1; i < P; i++) {
      let v = A[i * P + j];
      for (let k = 0; k < j; k++) v -= L[i * P + k] * L[j * P + k];
      L[i * P + j] = v / ljj;
    }
  }
  const s = Float64Array.from(b);
  for (let i = 0; i < P; i++) {
    for (let k = 0; k < i; k++) s[i] -= L[i * P + k] * s[k];
    s[i] /= L[i * P + i];
  }
  for (let i = P - 1; i >= 0; i--) {
    for (let k = i + 1; k < P; k++) s[i] -= L[k * P + i] * s[k];
    s[i] /= L[i * P + i];
  }
  return s;
}
