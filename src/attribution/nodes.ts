// Node indirect effects for one batch of examples: every SAE feature and one error node per site
// and position, by exact activation patching, attribution patching or integrated gradients.
//
// A site's activation is x = W_D f + b_D + ε exactly (ε is defined as the rest), so
//   ∂m/∂f = W_Dᵀ g,  ∂m/∂ε = g   (g = ∂m/∂x at the site),
// and moving features and error together from clean to patch moves x itself along a straight
// line. Hence no pass here splices an SAE into the model: IG interpolates x, exact patching adds
// Δf_i·W_D[i] (or Δε) to x at one position, and every site above runs the plain model.
//
// B examples, T tokens (padded), N = B*T rows, d a site's width (the model dim, or H·Dh at
// attn_z_L), F dictionary width, V' metric vocab,
// R rows of a tail batch (copies of examples with the site set to some value).

import { SparseAutoencoder, type Dictionary, type SparseRows } from '../sae/dictionary.ts';
import type { TaskExample } from '../data/tasks.ts';
import { makeBatch, type Batch } from '../model/gptneox.ts';
import type { ModelPast } from '../model/language-model.ts';
import type { Metric } from './metric.ts';
import { Tails } from './tails.ts';
import { exactEffects } from './exact.ts';
import { featureDeltas } from './feature-deltas.ts';
import { dotRow, gatherRows } from '../kernels/rows.ts';
import { addSteps, concatRows, interpolate, rowsDiffer } from './rows.ts';
import { gradientsFromSites, runMetric, type CleanPrefix } from './tail-runs.ts';

export type NodeMethod = 'ig' | 'attrib' | 'exact';

/** One site's nodes over a batch's N rows. Only real (unpadded) positions hold entries. */
export interface SiteNodes {
  site: string;
  /** Features whose patch value differs from the clean one: CSR over the N rows, value = Δf. */
  delta: SparseRows;
  /** Effect of each `delta` entry (aligned with delta.index). */
  effect: Float32Array;
  /**
   * Features active on the clean input (CSR, values f_clean): the masks of ∂f/∂x. Only rows
   * whose patch state differs from the clean one (the only rows with non-zero effects) have them.
   */
  cleanActive: SparseRows;
  /** ε_patch - ε_clean [N*d]. */
  errorDelta: Float32Array;
  /** Effect of the error node per row [N]. */
  errorEffect: Float32Array;
  /**
   * ∇_x m at the site [N*d]: the IG mean gradient (ig, and for edges), the clean one (attrib).
   * IG runs only the positions from the batch's first row with nodes on (the earlier ones are
   * clean in every run); at those earlier positions grad holds the clean gradient / steps.
   */
  grad: Float32Array;
}

export interface BatchNodes {
  /** Index of each of the batch's examples in the task. */
  examples: number[];
  B: number;
  T: number;
  lengths: number[];
  /** Clean activation of every site up to the metric's [N*w] (kept for the edges' passes). */
  clean: Map<string, Float32Array>;
  /** m on the clean and on the patch input per example; patch is null under zero ablation. */
  mClean: Float64Array;
  mPatch: Float64Array | null;
  sites: Map<string, SiteNodes>;
}

export interface NodeContext {
  tails: Tails;
  metric: Metric;
  dictionaries: (site: string) => Dictionary;
  sites: string[];
}

export interface NodeOptions {
  method: NodeMethod;
  /** IG interpolation steps (ig; also the gradients of exact when `gradSteps` is unset). */
  steps: number;
  /** Steps of the gradient kept for edges (1 = the clean gradient); default: steps for ig and exact, 1 for attrib. */
  gradSteps?: number;
  /** Called once per site done. */
  onSite?: (site: string) => void;
}

/**
 * A batch's runs on the whole model, which every site's nodes start from: kept while the node
 * stage goes through the sites one group at a time (each group's dictionaries loaded once for all
 * batches), so nothing here needs a dictionary.
 */
