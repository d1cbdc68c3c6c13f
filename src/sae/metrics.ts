// How good a dictionary is at its site:
//   L0            mean number of active features per token
//   FVE           fraction of variance explained, 1 - Σ||x - x̂||² / Σ||x - mean x||²
//   MSE           mean squared error per dimension, Σ||x - x̂||² / (N·d)
//   dead          share of features never active over the evaluation tokens
//   loss          next-token cross-entropy with the site's output replaced by x̂ (SAE), by zeros
//                 (zero ablation), and untouched (clean); loss recovered = (L_zero - L_sae) / (L_zero - L_clean)
//
// Dims: N rows (tokens), d width, F features, B windows per forward pass, T tokens per window, V vocab.

import type { SiteHook } from '../model/gptneox.ts';
import type { LanguageModel } from '../model/language-model.ts';
import { crossEntropy } from '../model/loss.ts';
import type { OnProgress } from '../progress.ts';
import type { Dictionary } from './dictionary.ts';
import type { SaeLibrary } from './library.ts';
import { WindowStream } from './activations.ts';

export interface ReconstructionStats {
  tokens: number;
  l0: number;
  fve: number;
  mse: number;
  deadFraction: number;
}

// Rows encoded at once, so that [rows, F] stays near 2^24 floats (64 MB) for wide dictionaries.
const FEATURE_FLOATS = 1 << 24;

/** Accumulates reconstruction statistics of one dictionary over batches of activations. */
export class ReconstructionAccumulator {
  private tokens = 0;
  private active = 0;
  private sumSquaredError = 0;
  private sumSquares = 0;
  private readonly sum: Float64Array; // [d]
  private readonly fired: Uint8Array; // [F]
  private f = new Float32Array(0);
  private xHat = new Float32Array(0);

  constructor(readonly dict: Dictionary) {
    this.sum = new Float64Array(dict.dIn);
    this.fired = new Uint8Array(dict.width);
  }

  /** Adds x [N*d]; returns x̂ [N*d] (into `out` when given). */
  add(x: Float32Array, N: number, out?: Float32Array): Float32Array {
    const { dIn: d, width: F } = this.dict;
    const reconstruction = out ?? new Float32Array(N * d);
    const rows = Math.max(1, Math.min(N, Math.floor(FEATURE_FLOATS / F)));
    if (this.f.length < rows * F) this.f = new Float32Array(rows * F);
    if (this.xHat.length < rows * d) this.xHat = new Float32Array(rows * d);
    for (let r0 = 0; r0 < N; r0 += rows) {
      const n = Math.min(rows, N - r0);
      const xs = x.subarray(r0 * d, (r0 + n) * d);
      const f = this.dict.encode(xs, n, this.f.subarray(0, n * F));
      const xHat = this.dict.decode(f, n, this.xHat.subarray(0, n * d));
      for (let i = 0; i < n * F; i++)
        if (f[i] !== 0) {
          this.active++;
          this.fired[i % F] = 1;
        }
      for (let i = 0; i < n * d; i++) {
        const e = xs[i] - xHat[i];
        this.sumSquaredError += e * e;
        this.sumSquares += xs[i] * xs[i];
        this.sum[i % d] += xs[i];
      }
      reconstruction.set(xHat, r0 * d);
    }
    this.tokens += N;
    return reconstruction;
  }

  result(): ReconstructionStats {
    const { dIn: d, width: F } = this.dict;
    const N = this.tokens;
    let meanNorm = 0;
    for (let j = 0; j < d; j++) meanNorm += this.sum[j] * this.sum[j];
    const variance = this.sumSquares - meanNorm / N; // Σ||x - mean||²
    let fired = 0;
    for (let i = 0; i < F; i++) fired += this.fired[i];
    return {
      tokens: N,
      l0: this.active / N,
      fve: variance > 0 ? 1 - this.sumSquaredError / variance : NaN,
      mse: this.sumSquaredError / (N * d),
      deadFraction: 1 - fired / F,
    };
  }
}

