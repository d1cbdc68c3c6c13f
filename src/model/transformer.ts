// The generic decoder engine: GPT-2, Llama, Qwen2, Qwen3, Gemma-2 and GPT-NeoX from one set of
// layers, forward and backward on typed arrays. A family (families/*.ts) is a config of flags, a
// weight map and one of three block wirings:
//   parallel   (GPT-NeoX)  r = x + a + m,  a = attn(n1 x),  m = mlp(n2 x)
//   sequential (GPT-2, Llama, Qwen, GPT-NeoX sequential)  mid = x + a,  r = mid + m,  m = mlp(n2 mid)
//   sandwich   (Gemma-2)   a = n1'(attn(n1 x)),  mid = x + a,  m = n2'(mlp(n2 mid)),  r = mid + m
// B batch, T tokens, N = B·T rows, d model dim, H heads, Dh head dim, f MLP dim, V vocab.
// Activations are row-major [N, d] (token n = b·T + t); attn_z is [N, H·Dh].
//
// Sites (sites.ts: embed, attn_z_L, attn_L, mlp_L, resid_L) are read and replaced through hooks
// with the semantics of GptNeoX (gptneox.ts): a hook sees a site's output as soon as it is
// computed and may replace it; a replaced site acts as "original + constant" in the backward,
// which returns the gradient at every site and stops at the sites listed in stopGradient.

import type { Batch } from './gptneox.ts';
import { parseTransformerSite, transformerSiteNames } from './sites.ts';
import {
  namedParameters,
  zeroTransformerWeights,
  type BlockWeights,
  type NormWeights,
  type TransformerConfig,
  type TransformerWeights,
} from './families/family.ts';
import type { RotaryTable } from './layers/attention.ts';
import {
  embeddingBackward,
  embeddingForward,
  positionEmbeddingBackward,
  positionEmbeddingForward,
} from './layers/embedding.ts';
import {
  groupedAttentionBackward,
  groupedAttentionCache,
  groupedAttentionForward,
  type GroupedAttentionCache,
  type GroupedAttentionShape,
  type PastKeysValues,
} from './layers/grouped-attention.ts';
import { layerNormBackward, layerNormForward } from './layers/layernorm.ts';
import { linearBackward, linearForward } from './layers/linear.ts';
import {
  feedForwardBackward,
  feedForwardCache,
  feedForwardForward,
  softcapBackward,
  softcapForward,
  type FeedForwardCache,
} from './layers/mlp.ts';
import { rmsNormBackward, rmsNormForward } from './layers/rmsnorm.ts';
import { inverseFrequencies, rotaryTableFrom } from './layers/rotary.ts';
import { matmul } from '../kernels/gemm.ts';
import { gatherRows, scatterRows } from '../kernels/rows.ts';
import {
  checkSliceRange,
  siteInputs,
  vocabularyRows,
  type BlockWiring,
  type EngineBackwardOptions,
  type EngineForwardOptions,
  type EnginePass,
  type LanguageModel,
  type ModelShape,
  type SiteInput,
} from './language-model.ts';

export type TransformerForwardOptions = EngineForwardOptions<TransformerPast>;

/**
 * Keys (rotated) and values of P earlier positions at every layer, [B, KV, P, Dh] each, as
 * Hugging Face's past_key_values: a batch run with it continues those sequences, its tokens at
 * positions P..P+T-1. The past is a constant: no gradient flows into it.
 */
export interface TransformerPast {
  length: number;
  layers: PastKeysValues[];
}

export type TransformerBackwardOptions = EngineBackwardOptions<TransformerWeights>;
export type TransformerPass = EnginePass<TransformerPast, TransformerWeights>;

/** A norm's statistics: mean (layernorm only) and 1/std or 1/rms per row. */
interface NormStats {
  mean: Float64Array;
  rstd: Float64Array;
}

