// Exact activation patching of nodes: one tail run per chunk of (node, position) variants.

import type { Dictionary } from '../sae/dictionary.ts';
import type { BatchNodes, NodeContext, SiteNodes } from './nodes.ts';
import { gatherRows } from '../kernels/rows.ts';
import { runFromSites } from './tail-runs.ts';

// Tokens per tail batch of exact patching (rows of T tokens each).
const EXACT_TOKENS = 2048;

/**
 * Exact effects: m with one node patched at one position, minus m clean. Each patched variant is
 * one row of a tail batch: the clean example with x += Δf_i·W_D[i] (or Δε) at that position.
 */
export function exactEffects(
  ctx: NodeContext,
  bn: BatchNodes,
  dict: Dictionary,
  nodes: SiteNodes,
): void {
  const { T, lengths } = bn;
  const d = ctx.tails.model.siteWidth(nodes.site); // the site's width
  const N = bn.B * T;
  const xClean = bn.clean.get(nodes.site)!;
  const { delta, errorDelta } = nodes;
  // Work list: (row n, entry e) for a feature, (row n, -1) for the error; only where Δ ≠ 0.
  const work: [number, number][] = [];
  for (let n = 0; n < N; n++) {
    if (n % T >= lengths[Math.floor(n / T)]) continue;
    for (let e = delta.rowStart[n]; e < delta.rowStart[n + 1]; e++) work.push([n, e]);
    if (errorDelta.subarray(n * d, (n + 1) * d).some((v) => v !== 0)) work.push([n, -1]);
  }
  const perRun = Math.max(1, Math.floor(EXACT_TOKENS / T));
  for (let start = 0; start < work.length; start += perRun) {
    const chunk = work.slice(start, start + perRun);
    const rows = chunk.map(([n]) => Math.floor(n / T));
    const x = gatherRows(xClean, rows, T * d);
    chunk.forEach(([n, e], r) => {
      const o = r * T * d + (n % T) * d;
      if (e < 0) for (let j = 0; j < d; j++) x[o + j] += errorDelta[n * d + j];
      else {
        const w = dict.decoderRow(delta.index[e]);
        const a = delta.value[e];
        for (let j = 0; j < d; j++) x[o + j] += a * w[j];
      }
    });
    const { m } = runFromSites(ctx, bn, [{ site: nodes.site, rows, x }], false);
    chunk.forEach(([n, e], r) => {
      const effect = m[r] - bn.mClean[Math.floor(n / T)];
      if (e < 0) nodes.errorEffect[n] = effect;
      else nodes.effect[e] = effect;
    });
  }
}
