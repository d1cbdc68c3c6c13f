// Training a cross-layer transcoder on the (x_l, y_l) pairs of every layer at the same tokens
// (train.ts collects them): all layers at once, since layer t's prediction sums the decoders of
// layers 0..t. Loss = Σ_t ‖ŷ_t − y_t‖²/B, plus (ReLU only) λ/B·Σ a with each feature's decoders
// (its row of W_dec_l, all targets side by side) kept at unit norm, as the per-layer trainer does.
// TopK needs no penalty. Adam (AdamW with no decay).
//
// Dims: B batch rows, d width, F features per layer, n layers, m = n − l targets of layer l.

import { AdamW } from '../model/adamw.ts';
import { matmul } from '../kernels/gemm.ts';
import { Rng } from '../random.ts';
import { normalizeRows, projectDecoderGradient } from '../sae/train-loss.ts';
import { cltEncode, memoryDecoders, type CrossLayerTranscoder } from './clt.ts';
import type { TranscoderTrainOptions } from './train.ts';

export interface CltGradients {
  encoders: Float32Array[];
  encoderBiases: Float32Array[];
  decoders: Float32Array[];
  decoderBiases: Float32Array[];
}

export function cltGradients(clt: CrossLayerTranscoder): CltGradients {
  const zeros = (ts: Float32Array[]) => ts.map((t) => new Float32Array(t.length));
  return {
    encoders: zeros(clt.encoders),
    encoderBiases: zeros(clt.encoderBiases),
    decoders: zeros(clt.encoders.map((_, l) => clt.decoders.layer(l))),
    decoderBiases: zeros(clt.decoderBiases),
  };
}

/**
 * The loss on a batch (xs[l], ys[l] [B*d] per layer, the same tokens) and its gradients,
 * overwritten into grads. Per layer: squared error and deviation of y_l, active features of layer l.
 */
export function cltLossAndGradients(
  clt: CrossLayerTranscoder,
  xs: Float32Array[],
  ys: Float32Array[],
  B: number,
  lambda: number,
  grads: CltGradients,
): { loss: number; sse: number[]; ssd: number[]; active: number[] } {
  const { numLayers: n, dIn: d, width: F } = clt;
  // Forward: a_l, then out_l = a_l·W_dec_l [B, m·d] (one GEMM per layer), summed into ŷ_t.
  const acts = xs.map((x, l) => cltEncode(clt, l, x, B));
  const yHat = clt.decoderBiases.map((b) => {
    const y = new Float32Array(B * d);
    for (let r = 0; r < B; r++) y.set(b, r * d);
    return y;
  });
  for (let l = 0; l < n; l++) {
    const md = (n - l) * d;
    const out = new Float32Array(B * md);
    matmul(acts[l], clt.decoders.layer(l), out, B, md, F);
    for (let r = 0; r < B; r++)
      for (let t = l; t < n; t++) {
        const o = r * md + (t - l) * d;
        for (let j = 0; j < d; j++) yHat[t][r * d + j] += out[o + j];
      }
  }
  const sse: number[] = [];
  const ssd: number[] = [];
  const dY = yHat.map((yh, t) => {
    const y = ys[t];
    const mean = new Float64Array(d);
    for (let i = 0; i < B * d; i++) mean[i % d] += y[i] / B;
    const g = new Float32Array(B * d);
    let e2 = 0;
    let v2 = 0;
    for (let i = 0; i < B * d; i++) {
      const e = yh[i] - y[i];
      e2 += e * e;
      v2 += (y[i] - mean[i % d]) ** 2;
      g[i] = (2 / B) * e;
    }
    sse.push(e2);
    ssd.push(v2);
    const gb = grads.decoderBiases[t];
    gb.fill(0);
    for (let i = 0; i < B * d; i++) gb[i % d] += g[i];
    return g;
  });
  // Backward per source layer: dOut_l = [dY_l | dY_{l+1} | ...] [B, m·d].
  const active: number[] = [];
  let sumA = 0;
  for (let l = 0; l < n; l++) {
    const md = (n - l) * d;
    const dOut = new Float32Array(B * md);
    for (let r = 0; r < B; r++)
      for (let t = l; t < n; t++)
        dOut.set(dY[t].subarray(r * d, (r + 1) * d), r * md + (t - l) * d);
    const a = acts[l];
    matmul(a, dOut, grads.decoders[l], F, md, B, { transA: true });
    const dPre = new Float32Array(B * F);
    matmul(dOut, clt.decoders.layer(l), dPre, B, F, md, { transB: true });
    // ReLU and TopK pass gradient where a > 0 (JumpReLU's threshold is not trained here).
    const gb = grads.encoderBiases[l];
    gb.fill(0);
    let count = 0;
    for (let r = 0; r < B; r++)
      for (let i = 0; i < F; i++) {
        const idx = r * F + i;
        if (a[idx] > 0) {
          count++;
          sumA += a[idx];
          dPre[idx] += lambda / B;
          gb[i] += dPre[idx];
        } else dPre[idx] = 0;
      }
    active.push(count);
    matmul(dPre, xs[l], grads.encoders[l], F, d, B, { transA: true });
  }
  const loss = sse.reduce((s, v) => s + v, 0) / B + (lambda * sumA) / B;
  return { loss, sse, ssd, active };
}

