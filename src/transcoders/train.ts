// Training and measuring per-layer transcoders on a GPT-NeoX model (the organism, Pythia).
//
// Data: for each layer L, the pairs (x, y) the replaced MLP sees at every real token of a corpus:
// x = ln2(input of the MLP) (the block input with a parallel residual, input + attention with a
// sequential one), y = the MLP's output (site mlp_L). The loss is the MSE of ŷ against y, plus
// (ReLU only) λ·Σ_i a_i·‖W_dec,i‖ with the decoder rows kept at unit norm, so the penalty is the
// L1 of the activations as in train-loss.ts. TopK needs no penalty. Adam (AdamW with no decay).
//
// Dims: n pairs, B batch rows, d model width, F features.

import { GptNeoX, makeBatch, type Batch } from '../model/gptneox.ts';
import { layerNormForward } from '../model/layers/layernorm.ts';
import { crossEntropy } from '../model/loss.ts';
import { AdamW } from '../model/adamw.ts';
import { matmul } from '../kernels/gemm.ts';
import { Rng } from '../random.ts';
import { normalizeRows, projectDecoderGradient } from '../sae/train-loss.ts';
import {
  transcoderDecode,
  transcoderEncode,
  type Transcoder,
  type TranscoderActivation,
} from './transcoder.ts';
import type { CrossLayerTranscoder } from './clt.ts';
import { asMlpReplacement } from './mlp-replacement.ts';

/** ln2 of the MLP's input for one layer, given the block input x and the attention output [N*d]. */
export function mlpInput(
  model: GptNeoX,
  L: number,
  blockInput: Float32Array,
  attention: Float32Array,
  N: number,
): Float32Array {
  const c = model.config;
  const d = c.hiddenSize;
  const lw = model.weights.layers[L];
  let src = blockInput;
  if (!c.useParallelResidual) {
    src = new Float32Array(N * d);
    for (let i = 0; i < N * d; i++) src[i] = blockInput[i] + attention[i];
  }
  const out = new Float32Array(N * d);
  layerNormForward(
    out,
    new Float64Array(N),
    new Float64Array(N),
    src,
    lw.ln2Weight,
    lw.ln2Bias,
    N,
    d,
    c.layerNormEps,
  );
  return out;
}

/** Batches of at most `size` documents (cut to the model's context), in order. */
export function documentBatches(model: GptNeoX, docs: number[][], size = 32): Batch[] {
  const T = model.config.maxPositionEmbeddings;
  const out: Batch[] = [];
  for (let i = 0; i < docs.length; i += size)
    out.push(makeBatch(docs.slice(i, i + size).map((doc) => doc.slice(0, T))));
  return out;
}

/** The (x, y) pairs of every layer at the real tokens of the documents. */
export function collectMlpPairs(
  model: GptNeoX,
  docs: number[][],
): { x: Float32Array; y: Float32Array; n: number }[] {
  const c = model.config;
  const d = c.hiddenSize;
  const xs: Float32Array[][] = Array.from({ length: c.numLayers }, () => []);
  const ys: Float32Array[][] = Array.from({ length: c.numLayers }, () => []);
  let n = 0;
  for (const batch of documentBatches(model, docs)) {
    const pass = model.forward(batch, { logits: 'none' });
    const real = realRows(batch);
    n += real.length;
    for (let L = 0; L < c.numLayers; L++) {
      const N = batch.batchSize * batch.seqLen;
      const input = pass.activation(L === 0 ? 'embed' : `resid_${L - 1}`);
      const x = mlpInput(model, L, input, pass.activation(`attn_${L}`), N);
      xs[L].push(gather(x, real, d));
      ys[L].push(gather(pass.activation(`mlp_${L}`), real, d));
    }
  }
  const cat = (parts: Float32Array[]) => {
    const out = new Float32Array(n * d);
    let o = 0;
    for (const p of parts) {
      out.set(p, o);
      o += p.length;
    }
    return out;
  };
  return xs.map((_, L) => ({ x: cat(xs[L]), y: cat(ys[L]), n }));
}

function realRows(batch: Batch): Int32Array {
  const rows: number[] = [];
  batch.lengths.forEach((len, b) => {
    for (let t = 0; t < len; t++) rows.push(b * batch.seqLen + t);
  });
  return Int32Array.from(rows);
}

function gather(a: Float32Array, rows: Int32Array, d: number): Float32Array {
  const out = new Float32Array(rows.length * d);
  rows.forEach((r, i) => out.set(a.subarray(r * d, (r + 1) * d), i * d));
  return out;
}

export interface TranscoderTrainOptions {
  width: number;
  activation: Exclude<TranscoderActivation, 'jumprelu'>;
  /** TopK: features per token. */
  k?: number;
  /** ReLU: the L1 coefficient λ. */
  l1?: number;
  skip?: boolean;
  steps: number;
  batchSize?: number;
  lr?: number;
  seed?: number;
  /** Called every `logEvery` steps with the step and the batch's FVE. */
  onLog?: (step: number, fve: number, l0: number) => void;
  logEvery?: number;
}

