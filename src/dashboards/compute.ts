// Feature dashboards: what a researcher looks at to understand one SAE feature.
//   - top-activating contexts of a corpus, with every token's activation;
//   - a histogram of the feature's non-zero activations and how often it fires;
//   - the tokens its decoder direction promotes and suppresses through the unembedding.
//
// Logit effects follow the usual logit-lens reading of a direction: the decoder row d is scaled
// by the final layer norm's gain γ only and read out by the unembedding, W_U (γ ⊙ d). The layer
// norm's centring and 1/σ depend on the whole residual stream, not on one direction, and its bias
// β adds the same to every feature, so both are left out (as the paper's dashboards do). RMSNorm
// gains are γ (Gemma's: 1 + γ). A feature at attn_z_L (heads' outputs before o_proj) is not a
// direction of the residual stream: its dashboard lists no promoted or suppressed tokens.
//
// Contexts are windows of at most T tokens cut from each document (a document longer than T
// gives several windows); padding never enters a statistic.
// Dims: W windows per forward pass, T tokens per window, N = W*T rows, d model dim, K features
// wanted at a site, V vocabulary.

import type { OnProgress } from '../progress.ts';
import { matmul } from '../kernels/gemm.ts';
import { siteRef, type LanguageModel } from '../model/language-model.ts';
import { SparseAutoencoder, type Dictionary } from '../sae/dictionary.ts';

export interface FeatureRef {
  site: string;
  feature: number;
}

export interface DashboardContext {
  /** Token ids of the window, trimmed around its strongest token. */
  ids: number[];
  /** The feature's activation at every token of `ids`. */
  acts: number[];
  /** Index in `ids` of the strongest token. */
  at: number;
  /** Activation at `at` (the context's rank key). */
  max: number;
}

export interface TokenEffect {
  id: number;
  value: number;
}

export interface FeatureDashboard {
  site: string;
  feature: number;
  /** Largest activation over the corpus (0 when it never fires). */
  maxActivation: number;
  /** Share of the corpus's tokens with a non-zero activation. */
  frequency: number;
  /** Non-zero activations in `bins` equal bins over [lo, hi]. */
  histogram: { lo: number; hi: number; counts: number[] };
  contexts: DashboardContext[];
  /** Largest entries of W_U (γ ⊙ d), descending. */
  promoted: TokenEffect[];
  /** Smallest entries, ascending. */
  suppressed: TokenEffect[];
}

export interface DashboardOptions {
  model: LanguageModel;
  /** The dictionary of a site (e.g. `library.get`). */
  dictionary: (site: string) => Dictionary;
  /** Token ids, one array per document. */
  documents: number[][];
  features: FeatureRef[];
  /** Contexts kept per feature (default 20). */
  top?: number;
  /** Tokens per window (default min(64, the model's positions)). */
  ctx?: number;
  /** Histogram bins (default 24). */
  bins?: number;
  /** Promoted and suppressed tokens listed (default 10 each). */
  logitTokens?: number;
  /** Token ids from this one on are not listed among promoted/suppressed (padding rows of W_U). */
  vocabLimit?: number;
  /** Tokens kept before and after a context's strongest token (default 24 and 8). */
  before?: number;
  after?: number;
  /** Windows per forward pass (default 8). */
  windowsPerForward?: number;
  /**
   * Only the forward groups (of windowsPerForward windows) first..end-1: one shard of a sharded
   * run (src/dashboards/shards.ts). `windows` still counts every window of the corpus.
   */
  groups?: { first: number; end: number };
  /** Called once a site's dictionary is no longer needed (e.g. `library.drop`). */
  release?: (site: string) => void;
  onProgress?: OnProgress;
}

export interface DashboardResult {
  /** Windows and tokens of the corpus that were read. */
  windows: number;
  tokens: number;
  ctx: number;
  dashboards: FeatureDashboard[];
  /** What the dashboards were finished from: a shard's part (see `finishDashboards`). */
  state: DashboardState;
}

/** One feature's corpus statistics before finishing: exact, so shards merge exactly. */
export interface FeatureState {
  ref: FeatureRef;
  /** Non-zero activations in corpus order. */
  nonzero: Float32Array;
  /** Best windows: sorted by max desc then window asc, at most `top`; ids are the window's tokens. */
  best: { window: number; max: number; at: number; acts: Float32Array; ids: number[] }[];
  promoted: TokenEffect[];
  suppressed: TokenEffect[];
}