export interface BatchRuns {
  bn: BatchNodes;
  /** ∇m on the clean input at each dictionary site not yet done (copies: they become grad). */
  cleanGrads: Map<string, Float32Array>;
  /** Each dictionary site not yet done on the patch input; null under zero ablation. */
  patch: Map<string, Float32Array> | null;
  /**
   * The clean keys and values of the positions before every example's last token (null when no
   * run may start later: a readout metric, or one-token examples); shorter pasts are cut from it.
   */
  past: ModelPast | null;
  pasts: Map<number, ModelPast>;
  done: Map<string, SiteNodes>;
}

/**
 * The whole model on the clean and the patch inputs of one batch (global task indices
 * `indices`). Clean and patch inputs come from the examples; without patch prefixes the patch
 * state is zero (every feature and error 0, i.e. x_patch = b_D).
 */
export function startBatch(
  ctx: NodeContext,
  examples: TaskExample[],
  indices: number[],
): BatchRuns {
  const { tails } = ctx;
  const batchExamples = indices.map((i) => examples[i]);
  const clean = makeBatch(batchExamples.map((e) => e.clean));
  const zeroAblation = batchExamples[0].patch === null;
  const { batchSize: B, seqLen: T, lengths } = clean;
  const bn: BatchNodes = {
    examples: indices,
    B,
    T,
    lengths,
    clean: new Map(),
    mClean: new Float64Array(B),
    mPatch: zeroAblation ? null : new Float64Array(B),
    sites: new Map(),
  };

  // The whole model on the clean input (with the gradient at every site: the attrib gradient and
  // IG's α = 0 term) and on the patch input.
  const fullRun = (batch: Batch, withGrad: boolean) =>
    runMetric(
      ctx,
      0,
      Tails.inputBatch(B, T, lengths),
      { embed: Tails.feed(tails.embed(batch)) },
      indices,
      withGrad,
      true,
    );
  const cleanRun = fullRun(clean, true);
  bn.mClean.set(cleanRun.m);
  const grads = cleanRun.backward();
  const cleanGrads = new Map(ctx.sites.map((site) => [site, Float32Array.from(grads.get(site)!)]));
  // Every site the run has, not only those with dictionaries: the edges' passes start from any.
  for (const site of tails.tail(0).sites) bn.clean.set(site, cleanRun.pass.activation(site));
  let patch: Map<string, Float32Array> | null = null;
  if (!zeroAblation) {
    const patchRun = fullRun(makeBatch(batchExamples.map((e) => e.patch!)), false);
    bn.mPatch!.set(patchRun.m);
    patch = new Map(ctx.sites.map((site) => [site, patchRun.pass.activation(site).slice()]));
  }
  const P = Math.min(...lengths) - 1;
  const past = tails.readout === undefined && P > 0 ? cleanRun.pass.past(P) : null;
  return { bn, cleanGrads, patch, past, pasts: new Map(), done: new Map() };
}

/** The first P positions of a past of more (the layout [.., positions, head dim] of both engines). */
function pastPrefix(ctx: NodeContext, past: ModelPast, P: number): ModelPast {
  const c = ctx.tails.model.config;
  const Dh = 'headDim' in c ? c.headDim : c.hiddenSize / c.numHeads;
  const cut = (a: Float32Array) => {
    const groups = a.length / (past.length * Dh);
    const out = new Float32Array(groups * P * Dh);
    for (let g = 0; g < groups; g++)
      out.set(a.subarray(g * past.length * Dh, (g * past.length + P) * Dh), g * P * Dh);
    return out;
  };
  return {
    length: P,
    layers: past.layers.map((kv) => ({ keys: cut(kv.keys), values: cut(kv.values) })),
  };
}

/**
 * Positions before every example's first row with nodes at a site are clean in every run from
 * that site, and their gradients are never used: the runs start after them, continuing the clean
 * keys and values. Not under a readout metric, which reads every position; the last token, which
 * the metric reads, is always run.
 */
