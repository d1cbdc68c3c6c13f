// Running a model with interventions: the next-token distribution before and after, a
// continuation generated with the interventions held (a KV cache carried step by step, so the
// cached keys and values of intervened positions carry the intervention), and a task's logit
// difference per example.

import { makeBatch, type Batch, type SiteHook } from '../model/gptneox.ts';
import type { LanguageModel, ModelPast } from '../model/language-model.ts';
import type { Dictionary } from '../sae/dictionary.ts';
import type { TaskExample } from '../data/tasks.ts';
import { taskBatches } from '../data/tasks.ts';
import { Rng } from '../random.ts';
import { interventionHooks } from './hooks.ts';
import { checkPositions, type Intervention } from './intervention.ts';

export interface SteerContext {
  model: LanguageModel;
  dictionary: (site: string) => Dictionary;
}

/** The last position's logits [V] of a prompt, with the interventions (none: the clean run). */
export function lastLogits(
  context: SteerContext,
  ids: number[],
  interventions: Intervention[] = [],
): Float32Array {
  checkPositions(interventions, ids.length);
  const hooks = interventionHooks(interventions, {
    dictionary: context.dictionary,
    batchSize: 1,
    offset: 0,
    promptLengths: [ids.length],
  });
  return context.model.forward(makeBatch([ids]), { hooks, logits: 'last' }).logits;
}

export function softmax(logits: Float32Array): Float64Array {
  let max = -Infinity;
  for (const v of logits) max = Math.max(max, v);
  const p = new Float64Array(logits.length);
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += p[i] = Math.exp(logits[i] - max);
  for (let i = 0; i < p.length; i++) p[i] /= sum;
  return p;
}

/** KL(p ‖ q) in nats of two distributions given as logits. */
export function klDivergence(pLogits: Float32Array, qLogits: Float32Array): number {
  const p = softmax(pLogits);
  const q = softmax(qLogits);
  let kl = 0;
  for (let i = 0; i < p.length; i++) if (p[i] > 0) kl += p[i] * (Math.log(p[i]) - Math.log(q[i]));
  return Math.max(0, kl);
}

export interface GenerateOptions {
  /** 0 (default): greedy; otherwise sample from softmax(logits / temperature). */
  temperature?: number;
  /** Seed of the sampler (the same seed gives the same draws with and without interventions). */
  seed?: number;
  /** Stop after this token (e.g. the end-of-text id). */
  stopId?: number;
  /** Called with each step's last-position logits [V] before the token is picked. */
  onLogits?: (logits: Float32Array, step: number) => void;
}

/** Picks the next token from logits: argmax, or a draw at a temperature. */
function pick(logits: Float32Array, temperature: number, rng: Rng): number {
  if (temperature === 0) {
    let best = 0;
    for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
    return best;
  }
  const p = softmax(logits.map((v) => v / temperature));
  let u = rng.next();
  for (let i = 0; i < p.length; i++) {
    u -= p[i];
    if (u < 0) return i;
  }
  return p.length - 1;
}

/**
 * `steps` tokens after the prompt with the interventions held: the prompt runs once, then each new
 * token runs alone on the keys and values cached so far (computed with the interventions, which
 * also act at generated positions when their positions say so).
 */
export function generate(
  context: SteerContext,
  prompt: number[],
  steps: number,
  interventions: Intervention[] = [],
  options: GenerateOptions = {},
): number[] {
  const { model } = context;
  const temperature = options.temperature ?? 0;
  if (!(temperature >= 0)) throw new Error(`generate: temperature ${temperature} must be >= 0`);
  checkPositions(interventions, prompt.length);
  const rng = new Rng(options.seed ?? 1);
  const room = model.shape.maxPositions - prompt.length;
  const out: number[] = [];
  let past: ModelPast | undefined;
  let input = prompt;
  for (let s = 0; s < Math.min(steps, room + 1); s++) {
    const offset = past?.length ?? 0;
    const hooks = interventionHooks(interventions, {
      dictionary: context.dictionary,
      batchSize: 1,
      offset,
      promptLengths: [prompt.length],
    });
    const last = s === steps - 1 || offset + input.length >= model.shape.maxPositions;
    const pass = model.forward(makeBatch([input]), {
      hooks,
      logits: 'last',
      forBackward: !last, // the cache the next step continues
      past,
    });
    options.onLogits?.(pass.logits, s);
    const next = pick(pass.logits, temperature, rng);
    out.push(next);
    if (last || next === options.stopId) break;
    past = pass.past(offset + input.length);
    input = [next];
  }
  return out;
}

/** A task example's logit difference (clean answer − patch answer) before and after. */
export interface ExampleEffect {
  line: number;
  before: number;
  after: number;
}

