// Faithfulness and completeness of node circuits, and their curves over node thresholds.
//
//   F(C)      mean metric m with only the nodes of C kept, m the metric discovery uses
//             (attribution/metric.ts: logit[patch] - logit[clean], or -logit[clean])
//   F(M)      the model untouched;   F(∅) everything ablated
//   faithfulness(C) = (F(C) - F(∅)) / (F(M) - F(∅));   completeness(C) = faithfulness(M \ C)
//
// A circuit node is a feature or an error node of a site at a position (position null: every
// position, as in `sum` circuits). Only sites with a dictionary in the AblatedModel (layers from
// the start layer on) are evaluated; nodes elsewhere are ignored and not counted. The circuit as
// saved is also scored with every site spliced (`allLayers`), so that nodes below the start layer
// count too.
// P positions of the masks, F dictionary width.

import type { OnProgress } from '../progress.ts';
import { Rng } from '../random.ts';
import type { KeepMask } from './ablation.ts';

/**
 * What scoring needs of an ablated model (AblatedModel is one): its shape and F under a keep mask.
 * A sharded evaluation records a shard's sums through it, and its merge replays the scoring with
 * the merged means (src/shards/evaluate.ts).
 */
export interface MetricModel {
  /** Evaluated sites in model order. */
  readonly sites: string[];
  /** P: positions of every KeepMask. */
  readonly positions: number;
  readonly dictionaries: ReadonlyMap<string, { readonly width: number }>;
  readonly model: { readonly sites: string[] };
  /** Models scored together must run on the same batches (the same object). */
  readonly batches: unknown;
  uniformMask(value: 0 | 1): KeepMask;
  /** F(M): the mean metric of the model as it is. */
  metricModel(): number;
  /** F with every node outside `keep` ablated. */
  metric(keep: KeepMask): number;
}

/** How error nodes are treated: kept when in the circuit, always ablated, or never ablated. */
export type ErrorMode = 'default' | 'remove' | 'keep';
export const ERROR_MODES: readonly ErrorMode[] = ['default', 'remove', 'keep'];

/** What evaluation needs of a circuit node (src/circuit's CircuitNode has these fields). */
export interface EvalNode {
  site: string;
  kind: 'feature' | 'error';
  /** Feature index; null for error nodes. */
  feature: number | null;
  /** Token position; null when the node stands for every position. */
  position: number | null;
  effect: number;
}

/** The nodes a curve is drawn from and the threshold they were listed above. */
export interface NodeSource {
  nodes: EvalNode[];
  /** The circuit file lists only nodes with |effect| above this; lower thresholds cannot be evaluated. */
  nodeThreshold: number;
}

export interface NodeCount {
  nodes: number;
  featureNodes: number;
  errorNodes: number;
}

export interface CircuitScore extends NodeCount {
  /** F(C) */
  fCircuit: number;
  /** F(M \ C) */
  fComplement: number;
  faithfulness: number;
  completeness: number;
}

export interface CurvePoint extends CircuitScore {
  threshold: number;
}

export const SERIES = [
  'features',
  'features_without_errors',
  'features_without_attn_mlp_errors',
  'neurons',
  'random_features',
] as const;
export type SeriesName = (typeof SERIES)[number];

export const SERIES_LABELS: Record<SeriesName, string> = {
  features: 'features',
  features_without_errors: 'features w/o errors',
  features_without_attn_mlp_errors: 'features w/o attn/mlp errors',
  neurons: 'neurons',
  random_features: 'random features',
};

export interface Series {
  name: SeriesName;
  label: string;
  /** F(∅) under this series' error handling. */
  fEmpty: number;
  points: CurvePoint[];
  /** Thresholds below the circuit file's own node threshold (its list is incomplete there). */
  skipped: number[];
}