/** x [N, d] -> out [N, d] with the config's norm kind. */
function normForward(
  c: TransformerConfig,
  out: Float32Array,
  x: Float32Array,
  w: NormWeights,
  N: number,
): NormStats {
  const d = c.hiddenSize;
  const stats = {
    mean: new Float64Array(c.norm === 'layernorm' ? N : 0),
    rstd: new Float64Array(N),
  };
  if (c.norm === 'layernorm')
    layerNormForward(out, stats.mean, stats.rstd, x, w.weight, w.bias!, N, d, c.normEps);
  else
    rmsNormForward(out, stats.rstd, x, w.weight, N, d, c.normEps, c.norm === 'rmsnorm_1p' ? 1 : 0);
  return stats;
}

/** dOut [N, d], x [N, d] the forward input -> dx [N, d] +=; grads (when given) +=. */
function normBackward(
  c: TransformerConfig,
  dx: Float32Array,
  grads: NormWeights | null,
  dOut: Float32Array,
  x: Float32Array,
  stats: NormStats,
  w: NormWeights,
  N: number,
): void {
  const d = c.hiddenSize;
  if (c.norm === 'layernorm')
    layerNormBackward(
      dx,
      grads?.weight ?? null,
      grads?.bias ?? null,
      dOut,
      x,
      stats.mean,
      stats.rstd,
      w.weight,
      N,
      d,
    );
  else
    rmsNormBackward(
      dx,
      grads?.weight ?? null,
      dOut,
      x,
      stats.rstd,
      w.weight,
      N,
      d,
      c.norm === 'rmsnorm_1p' ? 1 : 0,
    );
}

/**
 * Every parameter's name and length for a config, in namedParameters order, without allocating
 * the model (the constructor runs for every tail discovery slices off): every layer has the
 * shapes of one, and the token tables are V·d.
 */
function parameterLengths(c: TransformerConfig): Map<string, number> {
  const d = c.hiddenSize;
  const one = zeroTransformerWeights({
    ...c,
    numLayers: Math.min(1, c.numLayers),
    slidingWindows: c.slidingWindows.slice(0, 1),
    vocabSize: 1,
    maxPositions: 1,
  });
  const out = new Map<string, number>();
  const layer: [string, number][] = [];
  for (const [name, t] of namedParameters(one)) {
    if (name.startsWith('layers.0.')) layer.push([name.slice('layers.0.'.length), t.length]);
    else if (name === 'embed' || name === 'unembed') out.set(name, c.vocabSize * d);
    else if (name === 'positions') out.set(name, c.maxPositions * d);
    else out.set(name, t.length);
  }
  // namedParameters order: embed, positions, layers, finalNorm, unembed
  const head = [...out].filter(([n]) => n === 'embed' || n === 'positions');
  const tail = [...out].filter(([n]) => n !== 'embed' && n !== 'positions');
  const layers: [string, number][] = [];
  for (let L = 0; L < c.numLayers; L++)
    for (const [name, length] of layer) layers.push([`layers.${L}.${name}`, length]);
  return new Map([...head, ...layers, ...tail]);
}

/**
 * What one block's backward needs from its forward. M = N, or B in a last-rows top layer, where
 * everything after the heads' outputs is kept at the last rows only.
 */
interface BlockCache {
  n1: Float32Array; // [N, d] attention norm output
  n1Stats: NormStats;
  attn: GroupedAttentionCache;
  z: Float32Array; // [M, H·Dh] o_proj input (as replaced by a hook)
  xIn: Float32Array; // [M, d] the block input at those rows
  o: Float32Array; // [M, d] o_proj output (the sandwich post-norm's input)
  oStats: NormStats | null;
  mid: Float32Array; // [N, d] the MLP norm's input when it is not x (sequential, sandwich)
  n2: Float32Array; // [N, d]
  n2Stats: NormStats;
  mlp: FeedForwardCache;
  m0: Float32Array; // [N, d] MLP output before the sandwich post-norm
  m0Stats: NormStats | null;
}

interface HeadCache {
  rows: Int32Array; // [R] residual rows read
  x: Float32Array; // [R, d]
  normOut: Float32Array; // [R, d]
  stats: NormStats;
  capped: Float32Array | null; // [R, V] soft-capped logits
}

export class Transformer implements LanguageModel {
  readonly config: TransformerConfig;
  readonly weights: TransformerWeights;
  readonly sites: string[];
  private invFreq: Float32Array;
  private rope: RotaryTable = { cos: new Float32Array(0), sin: new Float32Array(0) };
  private ropeLength = 0;

