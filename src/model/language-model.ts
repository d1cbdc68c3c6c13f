// What discovery, evaluation, dashboards, SHIFT and the SAE tools use of a model, so that they run
// on either engine: GptNeoX (gptneox.ts, the original GPT-NeoX engine) or Transformer
// (transformer.ts, every family). Both read and replace sites through hooks, differentiate them
// with seeds and stop-gradients, and continue a past, with the same semantics.
//
// Sites form a graph that follows the block's wiring (see siteInputs): discovery's edges and its
// tails (a model cut above a site) are built from it, not from one family's residual structure.
// (The loader's names for the same things, LanguageModelPass etc. and modelShape, are aliases.)

import type { Batch, SiteHook } from './gptneox.ts';
import type { GptNeoXConfig } from './config.ts';
import type { TransformerConfig } from './families/family.ts';
import { parseTransformerSite, type TransformerSiteRef } from './sites.ts';
import { gatherRows } from '../kernels/rows.ts';

export type BlockWiring = 'parallel' | 'sequential' | 'sandwich';

/** The sizes consumers read, under one name for both engines' configs. */
export interface ModelShape {
  /** config.json's architectures entry (GPTNeoXForCausalLM for the GptNeoX engine). */
  architecture: string;
  numLayers: number;
  hiddenSize: number;
  vocabSize: number;
  /** Longest sequence (past included) the model takes. */
  maxPositions: number;
}

/** Keys and values of P earlier positions at every layer (each engine's own layout). */
export interface ModelPast {
  length: number;
  layers: { keys: Float32Array; values: Float32Array }[];
}

/** Forward options, the same for both engines; PastT is the engine's own past layout. */
export interface EngineForwardOptions<PastT = ModelPast> {
  hooks?: Record<string, SiteHook>;
  /** 'all': [B*T*V]; 'last': [B*V] at each example's last real token (default); 'none': empty. */
  logits?: 'all' | 'last' | 'none';
  /** Keep what backward needs (default false). */
  forBackward?: boolean;
  /**
   * 'last' (with logits 'last'): the top layer computes its attention keys and values at every
   * row and everything after the heads (output projection, norms, MLP, residual) only at each
   * example's last real token, the rows the head reads. Its attn_z/attn/mlp/resid sites then have
   * no full activation: hooks and seeds there are refused and activation() throws; every gradient
   * backward returns stays exact (the metric's gradient is zero at the other rows). Default 'all'.
   */
  topLayerRows?: 'all' | 'last';
  /** Earlier positions the batch continues (default none). */
  past?: PastT;
}

/** Backward options; W is the engine's weights layout, for parameter gradients. */
export interface EngineBackwardOptions<W = never> {
  /** Sites whose output passes values forward but no gradient back (it is still reported). */
  stopGradient?: Iterable<string>;
  /** Accumulate (+=) parameter gradients here (the engine's zero-weights layout). */
  parameterGradients?: W;
  /** Extra gradient injected at a site's output (its activation's length). */
  seeds?: Record<string, Float32Array>;
}

export interface EnginePass<PastT = ModelPast, W = never> {
  readonly batch: Batch;
  readonly logits: Float32Array;
  /** The site's (possibly replaced) output. */
  activation(site: string): Float32Array;
  /** dLogits has the layout of `logits` (null when only seeds drive it); dMetric/d(site) for every site. */
  backward(
    dLogits: Float32Array | null,
    options?: EngineBackwardOptions<W>,
  ): Map<string, Float32Array>;
  /**
   * Keys and values of the first P positions at every layer (a forBackward pass); for a pass that
   * continues a past, positions count from the past's start (P up to past length + T).
   */
  past(P: number): PastT;
}

export type ModelForwardOptions = EngineForwardOptions;
export type ModelBackwardOptions = EngineBackwardOptions;
export type ModelPass = EnginePass;

/**
 * How a site's output reaches a site that reads it with no other site in between:
 *   identity  added into the residual as it is (x -> resid_L);
 *   local     through row-local maps (norms, projections, the MLP): position t reads position t;
 *   mixing    through attention: position t reads positions <= t.
 */
export type SitePath = 'identity' | 'local' | 'mixing';

export interface SiteInput {
  site: string;
  path: SitePath;
}

