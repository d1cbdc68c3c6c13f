// Running a model with some dictionary nodes ablated: SAEs are spliced in at every evaluated site
// (x = decode(f) + ε) and every node outside the kept set is replaced by its ablation value.
//
// The hook at site s sees the activation as it arrives, so it already reflects the ablations at
// every earlier site: kept features and errors are recomputed from it (f = encode(x),
// ε = x - decode(f)), not frozen at their clean values. Sites without a dictionary here (earlier
// layers than the start layer, the embedding) run untouched.
//
// B batch, T tokens (of a batch), P positions of the masks (the longest example), N = B*T rows,
// d a site's width (the model width, or H·Dh at attn_z_L), F dictionary width, V vocabulary.

import type { OnProgress } from '../progress.ts';
import type { SiteHook } from '../model/gptneox.ts';
import type { LanguageModel } from '../model/language-model.ts';
import { toSparseRows, type Dictionary, type SparseRows } from '../sae/dictionary.ts';
import type { TaskBatch } from '../data/tasks.ts';
import { logitDiffMetric, sumOverLogits, type Metric } from '../attribution/metric.ts';
import { ExactSums, MAX_EXACT_TERMS } from './exact-sums.ts';

/** What an ablated node is set to. */
export type AblationKind = 'mean' | 'zero' | 'patch';
export const ABLATION_KINDS: readonly AblationKind[] = ['mean', 'zero', 'patch'];

/** Which nodes of one site keep their computed value (1) rather than their ablation value (0). */
export interface SiteKeep {
  features: Uint8Array; // [P*F]
  errors: Uint8Array; // [P]
}

/** One entry per evaluated site (every site the AblatedModel has a dictionary for). */
export type KeepMask = Map<string, SiteKeep>;

// Ablation values of one site for one batch: row r of `features` [rows*F] and `errors` [rows*d]
// serves token n = b*T + t with r = t ('position'), r = n ('token') or r = 0 ('constant').
interface SiteValues {
  features: Float32Array;
  errors: Float32Array;
  rowOf: 'position' | 'token' | 'constant';
}

// Patch values of one site for one batch, kept sparse: features are mostly zero.
interface PatchState {
  features: SparseRows; // N rows of F
  errors: Float32Array; // [N*d]
}

export interface AblatedModelOptions {
  ablation?: AblationKind;
  /**
   * m per example, indexed by the example's place in the batches (in order). Default: the
   * paper's logit difference (attribution/metric.ts, the metric discovery uses), which refuses
   * data that mixes examples with and without patch answers.
   */
  metric?: Metric;
  onProgress?: OnProgress;
  /**
   * Mean ablation values computed elsewhere (`meansOf` over every example, when `batches` are
   * one shard's): then no pass over the data collects them here.
   */
  means?: SiteMeans;
  /** P of the whole data when `batches` are one shard's (default: their longest clean input). */
  positions?: number;
  /** The task index of the first batch's first example (a shard's batches start later). */
  firstExample?: number;
}

/** Per site, the mean features [P*F] and error [P*d] of the patch inputs (float32). */
export type SiteMeans = Map<string, { features: Float32Array; errors: Float32Array }>;

/**
 * The exact sums behind mean ablation: per site the features [P*F] and errors [P*d] of the patch
 * inputs (the clean ones when the data has none) added over examples, and per position the number
 * of examples long enough to have it. Exact (exact-sums.ts), so the sums of shards merged in any
 * order are the single run's bit for bit.
 */
export interface MeanSums {
  positions: number;
  counts: number[];
  sites: Map<string, { features: ExactSums; errors: ExactSums }>;
}