function cleanPrefix(ctx: NodeContext, runs: BatchRuns, live: number[]): CleanPrefix | null {
  if (!runs.past) return null;
  let P = runs.past.length;
  for (const n of live) P = Math.min(P, n % runs.bn.T);
  if (P === 0) return null;
  let past = runs.pasts.get(P);
  if (!past) {
    past = P === runs.past.length ? runs.past : pastPrefix(ctx, runs.past, P);
    runs.pasts.set(P, past);
  }
  return { P, past };
}

/**
 * The sites whose nodes are found together (one group's IG passes run as one batch): those
 * entering the same tail through its input (a residual, or a branch added straight into one); any
 * other site alone. In model order.
 */
export function siteGroups(ctx: NodeContext): string[][] {
  const groups = new Map<string, string[]>();
  for (const site of ctx.sites) {
    const loc = ctx.tails.locate(site);
    const key = loc.inner === 'embed' ? `tail ${loc.start}` : site;
    const group = groups.get(key);
    if (group) group.push(site);
    else groups.set(key, [site]);
  }
  return [...groups.values()];
}

/** Node effects of one group of sites (from siteGroups) in one batch, into runs.done. */
export function groupNodes(
  ctx: NodeContext,
  runs: BatchRuns,
  sites: string[],
  options: NodeOptions,
): void {
  const { bn } = runs;
  const N = bn.B * bn.T;
  const all = Array.from({ length: bn.B }, (_, b) => b);
  const gradSteps = options.gradSteps ?? (options.method === 'attrib' ? 1 : options.steps);
  const group = sites.map((site) => {
    const sp = prepareSite(
      ctx,
      bn,
      site,
      runs.cleanGrads.get(site)!,
      runs.patch?.get(site) ?? null,
    );
    runs.cleanGrads.delete(site);
    runs.patch?.delete(site);
    return sp;
  });
  // The sites of a group share their width (d when they enter the tail through its input).
  const d = ctx.tails.model.siteWidth(sites[0]);
  // ∇m at the site: clean (α = 0) plus α = k/steps for k = 1..steps-1, averaged. The sites of
  // a group share their tail, so their steps run as one batch.
  if (gradSteps > 1) {
    const parts = group.map((sp) => {
      const x = new Float32Array((gradSteps - 1) * N * d);
      for (let k = 1; k < gradSteps; k++)
        interpolate(x.subarray((k - 1) * N * d, k * N * d), sp.xClean, sp.xPatch, k / gradSteps);
      return { site: sp.site, rows: Array.from({ length: gradSteps - 1 }, () => all).flat(), x };
    });
    const prefix = cleanPrefix(
      ctx,
      runs,
      group.flatMap((sp) => sp.live),
    );
    gradientsFromSites(ctx, bn, parts, prefix).forEach((g, i) =>
      addSteps(group[i].nodes.grad, g, gradSteps - 1, gradSteps),
    );
  }
  for (const { nodes, dict } of group) {
    if (options.method === 'exact') exactEffects(ctx, bn, dict, nodes);
    else gradientEffects(nodes, dict, N, d);
    runs.done.set(nodes.site, nodes);
    options.onSite?.(nodes.site);
  }
}

/** The batch's nodes once every group is done, by site in model order. */
export function finishBatch(ctx: NodeContext, runs: BatchRuns): BatchNodes {
  for (const site of ctx.sites) {
    const nodes = runs.done.get(site);
    if (!nodes) throw new Error(`attribution: the nodes of site ${site} were not computed`);
    runs.bn.sites.set(site, nodes);
  }
  return runs.bn;
}

/** A site's nodes before their effects: what the IG passes and the effects need. */
interface PreparedSite {
  site: string;
  dict: Dictionary;
  xClean: Float32Array;
  xPatch: Float32Array;
  /** Rows where the patch state differs from the clean one. */
  live: number[];
  /** Effects still zero; grad holds the clean gradient. */
  nodes: SiteNodes;
}

