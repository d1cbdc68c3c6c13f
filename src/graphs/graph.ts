// The attribution graph of one prompt: nodes (active features, error nodes, token embeddings,
// logits) and the direct-effect edges A[t, s] = a_s · ∂input_t/∂a_s of the frozen replacement
// model (replacement.ts), every other source held fixed. A target's input is a feature's
// pre-activation or a logit's demeaned value (final normalised residual · (W_U[v] − mean row)).
// The gradients come from a hand-written transpose of the frozen model, K targets per pass:
// the residual's identity path, the attention's value path with its pattern frozen, and the
// transcoders' skips, each through its layer norm with 1/σ frozen. Features feed nothing back.
// A feature writes to the residual through its decoders (one for a per-layer transcoder, one per
// later layer for a CLT): its edge to a target is the sum over them.
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
  const { model, T, mlps } = r;
  const c = model.config;
  const d = c.hiddenSize;
  const nL = c.numLayers;
  const H = c.numHeads;
  const S = d / H;
  const nodes: GraphNode[] = [];
  // Feature nodes by (layer, position, index); per layer and position, the active features.
  const active: { ids: number[]; nodes: number[] }[][] = [];
  for (let L = 0; L < nL; L++) {
    const F = mlps.width(L);
    const perPosition: { ids: number[]; nodes: number[] }[] = [];
    for (let t = 0; t < T; t++) {
      const ids: number[] = [];
      const ns: number[] = [];
      for (let i = 0; i < F; i++) {
        const a = r.activations[L][t * F + i];
        if (a === 0) continue;
        ids.push(i);
        ns.push(nodes.length);
        nodes.push({ kind: 'feature', layer: L, position: t, feature: i, activation: a });
      }
      perPosition.push({ ids, nodes: ns });
    }
    active.push(perPosition);
  }
  // writers[L][t]: the features that write layer L's MLP output at position t (their own layer's
  // for per-layer transcoders, every layer l <= L's for a CLT) and their vectors a_s·W_dec[l→L].
  const writers: { nodes: number[]; vectors: Float32Array }[][] = [];
  for (let L = 0; L < nL; L++) {
    const perPosition: { nodes: number[]; vectors: Float32Array }[] = [];
    for (let t = 0; t < T; t++) {
      const parts: { nodes: number[]; vectors: Float32Array }[] = [];
      for (let l = 0; l <= L; l++) {
        const { ids, nodes: ns } = active[l][t];
        if (ids.length === 0 || mlps.lastTarget(l) < L) continue;
        const vectors = mlps.decoderRows(l, L, ids);
        const F = mlps.width(l);
        ids.forEach((i, j) => {
          const a = r.activations[l][t * F + i];
          for (let m = 0; m < d; m++) vectors[j * d + m] *= a;
        });
        parts.push({ nodes: ns, vectors });
      }
      const vectors = new Float32Array(parts.reduce((s, p) => s + p.vectors.length, 0));
      let o = 0;
      for (const p of parts) {
        vectors.set(p.vectors, o);
        o += p.vectors.length;
      }
      perPosition.push({ nodes: parts.flatMap((p) => p.nodes), vectors });
    }
    writers.push(perPosition);
  }
  // Nodes in circuit-tracer's order: features by (layer, position, index), as pushed above.
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
      const F = mlps.width(node.layer);
      inputs[k] = r.preActivations[node.layer][node.position * F + node.feature];
    } else if (node.kind === 'logit') {
      let mean = 0;
      for (let v = 0; v < c.vocabSize; v++) mean += r.logits[v] / c.vocabSize;
      inputs[k] = r.logits[node.token] - mean;
    }
  });

  // Batches of targets that read the same layer, by position: a batch's backward starts at its
  // highest layer and covers positions up to its last (the model is causal), which roughly
  // quarters the work against batching in node order.
  const seedLayer = (k: number) => {
    const node = nodes[targets[k]];
    return node.kind === 'feature' ? node.layer : nL;
  };
  const order = targets
    .map((_, k) => k)
    .sort(
      (a, b) =>
        seedLayer(a) - seedLayer(b) ||
        nodes[targets[a]].position - nodes[targets[b]].position ||
        a - b,
    );
  const batch = options.batchTargets ?? 64;
  for (let b0 = 0; b0 < order.length; b0 += batch) {
    const rows = order.slice(b0, b0 + batch);
    const K = rows.length;
    const Tb = Math.max(...rows.map((k) => nodes[targets[k]].position)) + 1;
    const top = Math.max(...rows.map(seedLayer));
    const g = new Float32Array(K * Tb * d);
    // Seeds at the residual a target reads: x_L for a layer-L feature, x_n for a logit; each is
    // its input direction through the frozen norm at the target's position.
    const seedAt = (L: number) => {
      rows.forEach((kr, k) => {
        const node = nodes[targets[kr]];
        let row: Float32Array;
        let rstd: number;
        let gamma: Float32Array;
        if (node.kind === 'feature' && node.layer === L) {
          row = mlps.encoderRow(L, node.feature);
          rstd = r.layers[L].rstd2[node.position];
          gamma = model.weights.layers[L].ln2Weight;
        } else if (node.kind === 'logit' && L === nL) {
          const j = targets[kr] - logitStart;
          row = directions.slice(j * d, (j + 1) * d);
          rstd = r.rstdFinal[T - 1];
          gamma = model.weights.lnFinalWeight;
        } else return;
        frozenLayerNormBackward(row, Float64Array.of(rstd), gamma, 1, 1, d);
        const o = (k * Tb + node.position) * d;
        for (let j = 0; j < d; j++) g[o + j] += row[j];
      });
    };
    for (let L = top; L >= 0; L--) {
      seedAt(L);
      // Edges from the sources that write x_L: layer L-1's features and errors, or the tokens.
      const gAt = new Float32Array(K * d); // the K gradients at one position
      for (let t = 0; t < Tb; t++) {
        for (let k = 0; k < K; k++)
          gAt.set(g.subarray((k * Tb + t) * d, (k * Tb + t + 1) * d), k * d);
        const constant = L === 0 ? r.resid[0] : r.errors[L - 1];
        const node = L === 0 ? tokenStart + t : errorStart + (L - 1) * T + t;
        for (let k = 0; k < K; k++)
          adjacency[rows[k] * nNodes + node] = dot(constant, t * d, gAt, k * d, d);
        if (L === 0) continue;
        const w = writers[L - 1][t];
        const n = w.nodes.length;
        if (n === 0) continue;
        const edges = new Float32Array(K * n);
        matmul(gAt, w.vectors, edges, K, n, d, { transB: true });
        for (let k = 0; k < K; k++) {
          const row = rows[k] * nNodes;
          // += : a CLT feature writes several layers' outputs; its edge is the sum.
          for (let j = 0; j < n; j++) adjacency[row + w.nodes[j]] += edges[k * n + j];
        }
      }
      if (L > 0) transposeLayer(r, L - 1, g, K, Tb, d, H, S);
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

/** The attention pattern among the first Tb positions: [H, T, T] -> [H, Tb, Tb]. */
function patternPrefix(probs: Float32Array, H: number, T: number, Tb: number): Float32Array {
  if (Tb === T) return probs;
  const out = new Float32Array(H * Tb * Tb);
  for (let h = 0; h < H; h++)
    for (let t = 0; t < Tb; t++)
      out.set(probs.subarray((h * T + t) * T, (h * T + t) * T + Tb), (h * Tb + t) * Tb);
  return out;
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
  // Per head h: dV_h = P_hᵀ · dConcat_h, all K targets at once as [T, K*S] columns.
  const KS = K * S;
  const byHead = new Float32Array(H * T * KS);
  for (let k = 0; k < K; k++)
    for (let t = 0; t < T; t++)
      for (let h = 0; h < H; h++)
        byHead.set(
          dConcat.subarray((k * T + t) * d + h * S, (k * T + t) * d + (h + 1) * S),
          (h * T + t) * KS + k * S,
        );
  const dVByHead = new Float32Array(H * T * KS);
  matmul(patternPrefix(fl.probs, H, r.T, T), byHead, dVByHead, T, KS, T, {
    transA: true,
    batch: H,
  });
  const dV = new Float32Array(N * d);
  for (let k = 0; k < K; k++)
    for (let t = 0; t < T; t++)
      for (let h = 0; h < H; h++)
        dV.set(
          dVByHead.subarray((h * T + t) * KS + k * S, (h * T + t) * KS + (k + 1) * S),
          (k * T + t) * d + h * S,
        );
  const dLn1 = new Float32Array(N * d);
  matmul(dV, fl.valueWeight, dLn1, N, d, d);
  frozenLayerNormBackward(dLn1, fl.rstd1, lw.ln1Weight, K, T, d);
  for (let i = 0; i < N * d; i++) g[i] += dLn1[i];
  const skip = r.mlps.skip(L);
  if (skip) {
    const dLn2 = new Float32Array(N * d);
    matmul(gOut, skip, dLn2, N, d, d);
    frozenLayerNormBackward(dLn2, fl.rstd2, lw.ln2Weight, K, T, d);
    for (let i = 0; i < N * d; i++) g[i] += dLn2[i];
  }
}
