// Pruning by influence, as circuit-tracer prunes (Ameisen et al. 2025, §"Graph pruning"):
// normalise |A| by rows (each target's incoming edges sum to 1), push the logits' probabilities
// back through the series wA + wA² + ... (the graph is acyclic, so it ends), keep the fewest
// nodes carrying `nodeThreshold` of the total influence (tokens and logits always), then the
// fewest edges of the remaining graph carrying `edgeThreshold` of the edge influence, and drop
// features and errors left without an outgoing edge (features also without an incoming one).
// Also the graph's replacement score and completeness score.
//
// A is square here: n nodes, rows targets, columns sources (errors and tokens have empty rows).

import type { AttributionGraph } from './graph.ts';

/** The graph's edges as a dense square matrix [n*n], row = target. */
export function squareAdjacency(g: AttributionGraph): Float64Array {
  const n = g.nodes.length;
  const A = new Float64Array(n * n);
  g.targets.forEach((t, k) => {
    for (let s = 0; s < n; s++) A[t * n + s] = g.adjacency[k * n + s];
  });
  return A;
}

/** |A| with each row divided by its sum (at least 1e-10). */
export function normalizeRows(A: Float64Array, n: number): Float64Array {
  const out = new Float64Array(n * n);
  for (let r = 0; r < n; r++) {
    let s = 0;
    for (let c = 0; c < n; c++) s += Math.abs(A[r * n + c]);
    const inv = 1 / Math.max(s, 1e-10);
    for (let c = 0; c < n; c++) out[r * n + c] = Math.abs(A[r * n + c]) * inv;
  }
  return out;
}

/** w·A + w·A² + ... until the terms vanish (A is nilpotent on a DAG; refuses after n+1 terms). */
export function influence(A: Float64Array, w: Float64Array, n: number): Float64Array {
  let current = vecMat(w, A, n);
  const total = current.slice();
  for (let i = 0; current.some((v) => v !== 0); i++) {
    if (i > n) throw new Error('influence: the adjacency has a cycle (the series does not end)');
    current = vecMat(current, A, n);
    for (let j = 0; j < n; j++) total[j] += current[j];
  }
  return total;
}

function vecMat(v: Float64Array, A: Float64Array, n: number): Float64Array {
  const out = new Float64Array(n);
  for (let r = 0; r < n; r++) {
    const x = v[r];
    if (x === 0) continue;
    for (let c = 0; c < n; c++) out[c] += x * A[r * n + c];
  }
  return out;
}

/** The smallest score among the top ones that reach `fraction` of the total. */
export function scoreThreshold(scores: ArrayLike<number>, fraction: number): number {
  // Zeros add nothing to the total: sort only the positive scores (typed, ascending).
  let count = 0;
  for (let i = 0; i < scores.length; i++) if (scores[i] > 0) count++;
  if (count === 0) return 0;
  const sorted = new Float64Array(count);
  let total = 0;
  for (let i = 0, j = 0; i < scores.length; i++)
    if (scores[i] > 0) {
      sorted[j++] = scores[i];
      total += scores[i];
    }
  sorted.sort();
  let cumulative = 0;
  for (let i = count - 1; i >= 0; i--) {
    cumulative += sorted[i];
    if (cumulative / total >= fraction) return sorted[i];
  }
  return sorted[0];
}

export interface PrunedGraph {
  nodeMask: Uint8Array;
  /** [n*n], row = target. */
  edgeMask: Uint8Array;
  /** Each node's influence on the logits (probability-weighted). */
  nodeInfluence: Float64Array;
  /** Each node's cumulative share of influence when nodes are sorted by it (circuit-tracer's `influence`). */
  cumulativeInfluence: Float64Array;
}

export function logitWeights(g: AttributionGraph): Float64Array {
  const w = new Float64Array(g.nodes.length);
  g.nodes.forEach((node, i) => {
    if (node.kind === 'logit') w[i] = node.probability;
  });
  return w;
}

