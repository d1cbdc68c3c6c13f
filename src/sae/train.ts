// Training sparse autoencoders, after Marks et al. 2024 (dictionary_learning) and Anthropic's
// "Towards Monosemanticity" (2023):
//
//   ReLU:  loss = mean_n ||x_n - x̂_n||² + λ · mean_n ||f_n||₁      (||·||² sums over the d dims)
//   TopK:  loss = mean_n ||x_n - x̂_n||²                            (sparsity is fixed at k)
//   JumpReLU (Rajamanoharan et al. 2024): f = z·H(z - θ) per feature, with a trained threshold θ,
//          loss = mean_n ||x_n - x̂_n||² + λ · mean_n ||f_n||₀
//          θ learns through straight-through pseudo-derivatives (train-loss.ts) with a rectangle
//          kernel of bandwidth ε; θ starts at ε and is kept ≥ 0.
//
// Adam (src/model/adamw.ts) with a linear learning-rate warmup; decoder rows are kept at unit norm
// (the gradient component parallel to each row is removed before the step, rows renormalised
// after it) so the L1 penalty cannot be dodged by shrinking f and growing W_D; features that never
// fire over a window are resampled towards badly reconstructed inputs.
//
// Scale: with `normalize` (default) inputs are multiplied by one constant s, fixed at the start,
// so that E||s·x||² = d (each dimension has unit mean square). λ is measured in those units: a
// feature is worth switching on roughly when its activation would exceed λ/2 in a space where a
// typical input has norm √d. The saved dictionary folds s back in (b_D and b_E divided by s), so it
// applies to raw activations; its features are then in raw units too.
//
// Dims: B batch rows, d input width, F dictionary width, S resampling inputs.

import { AdamW } from '../model/adamw.ts';
import type { OnProgress } from '../progress.ts';
import { SparseAutoencoder } from './dictionary.ts';
import {
  normalizeRows,
  projectDecoderGradient,
  saeLossAndGradients,
  saeWorkspace,
  trainedParams,
  zeroGradients,
  type BatchStats,
  type SaeGradients,
  type SaeWorkspace,
} from './train-loss.ts';
import { derivedRng, RNG_INIT, RNG_RESAMPLE, type ActivationSource } from './activations.ts';
import { resampleDeadFeatures } from './resample.ts';
import {
  checkpointExists,
  loadCheckpoint,
  saveCheckpoint,
  type TrainerState,
} from './train-checkpoint.ts';

export interface TrainOptions {
  /** Site the dictionary is for (recorded in it). */
  site: string;
  /** F: number of features. */
  width: number;
  /** 'relu' (L1 penalty, default), 'jumprelu' (L0 penalty, trained thresholds) or 'topk' (needs k). */
  kind?: TrainedKind;
  /** λ, the L1 coefficient in normalised units (see the file comment); default 5. ReLU only. */
  l1?: number;
  /**
   * λ, the L0 coefficient of a JumpReLU SAE in normalised units: the squared error (out of a
   * typical input's d) a feature must save to be worth firing; default 1.
   */
  l0Penalty?: number;
  /**
   * ε, JumpReLU's kernel bandwidth in normalised units, also the initial threshold; default 0.5.
   * The paper's 0.001 at unit mean squared norm is 0.001·√d here, but it moves θ only over
   * hundreds of thousands of steps: only pre-activations within ε/2 of θ give θ a gradient.
   */
  bandwidth?: number;
  /** Active features per input for topk. */
  k?: number;
  /** Adam learning rate after warmup (default 1e-4). */
  lr?: number;
  /** Optimizer steps in all (a resumed run continues up to this). */
  steps: number;
  /** B: inputs per step (default 512). */
  batchSize?: number;
  /** Steps of linear learning-rate warmup from 0 (default min(1000, steps/10)). */
  warmupSteps?: number;
  /** Resample dead features every this many steps (default steps/5; 0 = never); none in the last 20%. */
  resampleEvery?: number;
  /** A feature is dead when it has not fired for this many steps (default resampleEvery). */
  deadWindow?: number;
  /** Inputs scored when resampling (default 8192). */
  resampleSamples?: number;
  /** Scale inputs so that E||x||² = d (default true). */
  normalize?: boolean;
  seed?: number;
  /** Folder for checkpoints (dictionary, Adam state, step, data-stream state). */
  checkpointDir?: string;
  /** Steps between checkpoints (default steps/10); one is always written at the end. */
  checkpointEvery?: number;
  /** Continue from checkpointDir when it holds a checkpoint. */
  resume?: boolean;
  /** Stop (and checkpoint) once this step is reached, e.g. to split a run; the schedule still follows `steps`. */
  stopAt?: number;
  onProgress?: OnProgress;
  /** Steps between progress reports (default steps/100). */
  progressEvery?: number;
}

