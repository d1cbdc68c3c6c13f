// What the graph tests compare: a target's input in a frozen forward, within a relative tolerance.

import assert from 'node:assert/strict';
import type { AttributionGraph } from '../../src/graphs/graph.ts';
import type { frozenForward } from '../../src/graphs/replacement.ts';

/** |actual − expected| ≤ 1e-4 · max(scale, 1e-3). */
export function close(actual: number, expected: number, scale: number, what: string): void {
  assert.ok(
    Math.abs(actual - expected) <= 1e-4 * Math.max(scale, 1e-3),
    `${what}: ${actual} vs ${expected} (scale ${scale})`,
  );
}

/** Target k's input in the frozen forward: a feature's pre-activation (width F) or a demeaned logit. */
export function targetValue(
  g: AttributionGraph,
  out: ReturnType<typeof frozenForward>,
  k: number,
  F: number,
): number {
  const node = g.nodes[g.targets[k]];
  if (node.kind === 'feature')
    return out.preActivations[node.layer][node.position * F + node.feature];
  const firstLogit = g.nodes.findIndex((n) => n.kind === 'logit');
  return out.logits[g.targets[k] - firstLogit];
}
