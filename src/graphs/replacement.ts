// The local replacement model of one prompt (Ameisen et al. 2025): every MLP replaced by its
// transcoder plus an error term (the MLP's true output minus the reconstruction, a constant),
// attention patterns and every norm's scale (1/σ or 1/rms per token) frozen at their values on the
// prompt. With the feature activations held as inputs, the model is affine in (token embeddings,
// feature activations, errors), so each target's input is Σ edges + a constant.
//
// One description of a frozen block serves every family (FrozenLayer): GPT-NeoX's parallel block
// x' = x + attn(n1 x) + mlp(n2 x), and the sequential blocks of GPT-2, Llama, Qwen and Gemma-2,
// mid = x + attn(n1 x), x' = mid + mlp(n2 mid). Attention is the value path with its pattern
// frozen (rotary, q/k norms, soft caps and sliding windows only shape the pattern); GQA heads read
// their group's value head; Gemma-2's post-attention norm is a frozen scale on the attention's
// output. The transcoder replaces the whole MLP branch as the engine's mlp_L site reports it (for
// Gemma-2 after its post-MLP norm, as the trainer's target and circuit-tracer's hook_mlp_out), so
// that norm sits inside what is replaced and needs no freezing. Logits are read before Gemma-2's
// final soft cap: the demeaned pre-cap logit is linear in the final normalised residual, the
// capped one is not (probabilities still come from the capped logits).
//
// The MLPs' replacement is per-layer transcoders or a cross-layer transcoder, read through
// transcoders/mlp-replacement.ts: layer t's MLP output is the sum of the decoders into t of the
// features of every layer l ≤ t that writes there, and layer t's error is the MLP's true output
// minus that sum.
// One sequence: T tokens, d width, H query heads, KV value heads of Dh dims, V vocabulary.

import { GptNeoX, makeBatch } from '../model/gptneox.ts';
import { Transformer } from '../model/transformer.ts';
import type { NormWeights, TransformerConfig } from '../model/families/family.ts';
import { layerNormForward } from '../model/layers/layernorm.ts';
import { rmsNormForward } from '../model/layers/rmsnorm.ts';
import { attentionCache, attentionForward, attentionScratch } from '../model/layers/attention.ts';
import {
  groupedAttentionCache,
  groupedAttentionForward,
} from '../model/layers/grouped-attention.ts';
import { linearForward } from '../model/layers/linear.ts';
import { matmul } from '../kernels/gemm.ts';
import type { Transcoder } from '../transcoders/transcoder.ts';
import type { CrossLayerTranscoder } from '../transcoders/clt.ts';
import { asMlpReplacement, type MlpReplacement } from '../transcoders/mlp-replacement.ts';

/** A norm with its per-token scale frozen: γ ⊙ (x − mean x)·r + β (layer norm) or γ ⊙ x·r (RMS). */
export interface FrozenNorm {
  center: boolean;
  rstd: Float64Array; // [T]
  gamma: Float32Array; // [d] (Gemma's 1 + w folded in)
  beta: Float32Array | null; // [d]
}

/** One block's frozen quantities on the prompt. */
export interface FrozenLayer {
  /** parallel: the MLP reads n2(x); sequential: it reads n2(x + attention). */
  wiring: 'parallel' | 'sequential';
  attnNorm: FrozenNorm;
  probs: Float32Array; // [H, T, T] attention pattern
  heads: number; // H
  kvHeads: number; // KV (H / KV query heads share one value head)
  headDim: number; // Dh
  valueWeight: Float32Array; // [KV·Dh, d]
  valueBias: Float32Array | null; // [KV·Dh]
  outWeight: Float32Array; // [d, H·Dh]
  outBias: Float32Array | null; // [d]
  postAttnNorm: FrozenNorm | null; // Gemma-2
  /** The transcoder's input is this norm of the MLP's input stream. */
  mlpNorm: FrozenNorm;
}

