// Edge weights (direct effects) for one batch: weight(u -> d) = ∇_d m · ∂d/∂u · Δu, with ∇_d m the
// downstream node's mean gradient from the node stage and ∂d/∂u on the clean input along the
// direct path only (gradients stopped at the dictionary sites in between). Which sites feed which
// comes from the model's site graph (language-model.ts siteInputs, by the block's wiring):
//
//   mlp_L -> resid_L, attn_L -> resid_L, prev -> resid_L: identity maps, the VJP of a downstream
//       resid node is its own seed, no pass needed;
//   prev -> attn_L (GptNeoX) or prev -> attn_z_L -> attn_L (Transformer: attn_z_L feeds attn_L
//       through o_proj and, in a sandwich block, the post-attention norm): VJPs through the
//       input norm and attention;
//   prev -> mlp_L (attn_L stopped): VJP through the MLP's norm and MLP; in a sequential or
//       sandwich block the MLP reads mid = prev + attn_L, so attn_L -> mlp_L is an edge too, with
//       the same VJP (∂mlp/∂attn = ∂mlp/∂mid = ∂mlp/∂prev|attn frozen). The path prev -> attn_L ->
//       mlp_L is not direct: it is the two edges prev -> attn_L and attn_L -> mlp_L.
//   prev = resid_{L-1}, or embed for L = 0.
// A site without a dictionary is passed through: its inputs become the upstream sites, along
// the composed path (directUpstream).
//
// Downstream nodes are functions of their site's real activation x_D:
//   feature j: f_j = act(W_E[j]·(x - b_D) + b_E[j]), so ∂f_j/∂x = 1[f_j ≠ 0]·W_E[j] (relu,
//     jumprelu and topk alike: the active set is locally constant; identity: e_j);
//   error: ε = x - W_D f(x) - b_D, so gᵀ∂ε/∂x = g - W_Eᵀ(mask ⊙ W_Dᵀ g).
// The seed of node d at x_D is ∇_d m times that row; its VJP gives g_U at the upstream site, and
// upstream nodes reach x_U through their decoder row (feature i: g_U·W_D[i]·Δf_i) or directly
// (error: g_U·Δε).
//
// VJPs run on `tails.span(L0, ..)` (layer L alone, or from the lowest upstream site's layer, fed
// the clean input of that layer): one forward per batch, then backward passes whose seeds carry
// many downstream nodes at once: one per example when a path crosses attention (its VJP spreads
// over earlier positions), one per position when every path is row-local.
//
// T tokens, d a site's width, F a site's dictionary width, K downstream nodes sharing an upstream
// row.

import { matmul } from '../kernels/gemm.ts';
import { dotRow } from '../kernels/rows.ts';
import {
  siteRef,
  type LanguageModel,
  type SiteInput,
  type SitePath,
} from '../model/language-model.ts';
import { SparseAutoencoder, type Dictionary } from '../sae/dictionary.ts';
import type { EffectSums } from '../circuit/build.ts';
import { Tails } from './tails.ts';
import type { BatchNodes, NodeContext, SiteNodes } from './nodes.ts';

