// GPT-NeoX (Hugging Face GPTNeoXForCausalLM) forward and backward on typed arrays.
// B batch, T tokens, N = B*T rows, d model dim, H heads, S head size, R rotary dims,
// f MLP dim, V vocab. Activations are flat row-major [N, d] (token n = b*T + t).
//
// Sites (see sites.ts) are read and replaced through hooks; the backward returns the gradient of
// the metric with respect to every site's output. A replaced site keeps its block's local
// Jacobian: the replacement acts as "original + constant", so gradients flow through it as usual
// unless the site is listed in stopGradient.

import type { GptNeoXConfig } from './config.ts';
import { headSize, rotaryDims } from './config.ts';
import { parseSite, siteNames } from './sites.ts';
import { parameterLayout, type GptNeoXWeights, type LayerWeights } from './weights.ts';
import {
  attentionBackward,
  attentionCache,
  attentionForward,
  attentionScratch,
  rotaryTable,
  type AttentionCache,
  type AttentionScratch,
  type AttentionShape,
  type RotaryTable,
} from './layers/attention.ts';
import { embeddingBackward, embeddingForward } from './layers/embedding.ts';
import { layerNormBackward, layerNormForward } from './layers/layernorm.ts';
import { mlpBackward, mlpForward, type MlpCache } from './layers/mlp.ts';
import {
  unembeddingBackward,
  unembeddingForward,
  type UnembeddingCache,
} from './layers/unembedding.ts';

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

export interface ForwardOptions {
  hooks?: Record<string, SiteHook>;
  /** 'all': [B*T*V]; 'last': [B*V] at each example's last real token (default); 'none': empty. */
  logits?: 'all' | 'last' | 'none';
  /** Keep what backward needs (default false). */
  forBackward?: boolean;
}

export interface BackwardOptions {
  /** Sites whose output passes values forward but no gradient back (it is still reported). */
  stopGradient?: Iterable<string>;
  /** Accumulate (+=) parameter gradients here (zeroWeights(config) layout). */
  parameterGradients?: GptNeoXWeights;
  /** Extra gradient injected at a site's output [B*T*d]. */
  seeds?: Record<string, Float32Array>;
}

export interface ForwardPass {
  readonly batch: Batch;
  readonly logits: Float32Array;
  /** The site's (possibly replaced) output [B*T*d]. */
  activation(site: string): Float32Array;
  /** dLogits has the layout of `logits` (null when only seeds drive it). Returns dMetric/d(site output) for every site. */
  backward(dLogits: Float32Array | null, options?: BackwardOptions): Map<string, Float32Array>;
}

/** What one layer's backward needs from its forward. */
interface LayerCache {
  ln1Out: Float32Array; // [N, d]
  ln1Mean: Float64Array; // [N]
  ln1Rstd: Float64Array; // [N]
  attn: AttentionCache;
  mid: Float32Array; // [N, d] sequential residual only: x + attn, the post_attention_layernorm input
  ln2Out: Float32Array; // [N, d]
  ln2Mean: Float64Array; // [N]
  ln2Rstd: Float64Array; // [N]
  mlp: MlpCache;
}

function layerCache(s: AttentionShape, f: number, sequential: boolean): LayerCache {
  const N = s.B * s.T;
  const Nd = N * s.H * s.S;
  return {
    ln1Out: new Float32Array(Nd),
    ln1Mean: new Float64Array(N),
    ln1Rstd: new Float64Array(N),
    attn: attentionCache(s),
    mid: new Float32Array(sequential ? Nd : 0),
    ln2Out: new Float32Array(Nd),
    ln2Mean: new Float64Array(N),
    ln2Rstd: new Float64Array(N),
    mlp: { pre: new Float32Array(N * f), act: new Float32Array(N * f) },
  };
}

/** Temporaries for one (B, T) shape, reused by every forward and backward of that shape. */
interface Workspace {
  B: number;
  T: number;
  attn: AttentionScratch;
  dLn: Float32Array; // [N, d] gradient at a block's layernorm output
  dAct: Float32Array; // [N, f]
  // Internals of a forward run without forBackward (nothing keeps them afterwards).
  layer: LayerCache;
}

const MAX_WORKSPACES = 2;

