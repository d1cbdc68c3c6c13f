// GPT-NeoX (Hugging Face GPTNeoXForCausalLM) forward and backward on typed arrays.
// B batch, T tokens, N = B*T rows, d model dim, H heads, S head size, R rotary dims,
// f MLP dim, V vocab. Activations are flat row-major [N, d] (token n = b*T + t).
//
// Sites (sites.ts transformerSiteNames: embed, attn_z_L, attn_L, mlp_L, resid_L, as the generic
// engine; attn_z_L is the heads' outputs concatenated per token entering the dense projection,
// d = H*S wide) are read and replaced through hooks; the backward returns the gradient of
// the metric with respect to every site's output. A replaced site keeps its block's local
// Jacobian: the replacement acts as "original + constant", so gradients flow through it as usual
// unless the site is listed in stopGradient.

import type { GptNeoXConfig } from './config.ts';
import { headSize, rotaryDims } from './config.ts';
import { parseTransformerSite as parseSite, transformerSiteNames } from './sites.ts';
import { parameterLayout, type GptNeoXWeights, type LayerWeights } from './weights.ts';
import {
  attentionHeadsForward,
  attentionScratch,
  rotaryTable,
  type AttentionShape,
  type PastKeysValues,
  type RotaryTable,
} from './layers/attention.ts';
import { embeddingBackward, embeddingForward } from './layers/embedding.ts';
import { layerNormForward } from './layers/layernorm.ts';
import { linearForward } from './layers/linear.ts';
import { mlpForward } from './layers/mlp.ts';
import {
  unembeddingBackward,
  unembeddingForward,
  type UnembeddingCache,
} from './layers/unembedding.ts';
import { layerCache, type LayerCache, type Workspace } from './workspace.ts';
import { lastRowsLayerForward } from './last-rows.ts';
import {
  attentionHeadsBranchBackward,
  attentionOutputBackward,
  mlpBranchBackward,
  mlpRowsBackward,
} from './branch-backward.ts';
import { gatherRows } from '../kernels/rows.ts';
import { matmul } from '../kernels/gemm.ts';
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

export interface Batch {
  /** [B*T] right-padded token ids; padding positions hold any valid id. */
  ids: Int32Array;
  batchSize: number;
  seqLen: number;
  /** Real tokens per example (1..T); 'last' logits and metrics read position lengths[b]-1. */
  lengths: number[];
}

/** Right-pads token sequences into one batch. */
export function makeBatch(sequences: number[][], padId = 0): Batch {
  if (sequences.length === 0) throw new Error('makeBatch: no sequences given');
  const B = sequences.length;
  const T = Math.max(...sequences.map((s) => s.length));
  const ids = new Int32Array(B * T).fill(padId);
  sequences.forEach((seq, b) => {
    if (seq.length === 0) throw new Error(`makeBatch: sequence ${b} is empty`);
    seq.forEach((id, t) => {
      if (!Number.isInteger(id)) {
        throw new Error(
          `makeBatch: sequence ${b} position ${t} holds ${id}, not an integer token id`,
        );
      }
      ids[b * T + t] = id;
    });
  });
  return { ids, batchSize: B, seqLen: T, lengths: sequences.map((s) => s.length) };
}

/** Called with a site's output [B*T*d]; return a Float32Array of the same length to replace it, or nothing to only read. */
export type SiteHook = (activation: Float32Array, site: string) => Float32Array | void;

export type ForwardOptions = EngineForwardOptions<Past>;

/**
 * Keys (rotated) and values of P earlier positions at every layer, [B, H, P, S] each (S head
 * size), as Hugging Face's past_key_values: a batch run with it continues those sequences, its
 * tokens at positions P..P+T-1. The past is a constant: no gradient flows into it.
 */
export interface Past {
  length: number;
  layers: PastKeysValues[];
}

export type BackwardOptions = EngineBackwardOptions<GptNeoXWeights>;
export type ForwardPass = EnginePass<Past, GptNeoXWeights>;

const MAX_WORKSPACES = 2;

export class GptNeoX implements LanguageModel {
  readonly config: GptNeoXConfig;
  readonly weights: GptNeoXWeights;
  readonly sites: string[];
  private workspaces: Workspace[] = [];
  private rope: RotaryTable = { cos: new Float32Array(0), sin: new Float32Array(0) };
  private ropeLength = 0;