/** Trains one layer's transcoder on pairs x, y [n*d]. */
export function trainTranscoder(
  layer: number,
  x: Float32Array,
  y: Float32Array,
  n: number,
  d: number,
  o: TranscoderTrainOptions,
): Transcoder {
  const { width: F, activation, steps } = o;
  const B = Math.min(o.batchSize ?? 512, n);
  const lambda = activation === 'relu' ? (o.l1 ?? 1e-3) : 0;
  const rng = new Rng(o.seed ?? 0);
  if (activation === 'topk' && !(Number.isInteger(o.k) && o.k! >= 1 && o.k! <= F))
    throw new Error(`transcoder training: topk needs --k in 1..${F}, got ${o.k}`);
  // Init: decoder rows random unit vectors, encoder = their transpose scaled to the input size
  // (a feature starts reading the direction it writes), output bias = mean of y.
  const tc: Transcoder = {
    layer,
    dIn: d,
    width: F,
    activation,
    ...(activation === 'topk' ? { k: o.k } : {}),
    encoder: new Float32Array(F * d),
    encoderBias: new Float32Array(F),
    decoder: new Float32Array(F * d),
    decoderBias: new Float32Array(d),
    ...(o.skip ? { skip: new Float32Array(d * d) } : {}),
  };
  for (let i = 0; i < F * d; i++) tc.decoder[i] = rng.normal();
  normalizeRows(tc.decoder, d);
  // Pre-activations start at about 0.1·√d of a unit vector's dot with x, whatever x's norm.
  const encoderScale = (0.1 * Math.sqrt(d)) / Math.sqrt(sumSquares(x) / n || 1);
  for (let i = 0; i < F * d; i++) tc.encoder[i] = tc.decoder[i] * encoderScale;
  for (let r = 0; r < n; r++) for (let j = 0; j < d; j++) tc.decoderBias[j] += y[r * d + j] / n;
  const params = [
    tc.encoder,
    tc.encoderBias,
    tc.decoder,
    tc.decoderBias,
    ...(tc.skip ? [tc.skip] : []),
  ];
  const grads = params.map((p) => new Float32Array(p.length));
  const gDec = grads[2];
  const adam = new AdamW(params, { lr: o.lr ?? 1e-3, weightDecay: 0 });
  const xb = new Float32Array(B * d);
  const yb = new Float32Array(B * d);
  for (let step = 0; step < steps; step++) {
    for (let b = 0; b < B; b++) {
      const r = rng.int(n);
      xb.set(x.subarray(r * d, (r + 1) * d), b * d);
      yb.set(y.subarray(r * d, (r + 1) * d), b * d);
    }
    const { sse, ssd, active } = transcoderLossAndGradients(tc, xb, yb, B, lambda, grads);
    if (activation === 'relu') projectDecoderGradient(tc.decoder, gDec, d);
    adam.step(grads);
    if (activation === 'relu') normalizeRows(tc.decoder, d);
    if (o.onLog && (step % (o.logEvery ?? 100) === 0 || step === steps - 1))
      o.onLog(step, 1 - sse / ssd, active / B);
  }
  return tc;
}

/**
 * The loss Σ‖ŷ − y‖²/B + (λ/B)·Σ a on a batch x, y [B*d] and its gradients, written (overwritten)
 * into grads in the order encoder, encoderBias, decoder, decoderBias, skip.
 */
export function transcoderLossAndGradients(
  tc: Transcoder,
  xb: Float32Array,
  yb: Float32Array,
  B: number,
  lambda: number,
  grads: Float32Array[],
): { loss: number; sse: number; ssd: number; active: number } {
  const { dIn: d, width: F } = tc;
  const [gEnc, gEncBias, gDec, gDecBias] = grads;
  const gSkip = tc.skip ? grads[4] : null;
  const a = transcoderEncode(tc, xb, B);
  const yHat = transcoderDecode(tc, a, xb, B);
  const dY = new Float32Array(B * d);
  const dPre = new Float32Array(B * F);
  let sse = 0;
  let ssd = 0;
  const mean = new Float64Array(d);
  for (let i = 0; i < B * d; i++) mean[i % d] += yb[i] / B;
  for (let i = 0; i < B * d; i++) {
    const e = yHat[i] - yb[i];
    sse += e * e;
    ssd += (yb[i] - mean[i % d]) ** 2;
    dY[i] = (2 / B) * e;
  }
  // ŷ = a W_dec + b_dec + x W_skipᵀ.
  matmul(a, dY, gDec, F, d, B, { transA: true });
  gDecBias.fill(0);
  for (let i = 0; i < B * d; i++) gDecBias[i % d] += dY[i];
  if (gSkip) matmul(dY, xb, gSkip, d, d, B, { transA: true });
  matmul(dY, tc.decoder, dPre, B, F, d, { transB: true });
  // Through the activation: ReLU and TopK both pass gradient where a > 0; the L1 term adds λ/B.
  let active = 0;
  let sumA = 0;
  gEncBias.fill(0);
  for (let r = 0; r < B; r++)
    for (let i = 0; i < F; i++) {
      const idx = r * F + i;
      if (a[idx] > 0) {
        active++;
        sumA += a[idx];
        dPre[idx] += lambda / B;
        gEncBias[i] += dPre[idx];
      } else dPre[idx] = 0;
    }
  matmul(dPre, xb, gEnc, F, d, B, { transA: true });
  return { loss: sse / B + (lambda * sumA) / B, sse, ssd, active };
}