/** Trains a CLT on the pairs of every layer (pairs[l].x, .y [n*d], the same tokens in order). */
export function trainClt(
  pairs: { x: Float32Array; y: Float32Array; n: number }[],
  d: number,
  o: Omit<TranscoderTrainOptions, 'skip' | 'onLog'> & {
    onLog?: (step: number, fve: number[], l0: number[]) => void;
  },
): CrossLayerTranscoder {
  const { width: F, activation, steps } = o;
  const nL = pairs.length;
  const n = pairs[0].n;
  if (pairs.some((p) => p.n !== n)) throw new Error('CLT training: layers hold different tokens');
  if (activation === 'topk' && !(Number.isInteger(o.k) && o.k! >= 1 && o.k! <= F))
    throw new Error(`CLT training: topk needs --k in 1..${F}, got ${o.k}`);
  const B = Math.min(o.batchSize ?? 512, n);
  const lambda = activation === 'relu' ? (o.l1 ?? 1e-3) : 0;
  const rng = new Rng(o.seed ?? 0);
  const layers = Array.from({ length: nL }, (_, l) => l);
  // Init as the per-layer trainer: each feature's decoders a random unit row, its encoder the
  // (scaled) decoder into its own layer, so it starts reading the direction it writes first.
  const decoders = layers.map((l) => {
    const w = Float32Array.from({ length: F * (nL - l) * d }, () => rng.normal());
    normalizeRows(w, (nL - l) * d);
    return w;
  });
  const encoders = layers.map((l) => {
    const { x } = pairs[l];
    let s = 0;
    for (let i = 0; i < x.length; i++) s += x[i] * x[i];
    const scale = (0.1 * Math.sqrt(d)) / Math.sqrt(s / n || 1);
    const md = (nL - l) * d;
    const e = new Float32Array(F * d);
    for (let i = 0; i < F; i++)
      for (let j = 0; j < d; j++)
        e[i * d + j] = decoders[l][i * md + j] * scale * Math.sqrt(nL - l);
    return e;
  });
  const decoderBiases = layers.map((l) => {
    const b = new Float32Array(d);
    const { y } = pairs[l];
    for (let r = 0; r < n; r++) for (let j = 0; j < d; j++) b[j] += y[r * d + j] / n;
    return b;
  });
  const clt: CrossLayerTranscoder = {
    numLayers: nL,
    dIn: d,
    width: F,
    activation,
    ...(activation === 'topk' ? { k: o.k } : {}),
    encoders,
    encoderBiases: layers.map(() => new Float32Array(F)),
    decoderBiases,
    decoders: memoryDecoders(decoders, F, d),
  };
  const grads = cltGradients(clt);
  const params = [...clt.encoders, ...clt.encoderBiases, ...decoders, ...clt.decoderBiases];
  const flat = [
    ...grads.encoders,
    ...grads.encoderBiases,
    ...grads.decoders,
    ...grads.decoderBiases,
  ];
  const adam = new AdamW(params, { lr: o.lr ?? 1e-3, weightDecay: 0 });
  const xs = layers.map(() => new Float32Array(B * d));
  const ys = layers.map(() => new Float32Array(B * d));
  for (let step = 0; step < steps; step++) {
    for (let b = 0; b < B; b++) {
      const r = rng.int(n);
      layers.forEach((l) => {
        xs[l].set(pairs[l].x.subarray(r * d, (r + 1) * d), b * d);
        ys[l].set(pairs[l].y.subarray(r * d, (r + 1) * d), b * d);
      });
    }
    const { sse, ssd, active } = cltLossAndGradients(clt, xs, ys, B, lambda, grads);
    if (activation === 'relu')
      layers.forEach((l) => projectDecoderGradient(decoders[l], grads.decoders[l], (nL - l) * d));
    adam.step(flat);
    if (activation === 'relu') layers.forEach((l) => normalizeRows(decoders[l], (nL - l) * d));
    if (o.onLog && (step % (o.logEvery ?? 100) === 0 || step === steps - 1))
      o.onLog(
        step,
        sse.map((e, l) => 1 - e / ssd[l]),
        active.map((c) => c / B),
      );
  }
  return clt;
}
