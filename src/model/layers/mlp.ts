// The GPT-NeoX MLP block: dense_4h_to_h(gelu(dense_h_to_4h(x))) with the exact (erf) GELU.
// N = B*T token rows, d model dim, f intermediate dim.

import type { LayerWeights } from '../weights.ts';
import { linearBackward, linearForward } from './linear.ts';

// erf, Phi and the GELU slope by piecewise cubic Hermite interpolation of tables built once from
// exact values: erf from the convergent series erf(x) = 2/sqrt(pi) e^(-x^2) sum_n 2^n x^(2n+1) /
// (2n+1)!! (all terms one sign: no cancellation, full double precision). With step h = 1/128 the
// interpolation error is at most h^4/384 * max|f''''| < 1e-10 for each table. Beyond the table
// ends the functions equal their limits to within 1e-16, so inputs are clamped to the table.
// The GELU loops index tables over the signed range: no branches on the sign, ~3x faster than a
// per-element call or an exp.
const STEPS_PER_UNIT = 128;
const ERF_LIMIT = 6; // 1 - erf(6) < 3e-17
const GELU_LIMIT = 9; // Phi(-9) < 2e-19, 9 phi(9) < 1e-16
const TWO_OVER_SQRT_PI = 2 / Math.sqrt(Math.PI);
const INV_SQRT2 = 1 / Math.SQRT2;
const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);

function erfSeries(x: number): number {
  const x2 = x * x;
  let term = x;
  let sum = x;
  for (let n = 1; n < 1000; n++) {
    term *= (2 * x2) / (2 * n + 1);
    sum += term;
    if (Math.abs(term) < 1e-17 * Math.abs(sum) && n > x2) break;
  }
  return TWO_OVER_SQRT_PI * Math.exp(-x2) * sum;
}

/** Per interval i of [lo, hi], the cubic c0 + c1 t + c2 t^2 + c3 t^3 in t = (x - lo)*128 - i. */
function hermiteTable(
  f: (x: number) => number,
  df: (x: number) => number,
  lo: number,
  hi: number,
): Float64Array {
  const h = 1 / STEPS_PER_UNIT;
  const intervals = (hi - lo) * STEPS_PER_UNIT;
  const coef = new Float64Array(4 * intervals);
  let f0 = f(lo);
  let g0 = h * df(lo);
  for (let i = 0; i < intervals; i++) {
    const x1 = lo + (i + 1) * h;
    const f1 = f(x1);
    const g1 = h * df(x1);
    coef[4 * i] = f0;
    coef[4 * i + 1] = g0;
    coef[4 * i + 2] = 3 * (f1 - f0) - 2 * g0 - g1;
    coef[4 * i + 3] = 2 * (f0 - f1) + g0 + g1;
    f0 = f1;
    g0 = g1;
  }
  return coef;
}

const phi = (x: number) => INV_SQRT_2PI * Math.exp(-0.5 * x * x);
const erfCubics = hermiteTable(erfSeries, (x) => TWO_OVER_SQRT_PI * Math.exp(-x * x), 0, ERF_LIMIT);
// Phi(x) = (1 + erf(x / sqrt 2)) / 2, Phi' = phi
const phiCubics = hermiteTable(
  (x) => 0.5 * (1 + erfSeries(x * INV_SQRT2)),
  phi,
  -GELU_LIMIT,
  GELU_LIMIT,
);
// gelu'(x) = Phi(x) + x phi(x), whose derivative is phi(x) (2 - x^2)
const slopeCubics = hermiteTable(
  (x) => 0.5 * (1 + erfSeries(x * INV_SQRT2)) + x * phi(x),
  (x) => phi(x) * (2 - x * x),
  -GELU_LIMIT,
  GELU_LIMIT,
);
// Largest table position: inputs are clamped just inside the last interval.
const GELU_TOP = 2 * GELU_LIMIT * STEPS_PER_UNIT - 1e-9;