export interface Replacement {
  model: GptNeoX | Transformer;
  /** Per-layer transcoders or a CLT, read through one interface. */
  mlps: MlpReplacement;
  ids: number[];
  T: number;
  numLayers: number;
  hiddenSize: number;
  /** Block inputs x_0..x_n of the real forward, [T*d] each (x_0 the embeddings). */
  resid: Float32Array[];
  layers: FrozenLayer[];
  finalNorm: FrozenNorm;
  /** The unembedding [V, d]. */
  unembed: Float32Array;
  /** What each layer's transcoder reads on the prompt [T*d]: the MLP's normalised input. */
  mlpInputs: Float32Array[];
  /** Feature activations [T*F] per layer (the excluded positions zeroed) and pre-activations. */
  activations: Float32Array[];
  preActivations: Float32Array[];
  /** MLP output − reconstruction [T*d] per layer. */
  errors: Float32Array[];
  /** The real last-position logits [V] (after any soft cap): the logit nodes' probabilities. */
  logits: Float32Array;
  /** The same before the final soft cap: what a logit node's input is made of. */
  preCapLogits: Float32Array;
}

/** What the two engines give buildReplacement for one layer. */
interface LayerReading {
  frozen: FrozenLayer;
  /** The transcoder's input on the prompt [T*d] and the MLP's true output (site mlp_L). */
  mlpInput: Float32Array;
  mlpOutput: Float32Array;
}

/**
 * Runs the real model on the prompt and freezes what the replacement needs. Features at
 * positions < `firstPosition` are left out (their share goes into the error), as circuit-tracer
 * does for position 0.
 */
export function buildReplacement(
  model: GptNeoX | Transformer,
  transcoders: Transcoder[] | CrossLayerTranscoder | MlpReplacement,
  ids: number[],
  firstPosition = 1,
): Replacement {
  const mlps =
    Array.isArray(transcoders) || 'encoders' in transcoders
      ? asMlpReplacement(transcoders)
      : transcoders;
  const nL = model.config.numLayers;
  const d = model.config.hiddenSize;
  if (mlps.numLayers !== nL)
    throw new Error(
      `attribution graphs: transcoders for ${mlps.numLayers} layers, model has ${nL}`,
    );
  if (mlps.dIn !== d)
    throw new Error(`attribution graphs: transcoders read width ${mlps.dIn}, model width ${d}`);
  const T = ids.length;
  const read = model instanceof GptNeoX ? readGptNeoX(model, ids) : readTransformer(model, ids);
  const activations: Float32Array[] = [];
  const preActivations: Float32Array[] = [];
  const errors: Float32Array[] = [];
  read.layers.forEach(({ mlpInput, mlpOutput }, L) => {
    const pre = mlps.preActivations(L, mlpInput, T);
    const a = mlps.activate(L, pre.slice(), T);
    a.fill(0, 0, Math.min(firstPosition, T) * mlps.width(L));
    activations.push(a);
    preActivations.push(pre);
    // Layer L's reconstruction reads the activations of layers 0..L (all pushed by now).
    const recon = mlps.decode(L, activations, mlpInput, T);
    const err = new Float32Array(T * d);
    for (let i = 0; i < T * d; i++) err[i] = mlpOutput[i] - recon[i];
    errors.push(err);
  });
  return {
    model,
    mlps,
    ids,
    T,
    numLayers: nL,
    hiddenSize: d,
    resid: read.resid,
    layers: read.layers.map((l) => l.frozen),
    finalNorm: read.finalNorm,
    unembed: read.unembed,
    mlpInputs: read.layers.map((l) => l.mlpInput),
    activations,
    preActivations,
    errors,
    logits: read.logits,
    preCapLogits: read.preCapLogits,
  };
}

interface ModelReading {
  resid: Float32Array[];
  layers: LayerReading[];
  finalNorm: FrozenNorm;
  unembed: Float32Array;
  logits: Float32Array;
  preCapLogits: Float32Array;
}

/** A layer norm of rows x [T*d], frozen. */
function freezeLayerNorm(
  x: Float32Array,
  gamma: Float32Array,
  beta: Float32Array,
  T: number,
  d: number,
  eps: number,
): { out: Float32Array; norm: FrozenNorm } {
  const out = new Float32Array(T * d);
  const rstd = new Float64Array(T);
  layerNormForward(out, new Float64Array(T), rstd, x, gamma, beta, T, d, eps);
  return { out, norm: { center: true, rstd, gamma, beta } };
}

