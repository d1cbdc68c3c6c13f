// SHIFT (Marks et al. 2024, §4): repair a probe that learned a spurious cue by zero-ablating the
// circuit features a judge calls spurious, using only the ambiguous data (label and cue
// perfectly correlated). Every row of the result is scored on one balanced split: balanced_test
// for what we report, balanced_val (a training-side split) when settings are being chosen.
//
// Stages: pooled activations and the original probe; the SHIFT circuit (IG, zero ablation, sum
// aggregation) of the probe's logit signed so that larger means wrong; the judgement; then each
// ablation (SHIFT, random features, embed-only, skylines), with the original head and with a head
// retrained on the ablated model's activations of the ambiguous split; the oracle.
// d model width, K features ablated.

import {
  discover,
  toCircuit,
  type DiscoverOptions,
  type Discovery,
} from '../attribution/discover.ts';
import type { Circuit, CircuitNode } from '../circuit/circuit.ts';
import type { ClassificationTask, ClassifiedText } from '../data/classification.ts';
import { exampleFromIds, type TaskExample } from '../data/tasks.ts';
import type { SiteHook } from '../model/gptneox.ts';
import type { LanguageModel } from '../model/language-model.ts';
import { Rng } from '../random.ts';
import type { Dictionary } from '../sae/dictionary.ts';
import { zeroAblationHooks, type FeatureRef } from './ablation.ts';
import { probeMetric } from './metric.ts';
import { pooledActivations, probeLogit, trainProbe, type Probe } from './probe.ts';

export interface Scores {
  /** Accuracy on the label. */
  label: number;
  /** Share of predictions equal to the class the ambiguous split pairs with the gender. */
  gender: number;
  /** Lowest label accuracy over the four label/gender groups. */
  worstGroup: number;
}

export interface ShiftRow extends Scores {
  name: string;
  description: string;
  /** Features (or neurons) ablated. */
  ablated: number;
  retrained: boolean;
}

export interface CircuitFeature {
  id: string;
  site: string;
  feature: number;
  effect: number;
}

export interface ShiftOptions {
  model: LanguageModel;
  dictionaries: (site: string) => Dictionary;
  /** Identity dictionaries, for the neuron skyline. */
  neurons: (site: string) => Dictionary;
  /** The sites with dictionaries, whose nodes are found (default: every site of the model). */
  sites?: string[];
  task: ClassificationTask;
  /** The residual site the probe reads (default: the penultimate layer's resid). */
  site?: string;
  /**
   * Picks the spurious features, normally among the circuit's; a person may add others (their
   * effect is then 0 as far as the circuit knows).
   */
  judge: (features: CircuitFeature[]) => CircuitFeature[];
  /** Also retrain the head after each ablation (the "+ retrain" rows); default false. */
  retrain?: boolean;
  steps?: number; // IG steps, default 10
  nodeThreshold?: number; // default 0.1
  /** Ambiguous examples the circuit is found on (default: all). */
  examples?: number;
  l2?: number;
  seed?: number;
  batchSize?: number;
  /** The split every row is scored on (default balanced_test; balanced_val to choose settings). */
  scoreOn?: ScoredSplit;
  circuitInfo: { model: string; saes: string; data: string };
  onStage?: (stage: string) => void;
  onProgress?: (done: number, total: number) => void;
}

export interface ShiftResult {
  site: string;
  scoredOn: ScoredSplit;
  probe: Probe;
  circuit: Circuit;
  features: CircuitFeature[];
  spurious: CircuitFeature[];
  rows: ShiftRow[];
  seconds: number;
}