  constructor(config: GptNeoXConfig, weights: GptNeoXWeights) {
    const R = rotaryDims(config);
    if (R % 2 !== 0) {
      throw new Error(
        `GPT-NeoX config: rotary dims floor(head_size ${headSize(config)} * rotary_pct ${config.rotaryPct}) = ${R} must be even`,
      );
    }
    for (const p of parameterLayout(config)) {
      const size = p.shape.reduce((a, b) => a * b, 1);
      const t = p.get(weights);
      if (!(t instanceof Float32Array) || t.length !== size) {
        throw new Error(
          `GPT-NeoX weights: tensor ${p.name} has ${t instanceof Float32Array ? t.length + ' floats' : 'no Float32Array'}, expected [${p.shape.join(',')}] = ${size} floats`,
        );
      }
    }
    this.config = config;
    this.weights = weights;
    this.sites = transformerSiteNames(config.numLayers);
  }

  get shape(): ModelShape {
    const c = this.config;
    return {
      architecture: 'GPTNeoXForCausalLM',
      numLayers: c.numLayers,
      hiddenSize: c.hiddenSize,
      vocabSize: c.vocabSize,
      maxPositions: c.maxPositionEmbeddings,
    };
  }

  get wiring(): BlockWiring {
    return this.config.useParallelResidual ? 'parallel' : 'sequential';
  }

  siteWidth(site: string): number {
    parseSite(site, this.config.numLayers); // throws with the valid names
    return this.config.hiddenSize;
  }

  upstreamSites(site: string): SiteInput[] {
    return siteInputs(site, this.config.numLayers, this.wiring, true);
  }

  embed(batch: Batch): Float32Array {
    const d = this.config.hiddenSize;
    const N = batch.batchSize * batch.seqLen;
    const out = new Float32Array(N * d);
    embeddingForward(out, batch.ids, this.weights.embedIn, N, d);
    return out;
  }

  slice(start: number, count: number, vocab?: Int32Array): GptNeoX {
    const c = this.config;
    const w = this.weights;
    const d = c.hiddenSize;
    checkSliceRange(start, count, c.numLayers);
    let { embedIn, embedOut } = w;
    if (vocab) {
      embedOut = vocabularyRows(w.embedOut, vocab, c.vocabSize, d); // [V', d]
      embedIn = new Float32Array(vocab.length * d);
    }
    return new GptNeoX(
      { ...c, numLayers: count, vocabSize: vocab ? vocab.length : c.vocabSize },
      {
        embedIn,
        layers: w.layers.slice(start, start + count),
        lnFinalWeight: w.lnFinalWeight,
        lnFinalBias: w.lnFinalBias,
        embedOut,
      },
    );
  }

  unembedDirections(vectors: Float32Array, K: number): Float32Array {
    const d = this.config.hiddenSize;
    const gamma = this.weights.lnFinalWeight;
    const scaled = new Float32Array(K * d);
    for (let k = 0; k < K; k++)
      for (let j = 0; j < d; j++) scaled[k * d + j] = gamma[j] * vectors[k * d + j];
    const out = new Float32Array(K * this.config.vocabSize);
    matmul(scaled, this.weights.embedOut, out, K, this.config.vocabSize, d, { transB: true });
    return out;
  }

