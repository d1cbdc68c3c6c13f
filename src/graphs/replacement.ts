// The local replacement model of one prompt (Ameisen et al. 2025): every MLP replaced by its
// transcoder plus an error term (the MLP's true output minus the reconstruction, a constant),
// attention patterns and every layer norm's scale (1/σ per token) frozen at their values on the
// prompt. With the feature activations held as inputs, the model is affine in (token embeddings,
// feature activations, errors), so each target's input is Σ edges + a constant.
//
// The MLPs' replacement is per-layer transcoders or a cross-layer transcoder, read through
// transcoders/mlp-replacement.ts: layer t's MLP output is the sum of the decoders into t of the
// features of every layer l ≤ t that writes there.
//
// Only the parallel-residual GPT-NeoX block (the organism, Pythia) is built: x_{L+1} = x_L +
// attn_L(ln1(x_L)) + mlp_L(ln2(x_L)). One sequence: T tokens, d width, H heads of S dims.

import { GptNeoX, makeBatch } from '../model/gptneox.ts';
import { layerNormForward } from '../model/layers/layernorm.ts';
import { attentionCache, attentionForward, attentionScratch } from '../model/layers/attention.ts';
import { matmul } from '../kernels/gemm.ts';
import type { Transcoder } from '../transcoders/transcoder.ts';
import type { CrossLayerTranscoder } from '../transcoders/clt.ts';
import { asMlpReplacement, type MlpReplacement } from '../transcoders/mlp-replacement.ts';

/** One layer's frozen quantities on the prompt. */
export interface FrozenLayer {
  rstd1: Float64Array; // [T] ln1's 1/σ
  rstd2: Float64Array; // [T] ln2's 1/σ
  probs: Float32Array; // [H, T, T] attention pattern
  valueWeight: Float32Array; // [d, d] rows = concat dims (h*S + i), the V part of query_key_value
  valueBias: Float32Array; // [d]
}

export interface Replacement {
  model: GptNeoX;
  /** Per-layer transcoders or a CLT, read through one interface. */
  mlps: MlpReplacement;
  ids: number[];
  T: number;
  /** Block inputs x_0..x_n of the real forward, [T*d] each (x_0 the embeddings). */
  resid: Float32Array[];
  layers: FrozenLayer[];
  rstdFinal: Float64Array; // [T]
  /** Feature activations [T*F] per layer (the excluded positions zeroed) and pre-activations. */
  activations: Float32Array[];
  preActivations: Float32Array[];
  /** MLP output − reconstruction [T*d] per layer. */
  errors: Float32Array[];
  /** The real last-position logits [V]. */
  logits: Float32Array;
}

/**
 * Runs the real model on the prompt and freezes what the replacement needs. Features at
 * positions < `firstPosition` are left out (their share goes into the error), as circuit-tracer
 * does for position 0.
 */
export function buildReplacement(
  model: GptNeoX,
  transcoders: Transcoder[] | CrossLayerTranscoder | MlpReplacement,
  ids: number[],
  firstPosition = 1,
): Replacement {
  const mlps =
    Array.isArray(transcoders) || 'encoders' in transcoders
      ? asMlpReplacement(transcoders)
      : transcoders;
  const c = model.config;
  if (!c.useParallelResidual)
    throw new Error(
      'attribution graphs: only the parallel-residual GPT-NeoX block is built so far',
    );
  if (mlps.numLayers !== c.numLayers)
    throw new Error(
      `attribution graphs: transcoders for ${mlps.numLayers} layers, model has ${c.numLayers}`,
    );
  const d = c.hiddenSize;
  if (mlps.dIn !== d)
    throw new Error(`attribution graphs: transcoders read width ${mlps.dIn}, model width ${d}`);
  const T = ids.length;
  const batch = makeBatch([ids]);
  const pass = model.forward(batch, { logits: 'last' });
  const resid = [pass.activation('embed').slice()];
  for (let L = 0; L < c.numLayers; L++) resid.push(pass.activation(`resid_${L}`).slice());
  const shape = model.attentionShape(1, T);
  const rope = model.rotary(T);
  const H = c.numHeads;
  const S = d / H;
  const layers: FrozenLayer[] = [];
  const activations: Float32Array[] = [];
  const preActivations: Float32Array[] = [];
  const errors: Float32Array[] = [];
  for (let L = 0; L < c.numLayers; L++) {
    const lw = model.weights.layers[L];
    const x = resid[L];
    const ln1 = new Float32Array(T * d);
    const rstd1 = new Float64Array(T);
    layerNormForward(
      ln1,
      new Float64Array(T),
      rstd1,
      x,
      lw.ln1Weight,
      lw.ln1Bias,
      T,
      d,
      c.layerNormEps,
    );
    const ln2 = new Float32Array(T * d);
    const rstd2 = new Float64Array(T);
    layerNormForward(
      ln2,
      new Float64Array(T),
      rstd2,
      x,
      lw.ln2Weight,
      lw.ln2Bias,
      T,
      d,
      c.layerNormEps,
    );
    const cache = attentionCache(shape);
    attentionForward(new Float32Array(T * d), cache, ln1, lw, shape, rope, attentionScratch(shape));
    const valueWeight = new Float32Array(d * d);
    const valueBias = new Float32Array(d);
    for (let h = 0; h < H; h++)
      for (let i = 0; i < S; i++) {
        const row = (h * 3 + 2) * S + i;
        valueWeight.set(lw.qkvWeight.subarray(row * d, (row + 1) * d), (h * S + i) * d);
        valueBias[h * S + i] = lw.qkvBias[row];
      }
    layers.push({ rstd1, rstd2, probs: cache.probs.slice(), valueWeight, valueBias });
    const pre = mlps.preActivations(L, ln2, T);
    const a = mlps.activate(L, pre.slice(), T);
    a.fill(0, 0, Math.min(firstPosition, T) * mlps.width(L));
    activations.push(a);
    preActivations.push(pre);
    // Layer L's reconstruction reads the activations of layers 0..L (all pushed by now).
    const recon = mlps.decode(L, activations, ln2, T);
    const mlp = pass.activation(`mlp_${L}`);
    const err = new Float32Array(T * d);
    for (let i = 0; i < T * d; i++) err[i] = mlp[i] - recon[i];
    errors.push(err);
  }
  const rstdFinal = new Float64Array(T);
  layerNormForward(
    new Float32Array(T * d),
    new Float64Array(T),
    rstdFinal,
    resid[c.numLayers],
    model.weights.lnFinalWeight,
    model.weights.lnFinalBias,
    T,
    d,
    c.layerNormEps,
  );
  return {
    model,
    mlps,
    ids,
    T,
    resid,
    layers,
    rstdFinal,
    activations,
    preActivations,
    errors,
    logits: pass.logits.slice(),
  };
}