/** A downstream node of one example: its row n = b·T + t, feature (null = error) and VJP seed. */
/** A downstream node at one row of a batch, with its seed (the VJP start at its site). */
export interface Downstream {
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

const RANK: Record<SitePath, number> = { identity: 0, local: 1, mixing: 2 };

/**
 * The dictionary sites (`sites`) whose nodes feed `site` directly: along the model's site graph,
 * through no other dictionary site, each with the strongest kind of path that reaches it (a
 * site without a dictionary in between is passed through, as part of the direct path).
 */
export function directUpstream(
  model: LanguageModel,
  site: string,
  sites: Iterable<string>,
): SiteInput[] {
  const have = new Set(sites);
  const found = new Map<string, SitePath>();
  const walk = (s: string, path: SitePath) => {
    for (const u of model.upstreamSites(s)) {
      const p = RANK[u.path] > RANK[path] ? u.path : path;
      if (!have.has(u.site)) walk(u.site, p);
      else if (!found.has(u.site) || RANK[p] > RANK[found.get(u.site)!]) found.set(u.site, p);
    }
  };
  walk(site, 'identity');
  return [...found].map(([u, path]) => ({ site: u, path }));
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

/** The first layer of a span of layers that holds `site` or takes it as its input. */
function spanStart(model: LanguageModel, site: string): number {
  const ref = siteRef(model, site);
  return ref.kind === 'resid' ? ref.layer + 1 : ref.kind === 'embed' ? 0 : ref.layer;
}

/** A full-model site's name inside the span of layers from `start` ('embed': its input). */
function innerSite(model: LanguageModel, site: string, start: number): string {
  const ref = siteRef(model, site);
  if (ref.kind === 'embed' || (ref.kind === 'resid' && ref.layer === start - 1)) return 'embed';
  return `${ref.kind}_${ref.layer - start}`;
}

/**
 * The downstream nodes of one site in one batch with their seeds: the only part of the edges
 * into a site that needs the site's own dictionary (null: the site has no upstream site, so no
 * edges).
 */
export function siteSeeds(
  ctx: NodeContext,
  bn: BatchNodes,
  sums: EffectSums,
  site: string,
  options: EdgeOptions,
): Downstream[] | null {
  const model = ctx.tails.model;
  if (directUpstream(model, site, ctx.sites).length === 0) return null;
  return downstreamNodes(
    bn.sites.get(site)!,
    ctx.dictionaries(site),
    bn,
    sums,
    options.nodeThreshold,
    options.circuit?.[sums.index(site)],
    model.siteWidth(site),
  );
}

/** Bytes of a batch's seeds (to bound how many batches' seeds are kept at once). */
export function seedBytes(down: Downstream[] | null): number {
  return (down ?? []).reduce((s, x) => s + x.seed.byteLength, 0);
}

/**
 * Adds the edges into one downstream site's nodes of one batch into `sums`, from the seeds
 * siteSeeds gave for that batch: needs the dictionaries of the direct upstream sites only.
 */
export function siteEdges(
  ctx: NodeContext,
  bn: BatchNodes,
  sums: EffectSums,
  site: string,
  down: Downstream[] | null,
  options: EdgeOptions & { onSite?: (site: string) => void },
): void {
  const { tails } = ctx;
  const model = tails.model;
  const T = bn.T;
  const ref = siteRef(model, site);
  const ups = directUpstream(model, site, ctx.sites);
  if (ups.length === 0 || down === null) {
    options.onSite?.(site);
    return;
  }
  const dD = model.siteWidth(site);
  const target = sums.index(site);
  // Edges from upstream u at row n of the batch into K downstream nodes, whose VJPs at that row
  // of u are the rows of G [K, w_u].
  const emit = (u: string, n: number, G: Float32Array, targets: number[]) =>
    addUpstream(
      sums,
      bn,
      u,
      ctx.dictionaries(u),
      n,
      G,
      targets,
      target,
      options.circuit,
      model.siteWidth(u),
    );

  if (ups.every((u) => u.path === 'identity')) {
    // resid_L with a dictionary at each of its inputs: identity VJPs, group the seeds by row.
    const byRow = groupBy(down, (x) => x.n);
    for (const [n, list] of byRow) {
      const G = new Float32Array(list.length * dD);
      list.forEach((x, k) => G.set(x.seed, k * dD));
      const targets = list.map((x) => x.node);
      for (const u of ups) emit(u.site, n, G, targets);
    }
    options.onSite?.(site);
    return;
  }

  // The layers from the lowest upstream site to the site's own, fed the clean input of the
  // lowest: one forward per batch, then one backward per round of seeds with the gradient
  // stopped at every other dictionary site. A round holds at most one seed per example when a
  // path crosses attention (its VJP spreads over the earlier positions), else one per position.
  const start = Math.min(...ups.map((u) => spanStart(model, u.site)));
  const span = tails.span(start, ref.layer - start + 1);
  const input = start === 0 ? 'embed' : `resid_${start - 1}`;
  const pass = span.forward(Tails.inputBatch(bn.B, T, bn.lengths), {
    hooks: { embed: Tails.feed(bn.clean.get(input)!) },
    logits: 'none',
    forBackward: true,
  });
  const inner = innerSite(model, site, start);
  const stop = ctx.sites
    .filter((s) => s !== site && spanStart(model, s) >= start && spanStart(model, s) <= ref.layer)
    .map((s) => innerSite(model, s, start))
    .filter((s) => s !== inner && span.sites.includes(s));
  const mixing = ups.some((u) => u.path === 'mixing');
  const rounds: Downstream[][] = [];
  const slot = mixing ? (x: Downstream) => Math.floor(x.n / T) : (x: Downstream) => x.n;
  for (const list of groupBy(down, slot).values())
    list.forEach((x, k) => (rounds[k] ??= []).push(x));
  // Per upstream site, VJPs at x_u grouped by upstream row n = b·T + t', for one product per row.
  const groups = ups.map(() => new Map<number, { vectors: Float32Array[]; targets: number[] }>());
  const seeds = new Float32Array(bn.B * T * dD);
  for (const round of rounds) {
    seeds.fill(0);
    for (const s of round) seeds.set(s.seed, s.n * dD);
    const grads = pass.backward(null, { seeds: { [inner]: seeds }, stopGradient: stop });
    ups.forEach((u, i) => {
      const w = model.siteWidth(u.site);
      const gIn = grads.get(innerSite(model, u.site, start))!;
      for (const s of round) {
        const t = s.n % T;
        for (let n = u.path === 'mixing' ? s.n - t : s.n; n <= s.n; n++) {
          let grp = groups[i].get(n);
          if (!grp) groups[i].set(n, (grp = { vectors: [], targets: [] }));
          grp.vectors.push(gIn.slice(n * w, (n + 1) * w));
          grp.targets.push(s.node);
        }
      }
    });
  }
  ups.forEach((u, i) => {
    const w = model.siteWidth(u.site);
    for (const [n, { vectors, targets }] of groups[i]) {
      const G = new Float32Array(targets.length * w);
      vectors.forEach((v, k) => G.set(v, k * w));
      emit(u.site, n, G, targets);
    }
  });
  options.onSite?.(site);
}