/** Label/gender/worst-group accuracy of `probe` on rows of X [n*d] for `examples`. */
export function scoreProbe(probe: Probe, X: Float32Array, examples: ClassifiedText[]): Scores {
  let label = 0;
  let gender = 0;
  const groups = new Map<string, { right: number; n: number }>();
  examples.forEach((e, i) => {
    const predicted = probeLogit(probe, X, i) > 0 ? 1 : 0;
    const right = predicted === e.y;
    label += Number(right);
    gender += Number(predicted === e.genderClass);
    const key = `${e.y}/${e.genderClass}`;
    const g = groups.get(key) ?? { right: 0, n: 0 };
    g.right += Number(right);
    g.n++;
    groups.set(key, g);
  });
  const n = examples.length;
  const worstGroup = Math.min(...[...groups.values()].map((g) => g.right / g.n));
  return { label: label / n, gender: gender / n, worstGroup };
}

/** The penultimate layer's residual site, SHIFT's default probe input. */
export function defaultProbeSite(numLayers: number): string {
  return numLayers >= 2 ? `resid_${numLayers - 2}` : 'embed';
}

function asExamples(texts: ClassifiedText[]): TaskExample[] {
  return texts.map((t) =>
    exampleFromIds({ line: t.line, clean: t.ids, cleanAnswerId: -1, text: t.text, case: t.label }),
  );
}

function featuresOf(nodes: CircuitNode[]): CircuitFeature[] {
  return nodes
    .filter((n) => n.kind === 'feature')
    .map((n) => ({ id: n.id, site: n.site, feature: n.feature!, effect: n.effect }));
}

/** The balanced split the rows are scored on: test for reports, val to choose settings. */
export type ScoredSplit = 'balanced_test' | 'balanced_val';

/** What every ablation is compared with: the probe, and the scored split's pooled inputs. */
export interface ShiftSetup {
  model: LanguageModel;
  site: string;
  l2: number;
  batchSize?: number;
  ambiguous: ClassifiedText[];
  scoredOn: ScoredSplit;
  scored: ClassifiedText[];
  /** The original probe, trained on the ambiguous split. */
  probe: Probe;
  xScored: Float32Array; // [n*d]
}

export interface SetupOptions {
  site?: string;
  l2?: number;
  scoreOn?: ScoredSplit;
  batchSize?: number;
}

const textIds = (texts: ClassifiedText[]) => texts.map((t) => t.ids);
const textLabels = (texts: ClassifiedText[]) => texts.map((t) => t.y);

function pooledOf(
  s: Pick<ShiftSetup, 'model' | 'site' | 'batchSize'>,
  texts: ClassifiedText[],
  hooks?: Record<string, SiteHook>,
) {
  return pooledActivations(s.model, textIds(texts), s.site, { hooks, batchSize: s.batchSize });
}

/** Trains the original probe on the ambiguous split and pools the scored split. */
export function prepareShift(
  model: LanguageModel,
  task: ClassificationTask,
  o: SetupOptions = {},
): ShiftSetup {
  const site = o.site ?? defaultProbeSite(model.shape.numLayers);
  const scoredOn = o.scoreOn ?? 'balanced_test';
  const scored = task.splits[scoredOn];
  if (!scored)
    throw new Error(
      `${task.dir}: no ${scoredOn}.jsonl, the split the rows were asked to be scored on`,
    );
  const ambiguous = task.splits.ambiguous;
  const base = { model, site, batchSize: o.batchSize };
  const probe = trainProbe(site, pooledOf(base, ambiguous), textLabels(ambiguous), {
    l2: o.l2 ?? 1e-4,
  });
  return {
    ...base,
    l2: o.l2 ?? 1e-4,
    ambiguous,
    scoredOn,
    scored,
    probe,
    xScored: pooledOf(base, scored),
  };
}

/** Scores of the original head and of the probe `probe` itself on the scored split. */
export function scoreOriginal(s: ShiftSetup): Scores {
  return scoreProbe(s.probe, s.xScored, s.scored);
}

export interface CircuitOptions {
  steps?: number; // IG steps, default 10
  nodeThreshold?: number; // default 0.1
  /** Ambiguous examples the circuit is found on (default: all). */
  examples?: number;
  batchSize?: number;
  /** The sites with dictionaries (default: every site of the model). */
  sites?: string[];
  circuitInfo: { model: string; saes: string; data: string };
  onProgress?: (done: number, total: number) => void;
}

