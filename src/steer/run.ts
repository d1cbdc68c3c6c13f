// Running a model with interventions: the next-token distribution before and after, a
// continuation generated with the interventions held (a KV cache carried step by step, so the
// cached keys and values of intervened positions carry the intervention), and a task's logit
// difference per example.

import { makeBatch, type Batch } from '../model/gptneox.ts';
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