export interface Evaluation {
  /** F(M) */
  fModel: number;
  /** F(∅) of the circuit as saved (under --errors). */
  fEmpty: number;
  /** The circuit file's nodes as they are (all listed nodes at evaluated sites). */
  circuit: CircuitScore;
  /** Circuit nodes at sites the evaluation leaves out (below the start layer). */
  nodesBelowStartLayer: number;
  /** The circuit as saved with every site spliced and ablated (null when not asked for). */
  allLayers: { fEmpty: number; circuit: CircuitScore } | null;
  series: Series[];
}

/** (f - fEmpty) / (fModel - fEmpty); NaN when the model and the empty circuit agree. */
export function normalizedScore(f: number, fEmpty: number, fModel: number): number {
  const span = fModel - fEmpty;
  return span === 0 ? NaN : (f - fEmpty) / span;
}

/**
 * n log-spaced values from 10^lo to 10^hi (numpy's logspace), rounded to 12 significant digits so
 * that powers of ten come out exact (10 ** -4 is 0.00009999999999999999 in float64).
 */
export function logspace(lo: number, hi: number, n: number): number[] {
  const at = (e: number) => Number((10 ** e).toPrecision(12));
  if (n === 1) return [at(lo)];
  return Array.from({ length: n }, (_, i) => at(lo + ((hi - lo) * i) / (n - 1)));
}

/** Nodes with |effect| above the threshold, at evaluated sites (all when threshold < 0). */
export function selectNodes(model: MetricModel, nodes: EvalNode[], threshold: number): EvalNode[] {
  return nodes.filter(
    (n) => model.dictionaries.has(n.site) && (threshold < 0 || Math.abs(n.effect) > threshold),
  );
}

/** How many of `selected` count as circuit nodes under an error mode (errors only when 'default'). */
export function countNodes(
  model: MetricModel,
  selected: EvalNode[],
  errorsFor: (site: string) => ErrorMode,
): NodeCount {
  return countAt(selected, errorsFor, (site) => model.dictionaries.has(site));
}

function countAt(
  selected: EvalNode[],
  errorsFor: (site: string) => ErrorMode,
  evaluated: (site: string) => boolean,
): NodeCount {
  let featureNodes = 0;
  let errorNodes = 0;
  for (const n of selected) {
    if (!evaluated(n.site)) continue;
    if (n.kind === 'feature') featureNodes++;
    else if (errorsFor(n.site) === 'default') errorNodes++;
  }
  return { nodes: featureNodes + errorNodes, featureNodes, errorNodes };
}

/**
 * The keep mask of the circuit made of `selected` (which = 'circuit') or of its complement.
 * Errors follow their site's mode: 'keep' always kept, 'remove' always ablated, 'default' kept
 * when in the set.
 */
export function keepMask(
  model: MetricModel,
  selected: EvalNode[],
  errorsFor: (site: string) => ErrorMode,
  which: 'circuit' | 'complement',
): KeepMask {
  const P = model.positions;
  const inSet = which === 'circuit' ? 1 : 0;
  const mask = model.uniformMask(which === 'circuit' ? 0 : 1);
  for (const [site, m] of mask) {
    const mode = errorsFor(site);
    if (mode !== 'default') m.errors.fill(mode === 'keep' ? 1 : 0);
  }
  for (const n of selected) {
    const m = mask.get(n.site);
    if (!m) continue;
    const F = model.dictionaries.get(n.site)!.width;
    const where = `circuit node ${n.site}/${n.kind === 'error' ? 'ε' : n.feature}@${n.position}`;
    if (n.position !== null && !(Number.isInteger(n.position) && n.position >= 0 && n.position < P))
      throw new Error(
        `${where}: position ${n.position} is outside the evaluation examples' ${P} tokens`,
      );
    const positions = n.position === null ? [...Array(P).keys()] : [n.position];
    if (n.kind === 'feature') {
      const i = n.feature;
      if (i === null || !Number.isInteger(i) || i < 0 || i >= F)
        throw new Error(`${where}: feature ${i} is outside the dictionary's 0..${F - 1}`);
      for (const t of positions) m.features[t * F + i] = inSet;
    } else if (errorsFor(n.site) === 'default') {
      for (const t of positions) m.errors[t] = inSet;
    }
  }
  return mask;
}