  constructor(config: TransformerConfig, weights: TransformerWeights) {
    const want = parameterLengths(config);
    const have = new Map(namedParameters(weights));
    for (const [name, length] of want) {
      const got = have.get(name);
      if (!(got instanceof Float32Array) || got.length !== length)
        throw new Error(
          `${config.architecture} weights: ${name} has ${got instanceof Float32Array ? got.length + ' floats' : 'no Float32Array'}, expected ${length}`,
        );
    }
    for (const name of have.keys())
      if (!want.has(name))
        throw new Error(`${config.architecture} weights: ${name} is not used by this config`);
    if (config.tiedEmbeddings !== (weights.unembed === weights.embed))
      throw new Error(
        `${config.architecture} weights: the head must ${config.tiedEmbeddings ? '' : 'not '}be the embedding array (tie_word_embeddings ${config.tiedEmbeddings})`,
      );
    this.config = config;
    this.weights = weights;
    this.sites = transformerSiteNames(config.numLayers);
    this.invFreq = inverseFrequencies(config.rotaryDims, config.ropeTheta, config.ropeScaling);
  }

  get shape(): ModelShape {
    const c = this.config;
    return {
      architecture: c.architecture,
      numLayers: c.numLayers,
      hiddenSize: c.hiddenSize,
      vocabSize: c.vocabSize,
      maxPositions: c.maxPositions,
    };
  }

  get wiring(): BlockWiring {
    return this.config.block;
  }

  siteWidth(site: string): number {
    const ref = parseTransformerSite(site, this.config.numLayers); // throws with the valid names
    return ref.kind === 'attn_z'
      ? this.config.numHeads * this.config.headDim
      : this.config.hiddenSize;
  }

  upstreamSites(site: string): SiteInput[] {
    return siteInputs(site, this.config.numLayers, this.config.block, true);
  }

  embed(batch: Batch): Float32Array {
    return this.embedRows(batch.ids, batch.batchSize, batch.seqLen, 0);
  }

  /** ids [B*T] -> the embed site [B*T, d]: token rows (scaled), plus positions P.. (GPT-2). */
  private embedRows(ids: Int32Array, B: number, T: number, P: number): Float32Array {
    const c = this.config;
    const d = c.hiddenSize;
    const Nd = B * T * d;
    const embed = new Float32Array(Nd);
    embeddingForward(embed, ids, this.weights.embed, B * T, d);
    if (c.embedScale !== 1) for (let i = 0; i < Nd; i++) embed[i] *= c.embedScale;
    if (this.weights.positions) positionEmbeddingForward(embed, this.weights.positions, B, T, d, P);
    return embed;
  }

  slice(start: number, count: number, vocab?: Int32Array): Transformer {
    const c = this.config;
    const w = this.weights;
    const d = c.hiddenSize;
    checkSliceRange(start, count, c.numLayers);
    let { embed, unembed } = w;
    if (vocab) {
      unembed = vocabularyRows(w.unembed, vocab, c.vocabSize, d); // [V', d]
      embed = new Float32Array(vocab.length * d);
    }
    return new Transformer(
      {
        ...c,
        numLayers: count,
        slidingWindows: c.slidingWindows.slice(start, start + count),
        vocabSize: vocab ? vocab.length : c.vocabSize,
        tiedEmbeddings: vocab ? false : c.tiedEmbeddings,
      },
      { ...w, embed, unembed, layers: w.layers.slice(start, start + count) },
    );
  }

  unembedDirections(vectors: Float32Array, K: number): Float32Array {
    const c = this.config;
    const d = c.hiddenSize;
    const gamma = this.weights.finalNorm.weight;
    const offset = c.norm === 'rmsnorm_1p' ? 1 : 0;
    const scaled = new Float32Array(K * d);
    for (let k = 0; k < K; k++)
      for (let j = 0; j < d; j++) scaled[k * d + j] = (offset + gamma[j]) * vectors[k * d + j];
    const out = new Float32Array(K * c.vocabSize);
    matmul(scaled, this.weights.unembed, out, K, c.vocabSize, d, { transB: true });
    return out;
  }