/** The error function, |error| < 1e-9 for every real x. */
export function erf(x: number): number {
  if (x >= ERF_LIMIT) return 1;
  if (x <= -ERF_LIMIT) return -1;
  const u = Math.abs(x) * STEPS_PER_UNIT; // NaN stays NaN
  const k = u | 0;
  const t = u - k;
  const c = k << 2;
  const y = erfCubics[c] + t * (erfCubics[c + 1] + t * (erfCubics[c + 2] + t * erfCubics[c + 3]));
  return x < 0 ? -y : y;
}

/** d gelu / dx = Phi(x) + x phi(x), |error| < 1e-9. */
export function geluSlope(x: number): number {
  const u = Math.min(Math.max((x + GELU_LIMIT) * STEPS_PER_UNIT, 0), GELU_TOP);
  const k = u | 0;
  const t = u - k;
  const c = k << 2;
  const s = slopeCubics;
  return s[c] + t * (s[c + 1] + t * (s[c + 2] + t * s[c + 3]));
}

/** x [n] -> out [n] = x Phi(x) = 0.5 x (1 + erf(x / sqrt 2)); out may alias x. */
export function geluForward(out: Float32Array, x: Float32Array, n: number): void {
  const table = phiCubics;
  for (let i = 0; i < n; i++) {
    const v = x[i];
    const u = Math.min(Math.max((v + GELU_LIMIT) * STEPS_PER_UNIT, 0), GELU_TOP); // NaN stays NaN
    const k = u | 0;
    const t = u - k;
    const c = k << 2;
    out[i] = v * (table[c] + t * (table[c + 1] + t * (table[c + 2] + t * table[c + 3])));
  }
}

/** pre [N, f] += bias [f] (in place), then act [N, f] = gelu(pre): one pass instead of two. */
function addBiasGeluForward(
  act: Float32Array,
  pre: Float32Array,
  bias: Float32Array,
  N: number,
  f: number,
): void {
  const table = phiCubics;
  for (let n = 0; n < N; n++) {
    const o = n * f;
    for (let j = 0; j < f; j++) {
      const v = Math.fround(pre[o + j] + bias[j]); // the stored pre-activation, as the backward sees it
      pre[o + j] = v;
      const u = Math.min(Math.max((v + GELU_LIMIT) * STEPS_PER_UNIT, 0), GELU_TOP);
      const k = u | 0;
      const t = u - k;
      const c = k << 2;
      act[o + j] = v * (table[c] + t * (table[c + 1] + t * (table[c + 2] + t * table[c + 3])));
    }
  }
}

/** dOut, x [n] -> dx [n] = dOut * gelu'(x); dx may alias dOut. */
export function geluBackward(
  dx: Float32Array,
  dOut: Float32Array,
  x: Float32Array,
  n: number,
): void {
  const table = slopeCubics;
  for (let i = 0; i < n; i++) {
    const u = Math.min(Math.max((x[i] + GELU_LIMIT) * STEPS_PER_UNIT, 0), GELU_TOP);
    const k = u | 0;
    const t = u - k;
    const c = k << 2;
    dx[i] = dOut[i] * (table[c] + t * (table[c + 1] + t * (table[c + 2] + t * table[c + 3])));
  }
}

/** What the backward needs: pre [N, f] = dense_h_to_4h output, act [N, f] = gelu(pre). */
export interface MlpCache {
  pre: Float32Array;
  act: Float32Array;
}

/** x [N, d] (post_attention_layernorm output) -> out [N, d]; fills cache. */
export function mlpForward(
  out: Float32Array,
  cache: MlpCache,
  x: Float32Array,
  w: LayerWeights,
  N: number,
  d: number,
  f: number,
): void {
  linearForward(cache.pre, x, w.fcInWeight, null, N, d, f);
  addBiasGeluForward(cache.act, cache.pre, w.fcInBias, N, f);
  linearForward(out, cache.act, w.fcOutWeight, w.fcOutBias, N, f, d);
}