export interface DashboardState {
  windows: number;
  tokens: number;
  ctx: number;
  top: number;
  bins: number;
  before: number;
  after: number;
  /** In the caller's order (first occurrence of each feature). */
  features: FeatureState[];
}

export const featureKey = (site: string, feature: number): string => `${site}/${feature}`;

/** The windows of a corpus: each document cut into consecutive pieces of at most T tokens. */
function corpusWindows(documents: number[][], T: number): number[][] {
  const windows: number[][] = [];
  for (const doc of documents)
    for (let s = 0; s < doc.length; s += T) windows.push(doc.slice(s, s + T));
  return windows;
}

/** Growable list of floats (a feature's non-zero activations). */
class FloatList {
  data = new Float32Array(64);
  length = 0;
  push(v: number): void {
    if (this.length === this.data.length) {
      const grown = new Float32Array(2 * this.data.length);
      grown.set(this.data);
      this.data = grown;
    }
    this.data[this.length++] = v;
  }
}

/** Per-feature state while reading the corpus. */
interface Tracker {
  ref: FeatureRef;
  nonzero: FloatList;
  /** Best windows so far: [window index, max, at], sorted by max desc then window asc. */
  best: FeatureState['best'];
  promoted: TokenEffect[];
  suppressed: TokenEffect[];
}

/**
 * Selected features' activations at one site: x [N*d] -> out [N*K], K = columns.length.
 * ReLU and JumpReLU features depend on their own encoder row only, so just those rows are
 * computed; other dictionaries (top-k, neurons) encode fully and keep the columns.
 */
class SiteEncoder {
  private readonly K: number;
  private readonly rows: Float32Array | null = null; // [K*d] encoder rows
  private readonly bias: Float32Array | null = null; // [K]
  private readonly threshold: Float32Array | null = null; // [K]
  private centered = new Float32Array(0);
  /** Whether encode still reads the dictionary (full encoding), so it must stay loaded. */
  get needsDictionary(): boolean {
    return this.rows === null;
  }

  constructor(
    private readonly dict: Dictionary,
    private readonly columns: number[],
  ) {
    this.K = columns.length;
    for (const c of columns)
      if (!(Number.isInteger(c) && c >= 0 && c < dict.width))
        throw new Error(
          `${dict.site}: feature ${c} does not exist (the dictionary has ${dict.width})`,
        );
    if (dict instanceof SparseAutoencoder && dict.kind !== 'topk') {
      const d = dict.dIn;
      this.rows = new Float32Array(this.K * d);
      this.bias = new Float32Array(this.K);
      columns.forEach((c, k) => {
        this.rows!.set(dict.encoderRow(c), k * d);
        this.bias![k] = dict.encoderBias[c];
      });
      if (dict.kind === 'jumprelu')
        this.threshold = Float32Array.from(columns, (c) => dict.threshold![c]);
    }
  }

  encode(x: Float32Array, N: number): Float32Array {
    const { dict, K } = this;
    const d = dict.dIn;
    const out = new Float32Array(N * K);
    if (!this.rows) {
      const all = dict.encode(x.subarray(0, N * d), N);
      const F = dict.width;
      for (let n = 0; n < N; n++)
        for (let k = 0; k < K; k++) out[n * K + k] = all[n * F + this.columns[k]];
      return out;
    }
    const sae = dict as SparseAutoencoder;
    let input = x.subarray(0, N * d);
    if (sae.centerInput) {
      if (this.centered.length < N * d) this.centered = new Float32Array(N * d);
      input = this.centered.subarray(0, N * d);
      for (let n = 0; n < N; n++)
        for (let j = 0; j < d; j++) input[n * d + j] = x[n * d + j] - sae.decoderBias[j];
    }
    matmul(input, this.rows, out, N, K, d, { transB: true });
    const th = this.threshold;
    for (let n = 0; n < N; n++)
      for (let k = 0; k < K; k++) {
        const z = out[n * K + k] + this.bias![k];
        out[n * K + k] = z > 0 && (!th || z > th[k]) ? z : 0;
      }
    return out;
  }
}