  /** @internal cos/sin for positions 0..T-1. */
  rotary(T: number): RotaryTable {
    if (T > this.ropeLength) {
      this.rope = rotaryTableFrom(T, this.invFreq);
      this.ropeLength = T;
    }
    return this.rope;
  }

  /** @internal the attention's dimensions at layer L. */
  attentionShape(L: number, B: number, T: number, P = 0): GroupedAttentionShape {
    const c = this.config;
    return {
      B,
      T,
      P,
      H: c.numHeads,
      KV: c.numKvHeads,
      Dh: c.headDim,
      R: c.rotaryDims,
      scale: c.attnScale,
      softcap: c.attnSoftcap,
      window: c.slidingWindows[L],
      normEps: c.normEps,
    };
  }

  forward(batch: Batch, options: TransformerForwardOptions = {}): TransformerPass {
    const { hooks = {}, logits: mode = 'last', forBackward = false } = options;
    const { topLayerRows = 'all', past = null } = options;
    const P = past?.length ?? 0;
    if (mode !== 'all' && mode !== 'last' && mode !== 'none')
      throw new Error(`forward: logits must be 'all', 'last' or 'none', got ${String(mode)}`);
    if (topLayerRows !== 'all' && topLayerRows !== 'last')
      throw new Error(`forward: topLayerRows must be 'all' or 'last', got ${String(topLayerRows)}`);
    if (topLayerRows === 'last' && mode !== 'last')
      throw new Error(`forward: topLayerRows 'last' needs logits 'last', got '${mode}'`);
    this.checkBatch(batch, P);
    if (past) this.checkPast(past, batch.batchSize);
    const top = topLayerRows === 'last' ? this.config.numLayers - 1 : -1;
    for (const site of Object.keys(hooks))
      if (parseTransformerSite(site, this.config.numLayers).layer === top && top >= 0)
        throw new Error(
          `forward: a hook on ${site} needs its full activation, which topLayerRows 'last' does not compute`,
        );
    const c = this.config;
    const w = this.weights;
    const { batchSize: B, seqLen: T, ids } = batch;
    const N = B * T;
    const d = c.hiddenSize;
    const Nd = N * d;
    const zWidth = c.numHeads * c.headDim;
    const rope = this.rotary(P + T);
    const acts = new Map<string, Float32Array>();
    const runHook = (site: string, act: Float32Array): void => {
      acts.set(site, act);
      const hook = hooks[site];
      if (!hook) return;
      const replacement = hook(act, site);
      if (replacement === undefined || replacement === act) return;
      if (!(replacement instanceof Float32Array) || replacement.length !== act.length)
        throw new Error(
          `hook for site ${site} returned ${replacement instanceof Float32Array ? replacement.length + ' values' : 'something other than a Float32Array'}, expected ${act.length}`,
        );
      act.set(replacement);
    };

    const embed = this.embedRows(ids, B, T, P);
    runHook('embed', embed);

    let x = embed;
    const caches: BlockCache[] = [];
    const lastRows = Int32Array.from(batch.lengths, (len, b) => b * T + len - 1);
    for (let L = 0; L < c.numLayers; L++) {
      const lw = w.layers[L];
      const shape = this.attentionShape(L, B, T, P);
      const n1 = new Float32Array(Nd);
      const n1Stats = normForward(c, n1, x, lw.attnNorm, N);
      const attn = groupedAttentionCache(shape, c.qkNorm);
      const zAll = new Float32Array(N * zWidth);
      groupedAttentionForward(zAll, attn, n1, lw.attn, shape, d, rope, past?.layers[L] ?? null);
      runHook(`attn_z_${L}`, zAll);
      // From the heads' outputs on, a last-rows top layer works on the B rows the head reads.
      const M = L === top ? B : N;
      const Md = M * d;
      const z = L === top ? gatherRows(zAll, lastRows, zWidth) : zAll;
      const xIn = L === top ? gatherRows(x, lastRows, d) : x;
      const o = new Float32Array(Md);
      linearForward(o, z, lw.oWeight, lw.oBias, M, zWidth, d);
      let a = o;
      let oStats: NormStats | null = null;
      if (lw.postAttnNorm) {
        a = new Float32Array(Md);
        oStats = normForward(c, a, o, lw.postAttnNorm, M);
      }
      runHook(`attn_${L}`, a);
      let mid = xIn;
      if (c.block !== 'parallel') {
        mid = new Float32Array(Md);
        for (let i = 0; i < Md; i++) mid[i] = xIn[i] + a[i];
      }
      const n2 = new Float32Array(Md);
      const n2Stats = normForward(c, n2, mid, lw.mlpNorm, M);
      const mlp = feedForwardCache(M, c.intermediateSize, c.gatedMlp);
      const m0 = new Float32Array(Md);
      feedForwardForward(m0, mlp, n2, lw.mlp, c.activation, M, d, c.intermediateSize);
      let m = m0;
      let m0Stats: NormStats | null = null;
      if (lw.postMlpNorm) {
        m = new Float32Array(Md);
        m0Stats = normForward(c, m, m0, lw.postMlpNorm, M);
      }
      runHook(`mlp_${L}`, m);
      const resid = new Float32Array(Md);
      if (c.block === 'parallel') for (let i = 0; i < Md; i++) resid[i] = xIn[i] + a[i] + m[i];
      else for (let i = 0; i < Md; i++) resid[i] = mid[i] + m[i];
      runHook(`resid_${L}`, resid);
      if (forBackward)
        caches.push({ n1, n1Stats, attn, z, xIn, o, oStats, mid, n2, n2Stats, mlp, m0, m0Stats });
      x = resid;
    }

    let logits: Float32Array = new Float32Array(0);
    let head: HeadCache | null = null;
    if (top >= 0) {
      // x holds the last rows only: read them all, then let the backward scatter to their places
      ({ logits, head } = this.headForward(
        x,
        Int32Array.from({ length: B }, (_, b) => b),
      ));
      head.rows = lastRows;
    } else if (mode !== 'none') {
      const rows = mode === 'last' ? lastRows : Int32Array.from({ length: N }, (_, n) => n);
      ({ logits, head } = this.headForward(x, rows));
    }
    return new Pass(this, batch, logits, mode, acts, forBackward ? caches : null, head, top, past);
  }