/** Adds the patch inputs' features and errors at every site of `dictionaries` over `batches`. */
export function collectMeanSums(
  model: LanguageModel,
  dictionaries: Map<string, Dictionary>,
  batches: TaskBatch[],
  positions: number,
  onProgress?: OnProgress,
): MeanSums {
  const P = positions;
  const sums: MeanSums = { positions: P, counts: new Array<number>(P).fill(0), sites: new Map() };
  for (const [site, dict] of dictionaries)
    sums.sites.set(site, {
      features: new ExactSums(P * dict.width),
      errors: new ExactSums(P * model.siteWidth(site)),
    });
  const examples = batches.reduce((n, b) => n + b.examples.length, 0);
  if (examples > MAX_EXACT_TERMS)
    throw new Error(
      `mean ablation: ${examples} examples; exact means take at most ${MAX_EXACT_TERMS}`,
    );
  batches.forEach((batch, index) => {
    const input = batch.patch ?? batch.clean;
    const { batchSize: B, seqLen: T, lengths } = input;
    const N = B * T;
    for (let b = 0; b < B; b++) for (let t = 0; t < Math.min(lengths[b], P); t++) sums.counts[t]++;
    const hooks: Record<string, SiteHook> = {};
    for (const [site, dict] of dictionaries) {
      const F = dict.width;
      const d = model.siteWidth(site);
      const sum = sums.sites.get(site)!;
      hooks[site] = (x) => {
        const { features, error } = dict.run(x, N);
        const fBits = new Uint32Array(features.buffer, features.byteOffset, features.length);
        const eBits = new Uint32Array(error.buffer, error.byteOffset, error.length);
        for (let b = 0; b < B; b++) {
          for (let t = 0; t < Math.min(lengths[b], P); t++) {
            const n = b * T + t;
            sum.features.addFloat32(t * F, features, fBits, n * F, F);
            sum.errors.addFloat32(t * d, error, eBits, n * d, d);
          }
        }
      };
    }
    model.forward(input, { hooks, logits: 'none' });
    onProgress?.(index + 1, batches.length);
  });
  return sums;
}

/** Adds `from` into `into` (sums of the same sites and positions). */
export function addMeanSums(into: MeanSums, from: MeanSums): void {
  from.counts.forEach((c, t) => (into.counts[t] += c));
  for (const [site, s] of from.sites) {
    const target = into.sites.get(site)!;
    target.features.addSums(s.features);
    target.errors.addSums(s.errors);
  }
}

/** The means, rounded to float32: sum / count per position. */
export function meansOf(sums: MeanSums): SiteMeans {
  const P = sums.positions;
  const means: SiteMeans = new Map();
  for (const [site, s] of sums.sites) {
    const F = s.features.length / P;
    const d = s.errors.length / P;
    const features = new Float32Array(P * F);
    const errors = new Float32Array(P * d);
    for (let t = 0; t < P; t++) {
      const c = sums.counts[t];
      for (let i = 0; i < F; i++) features[t * F + i] = s.features.value(t * F + i) / c;
      for (let j = 0; j < d; j++) errors[t * d + j] = s.errors.value(t * d + j) / c;
    }
    means.set(site, { features, errors });
  }
  return means;
}

/**
 * A model, dictionaries at the evaluated sites, and the evaluation batches, with the ablation
 * values computed once: `mean` averages each position's features and error over the patch
 * inputs of all the batches (the clean inputs when the data has no patch prefixes); `patch` keeps
 * every example's own patch values; `zero` uses zeros.
 */
export class AblatedModel {
  readonly ablation: AblationKind;
  /** P: positions of every KeepMask (the longest clean prefix). */
  readonly positions: number;
  /** Evaluated sites in model order. */
  readonly sites: string[];
  /** The metric F averages (see AblatedModelOptions.metric). */
  readonly metricFn: Metric;
  private readonly means = new Map<string, SiteValues>();
  private readonly patchStates: Map<string, PatchState>[] = []; // per batch
  private readonly scratch = new Map<number, Float32Array[]>();
  private readonly firstExample: number;