  forward(batch: Batch, options: ForwardOptions = {}): ForwardPass {
    const { hooks = {}, logits: mode = 'last', forBackward = false } = options;
    const { topLayerRows = 'all', past = null } = options;
    const P = past?.length ?? 0;
    this.checkBatch(batch, P);
    if (past) this.checkPast(past, batch.batchSize);
    if (mode !== 'all' && mode !== 'last' && mode !== 'none') {
      throw new Error(`forward: logits must be 'all', 'last' or 'none', got ${String(mode)}`);
    }
    if (topLayerRows !== 'all' && topLayerRows !== 'last') {
      throw new Error(`forward: topLayerRows must be 'all' or 'last', got ${String(topLayerRows)}`);
    }
    if (topLayerRows === 'last' && mode !== 'last') {
      throw new Error(`forward: topLayerRows 'last' needs logits 'last', got '${mode}'`);
    }
    // The layer computed at the last rows only (-1: none).
    const top = topLayerRows === 'last' ? this.config.numLayers - 1 : -1;
    for (const site of Object.keys(hooks)) {
      if (parseSite(site, this.config.numLayers).layer === top && top >= 0)
        throw new Error(
          `forward: a hook on ${site} needs its full activation, which topLayerRows 'last' does not compute`,
        );
    }
    const c = this.config;
    const w = this.weights;
    const { batchSize: B, seqLen: T, ids } = batch;
    const N = B * T;
    const d = c.hiddenSize;
    const f = c.intermediateSize;
    const V = c.vocabSize;
    const Nd = N * d;
    const eps = c.layerNormEps;
    const shape = this.attentionShape(B, T, P);
    const ws = this.workspace(B, T, P);
    const rope = this.rotary(P + T);
    const acts = new Map<string, Float32Array>();

    const runHook = (site: string, act: Float32Array): void => {
      acts.set(site, act);
      const hook = hooks[site];
      if (!hook) return;
      const replacement = hook(act, site);
      if (replacement === undefined || replacement === act) return;
      if (!(replacement instanceof Float32Array) || replacement.length !== act.length) {
        throw new Error(
          `hook for site ${site} returned ${replacement instanceof Float32Array ? replacement.length + ' values' : 'something other than a Float32Array'}, expected B*T*d = ${act.length}`,
        );
      }
      act.set(replacement);
    };

    const embed = new Float32Array(Nd);
    embeddingForward(embed, ids, w.embedIn, N, d);
    runHook('embed', embed);
    let x: Float32Array = embed;
    const caches: LayerCache[] = [];
    const lastRows = Int32Array.from(batch.lengths, (len, b) => b * T + len - 1);
    for (let L = 0; L < c.numLayers; L++) {
      if (L === top) {
        const lc = forBackward
          ? layerCache(shape, f, !c.useParallelResidual, true)
          : (ws.layerLast ??= layerCache(shape, f, !c.useParallelResidual, true));
        const pastL = past?.layers[L] ?? null;
        x = lastRowsLayerForward(x, lc, w.layers[L], shape, rope, ws, lastRows, f, eps, c, pastL);
        if (forBackward) caches.push(lc);
        continue;
      }
      const lw = w.layers[L];
      const lc = forBackward ? layerCache(shape, f, !c.useParallelResidual) : ws.layer;
      layerNormForward(lc.ln1Out, lc.ln1Mean, lc.ln1Rstd, x, lw.ln1Weight, lw.ln1Bias, N, d, eps);
      // The pass keeps every layer's attn_z: without forBackward the shared cache gets a new array.
      if (!forBackward) lc.attn.concat = new Float32Array(Nd);
      attentionHeadsForward(lc.attn, lc.ln1Out, lw, shape, rope, ws.attn, past?.layers[L] ?? null);
      const z = lc.attn.concat;
      runHook(`attn_z_${L}`, z);
      const a = new Float32Array(Nd);
      linearForward(a, z, lw.denseWeight, lw.denseBias, N, d, d);
      runHook(`attn_${L}`, a);
      let ln2In: Float32Array = x;
      if (!c.useParallelResidual) {
        ln2In = lc.mid;
        for (let i = 0; i < Nd; i++) ln2In[i] = x[i] + a[i];
      }
      layerNormForward(
        lc.ln2Out,
        lc.ln2Mean,
        lc.ln2Rstd,
        ln2In,
        lw.ln2Weight,
        lw.ln2Bias,
        N,
        d,
        eps,
      );
      const m = new Float32Array(Nd);
      mlpForward(m, lc.mlp, lc.ln2Out, lw, N, d, f);
      runHook(`mlp_${L}`, m);
      const resid = new Float32Array(Nd);
      if (c.useParallelResidual) for (let i = 0; i < Nd; i++) resid[i] = x[i] + a[i] + m[i];
      else for (let i = 0; i < Nd; i++) resid[i] = ln2In[i] + m[i];
      runHook(`resid_${L}`, resid);
      x = resid;
      if (forBackward) caches.push(lc);
    }

    let logits = new Float32Array(0);
    let head: UnembeddingCache | null = null;
    if (top >= 0) {
      // x holds the last rows only: read them all, then let the backward scatter to their places.
      logits = new Float32Array(B * V);
      head = unembeddingForward(
        logits,
        x,
        Int32Array.from({ length: B }, (_, b) => b),
        w,
        eps,
        d,
        V,
      );
      head.rows = lastRows;
    } else if (mode !== 'none') {
      const rows = mode === 'last' ? lastRows : Int32Array.from({ length: N }, (_, n) => n);
      logits = new Float32Array(rows.length * V);
      head = unembeddingForward(logits, x, rows, w, eps, d, V);
    }
    return new Pass(
      this,
      batch,
      logits,
      mode,
      acts,
      forBackward ? caches : null,
      head,
      top >= 0 ? { layer: top, rows: lastRows } : null,
      past,
    );
  }