  /** resid [N, d], rows [R] -> logits [R, V] = cap(finalNorm(resid rows)·Uᵀ). */
  private headForward(
    resid: Float32Array,
    rows: Int32Array,
  ): { logits: Float32Array; head: HeadCache } {
    const c = this.config;
    const d = c.hiddenSize;
    const V = c.vocabSize;
    const R = rows.length;
    const x = new Float32Array(R * d);
    for (let r = 0; r < R; r++) x.set(resid.subarray(rows[r] * d, (rows[r] + 1) * d), r * d);
    const normOut = new Float32Array(R * d);
    const stats = normForward(c, normOut, x, this.weights.finalNorm, R);
    const logits = new Float32Array(R * V);
    matmul(normOut, this.weights.unembed, logits, R, V, d, { transB: true });
    let capped: Float32Array | null = null;
    if (c.finalSoftcap !== null) {
      softcapForward(logits, c.finalSoftcap, R * V);
      capped = Float32Array.from(logits);
    }
    return { logits, head: { rows, x, normOut, stats, capped } };
  }

  private checkPast(past: TransformerPast, B: number): void {
    const c = this.config;
    const P = past.length;
    const size = B * c.numKvHeads * P * c.headDim;
    if (!Number.isInteger(P) || P < 0 || past.layers.length !== c.numLayers)
      throw new Error(
        `forward: past must have an integer length >= 0 and ${c.numLayers} layers, got length ${P} and ${past.layers.length} layers`,
      );
    past.layers.forEach(({ keys, values }, L) => {
      if (keys.length !== size || values.length !== size)
        throw new Error(
          `forward: past layer ${L} keys/values have ${keys.length}/${values.length} values, expected B*KV*P*Dh = ${size}`,
        );
    });
  }

