// Edge weights (direct effects) for one batch: weight(u -> d) = ∇_d m · ∂d/∂u · Δu, with ∇_d m the
// downstream node's mean gradient from the node stage and ∂d/∂u on the clean input along the
// direct path only (gradients stopped at the sites in between):
//
//   mlp_L -> resid_L, attn_L -> resid_L (mlp_L stopped), prev -> resid_L (attn_L, mlp_L stopped)
//       all identity maps: the VJP of a downstream resid node is its own seed, no pass needed;
//   prev -> attn_L: VJP through input_layernorm + attention;
//   prev -> mlp_L (attn_L stopped): VJP through post_attention_layernorm + MLP; with a sequential
//       residual the MLP reads mid = prev + attn_L, so attn_L -> mlp_L is an edge too, with the
//       same VJP (∂mlp/∂attn = ∂mlp/∂mid = ∂mlp/∂prev|attn frozen). The path prev -> attn_L ->
//       mlp_L is not direct: it is the two edges prev -> attn_L and attn_L -> mlp_L.
//   prev = resid_{L-1}, or embed for L = 0.
//
// Downstream nodes are functions of their site's real activation x_D:
//   feature j: f_j = act(W_E[j]·(x - b_D) + b_E[j]), so ∂f_j/∂x = 1[f_j ≠ 0]·W_E[j] (relu,
//     jumprelu and topk alike: the active set is locally constant; identity: e_j);
//   error: ε = x - W_D f(x) - b_D, so gᵀ∂ε/∂x = g - W_Eᵀ(mask ⊙ W_Dᵀ g).
// The seed of node d at x_D is ∇_d m times that row; its VJP gives g_U at the upstream site, and
// upstream nodes reach x_U through their decoder row (feature i: g_U·W_D[i]·Δf_i) or directly
// (error: g_U·Δε).
//
// VJPs run on `tails.layer(L)` (layer L alone, fed the clean resid_{L-1}): one forward per batch,
// then backward passes whose seeds carry many downstream nodes at once: one per example for
// attention (its VJP spreads over earlier positions), one per position for the row-local MLP.
//
// T tokens, d model dim, F a site's dictionary width, K downstream nodes sharing an upstream row.

import { matmul } from '../kernels/gemm.ts';
import { dotRow } from '../kernels/rows.ts';
import { parseSite } from '../model/sites.ts';
import { SparseAutoencoder, type Dictionary } from '../sae/dictionary.ts';
import type { EffectSums } from '../circuit/build.ts';
import { Tails } from './tails.ts';
import type { BatchNodes, NodeContext, SiteNodes } from './nodes.ts';

/** A downstream node of one example: its row n = b·T + t, feature (null = error) and VJP seed. */
interface Downstream {
  n: number;
  /** Node number in EffectSums. */
  node: number;
  seed: Float32Array; // [d]
}

export interface EdgeOptions {
  /** Downstream nodes: |effect| above this in their example and position. */
  nodeThreshold: number;
  /**
   * The circuit's nodes (per site index, by EffectSums node number): only edges between them are
   * computed, as only those are kept. Absent: all nodes.
   */
  circuit?: Uint8Array[];
}

/** Sites whose nodes feed `site` directly, with the VJP that carries a seed there. */
export function upstreamSites(site: string, numLayers: number, parallel: boolean): string[] {
  const ref = parseSite(site, numLayers);
  if (ref.kind === 'embed') return [];
  const prev = ref.layer === 0 ? 'embed' : `resid_${ref.layer - 1}`;
  if (ref.kind === 'resid') return [`mlp_${ref.layer}`, `attn_${ref.layer}`, prev];
  if (ref.kind === 'mlp' && !parallel) return [`attn_${ref.layer}`, prev];
  return [prev];
}

function encoderRow(dict: Dictionary, j: number, d: number): Float32Array {
  if (dict instanceof SparseAutoencoder) return dict.encoderRow(j);
  if (dict.kind === 'identity') {
    const e = new Float32Array(d);
    e[j] = 1;
    return e;
  }
  throw new Error(`${dict.site}: edges need the encoder of a ${dict.kind} dictionary`);
}