  /** @internal dimensions of the attention for a batch shape. */
  attentionShape(B: number, T: number, P = 0): AttentionShape {
    const c = this.config;
    return { B, T, H: c.numHeads, S: headSize(c), R: rotaryDims(c), P };
  }

  /** @internal */
  workspace(B: number, T: number, P = 0): Workspace {
    let ws = this.workspaces.find((x) => x.B === B && x.T === T && x.P === P);
    if (!ws) {
      const s = this.attentionShape(B, T, P);
      const N = B * T;
      ws = {
        B,
        T,
        P,
        attn: attentionScratch(s),
        dLn: new Float32Array(N * this.config.hiddenSize),
        dAct: new Float32Array(N * this.config.intermediateSize),
        layer: layerCache(s, this.config.intermediateSize, !this.config.useParallelResidual),
        layerLast: null,
      };
      this.workspaces.unshift(ws);
      this.workspaces.length = Math.min(this.workspaces.length, MAX_WORKSPACES);
    }
    return ws;
  }

  /** @internal cos/sin for positions 0..T-1 (a prefix of any longer table). */
  rotary(T: number): RotaryTable {
    if (T > this.ropeLength) {
      this.rope = rotaryTable(T, rotaryDims(this.config), this.config.rotaryEmbBase);
      this.ropeLength = T;
    }
    return this.rope;
  }

  private checkPast(past: Past, B: number): void {
    const c = this.config;
    const P = past.length;
    const size = B * c.numHeads * P * headSize(c);
    if (!Number.isInteger(P) || P < 0 || past.layers.length !== c.numLayers)
      throw new Error(
        `forward: past must have an integer length >= 0 and ${c.numLayers} layers, got length ${P} and ${past.layers.length} layers`,
      );
    past.layers.forEach(({ keys, values }, L) => {
      if (keys.length !== size || values.length !== size)
        throw new Error(
          `forward: past layer ${L} keys/values have ${keys.length}/${values.length} values, expected B*H*P*S = ${size}`,
        );
    });
  }

  private checkBatch(batch: Batch, P = 0): void {
    const { batchSize: B, seqLen: T, ids, lengths } = batch;
    const V = this.config.vocabSize;
    if (!Number.isInteger(B) || B < 1 || !Number.isInteger(T) || T < 1) {
      throw new Error(`batch: batchSize ${B} and seqLen ${T} must be positive integers`);
    }
    if (P + T > this.config.maxPositionEmbeddings) {
      throw new Error(
        `batch: sequence length ${P + T}${P ? ` (past ${P} + ${T})` : ''} exceeds the model's max_position_embeddings ${this.config.maxPositionEmbeddings}`,
      );
    }
    if (!(ids instanceof Int32Array) || ids.length !== B * T) {
      throw new Error(`batch: ids must be an Int32Array of B*T = ${B * T} token ids`);
    }
    if (lengths.length !== B) {
      throw new Error(`batch: lengths has ${lengths.length} entries, expected batchSize ${B}`);
    }
    lengths.forEach((len, b) => {
      if (!Number.isInteger(len) || len < 1 || len > T) {
        throw new Error(`batch: lengths[${b}] = ${len}, expected an integer in 1..${T}`);
      }
    });
    for (let n = 0; n < B * T; n++) {
      const id = ids[n];
      if (id < 0 || id >= V) {
        throw new Error(
          `batch: token id ${id} at example ${Math.floor(n / T)}, position ${n % T} is outside the vocabulary [0, ${V})`,
        );
      }
    }
  }
}