/** F(C), F(M \ C) and the normalised scores of one node set. */
export function scoreNodes(
  model: MetricModel,
  selected: EvalNode[],
  errorsFor: (site: string) => ErrorMode,
  fEmpty: number,
  fModel: number,
): CircuitScore {
  const fCircuit = model.metric(keepMask(model, selected, errorsFor, 'circuit'));
  const fComplement = model.metric(keepMask(model, selected, errorsFor, 'complement'));
  return {
    ...countNodes(model, selected, errorsFor),
    fCircuit,
    fComplement,
    faithfulness: normalizedScore(fCircuit, fEmpty, fModel),
    completeness: normalizedScore(fComplement, fEmpty, fModel),
  };
}

/** F(∅) under an error mode. */
export function emptyMetric(model: MetricModel, errorsFor: (site: string) => ErrorMode): number {
  return model.metric(keepMask(model, [], errorsFor, 'circuit'));
}

/**
 * The same number of features as `selected` has per site and position, drawn uniformly from each
 * site's dictionary; error nodes are kept as they are.
 */
export function randomFeatures(model: MetricModel, selected: EvalNode[], rng: Rng): EvalNode[] {
  const groups = new Map<string, { site: string; position: number | null; count: number }>();
  const out: EvalNode[] = [];
  for (const n of selected) {
    if (n.kind === 'error') {
      out.push(n);
      continue;
    }
    const key = `${n.site}@${n.position}`;
    const g = groups.get(key) ?? { site: n.site, position: n.position, count: 0 };
    g.count++;
    groups.set(key, g);
  }
  for (const g of groups.values()) {
    const F = model.dictionaries.get(g.site)!.width;
    const chosen = new Set<number>();
    // Floyd's algorithm: `count` distinct indices of 0..F-1 without a length-F array.
    for (let j = F - g.count; j < F; j++) {
      const r = rng.int(j + 1);
      chosen.add(chosen.has(r) ? j : r);
    }
    for (const feature of [...chosen].sort((a, b) => a - b))
      out.push({ site: g.site, kind: 'feature', feature, position: g.position, effect: 0 });
  }
  return out;
}

function errorModeOf(series: SeriesName, errors: ErrorMode): (site: string) => ErrorMode {
  if (series === 'features_without_errors') return () => 'remove';
  if (series === 'features_without_attn_mlp_errors')
    return (site) => (site.startsWith('attn_') || site.startsWith('mlp_') ? 'remove' : errors);
  return () => errors;
}

export interface EvaluateOptions {
  thresholds: number[];
  /** Error handling of the circuit and of the features, neurons and random series. */
  errors?: ErrorMode;
  /** Which series to draw (default: all that the inputs allow). */
  series?: SeriesName[];
  /** Seed of the random-features baseline. */
  seed?: number;
  onProgress?: OnProgress;
}

export interface EvaluateInputs {
  /** Model and dictionaries of the circuit's SAEs, with the evaluation data. */
  model: MetricModel;
  circuit: NodeSource;
  /** A circuit found with identity dictionaries, run through its own AblatedModel (same data). */
  neurons?: { model: MetricModel; circuit: NodeSource };
  /**
   * The same model and data with a dictionary at every site of the circuit (the embedding
   * included), to score the circuit as saved with every layer. May be `model` itself when it
   * already has every site.
   */
  allLayers?: MetricModel;
}