/** The downstream nodes of a site in one batch, with their seeds at the site's activation. */
function downstreamNodes(
  sn: SiteNodes,
  dict: Dictionary,
  bn: BatchNodes,
  sums: EffectSums,
  threshold: number,
  keep: Uint8Array | undefined,
  d: number,
): Downstream[] {
  const s = sums.index(sn.site);
  const out: Downstream[] = [];
  const { delta, cleanActive, grad } = sn;
  const identity = dict.kind === 'identity';
  const active = new Uint8Array(dict.width); // 1 for the features active on this row's clean input
  for (let n = 0; n < bn.B * bn.T; n++) {
    const t = n % bn.T;
    const g = n * d;
    for (let a = cleanActive.rowStart[n]; a < cleanActive.rowStart[n + 1]; a++)
      active[cleanActive.index[a]] = 1;
    for (let e = delta.rowStart[n]; e < delta.rowStart[n + 1]; e++) {
      if (!(Math.abs(sn.effect[e]) > threshold)) continue;
      const j = delta.index[e];
      if (!identity && !active[j]) continue; // ∂f_j/∂x = 0 on the clean input: no edge into it
      if (keep && !keep[sums.node(s, t, j)]) continue;
      const gradF = dotRow(dict.decoderRow(j), 0, grad, g, d);
      const row = encoderRow(dict, j, d);
      const seed = new Float32Array(d);
      for (let k = 0; k < d; k++) seed[k] = gradF * row[k];
      out.push({ n, node: sums.node(s, t, j), seed });
    }
    const errorKept = !keep || keep[sums.node(s, t, null)] === 1;
    if (!identity && errorKept && Math.abs(sn.errorEffect[n]) > threshold) {
      const seed = grad.slice(g, g + d);
      for (let a = cleanActive.rowStart[n]; a < cleanActive.rowStart[n + 1]; a++) {
        const j = cleanActive.index[a];
        const c = dotRow(dict.decoderRow(j), 0, grad, g, d);
        const row = encoderRow(dict, j, d);
        for (let k = 0; k < d; k++) seed[k] -= c * row[k];
      }
      out.push({ n, node: sums.node(s, t, null), seed });
    }
    for (let a = cleanActive.rowStart[n]; a < cleanActive.rowStart[n + 1]; a++)
      active[cleanActive.index[a]] = 0;
  }
  return out;
}

/**
 * Adds the edges from the nodes of upstream site U at row n to K downstream nodes whose VJPs at
 * x_U (row n) are the rows of G [K, d]: weight = G_k · W_D[i] · Δf_i, error G_k · Δε.
 */
function addUpstream(
  sums: EffectSums,
  bn: BatchNodes,
  upstream: string,
  dict: Dictionary,
  n: number,
  G: Float32Array,
  targets: number[],
  target: number,
  circuit: Uint8Array[] | undefined,
  d: number,
): void {
  const sn = bn.sites.get(upstream)!;
  const source = sums.index(upstream);
  const keep = circuit?.[source];
  const K = targets.length;
  const t = n % bn.T;
  const { rowStart, index, value } = sn.delta;
  // The changed features of this row that are circuit nodes: [A] entries of sn.delta.
  const entries: number[] = [];
  for (let e = rowStart[n]; e < rowStart[n + 1]; e++)
    if (!keep || keep[sums.node(source, t, index[e])]) entries.push(e);
  const A = entries.length;
  if (A > 0) {
    const W = new Float32Array(K * A); // [K, A] = G · (decoder rows of the changed features)ᵀ
    if (K * A * d >= 1 << 16) {
      const rows = new Float32Array(A * d);
      entries.forEach((e, a) => rows.set(dict.decoderRow(index[e]), a * d));
      matmul(G, rows, W, K, A, d, { transB: true });
    } else {
      entries.forEach((e, a) => {
        const row = dict.decoderRow(index[e]);
        for (let k = 0; k < K; k++) W[k * A + a] = dotRow(G, k * d, row, 0, d);
      });
    }
    const from = entries.map((e) => sums.node(source, t, index[e]));
    for (let k = 0; k < K; k++) {
      const into = sums.edgeSources(source, target, targets[k]);
      for (let a = 0; a < A; a++) {
        const w = W[k * A + a] * value[entries[a]];
        if (w !== 0) into.set(from[a], (into.get(from[a]) ?? 0) + w);
      }
    }
  }
  const from = sums.node(source, t, null);
  if (keep && !keep[from]) return;
  for (let k = 0; k < K; k++) {
    const w = dotRow(G, k * d, sn.errorDelta, n * d, d);
    if (w !== 0) sums.addEdge(source, from, target, targets[k], w);
  }
}