/** Every example with a patch answer, at its clean prefix's last token, with and without. */
export function taskEffect(
  context: SteerContext,
  examples: TaskExample[],
  interventions: Intervention[],
  batchSize = 32,
): ExampleEffect[] {
  const { model } = context;
  const V = model.shape.vocabSize;
  const out: ExampleEffect[] = [];
  const scored = examples.filter((e) => e.patchAnswerId !== null);
  if (scored.length === 0) throw new Error('taskEffect: no example has a patch answer');
  for (const tb of taskBatches(scored, batchSize)) {
    const batch: Batch = tb.clean;
    for (const e of tb.examples) checkPositions(interventions, e.clean.length);
    const hooks = interventionHooks(interventions, {
      dictionary: context.dictionary,
      batchSize: batch.batchSize,
      offset: 0,
      promptLengths: batch.lengths,
    });
    const clean = model.forward(batch, { logits: 'last' }).logits;
    const after = model.forward(batch, { hooks, logits: 'last' }).logits;
    tb.examples.forEach((e, b) => {
      const diff = (l: Float32Array) =>
        l[b * V + e.cleanAnswerId] - l[b * V + (e.patchAnswerId as number)];
      out.push({ line: e.line, before: diff(clean), after: diff(after) });
    });
  }
  return out;
}

export interface TokenChange {
  id: number;
  /** Probability before and after. */
  before: number;
  after: number;
  logitChange: number;
}

export interface InterventionOutcome {
  /** The last position's logits [V] without and with the interventions. */
  logitsBefore: Float32Array;
  logitsAfter: Float32Array;
  /** The `top` tokens by the larger of their two probabilities. */
  top: TokenChange[];
  /** KL(before ‖ after) in nats. */
  kl: number;
  /** With `generate`: the continuations without and with (the same sampler seed). */
  generated: { without: number[]; with: number[] } | null;
}

/** What `sfc intervene` shows for one prompt (and what a live view should show the same way). */
export function interveneOnPrompt(
  context: SteerContext,
  ids: number[],
  interventions: Intervention[],
  options: { top?: number; generate?: number } & GenerateOptions = {},
): InterventionOutcome {
  const before = lastLogits(context, ids);
  const after = lastLogits(context, ids, interventions);
  const [p, q] = [softmax(before), softmax(after)];
  const order = [...before.keys()].sort((a, b) => Math.max(q[b], p[b]) - Math.max(q[a], p[a]));
  const top = order.slice(0, options.top ?? 10).map((id) => ({
    id,
    before: p[id],
    after: q[id],
    logitChange: after[id] - before[id],
  }));
  let generated: InterventionOutcome['generated'] = null;
  if (options.generate) {
    const { temperature, seed, stopId } = options;
    const o = { temperature, seed, stopId };
    generated = {
      without: generate(context, ids, options.generate, [], o),
      with: generate(context, ids, options.generate, interventions, o),
    };
  }
  return {
    logitsBefore: before,
    logitsAfter: after,
    top,
    kl: klDivergence(before, after),
    generated,
  };
}

/** A node of a circuit: a feature (index) or the site's error node (null) at a position. */
export interface NodeRef {
  site: string;
  feature: number | null;
  position: number;
}

/**
 * Each node's value in the clean run and in the run with the interventions: a feature's
 * activation as its dictionary encodes the site's activation (as the run leaves it, i.e. after
 * the hooks at that site: at an intervened site this is the encoder's reading of the changed x),
 * an error node's norm ‖x − x̂‖.
 */
export function nodeActivations(
  context: SteerContext,
  ids: number[],
  nodes: NodeRef[],
  interventions: Intervention[],
): { before: number[]; after: number[] } {
  const { model } = context;
  checkPositions(interventions, ids.length);
  for (const n of nodes)
    if (!(Number.isInteger(n.position) && n.position >= 0 && n.position < ids.length))
      throw new Error(
        `node ${n.site}/${n.feature ?? 'err'}: position ${n.position} is outside the prompt's ${ids.length} tokens`,
      );
  const hooks = interventionHooks(interventions, {
    dictionary: context.dictionary,
    batchSize: 1,
    offset: 0,
    promptLengths: [ids.length],
  });
  const read = (run: Record<string, SiteHook>) => {
    const pass = model.forward(makeBatch([ids]), { hooks: run, logits: 'none' });
    return nodes.map((n) => {
      const dict = context.dictionary(n.site);
      const d = dict.dIn;
      const x = pass.activation(n.site).slice(n.position * d, (n.position + 1) * d);
      if (n.feature !== null) {
        if (!(Number.isInteger(n.feature) && n.feature >= 0 && n.feature < dict.width))
          throw new Error(`node ${n.site}/${n.feature}: out of range 0..${dict.width - 1}`);
        return dict.encode(x, 1)[n.feature];
      }
      const { error } = dict.run(x, 1);
      return Math.hypot(...error);
    });
  };
  return { before: read({}), after: read(hooks) };
}