  constructor(
    readonly model: LanguageModel,
    readonly dictionaries: Map<string, Dictionary>,
    readonly batches: TaskBatch[],
    options: AblatedModelOptions = {},
  ) {
    const ablation = options.ablation ?? 'mean';
    if (!ABLATION_KINDS.includes(ablation))
      throw new Error(`ablation: expected one of ${ABLATION_KINDS.join(', ')}, got "${ablation}"`);
    if (batches.length === 0) throw new Error('evaluation: no examples to evaluate on');
    this.metricFn = options.metric ?? logitDiffMetric(batches.flatMap((b) => b.examples));
    const order = model.sites;
    for (const [site, dict] of dictionaries) {
      if (!order.includes(site))
        throw new Error(
          `evaluation: site ${site} is not a site of this model (${order.join(', ')})`,
        );
      const d = model.siteWidth(site);
      if (dict.dIn !== d)
        throw new Error(
          `evaluation: the dictionary at ${site} reads width ${dict.dIn}, the model's ${site} is ${d} wide`,
        );
    }
    this.sites = order.filter((s) => dictionaries.has(s));
    this.ablation = ablation;
    this.positions = options.positions ?? Math.max(...batches.map((b) => b.clean.seqLen));
    this.firstExample = options.firstExample ?? 0;
    if (ablation === 'patch' && batches.some((b) => !b.patch))
      throw new Error(
        'ablation "patch" needs patch inputs, but the data has examples without a patch_prefix (use --ablation mean or zero)',
      );
    for (const site of this.sites) this.scratch.set(dictionaries.get(site)!.width, []);
    if (ablation === 'zero') {
      for (const site of this.sites) {
        const F = dictionaries.get(site)!.width;
        this.means.set(site, {
          features: new Float32Array(F),
          errors: new Float32Array(model.siteWidth(site)),
          rowOf: 'constant',
        });
      }
    } else if (ablation === 'patch') {
      this.collectPatchStates(options.onProgress);
    } else {
      const means =
        options.means ??
        meansOf(collectMeanSums(model, dictionaries, batches, this.positions, options.onProgress));
      for (const site of this.sites) {
        const m = means.get(site);
        const F = dictionaries.get(site)!.width;
        const d = model.siteWidth(site);
        if (
          !m ||
          m.features.length !== this.positions * F ||
          m.errors.length !== this.positions * d
        )
          throw new Error(
            `mean ablation: the means at ${site} need features [${this.positions}*${F}] and errors [${this.positions}*${d}]${m ? '' : ' (missing)'}`,
          );
        this.means.set(site, { ...m, rowOf: 'position' });
      }
    }
  }

  /** Mean metric of the model as it is (no dictionaries spliced in). */
  metricModel(): number {
    const { sum, examples } = this.metricSum(null);
    return sum / examples;
  }

  /** Mean metric with every node outside `keep` ablated. */
  metric(keep: KeepMask): number {
    const { sum, examples } = this.metricSum(keep);
    return sum / examples;
  }

  /**
   * The metric summed over the examples in order, and their count: untouched when `keep` is
   * null, else ablated (a shard's sums, which merge into the mean over every example).
   */
  metricSum(keep: KeepMask | null): { sum: number; examples: number } {
    if (keep) this.checkMask(keep);
    const logits = this.batches.map((batch, i) => this.runBatch(batch, keep, i));
    const sizes = this.batches.map((b) => b.examples.length);
    return sumOverLogits(
      this.metricFn,
      logits,
      sizes,
      this.model.shape.vocabSize,
      this.firstExample,
    );
  }

  /** Last-token logits [B*V] per batch: untouched when `keep` is null, else ablated. */
  logits(keep: KeepMask | null): Float32Array[] {
    if (keep) this.checkMask(keep);
    return this.batches.map((batch, i) => this.runBatch(batch, keep, i));
  }

  /** A mask keeping everything (`value` 1) or nothing (0) at every evaluated site. */
  uniformMask(value: 0 | 1): KeepMask {
    return uniformKeepMask(this.sites, this.dictionaries, this.positions, value);
  }

  private checkMask(keep: KeepMask): void {
    const P = this.positions;
    for (const site of this.sites) {
      const m = keep.get(site);
      const F = this.dictionaries.get(site)!.width;
      if (!m || m.features.length !== P * F || m.errors.length !== P)
        throw new Error(
          `keep mask: site ${site} needs features [${P}*${F}] and errors [${P}]${m ? '' : ' (missing)'}`,
        );
    }
  }

