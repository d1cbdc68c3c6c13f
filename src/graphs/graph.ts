// The attribution graph of one prompt: nodes (active features, error nodes, token embeddings,
// logits) and the direct-effect edges A[t, s] = a_s · ∂input_t/∂a_s of the frozen replacement
// model (replacement.ts), every other source held fixed. A target's input is a feature's
// pre-activation or a logit's demeaned value (final normalised residual · (W_U[v] − mean row)).
// The gradients come from a hand-written transpose of the frozen model, K targets per pass:
// the residual's identity path, the attention's value path with its pattern frozen, and the
// transcoders' skips, each through its layer norm with 1/σ frozen. Features feed nothing back.
//
// Node order as circuit-tracer's: features (layer, position, index), errors (layer, position),
// tokens (position), logits.

import { matmul } from '../kernels/gemm.ts';
import { demeanedUnembedding, frozenLayerNormBackward, type Replacement } from './replacement.ts';

export type GraphNode =
  | { kind: 'feature'; layer: number; position: number; feature: number; activation: number }
  | { kind: 'error'; layer: number; position: number }
  | { kind: 'token'; position: number; token: number }
  | { kind: 'logit'; position: number; token: number; probability: number };

export interface AttributionGraph {
  ids: number[];
  nodes: GraphNode[];
  /** Indices of the nodes that have an input (features and logits), in node order. */
  targets: number[];
  /** adjacency[k * nodes + s]: edge from node s into target k (row k of `targets`). */
  adjacency: Float32Array;
  /** Each target's input as the real forward computes it, and its constant term (biases, frozen-norm offsets). */
  inputs: Float64Array;
  constants: Float64Array;
}

export interface GraphOptions {
  /** Logit nodes: most likely tokens until this cumulative probability (0.95)... */
  logitProbability?: number;
  /** ...and at most this many (10). */
  maxLogits?: number;
  /** Targets per backward pass (64). */
  batchTargets?: number;
}

/** The most likely next tokens until `p` cumulative probability, at most `max`. */
export function logitTokens(logits: Float32Array, p: number, max: number) {
  let m = -Infinity;
  for (const v of logits) m = Math.max(m, v);
  let z = 0;
  for (const v of logits) z += Math.exp(v - m);
  const order = Array.from(logits.keys()).sort((a, b) => logits[b] - logits[a] || a - b);
  const out: { token: number; probability: number }[] = [];
  let sum = 0;
  for (const token of order) {
    if (out.length >= max || sum >= p) break;
    const probability = Math.exp(logits[token] - m) / z;
    out.push({ token, probability });
    sum += probability;
  }
  return out;
}