/**
 * Live rows, Δf and Δε of one site. `xPatchRun` is the site on the patch input, or null under
 * zero ablation; `cleanGrad` (a copy) becomes the nodes' grad.
 */
function prepareSite(
  ctx: NodeContext,
  bn: BatchNodes,
  site: string,
  cleanGrad: Float32Array,
  xPatchRun: Float32Array | null,
): PreparedSite {
  const d = ctx.tails.model.siteWidth(site);
  const { T, lengths } = bn;
  const N = bn.B * T;
  const dict = ctx.dictionaries(site);
  const F = dict.width;
  const xClean = bn.clean.get(site)!;
  let xPatch: Float32Array;
  if (xPatchRun) xPatch = xPatchRun;
  else {
    // Zero ablation: f = 0 and ε = 0, so x = W_D·0 + b_D + 0 = b_D at every position.
    const bD = dict.decode(new Float32Array(F), 1);
    xPatch = new Float32Array(N * d);
    for (let n = 0; n < N; n++) xPatch.set(bD, n * d);
  }
  // Rows with nodes to patch: real positions where the patch state differs from the clean one
  // (causality makes the positions before the first differing token identical).
  const live: number[] = [];
  for (let n = 0; n < N; n++)
    if (n % T < lengths[Math.floor(n / T)] && rowsDiffer(xClean, xPatch, n * d, d)) live.push(n);
  const Nl = live.length;
  // Features as CSR, errors [rows, d]: clean and patch rows encoded in one product (a wider
  // product runs nearer the kernel's peak; the SAE weights are streamed once).
  const both = xPatchRun ? concatRows(xClean, xPatch, live, d) : gatherRows(xClean, live, d);
  const out = dict.runSparse(both, both.length / d);
  const { rowStart, index, value } = out.features;
  const clean = { rowStart: rowStart.subarray(0, Nl + 1), index, value };
  // Zero ablation: no feature is on and the error is 0.
  const patch = xPatchRun
    ? { rowStart: rowStart.subarray(Nl), index, value }
    : { rowStart: new Int32Array(Nl + 1), index: new Int32Array(0), value: new Float32Array(0) };
  const { delta, cleanActive } = featureDeltas(clean, patch, live, N);
  const errorDelta = new Float32Array(N * d);
  live.forEach((n, r) => {
    const c = r * d;
    const p = xPatchRun ? (Nl + r) * d : -1;
    for (let j = 0; j < d; j++)
      errorDelta[n * d + j] = (p < 0 ? 0 : out.error[p + j]) - out.error[c + j];
  });
  const nodes: SiteNodes = {
    site,
    delta,
    effect: new Float32Array(delta.index.length),
    cleanActive,
    errorDelta,
    errorEffect: new Float32Array(N),
    grad: cleanGrad,
  };
  return { site, dict, xClean, xPatch, live, nodes };
}

/**
 * Effects from the site's gradient: (W_Dᵀ ∇m)_i Δf_i, evaluated only where Δf_i ≠ 0, and the
 * error's ∇m · Δε.
 */
function gradientEffects(nodes: SiteNodes, dict: Dictionary, N: number, d: number): void {
  const { delta, grad, errorDelta } = nodes;
  // An SAE's decoder rows are read in place: a decoderRow view per entry costs more than its dot
  // product.
  const W = dict instanceof SparseAutoencoder && dict.dtype === 'f32' ? dict.decoder : null;
  for (let n = 0; n < N; n++) {
    for (let e = delta.rowStart[n]; e < delta.rowStart[n + 1]; e++) {
      const i = delta.index[e];
      const dot = W
        ? dotRow(W, i * d, grad, n * d, d)
        : dotRow(dict.decoderRow(i), 0, grad, n * d, d);
      nodes.effect[e] = dot * delta.value[e];
    }
    nodes.errorEffect[n] = dotRow(errorDelta, n * d, grad, n * d, d);
  }
}