/** Averages over the steps since the previous report. */
export interface TrainMetrics {
  loss: number;
  /** Mean over inputs of ||x - x̂||² (normalised units). */
  mse: number;
  /** Mean number of active features per input. */
  l0: number;
  /** Fraction of variance explained: 1 - Σ||x - x̂||² / Σ||x - batch mean||². */
  fve: number;
  /** Share of features that have not fired within the dead window. */
  deadFraction: number;
}

export interface TrainResult {
  /** In raw activation units (the normalisation folded in), decoder rows unit norm. */
  dictionary: SparseAutoencoder;
  steps: number;
  /** The input scale s used in training. */
  scale: number;
  metrics: TrainMetrics;
  /** Features re-initialised over the run. */
  resampled: number;
  /** Step the run resumed from (0 for a fresh run). */
  resumedFrom: number;
}

export type TrainedKind = 'relu' | 'jumprelu' | 'topk';

interface Resolved {
  site: string;
  width: number;
  kind: TrainedKind;
  l1: number;
  l0Penalty: number;
  bandwidth: number;
  k: number | undefined;
  lr: number;
  steps: number;
  batchSize: number;
  warmupSteps: number;
  resampleEvery: number;
  deadWindow: number;
  resampleSamples: number;
  normalize: boolean;
  seed: number;
  checkpointEvery: number;
  progressEvery: number;
}

function resolveOptions(o: TrainOptions): Resolved {
  const positiveInt = (name: string, v: number) => {
    if (!Number.isInteger(v) || v <= 0)
      throw new Error(`trainSae: ${name} must be a positive integer, got ${v}`);
    return v;
  };
  const steps = positiveInt('steps', o.steps);
  const width = positiveInt('width', o.width);
  const kind = o.kind ?? 'relu';
  if (kind !== 'relu' && kind !== 'topk' && kind !== 'jumprelu')
    throw new Error(`trainSae: kind must be relu, jumprelu or topk, got ${String(kind)}`);
  if (kind === 'topk' && !(Number.isInteger(o.k) && o.k! >= 1 && o.k! <= width))
    throw new Error(`trainSae: topk needs an integer k in 1..${width}, got ${o.k}`);
  const l1 = o.l1 ?? 5;
  if (!(l1 >= 0)) throw new Error(`trainSae: l1 must be >= 0, got ${l1}`);
  const l0Penalty = o.l0Penalty ?? 1;
  if (!(l0Penalty >= 0)) throw new Error(`trainSae: l0Penalty must be >= 0, got ${l0Penalty}`);
  const bandwidth = o.bandwidth ?? 0.5;
  if (!(bandwidth > 0)) throw new Error(`trainSae: bandwidth must be > 0, got ${bandwidth}`);
  const lr = o.lr ?? 1e-4;
  if (!(lr > 0)) throw new Error(`trainSae: lr must be > 0, got ${lr}`);
  const resampleEvery = o.resampleEvery ?? Math.floor(steps / 5);
  return {
    site: o.site,
    width,
    kind,
    l1,
    l0Penalty,
    bandwidth,
    k: kind === 'topk' ? o.k : undefined,
    lr,
    steps,
    batchSize: positiveInt('batchSize', o.batchSize ?? 512),
    warmupSteps: o.warmupSteps ?? Math.min(1000, Math.floor(steps / 10)),
    resampleEvery,
    deadWindow: o.deadWindow ?? Math.max(1, resampleEvery),
    resampleSamples: positiveInt('resampleSamples', o.resampleSamples ?? 8192),
    normalize: o.normalize ?? true,
    seed: o.seed ?? 0,
    checkpointEvery: o.checkpointEvery ?? Math.max(1, Math.floor(steps / 10)),
    progressEvery: o.progressEvery ?? Math.max(1, Math.floor(steps / 100)),
  };
}

/** The trainer's whole state; training is a loop of step() with occasional resample(). */
class Trainer implements TrainerState {
  readonly sae: SparseAutoencoder; // in normalised units
  readonly opt: AdamW;
  readonly grads: SaeGradients;
  readonly ws: SaeWorkspace;
  readonly x: Float32Array; // [B, d]
  /** Last step at which each feature fired (-1: at init). */
  readonly lastFired: Float64Array;
  private readonly fired: Uint8Array; // [F] scratch: active in the current batch
  step = 0;
  resampled = 0;