  private checkBatch(batch: Batch, P = 0): void {
    const { batchSize: B, seqLen: T, ids, lengths } = batch;
    const V = this.config.vocabSize;
    if (!Number.isInteger(B) || B < 1 || !Number.isInteger(T) || T < 1)
      throw new Error(`batch: batchSize ${B} and seqLen ${T} must be positive integers`);
    if (P + T > this.config.maxPositions)
      throw new Error(
        `batch: sequence length ${P + T}${P ? ` (past ${P} + ${T})` : ''} exceeds the model's context of ${this.config.maxPositions} positions`,
      );
    if (!(ids instanceof Int32Array) || ids.length !== B * T)
      throw new Error(`batch: ids must be an Int32Array of B*T = ${B * T} token ids`);
    if (lengths.length !== B)
      throw new Error(`batch: lengths has ${lengths.length} entries, expected batchSize ${B}`);
    lengths.forEach((len, b) => {
      if (!Number.isInteger(len) || len < 1 || len > T)
        throw new Error(`batch: lengths[${b}] = ${len}, expected an integer in 1..${T}`);
    });
    for (let n = 0; n < B * T; n++)
      if (ids[n] < 0 || ids[n] >= V)
        throw new Error(
          `batch: token id ${ids[n]} at example ${Math.floor(n / T)}, position ${n % T} is outside the vocabulary [0, ${V})`,
        );
  }
}

class Pass implements TransformerPass {
  constructor(
    private readonly model: Transformer,
    readonly batch: Batch,
    readonly logits: Float32Array,
    private readonly mode: 'all' | 'last' | 'none',
    private readonly acts: Map<string, Float32Array>,
    private readonly caches: BlockCache[] | null,
    private readonly head: HeadCache | null,
    /** topLayerRows 'last': the layer whose sites are withheld (-1: none). */
    private readonly top: number,
    /** The past the batch continues (null: none). */
    private readonly pastIn: TransformerPast | null,
  ) {}

  activation(site: string): Float32Array {
    const ref = parseTransformerSite(site, this.model.config.numLayers); // throws with the valid names
    if (ref.layer === this.top && this.top >= 0)
      throw new Error(
        `activation: ${site} was computed at the last rows only (topLayerRows 'last'); run the forward with topLayerRows 'all' to read it`,
      );
    return this.acts.get(site)!;
  }

  private get pastLength(): number {
    return this.pastIn?.length ?? 0;
  }

  past(P: number): TransformerPast {
    const caches = this.caches;
    if (!caches) throw new Error('past: this forward pass was run without forBackward: true');
    const c = this.model.config;
    const { batchSize: B, seqLen: T } = this.batch;
    const P0 = this.pastLength;
    if (!Number.isInteger(P) || P < 0 || P > P0 + T)
      throw new Error(`past: length ${P} must be an integer in 0..${P0 + T}`);
    const Dh = c.headDim;
    // The past this pass continued (its first min(P, P0) positions), then this pass's own.
    const fromPast = Math.min(P, P0);
    const own = P - fromPast;
    const take = (earlier: Float32Array | null, mine: Float32Array) => {
      const out = new Float32Array(B * c.numKvHeads * P * Dh);
      for (let g = 0; g < B * c.numKvHeads; g++) {
        if (earlier) out.set(earlier.subarray(g * P0 * Dh, (g * P0 + fromPast) * Dh), g * P * Dh);
        out.set(mine.subarray(g * T * Dh, (g * T + own) * Dh), (g * P + fromPast) * Dh);
      }
      return out;
    };
    return {
      length: P,
      layers: caches.map((lc, L) => ({
        keys: take(this.pastIn?.layers[L].keys ?? null, lc.attn.k),
        values: take(this.pastIn?.layers[L].values ?? null, lc.attn.v),
      })),
    };
  }