/** The generic engine's norm of rows x [T*d] (its kind from the config), frozen. */
function freezeNorm(
  c: TransformerConfig,
  x: Float32Array,
  w: NormWeights,
  T: number,
): { out: Float32Array; norm: FrozenNorm } {
  const d = c.hiddenSize;
  if (c.norm === 'layernorm') return freezeLayerNorm(x, w.weight, w.bias!, T, d, c.normEps);
  const out = new Float32Array(T * d);
  const rstd = new Float64Array(T);
  const offset = c.norm === 'rmsnorm_1p' ? 1 : 0;
  rmsNormForward(out, rstd, x, w.weight, T, d, c.normEps, offset);
  const gamma = offset ? w.weight.map((v) => v + offset) : w.weight;
  return { out, norm: { center: false, rstd, gamma, beta: null } };
}

function readGptNeoX(model: GptNeoX, ids: number[]): ModelReading {
  const c = model.config;
  const d = c.hiddenSize;
  const T = ids.length;
  const H = c.numHeads;
  const S = d / H;
  const pass = model.forward(makeBatch([ids]), { logits: 'last' });
  const resid = [pass.activation('embed').slice()];
  for (let L = 0; L < c.numLayers; L++) resid.push(pass.activation(`resid_${L}`).slice());
  const shape = model.attentionShape(1, T);
  const rope = model.rotary(T);
  const layers: LayerReading[] = [];
  for (let L = 0; L < c.numLayers; L++) {
    const lw = model.weights.layers[L];
    const x = resid[L];
    const n1 = freezeLayerNorm(x, lw.ln1Weight, lw.ln1Bias, T, d, c.layerNormEps);
    const cache = attentionCache(shape);
    const attn = new Float32Array(T * d);
    attentionForward(attn, cache, n1.out, lw, shape, rope, attentionScratch(shape));
    // query_key_value interleaves (q, k, v) per head: rows (h·3 + 2)·S + i are head h's values
    const valueWeight = new Float32Array(d * d);
    const valueBias = new Float32Array(d);
    for (let h = 0; h < H; h++)
      for (let i = 0; i < S; i++) {
        const row = (h * 3 + 2) * S + i;
        valueWeight.set(lw.qkvWeight.subarray(row * d, (row + 1) * d), (h * S + i) * d);
        valueBias[h * S + i] = lw.qkvBias[row];
      }
    let mlpIn = x;
    if (!c.useParallelResidual) {
      mlpIn = new Float32Array(T * d);
      for (let i = 0; i < T * d; i++) mlpIn[i] = x[i] + attn[i];
    }
    const n2 = freezeLayerNorm(mlpIn, lw.ln2Weight, lw.ln2Bias, T, d, c.layerNormEps);
    layers.push({
      frozen: {
        wiring: c.useParallelResidual ? 'parallel' : 'sequential',
        attnNorm: n1.norm,
        probs: cache.probs.slice(),
        heads: H,
        kvHeads: H,
        headDim: S,
        valueWeight,
        valueBias,
        outWeight: lw.denseWeight,
        outBias: lw.denseBias,
        postAttnNorm: null,
        mlpNorm: n2.norm,
      },
      mlpInput: n2.out,
      mlpOutput: pass.activation(`mlp_${L}`),
    });
  }
  const w = model.weights;
  const fin = freezeLayerNorm(
    resid[c.numLayers],
    w.lnFinalWeight,
    w.lnFinalBias,
    T,
    d,
    c.layerNormEps,
  );
  const logits = pass.logits.slice();
  return { resid, layers, finalNorm: fin.norm, unembed: w.embedOut, logits, preCapLogits: logits };
}