function groupBy<X>(items: X[], key: (x: X) => number): Map<number, X[]> {
  const groups = new Map<number, X[]>();
  for (const x of items) {
    const list = groups.get(key(x));
    if (list) list.push(x);
    else groups.set(key(x), [x]);
  }
  return groups;
}

/**
 * Adds every edge of one batch into `sums`. Reports progress per downstream site through `onSite`.
 */
export function batchEdges(
  ctx: NodeContext,
  bn: BatchNodes,
  sums: EffectSums,
  options: EdgeOptions & { onSite?: (site: string) => void },
): void {
  const { tails } = ctx;
  const c = tails.model.config;
  const d = c.hiddenSize;
  const T = bn.T;
  for (const site of ctx.sites) {
    const ref = parseSite(site, c.numLayers);
    const ups = upstreamSites(site, c.numLayers, c.useParallelResidual);
    if (ups.length === 0) {
      options.onSite?.(site);
      continue;
    }
    const target = sums.index(site);
    const down = downstreamNodes(
      bn.sites.get(site)!,
      ctx.dictionaries(site),
      bn,
      sums,
      options.nodeThreshold,
      options.circuit?.[target],
      d,
    );
    // (row n of the batch, K downstream nodes, their VJPs [K, d] at row n of the upstream sites)
    const emit = (n: number, G: Float32Array, targets: number[]) => {
      for (const u of ups)
        addUpstream(sums, bn, u, ctx.dictionaries(u), n, G, targets, target, options.circuit, d);
    };

    if (ref.kind === 'resid') {
      // Identity VJPs: group the seeds by row.
      const byRow = groupBy(down, (x) => x.n);
      for (const [n, list] of byRow) {
        const G = new Float32Array(list.length * d);
        list.forEach((x, k) => G.set(x.seed, k * d));
        emit(
          n,
          G,
          list.map((x) => x.node),
        );
      }
      options.onSite?.(site);
      continue;
    }

    // attn_L / mlp_L: one forward of layer L alone on the batch, then one backward per round of
    // seeds. A round holds at most one seed per example for attention (its VJP spreads over the
    // earlier positions) and one per position for the row-local MLP.
    const layer = tails.layer(ref.layer);
    const input = ref.layer === 0 ? 'embed' : `resid_${ref.layer - 1}`;
    const pass = layer.forward(Tails.inputBatch(bn.B, T, bn.lengths), {
      hooks: { embed: Tails.feed(bn.clean.get(input)!) },
      logits: 'none',
      forBackward: true,
    });
    const inner = `${ref.kind}_0`;
    const stop = ref.kind === 'mlp' && !c.useParallelResidual ? ['attn_0'] : [];
    const rounds: Downstream[][] = [];
    const slot =
      ref.kind === 'attn' ? (x: Downstream) => Math.floor(x.n / T) : (x: Downstream) => x.n;
    for (const list of groupBy(down, slot).values())
      list.forEach((x, k) => (rounds[k] ??= []).push(x));
    // VJPs at x_U grouped by upstream row n = b·T + t', for one product per row.
    const groups = new Map<number, { vectors: Float32Array[]; targets: number[] }>();
    const seeds = new Float32Array(bn.B * T * d);
    for (const round of rounds) {
      seeds.fill(0);
      for (const s of round) seeds.set(s.seed, s.n * d);
      const gIn = pass
        .backward(null, { seeds: { [inner]: seeds }, stopGradient: stop })
        .get('embed')!;
      for (const s of round) {
        const t = s.n % T;
        for (let n = ref.kind === 'attn' ? s.n - t : s.n; n <= s.n; n++) {
          let grp = groups.get(n);
          if (!grp) groups.set(n, (grp = { vectors: [], targets: [] }));
          grp.vectors.push(gIn.slice(n * d, (n + 1) * d));
          grp.targets.push(s.node);
        }
      }
    }
    for (const [n, { vectors, targets }] of groups) {
      const G = new Float32Array(targets.length * d);
      vectors.forEach((v, k) => G.set(v, k * d));
      emit(n, G, targets);
    }
    options.onSite?.(site);
  }
}