export function buildGraph(r: Replacement, options: GraphOptions = {}): AttributionGraph {
  const { model, T, transcoders } = r;
  const c = model.config;
  const d = c.hiddenSize;
  const nL = c.numLayers;
  const H = c.numHeads;
  const S = d / H;
  const nodes: GraphNode[] = [];
  const featureIndex: number[][] = []; // per layer: node index at t*F + i, or -1
  for (let L = 0; L < nL; L++) {
    const F = transcoders[L].width;
    const idx = new Array<number>(T * F).fill(-1);
    for (let t = 0; t < T; t++)
      for (let i = 0; i < F; i++) {
        const a = r.activations[L][t * F + i];
        if (a !== 0) {
          idx[t * F + i] = nodes.length;
          nodes.push({ kind: 'feature', layer: L, position: t, feature: i, activation: a });
        }
      }
    featureIndex.push(idx);
  }
  const errorStart = nodes.length;
  for (let L = 0; L < nL; L++)
    for (let t = 0; t < T; t++) nodes.push({ kind: 'error', layer: L, position: t });
  const tokenStart = nodes.length;
  r.ids.forEach((token, t) => nodes.push({ kind: 'token', position: t, token }));
  const logitStart = nodes.length;
  const logitList = logitTokens(
    r.logits,
    options.logitProbability ?? 0.95,
    options.maxLogits ?? 10,
  );
  for (const { token, probability } of logitList)
    nodes.push({ kind: 'logit', position: T - 1, token, probability });
  const targets = nodes.flatMap((n, i) => (n.kind === 'feature' || n.kind === 'logit' ? [i] : []));
  const nNodes = nodes.length;
  const adjacency = new Float32Array(targets.length * nNodes);
  const inputs = new Float64Array(targets.length);
  const directions = demeanedUnembedding(
    model,
    logitList.map((l) => l.token),
  );
  // The real inputs: pre-activations from the real run; logits demeaned.
  targets.forEach((n, k) => {
    const node = nodes[n];
    if (node.kind === 'feature') {
      const F = transcoders[node.layer].width;
      inputs[k] = r.preActivations[node.layer][node.position * F + node.feature];
    } else if (node.kind === 'logit') {
      let mean = 0;
      for (let v = 0; v < c.vocabSize; v++) mean += r.logits[v] / c.vocabSize;
      inputs[k] = r.logits[node.token] - mean;
    }
  });

  const batch = options.batchTargets ?? 64;
  for (let k0 = 0; k0 < targets.length; k0 += batch) {
    const K = Math.min(batch, targets.length - k0);
    const g = new Float32Array(K * T * d);
    // Seeds at the residual a target reads: x_L for a layer-L feature, x_n for a logit.
    const seedAt = (L: number) => {
      for (let k = 0; k < K; k++) {
        const node = nodes[targets[k0 + k]];
        const o = k * T * d;
        if (node.kind === 'feature' && node.layer === L) {
          const tc = transcoders[L];
          const seed = new Float32Array(T * d);
          seed.set(
            tc.encoder.subarray(node.feature * d, (node.feature + 1) * d),
            node.position * d,
          );
          const lw = model.weights.layers[L];
          frozenLayerNormBackward(seed, r.layers[L].rstd2, lw.ln2Weight, 1, T, d);
          for (let i = 0; i < T * d; i++) g[o + i] += seed[i];
        } else if (node.kind === 'logit' && L === nL) {
          const seed = new Float32Array(T * d);
          const j = targets[k0 + k] - logitStart;
          seed.set(directions.subarray(j * d, (j + 1) * d), (T - 1) * d);
          frozenLayerNormBackward(seed, r.rstdFinal, model.weights.lnFinalWeight, 1, T, d);
          for (let i = 0; i < T * d; i++) g[o + i] += seed[i];
        }
      }
    };
    for (let L = nL; L >= 0; L--) {
      seedAt(L);
      // Edges from the sources that write x_L: layer L-1's features and errors, or the tokens.
      for (let k = 0; k < K; k++) {
        const row = (k0 + k) * nNodes;
        const gk = g.subarray(k * T * d, (k + 1) * T * d);
        if (L === 0) {
          for (let t = 0; t < T; t++)
            adjacency[row + tokenStart + t] = dot(r.resid[0], t * d, gk, t * d, d);
          continue;
        }
        const l = L - 1;
        const tc = transcoders[l];
        const F = tc.width;
        for (let t = 0; t < T; t++) {
          adjacency[row + errorStart + l * T + t] = dot(r.errors[l], t * d, gk, t * d, d);
          for (let i = 0; i < F; i++) {
            const n = featureIndex[l][t * F + i];
            if (n < 0) continue;
            adjacency[row + n] = r.activations[l][t * F + i] * dot(tc.decoder, i * d, gk, t * d, d);
          }
        }
      }
      if (L > 0) transposeLayer(r, L - 1, g, K, T, d, H, S);
    }
  }
  const constants = new Float64Array(targets.length);
  targets.forEach((_, k) => {
    let s = 0;
    for (let j = 0; j < nNodes; j++) s += adjacency[k * nNodes + j];
    constants[k] = inputs[k] - s;
  });
  return { ids: r.ids, nodes, targets, adjacency, inputs, constants };
}

function dot(a: Float32Array, ao: number, b: Float32Array, bo: number, n: number): number {
  let s = 0;
  for (let j = 0; j < n; j++) s += a[ao + j] * b[bo + j];
  return s;
}

/** g at x_{L+1} -> g at x_L, in place: identity + attentionᵀ + skipᵀ, all frozen. */
function transposeLayer(
  r: Replacement,
  L: number,
  g: Float32Array,
  K: number,
  T: number,
  d: number,
  H: number,
  S: number,
): void {
  const lw = r.model.weights.layers[L];
  const fl = r.layers[L];
  const N = K * T;
  const gOut = g.slice(); // the gradient at x_{L+1}, which both branches read
  // Attention: out = concat·Wdᵀ; concat_t = Σ_s P[t,s] v_s; v = ln1(x)·Wvᵀ.
  const dConcat = new Float32Array(N * d);
  matmul(gOut, lw.denseWeight, dConcat, N, d, d);
  const dV = new Float32Array(N * d);
  for (let k = 0; k < K; k++)
    for (let h = 0; h < H; h++)
      for (let t = 0; t < T; t++)
        for (let s = 0; s <= t; s++) {
          const p = fl.probs[(h * T + t) * T + s];
          const to = (k * T + s) * d + h * S;
          const from = (k * T + t) * d + h * S;
          for (let i = 0; i < S; i++) dV[to + i] += p * dConcat[from + i];
        }
  const dLn1 = new Float32Array(N * d);
  matmul(dV, fl.valueWeight, dLn1, N, d, d);
  frozenLayerNormBackward(dLn1, fl.rstd1, lw.ln1Weight, K, T, d);
  for (let i = 0; i < N * d; i++) g[i] += dLn1[i];
  const skip = r.transcoders[L].skip;
  if (skip) {
    const dLn2 = new Float32Array(N * d);
    matmul(gOut, skip, dLn2, N, d, d);
    frozenLayerNormBackward(dLn2, fl.rstd2, lw.ln2Weight, K, T, d);
    for (let i = 0; i < N * d; i++) g[i] += dLn2[i];
  }
}