class Pass implements ForwardPass {
  constructor(
    private readonly model: GptNeoX,
    readonly batch: Batch,
    readonly logits: Float32Array,
    private readonly mode: 'all' | 'last' | 'none',
    private readonly acts: Map<string, Float32Array>,
    private readonly caches: LayerCache[] | null,
    private readonly head: UnembeddingCache | null,
    /** topLayerRows 'last': that layer and its last rows [B]. */
    private readonly lastRows: { layer: number; rows: Int32Array } | null,
    /** The past the batch continues (null: none). */
    private readonly pastIn: Past | null,
  ) {}

  private get pastLength(): number {
    return this.pastIn?.length ?? 0;
  }

  past(P: number): Past {
    const caches = this.caches;
    if (!caches) throw new Error('past: this forward pass was run without forBackward: true');
    const { batchSize: B, seqLen: T } = this.batch;
    const { H, S } = this.model.attentionShape(B, T);
    const P0 = this.pastLength;
    if (!Number.isInteger(P) || P < 0 || P > P0 + T)
      throw new Error(`past: length ${P} must be an integer in 0..${P0 + T}`);
    // The past this pass continued (its first min(P, P0) positions), then this pass's own.
    const fromPast = Math.min(P, P0);
    const own = P - fromPast;
    const plane = B * H * T * S;
    const take = (earlier: Float32Array | null, heads: Float32Array, part: number) => {
      const out = new Float32Array(B * H * P * S);
      for (let g = 0; g < B * H; g++) {
        if (earlier) out.set(earlier.subarray(g * P0 * S, (g * P0 + fromPast) * S), g * P * S);
        const start = part * plane + g * T * S;
        out.set(heads.subarray(start, start + own * S), (g * P + fromPast) * S);
      }
      return out;
    };
    return {
      length: P,
      layers: caches.map((lc, L) => ({
        keys: take(this.pastIn?.layers[L].keys ?? null, lc.attn.heads, 1),
        values: take(this.pastIn?.layers[L].values ?? null, lc.attn.heads, 2),
      })),
    };
  }

  activation(site: string): Float32Array {
    const act = this.acts.get(site);
    if (act) return act;
    const ref = parseSite(site, this.model.config.numLayers); // throws with the valid names
    if (ref.layer === this.lastRows?.layer)
      throw new Error(
        `activation: ${site} was computed at the last rows only (topLayerRows 'last'); run the forward with topLayerRows 'all' to read it`,
      );
    return act as unknown as Float32Array;
  }