export class GptNeoX {
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
    this.sites = siteNames(config.numLayers);
  }

  forward(batch: Batch, options: ForwardOptions = {}): ForwardPass {
    const { hooks = {}, logits: mode = 'last', forBackward = false } = options;
    this.checkBatch(batch);
    if (mode !== 'all' && mode !== 'last' && mode !== 'none') {
      throw new Error(`forward: logits must be 'all', 'last' or 'none', got ${String(mode)}`);
    }
    for (const site of Object.keys(hooks)) parseSite(site, this.config.numLayers);
    const c = this.config;
    const w = this.weights;
    const { batchSize: B, seqLen: T, ids } = batch;
    const N = B * T;
    const d = c.hiddenSize;
    const f = c.intermediateSize;
    const V = c.vocabSize;
    const Nd = N * d;
    const eps = c.layerNormEps;
    const shape = this.shape(B, T);
    const ws = this.workspace(B, T);
    const rope = this.rotary(T);
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
    for (let L = 0; L < c.numLayers; L++) {
      const lw = w.layers[L];
      const lc = forBackward ? layerCache(shape, f, !c.useParallelResidual) : ws.layer;
      layerNormForward(lc.ln1Out, lc.ln1Mean, lc.ln1Rstd, x, lw.ln1Weight, lw.ln1Bias, N, d, eps);
      const a = new Float32Array(Nd);
      attentionForward(a, lc.attn, lc.ln1Out, lw, shape, rope, ws.attn);
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
    if (mode !== 'none') {
      const rows =
        mode === 'last'
          ? Int32Array.from(batch.lengths, (len, b) => b * T + len - 1)
          : Int32Array.from({ length: N }, (_, n) => n);
      logits = new Float32Array(rows.length * V);
      head = unembeddingForward(logits, x, rows, w, eps, d, V);
    }
    return new Pass(this, batch, logits, mode, acts, forBackward ? caches : null, head);
  }

  /** @internal dimensions of the attention for a batch shape. */
  shape(B: number, T: number): AttentionShape {
    const c = this.config;
    return { B, T, H: c.numHeads, S: headSize(c), R: rotaryDims(c) };
  }

  /** @internal */
  workspace(B: number, T: number): Workspace {
    let ws = this.workspaces.find((x) => x.B === B && x.T === T);
    if (!ws) {
      const s = this.shape(B, T);
      const N = B * T;
      ws = {
        B,
        T,
        attn: attentionScratch(s),
        dLn: new Float32Array(N * this.config.hiddenSize),
        dAct: new Float32Array(N * this.config.intermediateSize),
        layer: layerCache(s, this.config.intermediateSize, !this.config.useParallelResidual),
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

  private checkBatch(batch: Batch): void {
    const { batchSize: B, seqLen: T, ids, lengths } = batch;
    const V = this.config.vocabSize;
    if (!Number.isInteger(B) || B < 1 || !Number.isInteger(T) || T < 1) {
      throw new Error(`batch: batchSize ${B} and seqLen ${T} must be positive integers`);
    }
    if (T > this.config.maxPositionEmbeddings) {
      throw new Error(
        `batch: sequence length ${T} exceeds the model's max_position_embeddings ${this.config.maxPositionEmbeddings}`,
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

/** input_layernorm then attention, backward: dOut [N, d] -> dx [N, d] += gradient at x (the LN input). */
function attentionBranchBackward(
  dx: Float32Array,
  grads: LayerWeights | null,
  dOut: Float32Array,
  x: Float32Array,
  lc: LayerCache,
  w: LayerWeights,
  s: AttentionShape,
  rope: RotaryTable,
  ws: Workspace,
): void {
  const N = s.B * s.T;
  const d = s.H * s.S;
  attentionBackward(ws.dLn, grads, dOut, lc.ln1Out, lc.attn, w, s, rope, ws.attn);
  layerNormBackward(
    dx,
    grads?.ln1Weight ?? null,
    grads?.ln1Bias ?? null,
    ws.dLn,
    x,
    lc.ln1Mean,
    lc.ln1Rstd,
    w.ln1Weight,
    N,
    d,
  );
}

/**
 * post_attention_layernorm then MLP, backward: dOut [N, d] -> dx [N, d] += gradient at x (the LN
 * input). Both are row-local, so when few rows of dOut are nonzero (the last layer under a
 * last-token metric) only those rows are gathered and processed.
 */
function mlpBranchBackward(
  dx: Float32Array,
  grads: LayerWeights | null,
  dOut: Float32Array,
  x: Float32Array,
  lc: LayerCache,
  w: LayerWeights,
  N: number,
  d: number,
  f: number,
  ws: Workspace,
): void {
  const rows: number[] = [];
  for (let n = 0; n < N && rows.length * 2 < N; n++) {
    const o = n * d;
    for (let i = 0; i < d; i++)
      if (dOut[o + i] !== 0) {
        rows.push(n);
        break;
      }
  }
  if (rows.length * 2 >= N) {
    mlpBackward(ws.dLn, grads, dOut, lc.ln2Out, lc.mlp, w, N, d, f, ws.dAct);
    layerNormBackward(
      dx,
      grads?.ln2Weight ?? null,
      grads?.ln2Bias ?? null,
      ws.dLn,
      x,
      lc.ln2Mean,
      lc.ln2Rstd,
      w.ln2Weight,
      N,
      d,
    );
    return;
  }
  const R = rows.length;
  if (R === 0) return;
  const gather = (src: Float32Array, width: number): Float32Array => {
    const out = new Float32Array(R * width);
    for (let r = 0; r < R; r++)
      out.set(src.subarray(rows[r] * width, (rows[r] + 1) * width), r * width);
    return out;
  };
  const cache = { pre: gather(lc.mlp.pre, f), act: gather(lc.mlp.act, f) };
  const dLn = new Float32Array(R * d);
  mlpBackward(dLn, grads, gather(dOut, d), gather(lc.ln2Out, d), cache, w, R, d, f, ws.dAct);
  const dxRows = new Float32Array(R * d);
  layerNormBackward(
    dxRows,
    grads?.ln2Weight ?? null,
    grads?.ln2Bias ?? null,
    dLn,
    gather(x, d),
    Float64Array.from(rows, (n) => lc.ln2Mean[n]),
    Float64Array.from(rows, (n) => lc.ln2Rstd[n]),
    w.ln2Weight,
    R,
    d,
  );
  for (let r = 0; r < R; r++) {
    const to = rows[r] * d;
    const from = r * d;
    for (let i = 0; i < d; i++) dx[to + i] += dxRows[from + i];
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
  ) {}

  activation(site: string): Float32Array {
    const act = this.acts.get(site);
    if (!act) parseSite(site, this.model.config.numLayers); // throws with the valid names
    return act as Float32Array;
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
    for (const [site, seed] of Object.entries(seeds)) {
      parseSite(site, c.numLayers);
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
    const shape = model.shape(B, T);
    const ws = model.workspace(B, T);
    const rope = model.rotary(T);

    // Adds a site's seed; returns whether the gradient may now be nonzero.
    const addSeed = (grad: Float32Array, site: string, live: boolean): boolean => {
      const seed = seeds[site];
      if (!seed) return live;
      for (let i = 0; i < Nd; i++) grad[i] += seed[i];
      return true;
    };
    const out = new Map<string, Float32Array>();

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
        if (aLive && !stop.has(attnSite)) {
          attentionBranchBackward(dX, lg, dA, x, lc, lw, shape, rope, ws);
          xLive = true;
        }
        if (mLive && !stop.has(mlpSite)) {
          mlpBranchBackward(dX, lg, dM, x, lc, lw, N, d, f, ws);
          xLive = true;
        }
      } else {
        // dA first holds the gradient at mid = x + attn (the identity path to x), then the seed.
        let midLive = pass;
        if (mLive && !stop.has(mlpSite)) {
          mlpBranchBackward(dA, lg, dM, lc.mid, lc, lw, N, d, f, ws);
          midLive = true;
        }
        if (midLive) dX.set(dA);
        xLive = midLive;
        const aLive = addSeed(dA, attnSite, midLive);
        if (aLive && !stop.has(attnSite)) {
          attentionBranchBackward(dX, lg, dA, x, lc, lw, shape, rope, ws);
          xLive = true;
        }
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
