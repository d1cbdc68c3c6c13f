// The attribution graph of one prompt: nodes (active features, error nodes, token embeddings,
// logits) and the direct-effect edges A[t, s] = a_s · ∂input_t/∂a_s of the frozen replacement
// model (replacement.ts), every other source held fixed. A target's input is a feature's
// pre-activation or a logit's demeaned value (final normalised residual · (W_U[v] − mean row),
// before any final soft cap). The gradients come from a hand-written transpose of the frozen
// model, K targets per pass, on its family-independent description (FrozenLayer): the
// residual's identity path, the attention's value path with its pattern frozen, and the
// transcoders' skips, each through its norm with the scale frozen, in the block's parallel or
// sequential order. Features feed nothing back. A feature writes to the residual through its
// decoders (one for a per-layer transcoder, one per later layer for a CLT): its edge to a target
// is the sum over them.
//
// Node order as circuit-tracer's: features (layer, position, index), errors (layer, position),
// tokens (position), logits.

import { matmul } from '../kernels/gemm.ts';
import {
  demeanedUnembedding,
  frozenNormAt,
  frozenNormBackward,
  type Replacement,
} from './replacement.ts';

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
  const { T, mlps } = r;
  const d = r.hiddenSize;
  const nL = r.numLayers;
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
    r,
    logitList.map((l) => l.token),
  );
  // The real inputs: pre-activations from the real run; logits demeaned, before any soft cap.
  targets.forEach((n, k) => {
    const node = nodes[n];
    if (node.kind === 'feature') {
      const F = mlps.width(node.layer);
      inputs[k] = r.preActivations[node.layer][node.position * F + node.feature];
    } else if (node.kind === 'logit') {
      const V = r.preCapLogits.length;
      let mean = 0;
      for (let v = 0; v < V; v++) mean += r.preCapLogits[v] / V;
      inputs[k] = r.preCapLogits[node.token] - mean;
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
    // Seeds: each target's input direction through its frozen norm at its position, placed on
    // the stream that norm reads: the MLP input stream of layer L for a layer-L feature (added by
    // transposeLayer), the last residual x_n for a logit.
    const seed = (L: number) => {
      const reads = (kr: number) => {
        const node = nodes[targets[kr]];
        return (node.kind === 'feature' && node.layer === L) || (node.kind === 'logit' && L === nL);
      };
      if (!rows.some(reads)) return null;
      const out = new Float32Array(K * Tb * d);
      let any = false;
      rows.forEach((kr, k) => {
        const node = nodes[targets[kr]];
        let row: Float32Array;
        if (node.kind === 'feature' && node.layer === L) {
          row = mlps.encoderRow(L, node.feature);
          frozenNormBackward(row, frozenNormAt(r.layers[L].mlpNorm, node.position), 1, 1, d);
        } else if (node.kind === 'logit' && L === nL) {
          const j = targets[kr] - logitStart;
          row = directions.slice(j * d, (j + 1) * d);
          frozenNormBackward(row, frozenNormAt(r.finalNorm, T - 1), 1, 1, d);
        } else return;
        out.set(row, (k * Tb + node.position) * d);
        any = true;
      });
      return any ? out : null;
    };
    for (let L = top; L >= 0; L--) {
      // g: at x_{L+1} -> at x_L (a logit's seed is at x_n itself)
      if (L === nL) {
        const s = seed(nL);
        if (s) for (let i = 0; i < g.length; i++) g[i] += s[i];
      } else transposeLayer(r, L, g, seed(L), K, Tb, d);
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

/**
 * g at x_{L+1} -> g at x_L, in place, K targets over T positions. `seeds` ([K*T*d] or null) are
 * layer L's feature targets as gradients at the stream the MLP's norm reads. Parallel:
 * g ← g + attnᵀ g + n2ᵀ skipᵀ g + seeds. Sequential: g_mid = g + n2ᵀ skipᵀ g + seeds, then
 * g ← g_mid + attnᵀ g_mid.
 */
function transposeLayer(
  r: Replacement,
  L: number,
  g: Float32Array,
  seeds: Float32Array | null,
  K: number,
  T: number,
  d: number,
): void {
  const fl = r.layers[L];
  const N = K * T;
  const gOut = g.slice(); // the gradient at x_{L+1}
  const live = gOut.some((v) => v !== 0); // nothing above yet: only the seeds flow
  const skip = r.mlps.skip(L);
  const sequential = fl.wiring === 'sequential';
  if (skip && live) {
    const dN2 = new Float32Array(N * d);
    matmul(gOut, skip, dN2, N, d, d);
    frozenNormBackward(dN2, fl.mlpNorm, K, T, d);
    for (let i = 0; i < N * d; i++) g[i] += dN2[i];
  }
  if (seeds) for (let i = 0; i < N * d; i++) g[i] += seeds[i];
  // Attention reads x; in the parallel block its output gradient is gOut, in the sequential one g_mid.
  if (!live && !(sequential && seeds)) return;
  const dAttn = attentionTranspose(r, L, sequential ? g.slice() : gOut, K, T, d);
  for (let i = 0; i < N * d; i++) g[i] += dAttn[i];
}

/** The frozen attention branch's transpose: gradient at its output [K*T*d] -> at its input x. */
function attentionTranspose(
  r: Replacement,
  L: number,
  gA: Float32Array,
  K: number,
  T: number,
  d: number,
): Float32Array {
  const fl = r.layers[L];
  const { heads: H, kvHeads: KV, headDim: Dh } = fl;
  const group = H / KV;
  const N = K * T;
  if (fl.postAttnNorm) frozenNormBackward(gA, fl.postAttnNorm, K, T, d);
  // out = z·Woᵀ (+ b); z_t,h = Σ_s P_h[t,s] v_s,kv(h); v = n1(x)·Wvᵀ (+ b).
  const Z = H * Dh;
  const dZ = new Float32Array(N * Z);
  matmul(gA, fl.outWeight, dZ, N, Z, d);
  // Per head h: dV_h = P_hᵀ · dZ_h, all K targets at once as [T, K*Dh] columns.
  const KS = K * Dh;
  const byHead = new Float32Array(H * T * KS);
  for (let k = 0; k < K; k++)
    for (let t = 0; t < T; t++)
      for (let h = 0; h < H; h++)
        byHead.set(
          dZ.subarray((k * T + t) * Z + h * Dh, (k * T + t) * Z + (h + 1) * Dh),
          (h * T + t) * KS + k * Dh,
        );
  const dVByHead = new Float32Array(H * T * KS);
  matmul(patternPrefix(fl.probs, H, r.T, T), byHead, dVByHead, T, KS, T, {
    transA: true,
    batch: H,
  });
  // The heads of a group read one value head: their gradients add.
  const V = KV * Dh;
  const dV = new Float32Array(N * V);
  for (let k = 0; k < K; k++)
    for (let t = 0; t < T; t++)
      for (let h = 0; h < H; h++) {
        const from = (h * T + t) * KS + k * Dh;
        const to = (k * T + t) * V + Math.floor(h / group) * Dh;
        if (group === 1) dV.set(dVByHead.subarray(from, from + Dh), to);
        else for (let i = 0; i < Dh; i++) dV[to + i] += dVByHead[from + i];
      }
  const dN1 = new Float32Array(N * d);
  matmul(dV, fl.valueWeight, dN1, N, d, V);
  frozenNormBackward(dN1, fl.attnNorm, K, T, d);
  return dN1;
}