/** W_U (γ ⊙ d) for the given features of one dictionary: [K*V]. */
function logitEffects(model: LanguageModel, dict: Dictionary, features: number[]): Float32Array {
  const d = dict.dIn;
  const rows = new Float32Array(features.length * d);
  features.forEach((f, k) => rows.set(dict.decoderRow(f), k * d));
  return model.unembedDirections(rows, features.length);
}

/** Indices of the n largest (sign 1) or smallest (sign -1) values of v[0..limit). */
function extremes(v: Float32Array, n: number, limit: number, sign: 1 | -1): TokenEffect[] {
  const order = Array.from({ length: limit }, (_, i) => i);
  order.sort((a, b) => sign * (v[b] - v[a]) || a - b);
  return order.slice(0, n).map((id) => ({ id, value: v[id] }));
}

/** Bins the non-zero activations; the histogram covers [min(0, lo), max(0, hi)]. */
export function histogram(values: Float32Array, count: number, bins: number) {
  let lo = 0;
  let hi = 0;
  for (let i = 0; i < count; i++) {
    lo = Math.min(lo, values[i]);
    hi = Math.max(hi, values[i]);
  }
  const counts = new Array<number>(bins).fill(0);
  const width = hi - lo;
  for (let i = 0; i < count; i++) {
    const b = width > 0 ? Math.floor(((values[i] - lo) / width) * bins) : 0;
    counts[Math.min(bins - 1, Math.max(0, b))]++;
  }
  return { lo, hi, counts };
}

