// Do the organism's feature labels mean what they say? Interventions checked against the
// grammar's ground truth (README, "Interventions"; tests and a claims group read these numbers):
//   - zeroing every feature labelled pending_sg (F1 >= minF1) at the last token of singular-subject
//     prompts moves the agreement from the singular verb to the plural one;
//   - steering the subject token with a subject_pl feature flips it;
//   - controls: features of the same activation (zeroing) or the same added norm (steering),
//     drawn from the features that carry no agreement label, do neither.
// The logit difference is the task's: logit(clean answer, singular) − logit(patch answer, plural).

import type { TaskExample } from '../data/tasks.ts';
import type { LanguageModel } from '../model/language-model.ts';
import type { Dictionary } from '../sae/dictionary.ts';
import { Rng } from '../random.ts';
import type { FeatureStats } from '../steer/feature-stats.ts';
import { resolveInterventions, type InterventionSpec } from '../steer/intervention.ts';
import { lastLogits, softmax, taskEffect, type ExampleEffect } from '../steer/run.ts';
import type { GroundTruthLabel } from './labels-file.ts';

export interface AgreementWorld {
  model: LanguageModel;
  dictionary: (site: string) => Dictionary;
  stats: (site: string) => FeatureStats;
  labels: GroundTruthLabel[];
}

/** Labels that name agreement (a control feature carries none of them). */
const AGREEMENT_LABELS = new Set(['pending_sg', 'pending_pl', 'subject_sg', 'subject_pl']);

export interface EffectSummary {
  n: number;
  /** Mean logit difference (singular − plural answer) before and after. */
  before: number;
  after: number;
  /** Share of examples whose plural answer now wins. */
  flipped: number;
}

function summarise(effects: ExampleEffect[]): EffectSummary {
  const n = effects.length;
  const mean = (f: (e: ExampleEffect) => number) => effects.reduce((s, e) => s + f(e), 0) / n;
  return {
    n,
    before: mean((e) => e.before),
    after: mean((e) => e.after),
    flipped: effects.filter((e) => e.after < 0).length / n,
  };
}

const zeroAt = (site: string, index: number, position: number): InterventionSpec => ({
  site,
  target: { kind: 'feature', index },
  positions: { kind: 'list', positions: [position] },
  op: { kind: 'zero' },
});

/** The features labelled `label` with F1 >= minF1, in label-file order. */
export function labelled(world: AgreementWorld, label: string, minF1: number): GroundTruthLabel[] {
  return world.labels.filter((l) => l.label === label && l.f1 >= minF1);
}

export interface ZeroingResult {
  features: GroundTruthLabel[];
  pending: EffectSummary;
  /** The same activation removed along random features that carry no agreement label. */
  control: EffectSummary;
  /** Mean activation of a zeroed feature that was active (what each control removes too). */
  meanActivation: number;
  /** Mean P(" is") and P(" are") over the prompts whose answer is " is", before and after. */
  isAre: { n: number; isBefore: number; isAfter: number; areBefore: number; areAfter: number };
}

/**
 * Zero the pending_sg features at each prompt's last token. Control: for each of them active there
 * (activation a), a random feature j of the same site that carries no agreement label and fires on
 * the corpus, with x ← x − a·d_j: the same activation (decoder rows have unit norm) removed along a
 * direction that should not matter. Seeded.
 */