  backward(dLogits: Float32Array | null, options: BackwardOptions = {}): Map<string, Float32Array> {
    const caches = this.caches;
    if (!caches) {
      throw new Error('backward: this forward pass was run without forBackward: true');
    }
    const model = this.model;
    const c = model.config;
    const w = model.weights;
    const { batchSize: B, seqLen: T, ids } = this.batch;
    const N = B * T;
    const d = c.hiddenSize;
    const f = c.intermediateSize;
    const Nd = N * d;
    const stop = new Set<string>();
    for (const site of options.stopGradient ?? []) stop.add(parseSite(site, c.numLayers).name);
    const seeds = options.seeds ?? {};
    const top = this.lastRows?.layer ?? -1;
    for (const [site, seed] of Object.entries(seeds)) {
      if (parseSite(site, c.numLayers).layer === top && top >= 0)
        throw new Error(
          `backward: a seed at ${site} needs the layer at every row, which topLayerRows 'last' does not compute`,
        );
      if (!(seed instanceof Float32Array) || seed.length !== Nd) {
        throw new Error(
          `backward: seed for site ${site} must be a Float32Array of B*T*d = ${Nd} values`,
        );
      }
    }
    const grads = options.parameterGradients ?? null;
    if (grads && grads.layers?.length !== c.numLayers) {
      throw new Error(
        `backward: parameterGradients must have the zeroWeights(config) layout (${c.numLayers} layers)`,
      );
    }
    if (dLogits && (this.mode === 'none' || dLogits.length !== this.logits.length)) {
      throw new Error(
        `backward: dLogits has ${dLogits.length} values, expected the logits' ${this.logits.length} (forward logits: '${this.mode}')`,
      );
    }
    const P = this.pastLength;
    const shape = model.attentionShape(B, T, P);
    const ws = model.workspace(B, T, P);
    const rope = model.rotary(P + T);

    // Adds a site's seed; returns whether the gradient may now be nonzero.
    const addSeed = (grad: Float32Array, site: string, live: boolean): boolean => {
      const seed = seeds[site];
      if (!seed) return live;
      for (let i = 0; i < Nd; i++) grad[i] += seed[i];
      return true;
    };
    const out = new Map<string, Float32Array>();
    // The branches of layer L; a last-rows top layer keeps its row-local cache at the last rows.
    const last = this.lastRows?.rows ?? new Int32Array(0);
    // The attention branch from dA (at attn_L): its output projection gives the gradient at
    // attn_z_L (reported, seeded, maybe stopped), then the heads and layernorm add into dX.
    // Returns whether dX got a contribution.
    const attentionBackwardAt = (
      L: number,
      dX: Float32Array,
      lg: LayerWeights | null,
      dA: Float32Array,
      aLive: boolean,
      x: Float32Array,
      lc: LayerCache,
      lw: LayerWeights,
    ): boolean => {
      const zSite = `attn_z_${L}`;
      const rows = L === top ? last : null;
      const dZ = new Float32Array(Nd);
      const pass = aLive && !stop.has(`attn_${L}`);
      if (pass) attentionOutputBackward(dZ, lg, dA, lc, lw, shape, rows);
      const zLive = addSeed(dZ, zSite, pass);
      out.set(zSite, dZ);
      if (!zLive || stop.has(zSite)) return false;
      attentionHeadsBranchBackward(dX, lg, dZ, x, lc, lw, shape, rope, ws, rows);
      return true;
    };
    const mlpBackwardAt = (
      L: number,
      dx: Float32Array,
      lg: LayerWeights | null,
      dOut: Float32Array,
      x: Float32Array,
      lc: LayerCache,
      lw: LayerWeights,
    ) =>
      L === top
        ? mlpRowsBackward(dx, lg, gatherRows(dOut, last, d), lc, lw, last, d, f, ws)
        : mlpBranchBackward(dx, lg, dOut, x, lc, lw, N, d, f, ws);

    // dCur: gradient at the residual entering the head, then at each layer's input.
    let dCur = new Float32Array(Nd);
    let live = false;
    if (dLogits && this.head) {
      unembeddingBackward(dCur, grads, dLogits, this.head, w, d, c.vocabSize);
      live = true;
    }
    for (let L = c.numLayers - 1; L >= 0; L--) {
      const lw = w.layers[L];
      const lg: LayerWeights | null = grads ? grads.layers[L] : null;
      const lc = caches[L];
      const x = this.acts.get(L === 0 ? 'embed' : `resid_${L - 1}`) as Float32Array;
      const [attnSite, mlpSite, residSite] = [`attn_${L}`, `mlp_${L}`, `resid_${L}`];
      live = addSeed(dCur, residSite, live);
      out.set(residSite, dCur);
      const pass = live && !stop.has(residSite);
      const dA = pass ? dCur.slice() : new Float32Array(Nd);
      const dM = pass ? dCur.slice() : new Float32Array(Nd);
      const dX = new Float32Array(Nd);
      let xLive: boolean;
      const mLive = addSeed(dM, mlpSite, pass);
      out.set(mlpSite, dM);
      if (c.useParallelResidual) {
        const aLive = addSeed(dA, attnSite, pass);
        if (pass) dX.set(dCur);
        xLive = pass;
        if (attentionBackwardAt(L, dX, lg, dA, aLive, x, lc, lw)) xLive = true;
        if (mLive && !stop.has(mlpSite)) {
          mlpBackwardAt(L, dX, lg, dM, x, lc, lw);
          xLive = true;
        }
      } else {
        // dA first holds the gradient at mid = x + attn (the identity path to x), then the seed.
        let midLive = pass;
        if (mLive && !stop.has(mlpSite)) {
          mlpBackwardAt(L, dA, lg, dM, lc.mid, lc, lw);
          midLive = true;
        }
        if (midLive) dX.set(dA);
        xLive = midLive;
        const aLive = addSeed(dA, attnSite, midLive);
        if (attentionBackwardAt(L, dX, lg, dA, aLive, x, lc, lw)) xLive = true;
      }
      out.set(attnSite, dA);
      dCur = dX;
      live = xLive;
    }
    live = addSeed(dCur, 'embed', live);
    out.set('embed', dCur);
    if (grads && live && !stop.has('embed')) embeddingBackward(grads.embedIn, dCur, ids, N, d);
    return new Map(model.sites.map((site) => [site, out.get(site) as Float32Array]));
  }
}