/** Computes the dashboards of `features` over the corpus. */
export function computeDashboards(o: DashboardOptions): DashboardResult {
  const { model } = o;
  const top = o.top ?? 20;
  const T = o.ctx ?? Math.min(64, model.shape.maxPositions);
  const bins = o.bins ?? 24;
  const nLogit = o.logitTokens ?? 10;
  const before = o.before ?? 24;
  const after = o.after ?? 8;
  const W = o.windowsPerForward ?? 8;
  const { vocabSize: V, maxPositions } = model.shape;
  if (!(Number.isInteger(T) && T >= 1 && T <= maxPositions))
    throw new Error(
      `dashboards: ctx ${T} must be an integer in 1..${maxPositions} (the model's positions)`,
    );
  if (!(Number.isInteger(top) && top >= 1)) throw new Error(`dashboards: top ${top} must be >= 1`);
  for (const [i, doc] of o.documents.entries())
    for (const id of doc)
      if (!(Number.isInteger(id) && id >= 0 && id < V))
        throw new Error(`dashboards: document ${i} holds token id ${id}, outside 0..${V - 1}`);

  // Group the wanted features by site, in the model's site order; drop duplicates.
  const bySite = new Map<string, number[]>();
  for (const f of o.features) {
    if (!model.sites.includes(f.site))
      throw new Error(
        `dashboards: unknown site "${f.site}"; the model has ${model.sites.join(', ')}`,
      );
    const list = bySite.get(f.site) ?? [];
    if (!list.includes(f.feature)) list.push(f.feature);
    bySite.set(f.site, list);
  }
  const sites = model.sites.filter((s) => bySite.has(s));
  const limit = Math.min(V, o.vocabLimit ?? V);
  const encoders = new Map<string, SiteEncoder>();
  const trackers = new Map<string, Tracker[]>();
  for (const site of sites) {
    const dict = o.dictionary(site);
    const width = model.siteWidth(site);
    if (dict.dIn !== width)
      throw new Error(
        `dashboards: the ${site} dictionary reads width ${dict.dIn}, the model's ${site} is ${width} wide`,
      );
    const columns = bySite.get(site)!;
    const encoder = new SiteEncoder(dict, columns);
    encoders.set(site, encoder);
    // Only a direction of the residual stream has a logit-lens reading: not attn_z's head outputs.
    const inResidual = siteRef(model, site).kind !== 'attn_z';
    const effects = inResidual ? logitEffects(model, dict, columns) : null; // [K*V]
    trackers.set(
      site,
      columns.map((feature, k) => {
        const row = effects?.subarray(k * V, (k + 1) * V);
        return {
          ref: { site, feature },
          nonzero: new FloatList(),
          best: [],
          promoted: row ? extremes(row, nLogit, limit, 1) : [],
          suppressed: row ? extremes(row, nLogit, limit, -1) : [],
        };
      }),
    );
    // What the corpus pass needs is copied out: a wide dictionary can leave memory now.
    if (!encoder.needsDictionary) o.release?.(site);
  }

  const windows = corpusWindows(o.documents, T).filter((w) => w.length > 0);
  let tokens = 0;
  let groupStarts: number[] = [];
  for (let w0 = 0; w0 < windows.length; w0 += W) groupStarts.push(w0);
  if (o.groups) {
    const { first, end } = o.groups;
    if (!(0 <= first && first < end && end <= groupStarts.length))
      throw new Error(
        `dashboards: groups ${first}..${end - 1} outside the corpus's ${groupStarts.length} groups of ${W} windows`,
      );
    groupStarts = groupStarts.slice(first, end);
  }
  for (const w0 of groupStarts) {
    const group = windows.slice(w0, w0 + W);
    const B = group.length;
    const Tb = Math.max(...group.map((w) => w.length));
    const ids = new Int32Array(B * Tb);
    group.forEach((w, b) => ids.set(w, b * Tb));
    const captured = new Map<string, Float32Array>();
    const hooks = Object.fromEntries(
      sites.map((s) => [s, (act: Float32Array) => void captured.set(s, act.slice())]),
    );
    model.forward(
      { ids, batchSize: B, seqLen: Tb, lengths: group.map((w) => w.length) },
      { logits: 'none', hooks },
    );
    for (const site of sites) {
      const list = trackers.get(site)!;
      const K = list.length;
      const acts = encoders.get(site)!.encode(captured.get(site)!, B * Tb); // [B*Tb*K]
      list.forEach((tr, k) => {
        group.forEach((w, b) => {
          let max = -Infinity;
          let at = 0;
          for (let t = 0; t < w.length; t++) {
            const v = acts[(b * Tb + t) * K + k];
            if (v !== 0) tr.nonzero.push(v);
            if (v > max) {
              max = v;
              at = t;
            }
          }
          // A context is worth showing only where the feature fires.
          if (!(max > 0)) return;
          const window = w0 + b;
          if (tr.best.length === top && max <= tr.best[top - 1].max) return;
          const series = new Float32Array(w.length);
          for (let t = 0; t < w.length; t++) series[t] = acts[(b * Tb + t) * K + k];
          tr.best.push({ window, max, at, acts: series, ids: w });
          tr.best.sort((x, y) => y.max - x.max || x.window - y.window);
          if (tr.best.length > top) tr.best.pop();
        });
      });
    }
    for (const w of group) tokens += w.length;
    o.onProgress?.(Math.min(w0 + W, windows.length), windows.length);
  }

  // The caller's order (first occurrence of each feature).
  const order = new Map<string, number>();
  o.features.forEach((f, i) => {
    const key = featureKey(f.site, f.feature);
    if (!order.has(key)) order.set(key, i);
  });
  const features: FeatureState[] = sites
    .flatMap((site) => trackers.get(site)!)
    .map((tr) => ({ ...tr, nonzero: tr.nonzero.data.slice(0, tr.nonzero.length) }))
    .sort(
      (a, b) =>
        order.get(featureKey(a.ref.site, a.ref.feature))! -
        order.get(featureKey(b.ref.site, b.ref.feature))!,
    );
  const state: DashboardState = {
    windows: windows.length,
    tokens,
    ctx: T,
    top,
    bins,
    before,
    after,
    features,
  };
  return { windows: windows.length, tokens, ctx: T, dashboards: finishDashboards(state), state };
}

/** The dashboards from their corpus statistics (one run's, or shards' merged). */
export function finishDashboards(state: DashboardState): FeatureDashboard[] {
  const { tokens, bins, before, after } = state;
  return state.features.map((tr) => {
    let maxActivation = 0;
    for (const v of tr.nonzero) maxActivation = Math.max(maxActivation, v);
    return {
      ...tr.ref,
      maxActivation,
      frequency: tokens > 0 ? tr.nonzero.length / tokens : 0,
      histogram: histogram(tr.nonzero, tr.nonzero.length, bins),
      contexts: tr.best.map((c) => {
        const start = Math.max(0, c.at - before);
        const end = Math.min(c.ids.length, c.at + after + 1);
        return {
          ids: c.ids.slice(start, end),
          acts: Array.from(c.acts.subarray(start, end)),
          at: c.at - start,
          max: c.max,
        };
      }),
      promoted: tr.promoted,
      suppressed: tr.suppressed,
    };
  });
}