  constructor(
    readonly o: Resolved,
    readonly source: ActivationSource,
    readonly scale: number,
    sae: SparseAutoencoder,
  ) {
    this.sae = sae;
    const params = trainedParams(sae.kind).map((p) => sae[p]!);
    this.opt = new AdamW(params, { lr: o.lr });
    this.grads = zeroGradients(sae.dIn, sae.width);
    this.ws = saeWorkspace(o.batchSize, sae.dIn, sae.width);
    this.x = new Float32Array(o.batchSize * sae.dIn);
    this.lastFired = new Float64Array(sae.width).fill(-1);
    this.fired = new Uint8Array(sae.width);
  }

  /** Draws n vectors from the source, scaled. */
  draw(out: Float32Array, n: number): void {
    this.source.next(out, n);
    if (this.scale !== 1) for (let i = 0; i < n * this.sae.dIn; i++) out[i] *= this.scale;
  }

  trainStep(): BatchStats {
    const { o, sae, grads, ws } = this;
    const B = o.batchSize;
    const F = sae.width;
    this.draw(this.x, B);
    this.fired.fill(0);
    const penalty =
      o.kind === 'jumprelu' ? { lambda: o.l0Penalty, bandwidth: o.bandwidth } : { lambda: o.l1 };
    const stats = saeLossAndGradients(sae, this.x, B, penalty, grads, ws, this.fired);
    for (let i = 0; i < F; i++) if (this.fired[i]) this.lastFired[i] = this.step;
    projectDecoderGradient(sae.decoder, grads.decoder, sae.dIn);
    const lr = o.lr * Math.min(1, (this.step + 1) / Math.max(1, o.warmupSteps));
    this.opt.step(
      trainedParams(sae.kind).map((p) => grads[p]),
      lr,
    );
    normalizeRows(sae.decoder, sae.dIn);
    // θ < 0 would make JumpReLU's relu(z)·1[z > θ] differ from z·H(z - θ), the trained function.
    const th = sae.threshold;
    if (th) for (let i = 0; i < F; i++) if (!(th[i] > 0)) th[i] = 0;
    this.step++;
    return stats;
  }

  deadFeatures(): number[] {
    const dead: number[] = [];
    for (let i = 0; i < this.sae.width; i++)
      if (this.step - 1 - this.lastFired[i] >= this.o.deadWindow) dead.push(i);
    return dead;
  }

  /** Resamples the dead features (see resample.ts); returns how many there were. */
  resample(): number {
    const dead = this.deadFeatures();
    if (dead.length === 0) return 0;
    const S = this.o.resampleSamples;
    const sample = new Float32Array(S * this.sae.dIn);
    this.draw(sample, S);
    const rng = derivedRng(this.o.seed, RNG_RESAMPLE, this.step);
    resampleDeadFeatures(this.sae, this.opt, dead, sample, S, rng, this.o.bandwidth);
    for (const i of dead) this.lastFired[i] = this.step - 1; // a fresh window to prove itself
    this.resampled += dead.length;
    return dead.length;
  }

  /** The dictionary in raw units: x' = s·x, so b_D, b_E and θ scale by 1/s and features by 1/s. */
  exportDictionary(): SparseAutoencoder {
    const { sae, scale } = this;
    return new SparseAutoencoder({
      site: sae.site,
      kind: sae.kind,
      dIn: sae.dIn,
      width: sae.width,
      encoder: sae.encoder.slice(),
      encoderBias: sae.encoderBias.map((b) => b / scale),
      decoder: sae.decoder.slice(),
      decoderBias: sae.decoderBias.map((b) => b / scale),
      threshold: sae.threshold?.map((t) => t / scale),
      k: sae.k,
    });
  }

  saveCheckpoint(dir: string): void {
    saveCheckpoint(dir, this);
  }

  static load(dir: string, o: Resolved, source: ActivationSource): Trainer {
    return loadCheckpoint(dir, o, source, (sae, scale) => new Trainer(o, source, scale, sae));
  }
}