/** Scores the circuit as saved and draws every series over the thresholds. */
export function evaluate(inputs: EvaluateInputs, options: EvaluateOptions): Evaluation {
  const { model, circuit, neurons, allLayers } = inputs;
  const errors = options.errors ?? 'default';
  if (!ERROR_MODES.includes(errors))
    throw new Error(`errors: expected one of ${ERROR_MODES.join(', ')}, got "${errors}"`);
  const thresholds = options.thresholds;
  for (const t of thresholds)
    if (!(Number.isFinite(t) && t >= 0))
      throw new Error(`thresholds: expected non-negative numbers, got ${t}`);
  const wanted = (options.series ?? [...SERIES]).filter((s) => s !== 'neurons' || neurons);
  if (options.series?.includes('neurons') && !neurons)
    throw new Error('series "neurons" needs a circuit found with neurons (identity dictionaries)');
  const rng = new Rng(options.seed ?? 0);

  // Progress in forward passes over the data: 2 per point, 1 per F(∅), plus F(M) and the circuit
  // (and F(∅) and the circuit again with every layer).
  const total = 4 + (allLayers ? 3 : 0) + wanted.length * (1 + 2 * thresholds.length);
  let done = 0;
  const step = (runs: number) => {
    done += runs;
    options.onProgress?.(Math.min(done, total), total);
  };

  const fModel = model.metricModel();
  const fEmpty = emptyMetric(model, () => errors);
  step(2);
  const circuitScore = scoreNodes(model, circuit.nodes, () => errors, fEmpty, fModel);
  step(2);
  let all: Evaluation['allLayers'] = null;
  if (allLayers) {
    // Every site the circuit's nodes sit on and every evaluated site (all of the model's sites for
    // a circuit found at every site; a circuit found at some sites needs only those).
    const needed = new Set([...model.sites, ...circuit.nodes.map((n) => n.site)]);
    const missing = allLayers.model.sites.filter(
      (s) => needed.has(s) && !allLayers.dictionaries.has(s),
    );
    if (missing.length > 0)
      throw new Error(`allLayers: no dictionary at ${missing.join(', ')} (every site is needed)`);
    if (allLayers.batches !== model.batches)
      throw new Error('allLayers: must run on the same batches as the evaluated model');
    const fEmptyAll = allLayers === model ? fEmpty : emptyMetric(allLayers, () => errors);
    const score =
      allLayers === model
        ? circuitScore
        : scoreNodes(allLayers, circuit.nodes, () => errors, fEmptyAll, fModel);
    all = { fEmpty: fEmptyAll, circuit: score };
    step(3);
  }
  const everySite = countAt(
    circuit.nodes,
    () => errors,
    () => true,
  );

  const series: Series[] = [];
  for (const name of wanted) {
    const source = name === 'neurons' ? neurons!.circuit : circuit;
    const runner = name === 'neurons' ? neurons!.model : model;
    const errorsFor = errorModeOf(name, errors);
    const fEmptySeries = emptyMetric(runner, errorsFor);
    step(1);
    const points: CurvePoint[] = [];
    const skipped: number[] = [];
    // Node sets are nested in the threshold, so an equal count means an equal set.
    const byCount = new Map<number, CircuitScore>();
    for (const threshold of thresholds) {
      // (with a little slack for thresholds written with fewer digits than computed)
      if (threshold < source.nodeThreshold * (1 - 1e-9)) {
        skipped.push(threshold);
        step(2);
        continue;
      }
      const circuitNodes = selectNodes(runner, source.nodes, threshold);
      let score = byCount.get(circuitNodes.length);
      if (!score) {
        const selected =
          name === 'random_features'
            ? randomFeatures(runner, circuitNodes, rng.fork())
            : circuitNodes;
        score = scoreNodes(runner, selected, errorsFor, fEmptySeries, fModel);
        byCount.set(circuitNodes.length, score);
      }
      points.push({ threshold, ...score });
      step(2);
    }
    series.push({ name, label: SERIES_LABELS[name], fEmpty: fEmptySeries, points, skipped });
  }
  options.onProgress?.(total, total);
  return {
    fModel,
    fEmpty,
    circuit: circuitScore,
    nodesBelowStartLayer: everySite.nodes - circuitScore.nodes,
    allLayers: all,
    series,
  };
}
