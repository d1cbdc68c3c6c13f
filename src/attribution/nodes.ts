// Node indirect effects for one batch of examples: every SAE feature and one error node per site
// and position, by exact activation patching, attribution patching or integrated gradients.
//
// A site's activation is x = W_D f + b_D + ε exactly (ε is defined as the rest), so
//   ∂m/∂f = W_Dᵀ g,  ∂m/∂ε = g   (g = ∂m/∂x at the site),
// and moving features and error together from clean to patch moves x itself along a straight
// line. Hence no pass here splices an SAE into the model: IG interpolates x, exact patching adds
// Δf_i·W_D[i] (or Δε) to x at one position, and every site above runs the plain model.
//
// B examples, T tokens (padded), N = B*T rows, d model dim, F dictionary width, V' metric vocab,
// R rows of a tail batch (copies of examples with the site set to some value).

import { SparseAutoencoder, type Dictionary, type SparseRows } from '../sae/dictionary.ts';
import type { TaskExample } from '../data/tasks.ts';
import {
  makeBatch,
  type Batch,
  type ForwardPass,
  type Past,
  type SiteHook,
} from '../model/gptneox.ts';
import { parseSite } from '../model/sites.ts';
import type { Metric } from './metric.ts';
import { Tails } from './tails.ts';

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
  /** Clean activation of every site [N*d] (kept for the edges' passes). */
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

/** A tail pass with m per row and the backward that m's gradient drives. */
interface MetricRun {
  pass: ForwardPass;
  /** m per row. */
  m: Float64Array;
  /** ∂m/∂(every site of the tail), given only for runs made `withGrad`. */
  backward(stopGradient?: string[]): Map<string, Float32Array>;
}

/**
 * Runs tail(start) on `batch` with `hooks` and evaluates the metric on each row (row r is task
 * example exampleOf[r]): from the last-token logits, or from the readout site's activation.
 * `readsSites`: the caller reads the pass's activations, so every layer runs at every row;
 * otherwise a logit metric lets the top layer run at the last rows only (topLayerRows 'last').
 */
function runMetric(
  ctx: NodeContext,
  start: number,
  batch: Batch,
  hooks: Record<string, SiteHook>,
  exampleOf: number[],
  withGrad: boolean,
  readsSites = false,
  past?: Past,
): MetricRun {
  const { tails, metric } = ctx;
  const tail = tails.tail(start);
  const readout = tails.readoutIn(start);
  const top = tail.config.numLayers - 1;
  const nl = tail.config.numLayers;
  const hooksTop = Object.keys(hooks).some((site) => parseSite(site, nl).layer === top);
  const pass = tail.forward(batch, {
    hooks,
    logits: readout ? 'none' : 'last',
    forBackward: withGrad,
    topLayerRows: readout || readsSites || hooksTop ? 'all' : 'last',
    past,
  });
  const values = readout ? pass.activation(readout) : pass.logits;
  const R = batch.batchSize;
  const width = values.length / R; // V' logits, or T*d activations
  const m = new Float64Array(R);
  const dValues = withGrad ? new Float32Array(R * width) : null;
  for (let r = 0; r < R; r++)
    m[r] = metric.evaluate(
      values.subarray(r * width, (r + 1) * width),
      exampleOf[r],
      dValues?.subarray(r * width, (r + 1) * width),
    );
  return {
    pass,
    m,
    backward(stopGradient = []) {
      if (!dValues) throw new Error('attribution: this metric run was made without gradients');
      return readout
        ? pass.backward(null, { seeds: { [readout]: dValues }, stopGradient })
        : pass.backward(dValues, { stopGradient });
    },
  };
}

/**
 * The clean prefix of a batch: its first P positions, where every run from a site is clean, and
 * the clean run's keys and values there (every layer, the batch's B examples).
 */
interface CleanPrefix {
  P: number;
  past: Past;
}

/** Rows of a tail run that set one site: row r is example rows[r] with the site's output x. */
interface SitePart {
  site: string;
  rows: number[];
  /** The site's output for those rows [R*T*d] (all bn.T positions). */
  x: Float32Array;
}

/**
 * Runs the model from the parts' sites on: one tail batch holding every part's rows, each row set
 * to its part's site output, all else below the site clean. Parts share one tail: the same start
 * layer, and (when more than one) each site enters it through its input (inner 'embed'). With
 * `withGrad` the run can give gradients. With a clean prefix the rows run from position P on,
 * continuing the clean keys and values.
 */