function readTransformer(model: Transformer, ids: number[]): ModelReading {
  const c = model.config;
  const d = c.hiddenSize;
  const T = ids.length;
  const { numHeads: H, numKvHeads: KV, headDim: Dh } = c;
  const pass = model.forward(makeBatch([ids]), { logits: 'last' });
  const resid = [pass.activation('embed').slice()];
  for (let L = 0; L < c.numLayers; L++) resid.push(pass.activation(`resid_${L}`).slice());
  const rope = model.rotary(T);
  const layers: LayerReading[] = [];
  for (let L = 0; L < c.numLayers; L++) {
    const lw = model.weights.layers[L];
    const x = resid[L];
    const n1 = freezeNorm(c, x, lw.attnNorm, T);
    const shape = model.attentionShape(L, 1, T);
    const cache = groupedAttentionCache(shape, c.qkNorm);
    groupedAttentionForward(new Float32Array(T * H * Dh), cache, n1.out, lw.attn, shape, d, rope);
    let postAttnNorm: FrozenNorm | null = null;
    if (lw.postAttnNorm) {
      // the post-norm's scale comes from the o_proj output, o = z·Woᵀ + bo
      const o = new Float32Array(T * d);
      linearForward(o, pass.activation(`attn_z_${L}`), lw.oWeight, lw.oBias, T, H * Dh, d);
      postAttnNorm = freezeNorm(c, o, lw.postAttnNorm, T).norm;
    }
    let mlpIn = x;
    if (c.block !== 'parallel') {
      const a = pass.activation(`attn_${L}`);
      mlpIn = new Float32Array(T * d);
      for (let i = 0; i < T * d; i++) mlpIn[i] = x[i] + a[i];
    }
    const n2 = freezeNorm(c, mlpIn, lw.mlpNorm, T);
    layers.push({
      frozen: {
        wiring: c.block === 'parallel' ? 'parallel' : 'sequential',
        attnNorm: n1.norm,
        probs: cache.probs.slice(),
        heads: H,
        kvHeads: KV,
        headDim: Dh,
        valueWeight: lw.attn.vWeight,
        valueBias: lw.attn.vBias,
        outWeight: lw.oWeight,
        outBias: lw.oBias,
        postAttnNorm,
        mlpNorm: n2.norm,
      },
      mlpInput: n2.out,
      mlpOutput: pass.activation(`mlp_${L}`),
    });
  }
  const fin = freezeNorm(c, resid[c.numLayers], model.weights.finalNorm, T);
  const unembed = model.weights.unembed;
  // the last row's logits before any final soft cap
  const preCapLogits = new Float32Array(c.vocabSize);
  matmul(fin.out.subarray((T - 1) * d, T * d), unembed, preCapLogits, 1, c.vocabSize, d, {
    transB: true,
  });
  return { resid, layers, finalNorm: fin.norm, unembed, logits: pass.logits.slice(), preCapLogits };
}

/** A frozen norm applied to rows x [T*d]. */
export function frozenNormForward(x: Float32Array, n: FrozenNorm, T: number, d: number) {
  const out = new Float32Array(T * d);
  for (let t = 0; t < T; t++) {
    let m = 0;
    if (n.center) {
      for (let j = 0; j < d; j++) m += x[t * d + j];
      m /= d;
    }
    for (let j = 0; j < d; j++)
      out[t * d + j] = (x[t * d + j] - m) * n.rstd[t] * n.gamma[j] + (n.beta ? n.beta[j] : 0);
  }
  return out;
}

/** Its transpose on K stacked gradients g [K*T*d] (the map is linear in x): in place. */
export function frozenNormBackward(
  g: Float32Array,
  n: FrozenNorm,
  K: number,
  T: number,
  d: number,
): void {
  for (let r = 0; r < K * T; r++) {
    const t = r % T;
    let m = 0;
    for (let j = 0; j < d; j++) {
      const u = g[r * d + j] * n.gamma[j] * n.rstd[t];
      g[r * d + j] = u;
      m += u;
    }
    if (!n.center) continue;
    m /= d;
    for (let j = 0; j < d; j++) g[r * d + j] -= m;
  }
}

/** The norm frozen at one position t, as a one-row norm. */
export function frozenNormAt(n: FrozenNorm, t: number): FrozenNorm {
  return { ...n, rstd: Float64Array.of(n.rstd[t]) };
}

/**
 * The frozen attention branch for block input x [T*d] (value path only): its output [T*d], and
 * o_proj's bias apart when no post-norm follows, for the caller to add in its residual sum (one
 * rounding, as the engine's GPT-NeoX block adds it).
 */