/**
 * dOut [N, d], x [N, d] (the forward input), cache from mlpForward, dAct [N, f] scratch:
 * dx [N, d] is overwritten; grads (when given) accumulate the MLP's parameter gradients.
 */
export function mlpBackward(
  dx: Float32Array,
  grads: LayerWeights | null,
  dOut: Float32Array,
  x: Float32Array,
  cache: MlpCache,
  w: LayerWeights,
  N: number,
  d: number,
  f: number,
  dAct: Float32Array,
): void {
  linearBackward(
    dAct,
    grads?.fcOutWeight ?? null,
    grads?.fcOutBias ?? null,
    dOut,
    cache.act,
    w.fcOutWeight,
    N,
    f,
    d,
  );
  geluBackward(dAct, dAct, cache.pre, N * f);
  linearBackward(
    dx,
    grads?.fcInWeight ?? null,
    grads?.fcInBias ?? null,
    dAct,
    x,
    w.fcInWeight,
    N,
    d,
    f,
  );
}

// ---- The MLPs of the generic engine (transformer.ts): dense (GPT-2, GPT-NeoX) and gated
// (SwiGLU for Llama and Qwen, GeGLU for Gemma-2), with the activation as an argument.

/** 'gelu': exact erf GELU; 'gelu_tanh': gelu_new / gelu_pytorch_tanh; 'silu': x·sigmoid(x). */
export type Activation = 'gelu' | 'gelu_tanh' | 'silu';

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);
const GELU_CUBIC = 0.044715;

/** x [n] -> out [n] = act(x); out may alias x. */
export function activationForward(
  act: Activation,
  out: Float32Array,
  x: Float32Array,
  n: number,
): void {
  if (act === 'gelu') return geluForward(out, x, n);
  if (act === 'gelu_tanh')
    for (let i = 0; i < n; i++) {
      const v = x[i];
      out[i] = 0.5 * v * (1 + Math.tanh(SQRT_2_OVER_PI * (v + GELU_CUBIC * v * v * v)));
    }
  else
    for (let i = 0; i < n; i++) {
      const v = x[i];
      out[i] = v / (1 + Math.exp(-v));
    }
}

/** dOut, x [n] -> dx [n] = dOut · act'(x); dx may alias dOut. */
export function activationBackward(
  act: Activation,
  dx: Float32Array,
  dOut: Float32Array,
  x: Float32Array,
  n: number,
): void {
  if (act === 'gelu') return geluBackward(dx, dOut, x, n);
  if (act === 'gelu_tanh')
    for (let i = 0; i < n; i++) {
      const v = x[i];
      const t = Math.tanh(SQRT_2_OVER_PI * (v + GELU_CUBIC * v * v * v));
      const slope =
        0.5 * (1 + t) + 0.5 * v * (1 - t * t) * SQRT_2_OVER_PI * (1 + 3 * GELU_CUBIC * v * v);
      dx[i] = dOut[i] * slope;
    }
  else
    for (let i = 0; i < n; i++) {
      const sg = 1 / (1 + Math.exp(-x[i]));
      dx[i] = dOut[i] * sg * (1 + x[i] * (1 - sg));
    }
}

/**
 * Dense: out = down(act(up(x))); gated: out = down(act(gate(x)) · up(x)). Weights [out, in]:
 * up, gate [f, d], down [d, f]; biases or null.
 */
export interface FeedForwardWeights {
  upWeight: Float32Array;
  upBias: Float32Array | null;
  gateWeight: Float32Array | null;
  gateBias: Float32Array | null;
  downWeight: Float32Array;
  downBias: Float32Array | null;
}

/** up [N, f] = up(x); gate [N, f] = gate(x) (gated only, else empty); act [N, f] enters down. */
export interface FeedForwardCache {
  up: Float32Array;
  gate: Float32Array;
  act: Float32Array;
}