function runFromSites(
  ctx: NodeContext,
  bn: BatchNodes,
  parts: SitePart[],
  withGrad: boolean,
  prefix: CleanPrefix | null = null,
): MetricRun {
  const { tails } = ctx;
  const locs = parts.map((part) => tails.locate(part.site));
  const loc = locs[0];
  if (locs.some((l) => l.start !== loc.start || (parts.length > 1 && l.inner !== 'embed')))
    throw new Error('attribution: sites run together must enter one tail through its input');
  const P = prefix?.P ?? 0;
  const T = bn.T - P;
  const d = tails.model.config.hiddenSize;
  const rows = parts.flatMap((part) => part.rows);
  const batch = Tails.inputBatch(
    rows.length,
    T,
    rows.map((b) => bn.lengths[b] - P),
  );
  // [.., bn.T, d] rows of `rows` -> their positions P.. [R, T, d]
  const pick = (a: Float32Array, pickRows: number[]) => suffixRows(a, pickRows, bn.T, P, d);
  const hooks: Record<string, SiteHook> = {};
  if (loc.inner === 'embed') {
    const input = new Float32Array(rows.length * T * d);
    let offset = 0;
    parts.forEach((part, i) => {
      const l = locs[i];
      const xs = pick(part.x, firstRows(part.rows.length));
      if (l.addedTo)
        // resid_L = (clean rest) + site: feed resid_L,clean + (x - x_site,clean).
        addDifference(
          xs,
          pick(bn.clean.get(l.addedTo)!, part.rows),
          pick(bn.clean.get(part.site)!, part.rows),
        );
      input.set(xs, offset);
      offset += xs.length;
    });
    hooks.embed = Tails.feed(input);
  } else {
    hooks.embed = Tails.feed(pick(bn.clean.get(loc.input!)!, rows));
    hooks[loc.inner] = Tails.feed(pick(parts[0].x, firstRows(rows.length)));
  }
  let past: Past | undefined;
  if (prefix) {
    // keys, values [B, H, P, S]: P*d values per example
    const layers = prefix.past.layers.slice(loc.start, tails.end).map((kv) => ({
      keys: gatherRows(kv.keys, rows, P * d),
      values: gatherRows(kv.values, rows, P * d),
    }));
    past = { length: P, layers };
  }
  return runMetric(
    ctx,
    loc.start,
    batch,
    hooks,
    rows.map((b) => bn.examples[b]),
    withGrad,
    false,
    past,
  );
}

/** 0, 1, ..., count - 1 */
function firstRows(count: number): number[] {
  return Array.from({ length: count }, (_, r) => r);
}

/** x += a - b, elementwise. */
function addDifference(x: Float32Array, a: Float32Array, b: Float32Array): void {
  for (let i = 0; i < x.length; i++) x[i] += a[i] - b[i];
}

/** src [.., T, d] -> [rows.length, T-P, d]: positions P.. of rows `rows`. */
function suffixRows(src: Float32Array, rows: number[], T: number, P: number, d: number) {
  if (P === 0) return gatherRows(src, rows, T * d);
  const out = new Float32Array(rows.length * (T - P) * d);
  rows.forEach((b, r) => out.set(src.subarray((b * T + P) * d, (b + 1) * T * d), r * (T - P) * d));
  return out;
}

/** Sites below which a gradient at `site` needs no further backward (inside its tail). */
function stopsFor(ctx: NodeContext, site: string): string[] {
  const { inner } = ctx.tails.locate(site);
  // Only attn_L of a sequential residual sits inside its tail; its gradient includes the path
  // through mlp_L, so mlp_L must flow.
  return inner === 'embed' ? ['embed'] : [inner];
}

/**
 * ∂m/∂x at each part's site [R*T*d] for its rows set to x (one tail run for all parts); 0 at a
 * clean prefix's positions.
 */
function gradientsFromSites(
  ctx: NodeContext,
  bn: BatchNodes,
  parts: SitePart[],
  prefix: CleanPrefix | null,
): Float32Array[] {
  const run = runFromSites(ctx, bn, parts, true, prefix);
  const g = run.backward(stopsFor(ctx, parts[0].site)).get(ctx.tails.locate(parts[0].site).inner)!;
  const P = prefix?.P ?? 0;
  const { T } = bn;
  const d = ctx.tails.model.config.hiddenSize;
  // g holds the parts' rows one after the other, positions P.. [R, T-P, d] each.
  let next = 0;
  return parts.map((part) => {
    const R = part.rows.length;
    const first = next;
    next += R;
    if (P === 0) return g.subarray(first * T * d, next * T * d);
    const out = new Float32Array(R * T * d);
    for (let r = 0; r < R; r++)
      out.set(
        g.subarray((first + r) * (T - P) * d, (first + r + 1) * (T - P) * d),
        (r * T + P) * d,
      );
    return out;
  });
}