  backward(
    dLogits: Float32Array | null,
    options: TransformerBackwardOptions = {},
  ): Map<string, Float32Array> {
    const caches = this.caches;
    if (!caches) throw new Error('backward: this forward pass was run without forBackward: true');
    const model = this.model;
    const c = model.config;
    const w = model.weights;
    const { batchSize: B, seqLen: T, ids } = this.batch;
    const N = B * T;
    const d = c.hiddenSize;
    const Nd = N * d;
    const zWidth = c.numHeads * c.headDim;
    const stop = new Set<string>();
    for (const site of options.stopGradient ?? [])
      stop.add(parseTransformerSite(site, c.numLayers).name);
    const seeds = options.seeds ?? {};
    for (const [site, seed] of Object.entries(seeds)) {
      if (parseTransformerSite(site, c.numLayers).layer === this.top && this.top >= 0)
        throw new Error(
          `backward: a seed at ${site} needs the layer at every row, which topLayerRows 'last' does not compute`,
        );
      const size = this.acts.get(site)!.length;
      if (!(seed instanceof Float32Array) || seed.length !== size)
        throw new Error(`backward: seed for site ${site} must be a Float32Array of ${size} values`);
    }
    const grads = options.parameterGradients ?? null;
    if (grads && grads.layers?.length !== c.numLayers)
      throw new Error(
        `backward: parameterGradients must have the zeroTransformerWeights(config) layout (${c.numLayers} layers)`,
      );
    if (dLogits && (this.mode === 'none' || dLogits.length !== this.logits.length))
      throw new Error(
        `backward: dLogits has ${dLogits.length} values, expected the logits' ${this.logits.length} (forward logits: '${this.mode}')`,
      );
    const P = this.pastLength;
    const rope = model.rotary(P + T);
    const addSeed = (grad: Float32Array, site: string, live: boolean): boolean => {
      const seed = seeds[site];
      if (!seed) return live;
      for (let i = 0; i < grad.length; i++) grad[i] += seed[i];
      return true;
    };
    const out = new Map<string, Float32Array>();

    let dCur: Float32Array = new Float32Array(Nd);
    let live = false;
    if (dLogits && this.head) live = this.headBackward(dCur, grads, dLogits, this.head);

    // A last-rows top layer runs its row-local part on the B last rows (the only rows where the
    // head's gradient is nonzero, seeds there being refused); its sites are reported full-size.
    const lastRows = this.head?.rows ?? new Int32Array(0);
    for (let L = c.numLayers - 1; L >= 0; L--) {
      const lw = w.layers[L];
      const lg = grads ? grads.layers[L] : null;
      const lc = caches[L];
      const x = this.acts.get(L === 0 ? 'embed' : `resid_${L - 1}`)!;
      const isTop = L === this.top;
      const M = isTop ? B : N;
      const Md = M * d;
      const rows = (t: Float32Array, width: number) => (isTop ? gatherRows(t, lastRows, width) : t);
      const full = (t: Float32Array, width: number) =>
        isTop ? scatterRows(t, lastRows, width, N) : t;
      const [zSite, attnSite, mlpSite, residSite] = [
        `attn_z_${L}`,
        `attn_${L}`,
        `mlp_${L}`,
        `resid_${L}`,
      ];
      live = addSeed(dCur, residSite, live);
      out.set(residSite, dCur);
      const dR = rows(dCur, d);
      const pass = live && !stop.has(residSite);
      const copyOrZero = () => (pass ? Float32Array.from(dR) : new Float32Array(Md));
      const dM = copyOrZero();
      const mLive = addSeed(dM, mlpSite, pass);
      out.set(mlpSite, full(dM, d));
      let dA: Float32Array;
      let aLive: boolean;
      let dX: Float32Array; // [M, d] at the block input, before the attention branch
      let xLive: boolean;
      if (c.block === 'parallel') {
        dA = copyOrZero();
        aLive = addSeed(dA, attnSite, pass);
        dX = copyOrZero();
        xLive = pass;
        if (mLive && !stop.has(mlpSite)) {
          this.mlpBranchBackward(dX, lg, dM, lc.xIn, lc, lw, M);
          xLive = true;
        }
      } else {
        // the gradient at mid = x + a: the identity path plus the MLP branch
        const dMid = copyOrZero();
        let midLive = pass;
        if (mLive && !stop.has(mlpSite)) {
          this.mlpBranchBackward(dMid, lg, dM, lc.mid, lc, lw, M);
          midLive = true;
        }
        dA = Float32Array.from(dMid);
        aLive = addSeed(dA, attnSite, midLive);
        dX = dMid;
        xLive = midLive;
      }
      out.set(attnSite, full(dA, d));
      dX = full(dX, d);
      // attention branch: (post-norm) -> o_proj -> attn_z -> heads -> attention norm
      let dZ: Float32Array = new Float32Array(M * zWidth);
      let zLive = false;
      if (aLive && !stop.has(attnSite)) {
        let dO = dA;
        if (lw.postAttnNorm) {
          dO = new Float32Array(Md);
          normBackward(c, dO, lg?.postAttnNorm ?? null, dA, lc.o, lc.oStats!, lw.postAttnNorm, M);
        }
        linearBackward(
          dZ,
          lg?.oWeight ?? null,
          lg?.oBias ?? null,
          dO,
          lc.z,
          lw.oWeight,
          M,
          zWidth,
          d,
        );
        zLive = true;
      }
      dZ = full(dZ, zWidth);
      zLive = addSeed(dZ, zSite, zLive);
      out.set(zSite, dZ);
      if (zLive && !stop.has(zSite)) {
        const dN1 = new Float32Array(Nd);
        const shape = model.attentionShape(L, B, T, P);
        groupedAttentionBackward(
          dN1,
          lg?.attn ?? null,
          dZ,
          lc.n1,
          lc.attn,
          lw.attn,
          shape,
          d,
          rope,
        );
        normBackward(c, dX, lg?.attnNorm ?? null, dN1, x, lc.n1Stats, lw.attnNorm, N);
        xLive = true;
      }
      dCur = dX;
      live = xLive;
    }
    live = addSeed(dCur, 'embed', live);
    out.set('embed', dCur);
    if (grads && live && !stop.has('embed')) {
      let dTokens = dCur;
      if (c.embedScale !== 1) dTokens = dCur.map((v) => v * c.embedScale);
      embeddingBackward(grads.embed, dTokens, ids, N, d);
      if (grads.positions) positionEmbeddingBackward(grads.positions, dCur, B, T, d, P);
    }
    return new Map(model.sites.map((site) => [site, out.get(site)!]));
  }

