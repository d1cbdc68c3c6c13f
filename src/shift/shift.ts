// SHIFT (Marks et al. 2024, §4): repair a probe that learned a spurious cue by zero-ablating the
// circuit features a judge calls spurious, using only the ambiguous data (label and cue
// perfectly correlated). Every row of the result is scored on the balanced test split.
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
import type { GptNeoX, SiteHook } from '../model/gptneox.ts';
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
  model: GptNeoX;
  dictionaries: (site: string) => Dictionary;
  /** Identity dictionaries, for the neuron skyline. */
  neurons: (site: string) => Dictionary;
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
  circuitInfo: { model: string; saes: string; data: string };
  onStage?: (stage: string) => void;
  onProgress?: (done: number, total: number) => void;
}

export interface ShiftResult {
  site: string;
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

export function runShift(o: ShiftOptions): ShiftResult {
  const started = performance.now();
  const { model, task } = o;
  const site = o.site ?? defaultProbeSite(model.config.numLayers);
  const l2 = o.l2 ?? 1e-4;
  const retrain = o.retrain ?? false;
  const ambiguous = task.splits.ambiguous;
  const test = task.splits.balanced_test;
  const ids = (texts: ClassifiedText[]) => texts.map((t) => t.ids);
  const pooled = (texts: ClassifiedText[], hooks?: Record<string, SiteHook>) =>
    pooledActivations(model, ids(texts), site, { hooks, batchSize: o.batchSize });
  const labels = (texts: ClassifiedText[]) => texts.map((t) => t.y);

  o.onStage?.('probe');
  const xAmbiguous = pooled(ambiguous);
  const xTest = pooled(test);
  const probe = trainProbe(site, xAmbiguous, labels(ambiguous), { l2 });

  // Node effects of a signed probe logit, IG with zero ablation, summed over positions.
  const discoverOptions: DiscoverOptions = {
    method: 'ig',
    steps: o.steps ?? 10,
    aggregation: 'sum',
    nodeThreshold: o.nodeThreshold ?? 0.1,
    nodesOnly: true,
    batchSize: o.batchSize ?? 10,
    onNodes: o.onProgress,
  };
  const effects = (
    texts: ClassifiedText[],
    signs: number[],
    dictionaries: (s: string) => Dictionary,
  ): Discovery =>
    discover(model, dictionaries, asExamples(texts), {
      ...discoverOptions,
      metric: probeMetric(
        probe,
        texts.map((t) => t.ids.length),
        signs,
      ),
    });

  o.onStage?.('circuit');
  const circuitTexts = ambiguous.slice(0, o.examples ?? ambiguous.length);
  // Larger means wrong: z for class-0 examples (z > 0 predicts 1), -z for class-1 ones.
  const shiftDiscovery = effects(
    circuitTexts,
    circuitTexts.map((t) => (t.y === 0 ? 1 : -1)),
    o.dictionaries,
  );
  const circuit = toCircuit(shiftDiscovery, { ...o.circuitInfo, tokens: [] }, discoverOptions);
  const features = featuresOf(circuit.nodes);
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
    const hooks = zeroAblationHooks(dictionaries, ablate);
    const xt = ablate.length ? pooled(test, hooks) : xTest;
    rows.push({
      name,
      description,
      ablated: ablate.length,
      retrained: false,
      ...scoreProbe(probe, xt, test),
    });
    if (!retrain || ablate.length === 0) return;
    const head = trainProbe(site, pooled(ambiguous, hooks), labels(ambiguous), { l2 });
    rows.push({
      name: `${name} + retrain`,
      description: `${description}; head retrained on the ablated ambiguous split`,
      ablated: ablate.length,
      retrained: true,
      ...scoreProbe(head, xt, test),
    });
  };

  rows.push({
    name: 'original',
    description: 'probe trained on the ambiguous split',
    ablated: 0,
    retrained: false,
    ...scoreProbe(probe, xTest, test),
  });
  score('SHIFT', 'the circuit features judged spurious, zero-ablated', spurious, o.dictionaries);

  // Random features: as many per site as SHIFT ablates there, among the features with an effect.
  const rng = new Rng(o.seed ?? 1);
  const pool = featuresOf(shiftDiscovery.sums.nodes(0));
  const chosen = new Set(spurious.map((f) => f.id));
  const random: FeatureRef[] = [];
  for (const s of new Set(spurious.map((f) => f.site))) {
    const candidates = rng.shuffle(pool.filter((f) => f.site === s && !chosen.has(f.id)));
    random.push(...candidates.slice(0, spurious.filter((f) => f.site === s).length));
  }
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
  const skyline = (dictionaries: (s: string) => Dictionary): FeatureRef[] =>
    featuresOf(effects(rankTexts, genderSigns, dictionaries).sums.nodes(0))
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
  const oracle = trainProbe(site, pooled(balanced), labels(balanced), { l2 });
  rows.push({
    name: 'oracle',
    description: 'probe trained on the balanced split (no ablation)',
    ablated: 0,
    retrained: true,
    ...scoreProbe(oracle, xTest, test),
  });

  return {
    site,
    probe,
    circuit,
    features,
    spurious,
    rows,
    seconds: (performance.now() - started) / 1000,
  };
}