/** Layer norm with its 1/σ frozen: γ ⊙ (x − mean x)·r + β, rows [T*d]. */
export function frozenLayerNorm(
  x: Float32Array,
  rstd: Float64Array,
  gamma: Float32Array,
  beta: Float32Array | null,
  T: number,
  d: number,
): Float32Array {
  const out = new Float32Array(T * d);
  for (let t = 0; t < T; t++) {
    let m = 0;
    for (let j = 0; j < d; j++) m += x[t * d + j];
    m /= d;
    for (let j = 0; j < d; j++)
      out[t * d + j] = (x[t * d + j] - m) * rstd[t] * gamma[j] + (beta ? beta[j] : 0);
  }
  return out;
}

/** Its transpose on K stacked gradients g [K*T*d] (the map is linear in x): in place. */
export function frozenLayerNormBackward(
  g: Float32Array,
  rstd: Float64Array,
  gamma: Float32Array,
  K: number,
  T: number,
  d: number,
): void {
  for (let r = 0; r < K * T; r++) {
    const t = r % T;
    let m = 0;
    for (let j = 0; j < d; j++) {
      const u = g[r * d + j] * gamma[j] * rstd[t];
      g[r * d + j] = u;
      m += u;
    }
    m /= d;
    for (let j = 0; j < d; j++) g[r * d + j] -= m;
  }
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
 * ([T*F] per layer) and the demeaned logits of `tokens` at the last position. A forward of its
 * own, independent of the backward that makes the edges, so that the two check each other.
 */
export function frozenForward(
  r: Replacement,
  inputs: ReplacementInputs,
  tokens: number[],
): { preActivations: Float32Array[]; logits: Float64Array } {
  const { model, T } = r;
  const c = model.config;
  const d = c.hiddenSize;
  const H = c.numHeads;
  const S = d / H;
  let x = inputs.embed.slice();
  const preActivations: Float32Array[] = [];
  for (let L = 0; L < c.numLayers; L++) {
    const lw = model.weights.layers[L];
    const fl = r.layers[L];
    const ln1 = frozenLayerNorm(x, fl.rstd1, lw.ln1Weight, lw.ln1Bias, T, d);
    const v = new Float32Array(T * d);
    matmul(ln1, fl.valueWeight, v, T, d, d, { transB: true });
    for (let t = 0; t < T; t++) for (let j = 0; j < d; j++) v[t * d + j] += fl.valueBias[j];
    const concat = new Float32Array(T * d);
    for (let h = 0; h < H; h++)
      for (let t = 0; t < T; t++)
        for (let s = 0; s <= t; s++) {
          const p = fl.probs[(h * T + t) * T + s];
          for (let i = 0; i < S; i++) concat[t * d + h * S + i] += p * v[s * d + h * S + i];
        }
    const attn = new Float32Array(T * d);
    matmul(concat, lw.denseWeight, attn, T, d, d, { transB: true });
    const ln2 = frozenLayerNorm(x, fl.rstd2, lw.ln2Weight, lw.ln2Bias, T, d);
    preActivations.push(r.mlps.preActivations(L, ln2, T));
    const mlp = r.mlps.decode(L, inputs.activations, ln2, T);
    const next = new Float32Array(T * d);
    for (let t = 0; t < T; t++)
      for (let j = 0; j < d; j++) {
        const i = t * d + j;
        next[i] = x[i] + attn[i] + lw.denseBias[j] + mlp[i] + inputs.errors[L][i];
      }
    x = next;
  }
  const w = model.weights;
  const lnF = frozenLayerNorm(x, r.rstdFinal, w.lnFinalWeight, w.lnFinalBias, T, d);
  const directions = demeanedUnembedding(model, tokens);
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
export function demeanedUnembedding(model: GptNeoX, tokens: number[]): Float32Array {
  const { vocabSize: V, hiddenSize: d } = model.config;
  const U = model.weights.embedOut;
  const mean = new Float64Array(d);
  for (let v = 0; v < V; v++) for (let j = 0; j < d; j++) mean[j] += U[v * d + j] / V;
  const out = new Float32Array(tokens.length * d);
  tokens.forEach((v, k) => {
    for (let j = 0; j < d; j++) out[k * d + j] = U[v * d + j] - mean[j];
  });
  return out;
}