export function frozenAttention(
  fl: FrozenLayer,
  x: Float32Array,
  T: number,
  d: number,
): { out: Float32Array; bias: Float32Array | null } {
  const { heads: H, kvHeads: KV, headDim: Dh } = fl;
  const g = H / KV;
  const n1 = frozenNormForward(x, fl.attnNorm, T, d);
  const v = new Float32Array(T * KV * Dh);
  linearForward(v, n1, fl.valueWeight, fl.valueBias, T, d, KV * Dh);
  const z = new Float32Array(T * H * Dh);
  for (let h = 0; h < H; h++) {
    const kv = Math.floor(h / g);
    for (let t = 0; t < T; t++)
      for (let s = 0; s <= t; s++) {
        const p = fl.probs[(h * T + t) * T + s];
        for (let i = 0; i < Dh; i++) z[t * H * Dh + h * Dh + i] += p * v[s * KV * Dh + kv * Dh + i];
      }
  }
  const o = new Float32Array(T * d);
  if (!fl.postAttnNorm) {
    linearForward(o, z, fl.outWeight, null, T, H * Dh, d);
    return { out: o, bias: fl.outBias };
  }
  linearForward(o, z, fl.outWeight, fl.outBias, T, H * Dh, d);
  return { out: frozenNormForward(o, fl.postAttnNorm, T, d), bias: null };
}

/** The sources of the affine replacement model: embeddings [T*d], activations [T*F] and errors [T*d] per layer. */
export interface ReplacementInputs {
  embed: Float32Array;
  activations: Float32Array[];
  errors: Float32Array[];
}

export function replacementInputs(r: Replacement): ReplacementInputs {
  return {
    embed: r.resid[0].slice(),
    activations: r.activations.map((a) => a.slice()),
    errors: r.errors.map((e) => e.slice()),
  };
}

/**
 * The frozen replacement model's forward from its sources: every feature's pre-activation
 * ([T*F] per layer) and the demeaned (pre-cap) logits of `tokens` at the last position. A forward
 * of its own, independent of the backward that makes the edges, so that the two check each other.
 */
export function frozenForward(
  r: Replacement,
  inputs: ReplacementInputs,
  tokens: number[],
): { preActivations: Float32Array[]; logits: Float64Array } {
  const { T, hiddenSize: d } = r;
  let x = inputs.embed.slice();
  const preActivations: Float32Array[] = [];
  for (let L = 0; L < r.numLayers; L++) {
    const fl = r.layers[L];
    const { out: attn, bias } = frozenAttention(fl, x, T, d);
    const b = (i: number) => (bias ? bias[i % d] : 0);
    let stream = x; // what the MLP's norm reads
    if (fl.wiring === 'sequential') {
      stream = new Float32Array(T * d);
      for (let i = 0; i < T * d; i++) stream[i] = x[i] + attn[i] + b(i);
    }
    const n2 = frozenNormForward(stream, fl.mlpNorm, T, d);
    preActivations.push(r.mlps.preActivations(L, n2, T));
    const mlp = r.mlps.decode(L, inputs.activations, n2, T);
    const next = new Float32Array(T * d);
    for (let i = 0; i < T * d; i++)
      next[i] =
        (fl.wiring === 'sequential' ? stream[i] : x[i] + attn[i] + b(i)) +
        mlp[i] +
        inputs.errors[L][i];
    x = next;
  }
  const lnF = frozenNormForward(x, r.finalNorm, T, d);
  const directions = demeanedUnembedding(r, tokens);
  const logits = new Float64Array(tokens.length);
  const o = (T - 1) * d;
  tokens.forEach((_, k) => {
    let s = 0;
    for (let j = 0; j < d; j++) s += lnF[o + j] * directions[k * d + j];
    logits[k] = s;
  });
  return { preActivations, logits };
}

/** Rows W_U[v] − mean_v' W_U[v'] for the given tokens, [K*d]. */
export function demeanedUnembedding(r: Replacement, tokens: number[]): Float32Array {
  const d = r.hiddenSize;
  const U = r.unembed;
  const V = U.length / d;
  const mean = new Float64Array(d);
  for (let v = 0; v < V; v++) for (let j = 0; j < d; j++) mean[j] += U[v * d + j] / V;
  const out = new Float32Array(tokens.length * d);
  tokens.forEach((v, k) => {
    for (let j = 0; j < d; j++) out[k * d + j] = U[v * d + j] - mean[j];
  });
  return out;
}
