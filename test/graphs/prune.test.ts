// Influence and pruning on a graph small enough to work out by hand.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AttributionGraph, GraphNode } from '../../src/graphs/graph.ts';
import { graphScores, influence, pruneGraph, scoreThreshold } from '../../src/graphs/prune.ts';

// Nodes: f0 f1 (features), e (error), tok, logit. Edges into f0: e 1, tok 3; into f1: tok 1;
// into the logit: f0 6, f1 -1 (influence counts |weight|), e 1.
const nodes: GraphNode[] = [
  { kind: 'feature', layer: 0, position: 0, feature: 0, activation: 1 },
  { kind: 'feature', layer: 0, position: 0, feature: 1, activation: 1 },
  { kind: 'error', layer: 0, position: 0 },
  { kind: 'token', position: 0, token: 5 },
  { kind: 'logit', position: 0, token: 7, probability: 1 },
];
const n = nodes.length;
const rows: Record<number, number[]> = {
  0: [0, 0, 1, 3, 0],
  1: [0, 0, 0, 1, 0],
  4: [6, -1, 1, 0, 0],
};
const targets = [0, 1, 4];
const adjacency = new Float32Array(targets.length * n);
targets.forEach((t, k) => adjacency.set(rows[t], k * n));
const g: AttributionGraph = {
  ids: [5],
  nodes,
  targets,
  adjacency,
  inputs: new Float64Array(3),
  constants: new Float64Array(3),
};

test('influence: the normalised series from the logits, by hand', () => {
  // Normalised rows: f0 <- e 1/4, tok 3/4; f1 <- tok 1; logit <- f0 6/8, f1 1/8, e 1/8.
  const A = new Float64Array(n * n);
  targets.forEach((t) => {
    const sum = rows[t].reduce((a, b) => a + Math.abs(b), 0);
    rows[t].forEach((v, s) => (A[t * n + s] = Math.abs(v) / sum));
  });
  const w = Float64Array.from([0, 0, 0, 0, 1]);
  const got = Array.from(influence(A, w, n));
  const want = [6 / 8, 1 / 8, 1 / 8 + (6 / 8) * (1 / 4), (6 / 8) * (3 / 4) + 1 / 8, 0];
  got.forEach((v, i) => assert.ok(Math.abs(v - want[i]) < 1e-12, `node ${i}: ${v} vs ${want[i]}`));
});

test('pruning keeps the fewest nodes reaching the threshold, tokens and logits always', () => {
  assert.equal(scoreThreshold([5, 3, 1, 1], 0.8), 3);
  // Influences: f0 .75, f1 .125, e .3125, tok .6875; total 1.875; 0.8 of it needs f0, tok, e.
  const p = pruneGraph(g, 0.8, 1);
  assert.deepEqual(Array.from(p.nodeMask), [1, 0, 1, 1, 1]);
  assert.equal(p.edgeMask[4 * n + 1], 0, 'no edge from a pruned node');
  assert.equal(p.edgeMask[4 * n + 0], 1);
  const s = graphScores(g);
  // Influence ending at tokens .6875 vs errors .3125.
  assert.ok(Math.abs(s.replacement - 0.6875) < 1e-12, `replacement ${s.replacement}`);
});