/** Reconstruction statistics of `dict` on x [N*d]. */
export function reconstructionStats(
  dict: Dictionary,
  x: Float32Array,
  N: number,
): ReconstructionStats {
  const acc = new ReconstructionAccumulator(dict);
  acc.add(x, N);
  return acc.result();
}

export interface SiteStats extends ReconstructionStats {
  site: string;
  lossClean: number;
  lossSae: number;
  lossZero: number;
  /** (L_zero - L_sae) / (L_zero - L_clean): 1 = as good as the model, 0 = as bad as deleting the site. */
  lossRecovered: number;
}

export interface EvaluateOptions {
  /** Sites to evaluate (default: every site the library has). */
  sites?: string[];
  /** Token documents of the evaluation corpus (file order is kept). */
  documents: number[][];
  /** Tokens to evaluate on (rounded up to whole windows; default 4096). */
  tokens?: number;
  /** Tokens per context window (default 64). */
  ctx?: number;
  eosId?: number;
  /** Windows per forward pass (default 8). */
  windowsPerForward?: number;
  /** Free each site's dictionary after evaluating it (default true), so wide SAEs load one at a time. */
  dropAfterUse?: boolean;
  onProgress?: OnProgress;
}

/**
 * Reconstruction and spliced-in language-model loss of each site's dictionary, on the first
 * `tokens` tokens of the corpus packed into windows of `ctx`.
 */
export function evaluateSaes(
  model: LanguageModel,
  library: SaeLibrary,
  o: EvaluateOptions,
): SiteStats[] {
  const T = o.ctx ?? 64;
  const sites = o.sites ?? library.sites();
  for (const site of sites) library.entry(site); // fail before any work on a missing site
  const windowCount = Math.max(1, Math.ceil((o.tokens ?? 4096) / T));
  const W = o.windowsPerForward ?? 8;
  const V = model.shape.vocabSize;
  const stream = new WindowStream(o.documents, T, o.eosId, 0, false);
  const batches: { ids: Int32Array; B: number; targets: Int32Array }[] = [];
  for (let w0 = 0; w0 < windowCount; w0 += W) {
    const B = Math.min(W, windowCount - w0);
    const ids = new Int32Array(B * T);
    for (let b = 0; b < B; b++) stream.nextWindow(ids.subarray(b * T, (b + 1) * T));
    const targets = new Int32Array(B * T).fill(-1);
    for (let b = 0; b < B; b++)
      for (let t = 0; t + 1 < T; t++) targets[b * T + t] = ids[b * T + t + 1];
    batches.push({ ids, B, targets });
  }
  const total = batches.length * (1 + 2 * sites.length);
  let done = 0;
  const tick = (info?: Record<string, string>) => o.onProgress?.(++done, total, info);

  // Mean next-token loss over all batches with `hooks` installed.
  const loss = (hooks: Record<string, SiteHook>, label: string) => {
    let sum = 0;
    let count = 0;
    for (const { ids, B, targets } of batches) {
      const pass = model.forward(
        { ids, batchSize: B, seqLen: T, lengths: new Array<number>(B).fill(T) },
        { logits: 'all', hooks },
      );
      const n = B * (T - 1);
      sum += crossEntropy(pass.logits, targets, V).loss * n;
      count += n;
      tick({ site: label });
    }
    return sum / count;
  };

  const lossClean = loss({}, 'clean');
  const results: SiteStats[] = [];
  for (const site of sites) {
    const dict = library.get(site);
    const acc = new ReconstructionAccumulator(dict);
    const lossSae = loss(
      {
        [site]: (x) => acc.add(x, x.length / dict.dIn),
      },
      site,
    );
    const lossZero = loss({ [site]: (x) => new Float32Array(x.length) }, site);
    results.push({
      site,
      ...acc.result(),
      lossClean,
      lossSae,
      lossZero,
      lossRecovered: (lossZero - lossSae) / (lossZero - lossClean),
    });
    if (o.dropAfterUse ?? true) library.drop(site);
  }
  return results;
}