function discoverOptionsOf(o: CircuitOptions): DiscoverOptions {
  return {
    method: 'ig',
    steps: o.steps ?? 10,
    aggregation: 'sum',
    nodeThreshold: o.nodeThreshold ?? 0.1,
    nodesOnly: true,
    batchSize: o.batchSize ?? 10,
    sites: o.sites,
    onNodes: o.onProgress,
  };
}

/** Node effects of the probe logit signed by `signs`: IG with zero ablation, summed over positions. */
function probeEffects(
  s: ShiftSetup,
  texts: ClassifiedText[],
  signs: number[],
  dictionaries: (site: string) => Dictionary,
  options: DiscoverOptions,
): Discovery {
  return discover(s.model, dictionaries, asExamples(texts), {
    ...options,
    metric: probeMetric(
      s.probe,
      texts.map((t) => t.ids.length),
      signs,
    ),
  });
}

export interface ShiftCircuit {
  discovery: Discovery;
  circuit: Circuit;
  /** The candidates: the circuit's features. */
  features: CircuitFeature[];
}

/** The SHIFT circuit: node effects of the probe's logit signed so that larger means wrong. */
export function shiftCircuit(
  s: ShiftSetup,
  dictionaries: (site: string) => Dictionary,
  o: CircuitOptions,
): ShiftCircuit {
  const options = discoverOptionsOf(o);
  const texts = s.ambiguous.slice(0, o.examples ?? s.ambiguous.length);
  // Larger means wrong: z for class-0 examples (z > 0 predicts 1), -z for class-1 ones.
  const signs = texts.map((t) => (t.y === 0 ? 1 : -1));
  const discovery = probeEffects(s, texts, signs, dictionaries, options);
  const circuit = toCircuit(discovery, { ...o.circuitInfo, tokens: [] }, options);
  return { discovery, circuit, features: featuresOf(circuit.nodes) };
}

/**
 * The random control: as many features per site as `spurious` has there, drawn among the
 * features with a non-zero effect that are not in `spurious`.
 */
export function randomFeatures(
  c: ShiftCircuit,
  spurious: readonly CircuitFeature[],
  seed = 1,
): CircuitFeature[] {
  const rng = new Rng(seed);
  const pool = featuresOf(c.discovery.sums.nodes(0));
  const chosen = new Set(spurious.map((f) => f.id));
  const random: CircuitFeature[] = [];
  for (const site of new Set(spurious.map((f) => f.site))) {
    const candidates = rng.shuffle(pool.filter((f) => f.site === site && !chosen.has(f.id)));
    random.push(...candidates.slice(0, spurious.filter((f) => f.site === site).length));
  }
  return random;
}

export interface AblationScores {
  /** The original head on the ablated model. */
  fixed: Scores;
  /** A head retrained on the ablated model's ambiguous activations (when asked for). */
  retrained: Scores | null;
}

/** Zero-ablates `ablate` (errors kept) and scores the original and, optionally, a retrained head. */
export function scoreAblation(
  s: ShiftSetup,
  dictionaries: (site: string) => Dictionary,
  ablate: readonly FeatureRef[],
  retrain: boolean,
): AblationScores {
  const hooks = zeroAblationHooks(dictionaries, ablate);
  const x = ablate.length ? pooledOf(s, s.scored, hooks) : s.xScored;
  const fixed = scoreProbe(s.probe, x, s.scored);
  if (!retrain || ablate.length === 0) return { fixed, retrained: null };
  const head = trainProbe(s.site, pooledOf(s, s.ambiguous, hooks), textLabels(s.ambiguous), {
    l2: s.l2,
  });
  return { fixed, retrained: scoreProbe(head, x, s.scored) };
}

/** The oracle: a probe trained on balanced_train, scored on the scored split. */
export function scoreOracle(s: ShiftSetup, balanced: ClassifiedText[]): Scores {
  const oracle = trainProbe(s.site, pooledOf(s, balanced), textLabels(balanced), { l2: s.l2 });
  return scoreProbe(oracle, s.xScored, s.scored);
}