export function feedForwardCache(N: number, f: number, gated: boolean): FeedForwardCache {
  return {
    up: new Float32Array(N * f),
    gate: new Float32Array(gated ? N * f : 0),
    act: new Float32Array(N * f),
  };
}

/** x [N, d] -> out [N, d]; fills cache. */
export function feedForwardForward(
  out: Float32Array,
  cache: FeedForwardCache,
  x: Float32Array,
  w: FeedForwardWeights,
  act: Activation,
  N: number,
  d: number,
  f: number,
): void {
  linearForward(cache.up, x, w.upWeight, w.upBias, N, d, f);
  if (w.gateWeight) {
    linearForward(cache.gate, x, w.gateWeight, w.gateBias, N, d, f);
    activationForward(act, cache.act, cache.gate, N * f);
    for (let i = 0; i < N * f; i++) cache.act[i] *= cache.up[i];
  } else activationForward(act, cache.act, cache.up, N * f);
  linearForward(out, cache.act, w.downWeight, w.downBias, N, f, d);
}

/**
 * dOut [N, d], x [N, d] (the forward input), cache from feedForwardForward:
 * dx [N, d] += input gradient; grads (when given) accumulate the parameter gradients.
 */
export function feedForwardBackward(
  dx: Float32Array,
  grads: FeedForwardWeights | null,
  dOut: Float32Array,
  x: Float32Array,
  cache: FeedForwardCache,
  w: FeedForwardWeights,
  act: Activation,
  N: number,
  d: number,
  f: number,
): void {
  const nf = N * f;
  const dAct = new Float32Array(nf);
  linearBackward(
    dAct,
    grads?.downWeight ?? null,
    grads?.downBias ?? null,
    dOut,
    cache.act,
    w.downWeight,
    N,
    f,
    d,
  );
  const dIn = new Float32Array(N * d);
  if (w.gateWeight) {
    // act = a(gate)·up: dUp = dAct·a(gate), dGate = dAct·up·a'(gate)
    const dUp = new Float32Array(nf);
    const dGate = new Float32Array(nf);
    const aGate = new Float32Array(nf);
    activationForward(act, aGate, cache.gate, nf);
    for (let i = 0; i < nf; i++) {
      dUp[i] = dAct[i] * aGate[i];
      dGate[i] = dAct[i] * cache.up[i];
    }
    activationBackward(act, dGate, dGate, cache.gate, nf);
    linearBackward(
      dIn,
      grads?.upWeight ?? null,
      grads?.upBias ?? null,
      dUp,
      x,
      w.upWeight,
      N,
      d,
      f,
    );
    for (let i = 0; i < N * d; i++) dx[i] += dIn[i];
    linearBackward(
      dIn,
      grads?.gateWeight ?? null,
      grads?.gateBias ?? null,
      dGate,
      x,
      w.gateWeight,
      N,
      d,
      f,
    );
  } else {
    activationBackward(act, dAct, dAct, cache.up, nf);
    linearBackward(
      dIn,
      grads?.upWeight ?? null,
      grads?.upBias ?? null,
      dAct,
      x,
      w.upWeight,
      N,
      d,
      f,
    );
  }
  for (let i = 0; i < N * d; i++) dx[i] += dIn[i];
}

/** logits [n] in place: cap·tanh(logit/cap) (Gemma-2's final logit soft-capping). */
export function softcapForward(x: Float32Array, cap: number, n: number): void {
  for (let i = 0; i < n; i++) x[i] = cap * Math.tanh(x[i] / cap);
}

/** capped [n] (the forward's output), dOut [n] -> dx [n] = dOut·(1 - (capped/cap)²); may alias. */
export function softcapBackward(
  dx: Float32Array,
  dOut: Float32Array,
  capped: Float32Array,
  cap: number,
  n: number,
): void {
  for (let i = 0; i < n; i++) {
    const t = capped[i] / cap;
    dx[i] = dOut[i] * (1 - t * t);
  }
}