function sumSquares(a: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * a[i];
  return s;
}

export interface TranscoderLayerStats {
  layer: number;
  /** Fraction of the MLP output's variance explained, over all real tokens. */
  fve: number;
  /** Mean active features per token. */
  l0: number;
  /** Share of features that never fire on the evaluation tokens. */
  dead: number;
}

export interface TranscoderSetStats {
  layers: TranscoderLayerStats[];
  /** Next-token loss: clean, with every MLP replaced by its transcoder, with every MLP zeroed. */
  lossClean: number;
  lossReplaced: number;
  lossZeroMlps: number;
  tokens: number;
}

/**
 * Per-layer FVE, L0, dead share, and next-token losses with all MLPs replaced, on the documents;
 * per-layer transcoders or a CLT (whose layer-t prediction reads layers 0..t at the same token).
 */
export function evaluateTranscoders(
  model: GptNeoX,
  transcoders: Transcoder[] | CrossLayerTranscoder,
  docs: number[][],
): TranscoderSetStats {
  const c = model.config;
  const d = c.hiddenSize;
  const mlps = asMlpReplacement(transcoders);
  const pairs = collectMlpPairs(model, docs);
  const acts: Float32Array[] = [];
  const layers = pairs.map(({ x, y, n }, L) => {
    const a = mlps.activate(L, mlps.preActivations(L, x, n), n);
    acts.push(a);
    const yHat = mlps.decode(L, acts, x, n);
    const mean = new Float64Array(d);
    for (let i = 0; i < n * d; i++) mean[i % d] += y[i] / n;
    let sse = 0;
    let ssd = 0;
    for (let i = 0; i < n * d; i++) {
      sse += (yHat[i] - y[i]) ** 2;
      ssd += (y[i] - mean[i % d]) ** 2;
    }
    const F = mlps.width(L);
    const fired = new Uint8Array(F);
    let active = 0;
    for (let i = 0; i < a.length; i++)
      if (a[i] !== 0) {
        active++;
        fired[i % F] = 1;
      }
    const dead = fired.reduce((s, v) => s + (v ? 0 : 1), 0) / F;
    return { layer: L, fve: 1 - sse / ssd, l0: active / n, dead };
  });
  let clean = 0;
  let replaced = 0;
  let zero = 0;
  let tokens = 0;
  for (const batch of documentBatches(model, docs)) {
    const N = batch.batchSize * batch.seqLen;
    const targets = new Int32Array(N).fill(-1);
    batch.lengths.forEach((len, b) => {
      for (let t = 0; t + 1 < len; t++)
        targets[b * batch.seqLen + t] = batch.ids[b * batch.seqLen + t + 1];
    });
    const count = targets.reduce((s, t) => s + (t >= 0 ? 1 : 0), 0);
    if (count === 0) continue;
    const V = c.vocabSize;
    clean += crossEntropy(model.forward(batch, { logits: 'all' }).logits, targets, V).loss * count;
    replaced +=
      crossEntropy(replacedForward(model, transcoders, batch).logits, targets, V).loss * count;
    const hooks = Object.fromEntries(
      pairs.map((_, L) => [`mlp_${L}`, (m: Float32Array) => new Float32Array(m.length)]),
    );
    zero +=
      crossEntropy(model.forward(batch, { logits: 'all', hooks }).logits, targets, V).loss * count;
    tokens += count;
  }
  return {
    layers,
    lossClean: clean / tokens,
    lossReplaced: replaced / tokens,
    lossZeroMlps: zero / tokens,
    tokens,
  };
}

/** The model with every MLP output replaced by the transcoders' prediction from the run's own inputs. */
export function replacedForward(
  model: GptNeoX,
  transcoders: Transcoder[] | CrossLayerTranscoder,
  batch: Batch,
) {
  const N = batch.batchSize * batch.seqLen;
  const mlps = asMlpReplacement(transcoders);
  const inputs = new Map<number, Float32Array>();
  const attns = new Map<number, Float32Array>();
  const acts: Float32Array[] = [];
  const hooks: Record<string, (a: Float32Array) => Float32Array | void> = {
    embed: (a) => void inputs.set(0, a),
  };
  for (let L = 0; L < mlps.numLayers; L++) {
    hooks[`attn_${L}`] = (a) => void attns.set(L, a);
    hooks[`mlp_${L}`] = () => {
      const x = mlpInput(model, L, inputs.get(L)!, attns.get(L)!, N);
      acts[L] = mlps.activate(L, mlps.preActivations(L, x, N), N);
      return mlps.decode(L, acts, x, N);
    };
    hooks[`resid_${L}`] = (a) => void inputs.set(L + 1, a);
  }
  return model.forward(batch, { logits: 'all', hooks });
}