export function runShift(o: ShiftOptions): ShiftResult {
  const started = performance.now();
  const { model, task } = o;
  const retrain = o.retrain ?? false;

  o.onStage?.('probe');
  const setup = prepareShift(model, task, {
    site: o.site,
    l2: o.l2,
    scoreOn: o.scoreOn,
    batchSize: o.batchSize,
  });
  const { site, probe } = setup;
  const on = setup.scoredOn;

  o.onStage?.('circuit');
  const circuitOptions: CircuitOptions = {
    steps: o.steps,
    nodeThreshold: o.nodeThreshold,
    examples: o.examples,
    batchSize: o.batchSize,
    sites: o.sites,
    circuitInfo: o.circuitInfo,
    onProgress: o.onProgress,
  };
  const found = shiftCircuit(setup, o.dictionaries, circuitOptions);
  const { circuit, features } = found;
  const spurious = o.judge(features);
  const K = spurious.length;

  const rows: ShiftRow[] = [];
  const score = (
    name: string,
    description: string,
    ablate: FeatureRef[],
    dictionaries: (s: string) => Dictionary,
  ) => {
    o.onStage?.(name);
    const { fixed, retrained } = scoreAblation(setup, dictionaries, ablate, retrain);
    rows.push({ name, description, ablated: ablate.length, retrained: false, ...fixed });
    if (retrained)
      rows.push({
        name: `${name} + retrain`,
        description: `${description}; head retrained on the ablated ambiguous split`,
        ablated: ablate.length,
        retrained: true,
        ...retrained,
      });
  };

  rows.push({
    name: 'original',
    description: 'probe trained on the ambiguous split',
    ablated: 0,
    retrained: false,
    ...scoreOriginal(setup),
  });
  score('SHIFT', 'the circuit features judged spurious, zero-ablated', spurious, o.dictionaries);

  const random = randomFeatures(found, spurious, o.seed ?? 1);
  score(
    'random',
    `${random.length} random features with an effect, at SHIFT's sites`,
    random,
    o.dictionaries,
  );

  const embedOnly = spurious.filter((f) => f.site === 'embed');
  score(
    'SHIFT, embed only',
    'only the embedding-site features of SHIFT, zero-ablated',
    embedOnly,
    o.dictionaries,
  );

  // Skylines: privileged balanced data ranks nodes by how much they push the probe toward the
  // class its ambiguous training paired with the example's gender; the K that push most go.
  const balanced = task.splits.balanced_train;
  const rankTexts = balanced.slice(0, o.examples ?? balanced.length);
  const genderSigns = rankTexts.map((t) => (t.genderClass === 1 ? 1 : -1));
  const options = discoverOptionsOf(circuitOptions);
  const skyline = (dictionaries: (s: string) => Dictionary): FeatureRef[] =>
    featuresOf(probeEffects(setup, rankTexts, genderSigns, dictionaries, options).sums.nodes(0))
      .sort((a, b) => a.effect - b.effect)
      .filter((f) => f.effect < 0)
      .slice(0, K);
  const skylines = [
    ['feature', 'features', o.dictionaries],
    ['neuron', 'neurons', o.neurons],
  ] as const;
  for (const [kind, plural, dictionaries] of skylines) {
    o.onStage?.(`${kind} skyline: ranking`);
    score(
      `${kind} skyline`,
      `the ${K} ${plural} that carry gender most, ranked on balanced data`,
      skyline(dictionaries),
      dictionaries,
    );
  }

  o.onStage?.('oracle');
  rows.push({
    name: 'oracle',
    description: 'probe trained on the balanced split (no ablation)',
    ablated: 0,
    retrained: true,
    ...scoreOracle(setup, balanced),
  });

  return {
    site,
    scoredOn: on,
    probe,
    circuit,
    features,
    spurious,
    rows,
    seconds: (performance.now() - started) / 1000,
  };
}
