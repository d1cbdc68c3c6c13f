// Runs of the model's tails for the node passes: from a site set to given values (each row an
// example with that site's output replaced), to the metric m per row and, on demand, its gradient.
// B examples, T tokens (padded), N = B*T rows, d model dim, w a site's width (d, or H·Dh for
// attn_z), R rows of a tail batch.

import type { Batch, SiteHook } from '../model/gptneox.ts';
import { siteRef, type ModelPass, type ModelPast } from '../model/language-model.ts';
import type { BatchNodes, NodeContext } from './nodes.ts';
import { gatherRows } from '../kernels/rows.ts';
import { addDifference, firstRows, suffixRows } from './rows.ts';
import { Tails } from './tails.ts';

/** A tail pass with m per row and the backward that m's gradient drives. */
export interface MetricRun {
  pass: ModelPass;
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
export function runMetric(
  ctx: NodeContext,
  start: number,
  batch: Batch,
  hooks: Record<string, SiteHook>,
  exampleOf: number[],
  withGrad: boolean,
  readsSites = false,
  past?: ModelPast,
): MetricRun {
  const { tails, metric } = ctx;
  const tail = tails.tail(start);
  const readout = tails.readoutIn(start);
  const top = tail.shape.numLayers - 1;
  const hooksTop = Object.keys(hooks).some((site) => siteRef(tail, site).layer === top);
  const pass = tail.forward(batch, {
    hooks,
    logits: readout ? 'none' : 'last',
    forBackward: withGrad,
    topLayerRows: readout || readsSites || hooksTop ? 'all' : 'last',
    past,
  });
  const values = readout ? pass.activation(readout) : pass.logits;
  const R = batch.batchSize;
  const width = values.length / R; // V' logits, or T*w activations
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
export interface CleanPrefix {
  P: number;
  past: ModelPast;
}

/** Rows of a tail run that set one site: row r is example rows[r] with the site's output x. */
export interface SitePart {
  site: string;
  rows: number[];
  /** The site's output for those rows [R*T*w] (all bn.T positions). */
  x: Float32Array;
}

/**
 * Runs the model from the parts' sites on: one tail batch holding every part's rows, each row set
 * to its part's site output, all else below the site clean. Parts share one tail: the same start
 * layer, and (when more than one) each site enters it through its input (inner 'embed'). With
 * `withGrad` the run can give gradients. With a clean prefix the rows run from position P on,
 * continuing the clean keys and values.
 */
export function runFromSites(
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
  const d = tails.model.shape.hiddenSize;
  const width = tails.model.siteWidth(parts[0].site); // d unless the site is inside the tail
  const rows = parts.flatMap((part) => part.rows);
  const batch = Tails.inputBatch(
    rows.length,
    T,
    rows.map((b) => bn.lengths[b] - P),
  );
  // [.., bn.T, w] rows of `rows` -> their positions P.. [R, T, w]
  const pick = (a: Float32Array, pickRows: number[], w = d) => suffixRows(a, pickRows, bn.T, P, w);
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
    hooks[loc.inner] = Tails.feed(pick(parts[0].x, firstRows(rows.length), width));
  }
  let past: ModelPast | undefined;
  if (prefix) {
    // keys, values [B, heads, P, head dim]: the same number of values per example
    const layers = prefix.past.layers.slice(loc.start, tails.end).map((kv) => ({
      keys: gatherRows(kv.keys, rows, kv.keys.length / bn.B),
      values: gatherRows(kv.values, rows, kv.values.length / bn.B),
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

/** Sites below which a gradient at `site` needs no further backward (inside its tail). */
function stopsFor(ctx: NodeContext, site: string): string[] {
  const { inner } = ctx.tails.locate(site);
  // A site inside its tail (attn_z_L; attn_L of a sequential or sandwich block) has its gradient
  // through everything above it, mlp_L included, so only the site itself stops.
  return inner === 'embed' ? ['embed'] : [inner];
}

/**
 * ∂m/∂x at each part's site [R*T*w] for its rows set to x (one tail run for all parts); 0 at a
 * clean prefix's positions.
 */
export function gradientsFromSites(
  ctx: NodeContext,
  bn: BatchNodes,
  parts: SitePart[],
  prefix: CleanPrefix | null,
): Float32Array[] {
  const run = runFromSites(ctx, bn, parts, true, prefix);
  const g = run.backward(stopsFor(ctx, parts[0].site)).get(ctx.tails.locate(parts[0].site).inner)!;
  const P = prefix?.P ?? 0;
  const { T } = bn;
  const w = ctx.tails.model.siteWidth(parts[0].site);
  // g holds the parts' rows one after the other, positions P.. [R, T-P, w] each.
  let next = 0;
  return parts.map((part) => {
    const R = part.rows.length;
    const first = next;
    next += R;
    if (P === 0) return g.subarray(first * T * w, next * T * w);
    const out = new Float32Array(R * T * w);
    for (let r = 0; r < R; r++)
      out.set(
        g.subarray((first + r) * (T - P) * w, (first + r + 1) * (T - P) * w),
        (r * T + P) * w,
      );
    return out;
  });
}