/** Rows `rows` of a [.., d] and then the same rows of b: [2·rows.length, d]. */
function concatRows(a: Float32Array, b: Float32Array, rows: number[], d: number): Float32Array {
  const out = new Float32Array(2 * rows.length * d);
  rows.forEach((n, r) => {
    out.set(a.subarray(n * d, (n + 1) * d), r * d);
    out.set(b.subarray(n * d, (n + 1) * d), (rows.length + r) * d);
  });
  return out;
}

/** src [.., width] -> out [rows.length, width] with out row r = src row rows[r]. */
function gatherRows(src: Float32Array, rows: number[], width: number): Float32Array {
  const out = new Float32Array(rows.length * width);
  rows.forEach((b, r) => out.set(src.subarray(b * width, (b + 1) * width), r * width));
  return out;
}

/**
 * Clean and patch features of the live rows (CSR over live.length rows, possibly views into
 * shared entry arrays; live[r] is row r's batch row) -> Δf = f_patch - f_clean where non-zero,
 * and f_clean, as CSR over the N rows. Merges the two rows' sorted indices: no dense [rows, F] pass.
 */
function featureDeltas(
  clean: SparseRows,
  patch: SparseRows,
  live: number[],
  N: number,
): { delta: SparseRows; cleanActive: SparseRows } {
  const R = live.length;
  const cap = clean.rowStart[R] - clean.rowStart[0] + (patch.rowStart[R] - patch.rowStart[0]);
  const index = new Int32Array(cap);
  const value = new Float32Array(cap);
  const rowStart = new Int32Array(N + 1);
  const cleanStart = new Int32Array(N + 1);
  const END = 0x7fffffff; // past every feature id
  let e = 0;
  let r = 0;
  for (let n = 0; n < N; n++) {
    rowStart[n] = e;
    cleanStart[n] = clean.rowStart[r];
    if (live[r] !== n) continue;
    let i = clean.rowStart[r];
    let j = patch.rowStart[r];
    const iEnd = clean.rowStart[r + 1];
    const jEnd = patch.rowStart[r + 1];
    while (i < iEnd || j < jEnd) {
      const ci = i < iEnd ? clean.index[i] : END;
      const pj = j < jEnd ? patch.index[j] : END;
      let k: number;
      let v: number;
      if (ci === pj) {
        k = ci;
        v = Math.fround(patch.value[j++] - clean.value[i++]);
      } else if (ci < pj) {
        k = ci;
        v = -clean.value[i++];
      } else {
        k = pj;
        v = patch.value[j++];
      }
      if (v !== 0) {
        index[e] = k;
        value[e++] = v;
      }
    }
    r++;
  }
  rowStart[N] = e;
  cleanStart[N] = clean.rowStart[r];
  return {
    delta: { rowStart, index: index.slice(0, e), value: value.slice(0, e) },
    cleanActive: { rowStart: cleanStart, index: clean.index, value: clean.value },
  };
}