  // One forward of the patch inputs per batch, keeping every evaluated site's features and error.
  private collectPatchStates(onProgress?: OnProgress): void {
    this.batches.forEach((batch, index) => {
      const input = batch.patch!;
      const N = input.batchSize * input.seqLen;
      const states = new Map<string, PatchState>();
      const hooks: Record<string, SiteHook> = {};
      for (const site of this.sites) {
        const dict = this.dictionaries.get(site)!;
        hooks[site] = (x) => {
          const { features, error } = dict.run(x, N);
          states.set(site, { features: toSparseRows(features, N, dict.width), errors: error });
        };
      }
      this.model.forward(input, { hooks, logits: 'none' });
      this.patchStates.push(states);
      onProgress?.(index + 1, this.batches.length);
    });
  }

  // The ablation values of a site for batch `index` (N = B*T rows).
  private values(site: string, index: number, N: number, F: number): SiteValues {
    if (this.ablation !== 'patch') return this.means.get(site)!;
    const state = this.patchStates[index].get(site)!;
    const { rowStart, index: ids, value } = state.features;
    const features = new Float32Array(N * F);
    for (let n = 0; n < N; n++)
      for (let e = rowStart[n]; e < rowStart[n + 1]; e++) features[n * F + ids[e]] = value[e];
    return { features, errors: state.errors, rowOf: 'token' };
  }

  // Reusable [N*F] buffers per dictionary width: features f and decoded reconstruction.
  private buffers(F: number, N: number, d: number): { f: Float32Array; xHat: Float32Array } {
    const pool = this.scratch.get(F)!;
    if (pool.length === 0 || pool[0].length < N * F) pool[0] = new Float32Array(N * F);
    if (pool.length < 2 || pool[1].length < N * d) pool[1] = new Float32Array(N * d);
    return { f: pool[0].subarray(0, N * F), xHat: pool[1].subarray(0, N * d) };
  }

  // Last-token logits [B*V] of one batch's clean inputs.
  private runBatch(batch: TaskBatch, keep: KeepMask | null, index: number): Float32Array {
    if (!keep) return this.model.forward(batch.clean, { logits: 'last' }).logits;
    const { batchSize: B, seqLen: T } = batch.clean;
    const N = B * T;
    const hooks: Record<string, SiteHook> = {};
    for (const site of this.sites) {
      const dict = this.dictionaries.get(site)!;
      const F = dict.width;
      const mask = keep.get(site)!;
      const d = this.model.siteWidth(site);
      hooks[site] = (x) => {
        const { f, xHat } = this.buffers(F, N, d);
        dict.encode(x, N, f);
        dict.decode(f, N, xHat);
        const out = new Float32Array(N * d);
        for (let i = 0; i < N * d; i++) out[i] = x[i] - xHat[i]; // ε
        const v = this.values(site, index, N, F);
        for (let n = 0; n < N; n++) {
          const t = n % T;
          const r = v.rowOf === 'position' ? t : v.rowOf === 'token' ? n : 0;
          const keepF = t * F;
          for (let i = 0; i < F; i++)
            if (mask.features[keepF + i] === 0) f[n * F + i] = v.features[r * F + i];
          if (mask.errors[t] === 0) out.set(v.errors.subarray(r * d, (r + 1) * d), n * d);
        }
        dict.decode(f, N, xHat);
        for (let i = 0; i < N * d; i++) out[i] += xHat[i];
        return out;
      };
    }
    return this.model.forward(batch.clean, { hooks, logits: 'last' }).logits;
  }
}

/** A mask keeping everything (`value` 1) or nothing (0) at `sites` over P positions. */
export function uniformKeepMask(
  sites: string[],
  dictionaries: ReadonlyMap<string, { width: number }>,
  P: number,
  value: 0 | 1,
): KeepMask {
  const mask: KeepMask = new Map();
  for (const site of sites) {
    const F = dictionaries.get(site)!.width;
    mask.set(site, {
      features: new Uint8Array(P * F).fill(value),
      errors: new Uint8Array(P).fill(value),
    });
  }
  return mask;
}