/** A fresh dictionary: random unit decoder rows, encoder tied to them (rescaled), b_D at the data mean. */
function initialise(o: Resolved, source: ActivationSource): Trainer {
  const d = source.dIn;
  const F = o.width;
  const rng = derivedRng(o.seed, RNG_INIT, 0);
  const decoder = new Float32Array(F * d);
  for (let i = 0; i < F * d; i++) decoder[i] = rng.normal();
  normalizeRows(decoder, d);
  const sae = new SparseAutoencoder({
    site: o.site,
    kind: o.kind,
    dIn: d,
    width: F,
    encoder: decoder.slice(),
    encoderBias: new Float32Array(F),
    decoder,
    decoderBias: new Float32Array(d),
    threshold: o.kind === 'jumprelu' ? new Float32Array(F).fill(o.bandwidth) : undefined,
    k: o.k,
  });
  // Scale and mean from a first sample of the stream.
  const n = Math.min(o.resampleSamples, 4096);
  const sample = new Float32Array(n * d);
  source.next(sample, n);
  let sumSq = 0;
  for (let i = 0; i < n * d; i++) sumSq += sample[i] * sample[i];
  const meanSq = sumSq / n;
  const scale = o.normalize && meanSq > 0 ? Math.sqrt(d / meanSq) : 1;
  for (let i = 0; i < n * d; i++) sample[i] *= scale;
  for (let r = 0; r < n; r++)
    for (let j = 0; j < d; j++) sae.decoderBias[j] += sample[r * d + j] / n;
  // ReLU and TopK are positively homogeneous (b_E = 0), so scaling W_E by c scales x̂ - b_D by c
  // (JumpReLU nearly, its θ being small):
  // pick the c that best reconstructs the sample, instead of starting with F/2 features summed at full size.
  let dot = 0;
  let norm = 0;
  const rows = Math.max(1, Math.min(n, Math.floor((1 << 22) / F)));
  const f = new Float32Array(rows * F);
  const xHat = new Float32Array(rows * d);
  for (let r0 = 0; r0 < n; r0 += rows) {
    const m = Math.min(rows, n - r0);
    const xs = sample.subarray(r0 * d, (r0 + m) * d);
    sae.decode(sae.encode(xs, m, f.subarray(0, m * F)), m, xHat.subarray(0, m * d));
    for (let r = 0; r < m; r++)
      for (let j = 0; j < d; j++) {
        const h = xHat[r * d + j] - sae.decoderBias[j];
        dot += h * (xs[r * d + j] - sae.decoderBias[j]);
        norm += h * h;
      }
  }
  const c = dot / norm;
  if (Number.isFinite(c) && c > 0) for (let i = 0; i < F * d; i++) sae.encoder[i] *= c;
  return new Trainer(o, source, scale, sae);
}

/**
 * Trains a dictionary on vectors from `source`. Deterministic for a given seed and source; with
 * checkpointDir and resume, an interrupted run continues bit for bit.
 */
export function trainSae(source: ActivationSource, options: TrainOptions): TrainResult {
  const o = resolveOptions(options);
  const resumed = options.resume && checkpointExists(options.checkpointDir);
  const t = resumed ? Trainer.load(options.checkpointDir!, o, source) : initialise(o, source);
  const resumedFrom = t.step;
  const F = o.width;
  const B = o.batchSize;
  const window = { loss: 0, sse: 0, ssd: 0, active: 0, steps: 0 };
  let metrics: TrainMetrics = { loss: NaN, mse: NaN, l0: NaN, fve: NaN, deadFraction: NaN };
  const report = () => {
    if (window.steps === 0) return;
    metrics = {
      loss: window.loss / window.steps,
      mse: window.sse / (window.steps * B),
      l0: window.active / (window.steps * B),
      fve: 1 - window.sse / window.ssd,
      deadFraction: t.deadFeatures().length / F,
    };
    Object.assign(window, { loss: 0, sse: 0, ssd: 0, active: 0, steps: 0 });
  };
  const lastResample = Math.floor(o.steps * 0.8);
  const stop = Math.min(o.steps, options.stopAt ?? o.steps);
  while (t.step < stop) {
    const s = t.trainStep();
    window.loss += s.loss;
    window.sse += s.sumSquaredError;
    window.ssd += s.sumSquaredDeviation;
    window.active += s.activeCount;
    window.steps++;
    if (!Number.isFinite(s.loss))
      throw new Error(
        `SAE training diverged at step ${t.step} (loss ${s.loss}); lower the learning rate`,
      );
    if (o.resampleEvery > 0 && t.step % o.resampleEvery === 0 && t.step <= lastResample)
      t.resample();
    if (t.step % o.progressEvery === 0 || t.step === stop) {
      report();
      options.onProgress?.(t.step, o.steps, {
        loss: metrics.loss,
        L0: metrics.l0,
        FVE: metrics.fve,
        dead: `${(100 * metrics.deadFraction).toFixed(1)}%`,
      });
    }
    if (options.checkpointDir && (t.step % o.checkpointEvery === 0 || t.step === stop))
      t.saveCheckpoint(options.checkpointDir);
  }
  report();
  return {
    dictionary: t.exportDictionary(),
    steps: t.step,
    scale: t.scale,
    metrics,
    resampled: t.resampled,
    resumedFrom,
  };
}