export interface LanguageModel {
  /** The engine's own config (sizes under one name: `shape`). */
  readonly config: GptNeoXConfig | TransformerConfig;
  /** Every site in computation order. */
  readonly sites: string[];
  readonly shape: ModelShape;
  readonly wiring: BlockWiring;
  /** Values per token of a site's activation: d, or H·Dh for attn_z_L. */
  siteWidth(site: string): number;
  /** The sites whose outputs `site` reads directly (see SitePath), in a fixed order. */
  upstreamSites(site: string): SiteInput[];
  forward(batch: Batch, options?: ModelForwardOptions): ModelPass;
  /** Token ids -> the embed site's activation [B*T*d] (positions from 0). */
  embed(batch: Batch): Float32Array;
  /**
   * Layers start..start+count-1 as a model of their own, whose embed site is the input of layer
   * `start` and whose head (final norm, unembedding) is the full model's. With `vocab` the head
   * computes those token ids' logits only, in that order, and the token table is a zero table of
   * that size (feed the embed site by a hook). Weights are shared, not copied.
   */
  slice(start: number, count: number, vocab?: Int32Array): LanguageModel;
  /** Logits a direction adds through the final norm's gain (normalization aside): (γ ⊙ v)·W_Uᵀ, K vectors [K*d] -> [K*V]. */
  unembedDirections(vectors: Float32Array, K: number): Float32Array;
}

export type LanguageModelForwardOptions = ModelForwardOptions;
export type LanguageModelBackwardOptions = ModelBackwardOptions;
export type LanguageModelPass = ModelPass;

/** The model's sizes under one name (model.shape, as a function). */
export function modelShape(model: LanguageModel): ModelShape {
  return model.shape;
}

/** A site's kind and layer, checked against the model's own sites (the error lists them). */
export function siteRef(model: LanguageModel, site: string): TransformerSiteRef {
  if (!model.sites.includes(site))
    throw new Error(`unknown site "${site}": this model has ${model.sites.join(', ')}`);
  return parseTransformerSite(site, model.shape.numLayers);
}

/**
 * The site graph of a block wiring: what each site reads directly. attn_z_L exists only in
 * models that have that site (`hasZ`).
 */
export function siteInputs(
  site: string,
  numLayers: number,
  wiring: BlockWiring,
  hasZ: boolean,
): SiteInput[] {
  const ref = parseTransformerSite(site, numLayers);
  if (ref.kind === 'embed') return [];
  const L = ref.layer;
  const prev = L === 0 ? 'embed' : `resid_${L - 1}`;
  switch (ref.kind) {
    case 'resid':
      return [
        { site: `mlp_${L}`, path: 'identity' },
        { site: `attn_${L}`, path: 'identity' },
        { site: prev, path: 'identity' },
      ];
    case 'mlp':
      // Sequential and sandwich blocks: the MLP reads mid = prev + attn_L.
      return wiring === 'parallel'
        ? [{ site: prev, path: 'local' }]
        : [
            { site: `attn_${L}`, path: 'local' },
            { site: prev, path: 'local' },
          ];
    case 'attn':
      return hasZ ? [{ site: `attn_z_${L}`, path: 'local' }] : [{ site: prev, path: 'mixing' }];
    case 'attn_z':
      return [{ site: prev, path: 'mixing' }];
  }
}

/**
 * A comma-separated list of sites, each a site of the model (resid_3) or a kind at every layer
 * (attn_z, attn, mlp, resid), e.g. the paper's Gemma-2 setup `embed,attn_z,mlp,resid`. In model
 * order, without duplicates; `flag` names the option in errors.
 */
export function parseSiteList(model: LanguageModel, text: string, flag: string): string[] {
  const wanted = new Set<string>();
  for (const item of text.split(',').map((x) => x.trim())) {
    if (model.sites.includes(item)) wanted.add(item);
    else {
      const every = model.sites.filter((s) => s.replace(/_\d+$/, '') === item && s !== 'embed');
      if (every.length === 0)
        throw new Error(
          `${flag}: "${item}" is neither a site of this model nor a kind of site (${[
            ...new Set(model.sites.map((s) => s.replace(/_\d+$/, ''))),
          ].join(', ')}, or one site such as ${model.sites[model.sites.length - 1]})`,
        );
      every.forEach((s) => wanted.add(s));
    }
  }
  return model.sites.filter((s) => wanted.has(s));
}

/** LanguageModel.slice's range check: layers start..start+count-1 of a model of numLayers. */
export function checkSliceRange(start: number, count: number, numLayers: number): void {
  if (!(Number.isInteger(start) && Number.isInteger(count) && start >= 0 && count >= 0))
    throw new Error(`slice: layers ${start}..${start + count - 1} are not a range`);
  if (start + count > numLayers)
    throw new Error(
      `slice: layers ${start}..${start + count - 1} go past the model's ${numLayers}`,
    );
}

/**
 * The unembedding rows [V', d] of the token ids `vocab`, for a sliced head that scores those
 * tokens only (LanguageModel.slice); each id is checked against the model's vocabulary.
 */
export function vocabularyRows(
  unembed: Float32Array,
  vocab: Int32Array,
  vocabSize: number,
  d: number,
): Float32Array {
  vocab.forEach((id) => {
    if (!(id >= 0 && id < vocabSize))
      throw new Error(`metric vocabulary: token id ${id} is outside the model's [0, ${vocabSize})`);
  });
  return gatherRows(unembed, vocab, d);
}