/** a[aOffset..+d] · b[bOffset..+d] */
function dotRow(a: Float32Array, aOffset: number, b: Float32Array, bOffset: number, d: number) {
  let s = 0;
  for (let j = 0; j < d; j++) s += a[aOffset + j] * b[bOffset + j];
  return s;
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
 * Node effects of every site for one batch of examples (global task indices `indices`). Clean and
 * patch inputs come from the examples; without patch prefixes the patch state is zero (every
 * feature and error 0, i.e. x_patch = b_D).
 */
export function batchNodes(
  ctx: NodeContext,
  examples: TaskExample[],
  indices: number[],
  options: NodeOptions,
): BatchNodes {
  const { tails } = ctx;
  const d = tails.model.config.hiddenSize;
  const batchExamples = indices.map((i) => examples[i]);
  const clean = makeBatch(batchExamples.map((e) => e.clean));
  const zeroAblation = batchExamples[0].patch === null;
  const { batchSize: B, seqLen: T, lengths } = clean;
  const N = B * T;
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
  const all = Array.from({ length: B }, (_, b) => b);

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
  const cleanGrads = cleanRun.backward();
  for (const site of ctx.sites) bn.clean.set(site, cleanRun.pass.activation(site));
  let patchRun: ReturnType<typeof fullRun> | null = null;
  if (!zeroAblation) {
    patchRun = fullRun(makeBatch(batchExamples.map((e) => e.patch!)), false);
    bn.mPatch!.set(patchRun.m);
  }

  // Positions before every example's first row with nodes at a site are clean in every run from
  // that site, and their gradients are never used: the runs start after them, continuing the
  // clean keys and values. Not under a readout metric, which reads every position; the last
  // token, which the metric reads, is always run.
  const pasts = new Map<number, Past>();
  const cleanPrefix = (live: number[]): CleanPrefix | null => {
    if (tails.readout !== undefined) return null;
    let P = Math.min(...lengths) - 1;
    for (const n of live) P = Math.min(P, n % T);
    if (P === 0) return null;
    let past = pasts.get(P);
    if (!past) pasts.set(P, (past = cleanRun.pass.past(P)));
    return { P, past };
  };

  const gradSteps = options.gradSteps ?? (options.method === 'attrib' ? 1 : options.steps);
  const prepared = ctx.sites.map((site) =>
    prepareSite(ctx, bn, site, cleanGrads.get(site)!, patchRun?.pass.activation(site) ?? null),
  );
  const done = new Map<string, SiteNodes>();
  for (const group of tailGroups(ctx, prepared)) {
    // ∇m at the site: clean (α = 0) plus α = k/steps for k = 1..steps-1, averaged. The sites of
    // a group share their tail, so their steps run as one batch.
    if (gradSteps > 1) {
      const parts = group.map((sp) => {
        const x = new Float32Array((gradSteps - 1) * N * d);
        for (let k = 1; k < gradSteps; k++)
          interpolate(x.subarray((k - 1) * N * d, k * N * d), sp.xClean, sp.xPatch, k / gradSteps);
        return { site: sp.site, rows: Array.from({ length: gradSteps - 1 }, () => all).flat(), x };
      });
      const prefix = cleanPrefix(group.flatMap((sp) => sp.live));
      gradientsFromSites(ctx, bn, parts, prefix).forEach((g, i) =>
        addSteps(group[i].nodes.grad, g, gradSteps - 1, gradSteps),
      );
    }
    for (const { nodes, dict } of group) {
      if (options.method === 'exact') exactEffects(ctx, bn, dict, nodes);
      else gradientEffects(nodes, dict, N, d);
      done.set(nodes.site, nodes);
      options.onSite?.(nodes.site);
    }
  }
  for (const site of ctx.sites) bn.sites.set(site, done.get(site)!);
  return bn;
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
 * zero ablation.
 */
function prepareSite(
  ctx: NodeContext,
  bn: BatchNodes,
  site: string,
  cleanGrad: Float32Array,
  xPatchRun: Float32Array | null,
): PreparedSite {
  const d = ctx.tails.model.config.hiddenSize;
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
    grad: Float32Array.from(cleanGrad),
  };
  return { site, dict, xClean, xPatch, live, nodes };
}

/**
 * Sites in groups that run their IG passes together: those entering the same tail through its
 * input (a residual, or a branch added straight into one); any other site alone.
 */
function tailGroups(ctx: NodeContext, sites: PreparedSite[]): PreparedSite[][] {
  const groups = new Map<string, PreparedSite[]>();
  for (const sp of sites) {
    const loc = ctx.tails.locate(sp.site);
    const key = loc.inner === 'embed' ? `tail ${loc.start}` : sp.site;
    const group = groups.get(key);
    if (group) group.push(sp);
    else groups.set(key, [sp]);
  }
  return [...groups.values()];
}

/** a[o..o+d) differs from b[o..o+d) somewhere. */
function rowsDiffer(a: Float32Array, b: Float32Array, o: number, d: number): boolean {
  for (let j = o; j < o + d; j++) if (a[j] !== b[j]) return true;
  return false;
}

/** out = clean + alpha (patch - clean). */
function interpolate(out: Float32Array, clean: Float32Array, patch: Float32Array, alpha: number) {
  for (let i = 0; i < out.length; i++) out[i] = clean[i] + alpha * (patch[i] - clean[i]);
}

/** grad = (grad + the `count` gradients stacked in g) / divisor. */
function addSteps(grad: Float32Array, g: Float32Array, count: number, divisor: number): void {
  const size = grad.length;
  for (let k = 0; k < count; k++) for (let i = 0, o = k * size; i < size; i++, o++) grad[i] += g[o];
  for (let i = 0; i < size; i++) grad[i] /= divisor;
}

/**
 * Effects from the site's gradient: (W_Dᵀ ∇m)_i Δf_i, evaluated only where Δf_i ≠ 0, and the
 * error's ∇m · Δε.
 */
function gradientEffects(nodes: SiteNodes, dict: Dictionary, N: number, d: number): void {
  const { delta, grad, errorDelta } = nodes;
  // An SAE's decoder rows are read in place: a decoderRow view per entry costs more than its dot
  // product.
  const W = dict instanceof SparseAutoencoder ? dict.decoder : null;
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

// Tokens per tail batch of exact patching (rows of T tokens each).
const EXACT_TOKENS = 2048;

/**
 * Exact effects: m with one node patched at one position, minus m clean. Each patched variant is
 * one row of a tail batch: the clean example with x += Δf_i·W_D[i] (or Δε) at that position.
 */
function exactEffects(ctx: NodeContext, bn: BatchNodes, dict: Dictionary, nodes: SiteNodes): void {
  const { T, lengths } = bn;
  const d = ctx.tails.model.config.hiddenSize;
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