export function pruneGraph(
  g: AttributionGraph,
  nodeThreshold = 0.8,
  edgeThreshold = 0.98,
): PrunedGraph {
  for (const [flag, v] of [
    ['node threshold', nodeThreshold],
    ['edge threshold', edgeThreshold],
  ] as const)
    if (!(v >= 0 && v <= 1)) throw new Error(`${flag} must be in [0, 1], got ${v}`);
  const n = g.nodes.length;
  const A = squareAdjacency(g);
  const w = logitWeights(g);
  const nodeInfluence = influence(normalizeRows(A, n), w, n);
  const kind = g.nodes.map((node) => node.kind);
  const always = (i: number) => kind[i] === 'token' || kind[i] === 'logit';
  const nodeCut = scoreThreshold(nodeInfluence, nodeThreshold);
  const nodeMask = Uint8Array.from(nodeInfluence, (v, i) => (v >= nodeCut || always(i) ? 1 : 0));
  const pruned = A.slice();
  for (let r = 0; r < n; r++)
    for (let c = 0; c < n; c++) if (!nodeMask[r] || !nodeMask[c]) pruned[r * n + c] = 0;
  const normalized = normalizeRows(pruned, n);
  const reach = influence(normalized, w, n);
  for (let i = 0; i < n; i++) reach[i] += w[i];
  const edgeScores = new Float64Array(n * n);
  for (let r = 0; r < n; r++)
    for (let c = 0; c < n; c++) edgeScores[r * n + c] = normalized[r * n + c] * reach[r];
  const edgeCut = scoreThreshold(edgeScores, edgeThreshold);
  const edgeMask = new Uint8Array(n * n); // a plain loop: Uint8Array.from with a map is slow at n²
  for (let i = 0; i < n * n; i++)
    if (edgeScores[i] >= edgeCut && edgeScores[i] > 0) edgeMask[i] = 1;
  // Drop features and errors without outgoing edges, features without incoming ones, until
  // stable; edge counts per node make each removal O(n).
  const outgoing = new Int32Array(n);
  const incoming = new Int32Array(n);
  for (let r = 0; r < n; r++)
    for (let c = 0; c < n; c++)
      if (edgeMask[r * n + c]) {
        outgoing[c]++;
        incoming[r]++;
      }
  const dead = (i: number) =>
    nodeMask[i] === 1 &&
    !always(i) &&
    (outgoing[i] === 0 || (kind[i] === 'feature' && incoming[i] === 0));
  const queue: number[] = [];
  for (let i = 0; i < n; i++) if (dead(i)) queue.push(i);
  while (queue.length > 0) {
    const i = queue.pop()!;
    if (!dead(i)) continue;
    nodeMask[i] = 0;
    for (let j = 0; j < n; j++) {
      if (edgeMask[i * n + j]) {
        edgeMask[i * n + j] = 0;
        outgoing[j]--;
        incoming[i]--;
        if (dead(j)) queue.push(j);
      }
      if (edgeMask[j * n + i]) {
        edgeMask[j * n + i] = 0;
        incoming[j]--;
        outgoing[i]--;
        if (dead(j)) queue.push(j);
      }
    }
  }
  const order = Array.from(nodeInfluence.keys()).sort(
    (a, b) => nodeInfluence[b] - nodeInfluence[a],
  );
  const total = nodeInfluence.reduce((a, b) => a + b, 0);
  const cumulativeInfluence = new Float64Array(n);
  let cumulative = 0;
  for (const i of order) {
    cumulative += nodeInfluence[i];
    cumulativeInfluence[i] = total > 0 ? cumulative / total : 0;
  }
  return { nodeMask, edgeMask, nodeInfluence, cumulativeInfluence };
}

/**
 * Replacement score: of the influence on the logits that ends at the graph's sources, the share
 * that ends at tokens rather than errors. Completeness score: the influence-weighted share of
 * each node's incoming edge weight that comes from non-error nodes.
 */
export function graphScores(g: AttributionGraph): { replacement: number; completeness: number } {
  const n = g.nodes.length;
  const normalized = normalizeRows(squareAdjacency(g), n);
  const w = logitWeights(g);
  const reach = influence(normalized, w, n);
  let tokens = 0;
  let errors = 0;
  g.nodes.forEach((node, i) => {
    if (node.kind === 'token') tokens += reach[i];
    if (node.kind === 'error') errors += reach[i];
  });
  let weighted = 0;
  let total = 0;
  for (let r = 0; r < n; r++) {
    const kindR = g.nodes[r].kind;
    if (kindR !== 'feature' && kindR !== 'logit') continue;
    let fromErrors = 0;
    for (let c = 0; c < n; c++)
      if (g.nodes[c].kind === 'error') fromErrors += normalized[r * n + c];
    const weight = reach[r] + w[r];
    weighted += (1 - fromErrors) * weight;
    total += weight;
  }
  return { replacement: tokens / (tokens + errors), completeness: weighted / total };
}
