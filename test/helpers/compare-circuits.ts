// Comparing a merged (sharded) circuit with a single run's.

import assert from 'node:assert/strict';
import type { Circuit } from '../../src/circuit/circuit.ts';

/** Largest |a - b| / max(|a|, |b|) over matching ids; asserts the id sets are equal. */
export function compareCircuits(single: Circuit, merged: Circuit): number {
  const { nodes: n1, edges: e1, ...h1 } = single;
  const { nodes: n2, edges: e2, ...h2 } = merged;
  assert.deepEqual({ ...h2, metric: null }, { ...h1, metric: null });
  let worst = 0;
  const rel = (a: number, b: number) =>
    a === b ? 0 : Math.abs(a - b) / Math.max(Math.abs(a), Math.abs(b));
  worst = Math.max(worst, rel(h1.metric.clean, h2.metric.clean));
  worst = Math.max(worst, rel(h1.metric.patch ?? 0, h2.metric.patch ?? 0));
  assert.deepEqual(
    n2.map((n) => n.id),
    n1.map((n) => n.id),
  );
  n1.forEach((n, i) => (worst = Math.max(worst, rel(n.effect, n2[i].effect))));
  assert.deepEqual(
    e2.map((e) => `${e.source}->${e.target}`),
    e1.map((e) => `${e.source}->${e.target}`),
  );
  e1.forEach((e, i) => (worst = Math.max(worst, rel(e.weight, e2[i].weight))));
  return worst;
}