export function zeroPendingSingular(
  world: AgreementWorld,
  examples: TaskExample[],
  ids: { is: number; are: number },
  minF1: number,
  seed: number,
): ZeroingResult {
  const { model, dictionary } = world;
  const features = labelled(world, 'pending_sg', minF1);
  const specs = features.map((l) => zeroAt(l.site, l.feature, -1));
  const resolve = (s: InterventionSpec[]) => resolveInterventions(s, { model, dictionary });
  const pending = taskEffect(world, examples, resolve(specs));
  const sites = [...new Set(features.map((l) => l.site))];
  const candidates = new Map(sites.map((site) => [site, controlFeatures(world, site)]));
  const rng = new Rng(seed);
  const control: ExampleEffect[] = [];
  let activation = 0;
  let active = 0;
  for (const e of examples) {
    const t = e.clean.length - 1;
    const pass = model.forward(
      {
        ids: Int32Array.from(e.clean),
        batchSize: 1,
        seqLen: e.clean.length,
        lengths: [e.clean.length],
      },
      { logits: 'none' },
    );
    const chosen: InterventionSpec[] = [];
    for (const site of sites) {
      const dict = dictionary(site);
      const d = dict.dIn;
      const f = dict.encode(pass.activation(site).slice(t * d, (t + 1) * d), 1);
      const pool = [...candidates.get(site)!];
      for (const l of features.filter((x) => x.site === site)) {
        const a = f[l.feature];
        if (!(a > 0)) continue; // zeroing an inactive feature changes nothing
        activation += a;
        active++;
        const [j] = pool.splice(rng.int(pool.length), 1);
        chosen.push({
          site,
          target: { kind: 'feature', index: j },
          positions: { kind: 'list', positions: [-1] },
          op: { kind: 'steer', alpha: -a, unit: 'absolute' },
        });
      }
    }
    control.push(...taskEffect(world, [e], resolve(chosen)));
  }
  const isExamples = examples.filter((e) => e.cleanAnswerId === ids.is);
  const all = resolve(specs);
  const isAre = { n: isExamples.length, isBefore: 0, isAfter: 0, areBefore: 0, areAfter: 0 };
  for (const e of isExamples) {
    const p = softmax(lastLogits(world, e.clean));
    const q = softmax(lastLogits(world, e.clean, all));
    isAre.isBefore += p[ids.is] / isExamples.length;
    isAre.areBefore += p[ids.are] / isExamples.length;
    isAre.isAfter += q[ids.is] / isExamples.length;
    isAre.areAfter += q[ids.are] / isExamples.length;
  }
  return {
    features,
    pending: summarise(pending),
    control: summarise(control),
    meanActivation: activation / active,
    isAre,
  };
}

/** A site's features that fire on the corpus and carry no agreement label, in index order. */
function controlFeatures(world: AgreementWorld, site: string): number[] {
  const barred = new Set(
    world.labels
      .filter((l) => l.site === site && l.label !== null && AGREEMENT_LABELS.has(l.label))
      .map((l) => l.feature),
  );
  const max = world.stats(site).max;
  return [...max.keys()].filter((i) => !barred.has(i) && max[i] > 0);
}

export interface SteeringResult {
  site: string;
  feature: number;
  /** α in units of the feature's max on the corpus, and that max. */
  alphaMax: number;
  max: number;
  steered: EffectSummary;
  /** One summary per random control feature (same site, same absolute α along its direction). */
  controls: EffectSummary[];
}

/**
 * Add α·max·d_i of a subject_pl feature at the subject token (position `subject`) and, as
 * controls, the same absolute α along random features of the same site that fire on the corpus
 * and carry no agreement label (seeded): the same added norm, since decoder rows have unit norm.
 */
export function steerSubjectPlural(
  world: AgreementWorld,
  examples: TaskExample[],
  site: string,
  feature: number,
  alphaMax: number,
  subject: number,
  options: { controls: number; seed: number },
): SteeringResult {
  const { model, dictionary } = world;
  const max = world.stats(site).max[feature];
  const steer = (i: number): InterventionSpec => ({
    site,
    target: { kind: 'feature', index: i },
    positions: { kind: 'list', positions: [subject] },
    op: { kind: 'steer', alpha: alphaMax * max, unit: 'absolute' },
  });
  const run = (i: number) =>
    summarise(taskEffect(world, examples, resolveInterventions([steer(i)], { model, dictionary })));
  const live = controlFeatures(world, site);
  new Rng(options.seed).shuffle(live);
  return {
    site,
    feature,
    alphaMax,
    max,
    steered: run(feature),
    controls: live.slice(0, options.controls).map(run),
  };
}

/** The README's protocol ("Interventions"): which prompts, features, α and seeds. */
export const GROUND_TRUTH_PROTOCOL = {
  /** Singular-subject prompts of these held-out files (the subject is token 1, the verb follows the last token). */
  files: ['nounpp_test.jsonl', 'rc_test.jsonl'],
  minF1: 0.4,
  steer: { site: 'resid_1', feature: 76, alphaMax: 8, subject: 1 },
  controls: 10,
  seed: 1,
};

export interface GroundTruthNumbers {
  zeroing: ZeroingResult;
  steering: SteeringResult;
}

/** Runs the protocol on singular-subject examples (the case starts with "singular"). */
export function interventionGroundTruth(
  world: AgreementWorld,
  examples: TaskExample[],
  ids: { is: number; are: number },
): GroundTruthNumbers {
  const p = GROUND_TRUTH_PROTOCOL;
  const singular = examples.filter((e) => e.case?.startsWith('singular'));
  if (singular.length === 0) throw new Error('no singular-subject examples (case "singular...")');
  return {
    zeroing: zeroPendingSingular(world, singular, ids, p.minF1, p.seed),
    steering: steerSubjectPlural(
      world,
      singular,
      p.steer.site,
      p.steer.feature,
      p.steer.alphaMax,
      p.steer.subject,
      { controls: p.controls, seed: p.seed },
    ),
  };
}