  /** MLP branch backward: dOut [N, d] at the branch output -> dx [N, d] += at its input `input`. */
  private mlpBranchBackward(
    dx: Float32Array,
    lg: BlockWeights | null,
    dOut: Float32Array,
    input: Float32Array,
    lc: BlockCache,
    lw: BlockWeights,
    N: number,
  ): void {
    const c = this.model.config;
    const d = c.hiddenSize;
    let dM0 = dOut;
    if (lw.postMlpNorm) {
      dM0 = new Float32Array(N * d);
      normBackward(c, dM0, lg?.postMlpNorm ?? null, dOut, lc.m0, lc.m0Stats!, lw.postMlpNorm, N);
    }
    const dN2 = new Float32Array(N * d);
    feedForwardBackward(
      dN2,
      lg?.mlp ?? null,
      dM0,
      lc.n2,
      lc.mlp,
      lw.mlp,
      c.activation,
      N,
      d,
      c.intermediateSize,
    );
    normBackward(c, dx, lg?.mlpNorm ?? null, dN2, input, lc.n2Stats, lw.mlpNorm, N);
  }

  /** dLogits [R, V] -> dResid [N, d] += at the head's rows; returns whether anything flowed. */
  private headBackward(
    dResid: Float32Array,
    grads: TransformerWeights | null,
    dLogits: Float32Array,
    head: HeadCache,
  ): boolean {
    const c = this.model.config;
    const w = this.model.weights;
    const d = c.hiddenSize;
    const V = c.vocabSize;
    const R = head.rows.length;
    let dL = dLogits;
    if (head.capped) {
      dL = new Float32Array(R * V);
      softcapBackward(dL, dLogits, head.capped, c.finalSoftcap!, R * V);
    }
    const dN = new Float32Array(R * d);
    matmul(dL, w.unembed, dN, R, d, V);
    if (grads) matmul(dL, head.normOut, grads.unembed, V, d, R, { transA: true, accumulate: true });
    const dx = new Float32Array(R * d);
    normBackward(c, dx, grads?.finalNorm ?? null, dN, head.x, head.stats, w.finalNorm, R);
    for (let r = 0; r < R; r++) {
      const to = head.rows[r] * d;
      for (let i = 0; i < d; i++) dResid[to + i] += dx[r * d + i];
    }
    return true;
  }
}
