// Training the model organism: a small GPT-NeoX learning the agreement grammar from scratch.
// B batch rows, T tokens per row (the context), V vocabulary, d model dim, L layers.
//
// Data are texts drawn fresh from the seeded grammar sampler, tokenised word by word (every word
// is one token), and packed into rows that each begin at a text's start: text <eos> text <eos> ...
// cut at T + 1 tokens (the cut text's rest is dropped), so position 0 always sees a text start,
// as the agreement task prefixes do. Training stops when every agreement task scores at least
// `target` (checked every `evalEvery` steps) or at `maxSteps`.

import fs from 'node:fs';
import path from 'node:path';
import type { OnProgress } from '../progress.ts';
import { loadTask, scoreTask, type TaskExample } from '../data/tasks.ts';
import { Tokenizer } from '../model/tokenizer.ts';
import { AdamW } from '../model/adamw.ts';
import type { GptNeoXConfig } from '../model/config.ts';
import { GptNeoX, type Batch } from '../model/gptneox.ts';
import { crossEntropy } from '../model/loss.ts';
import { saveModel } from '../model/save.ts';
import { parameterLayout, zeroWeights, type GptNeoXWeights } from '../model/weights.ts';
import { Rng } from '../random.ts';
import type { AnnotatedText } from './grammar.ts';
import { realise } from './grammar-realiser.ts';
import { GrammarSampler, type GrammarMix } from './grammar-sampler.ts';
import { TEMPLATES } from './agreement-tasks.ts';
import { buildOrganismTokenizer, END_OF_TEXT } from './tokenizer-builder.ts';

/** The organism's default shape (phase 1's proposal; vocabulary 805 padded to a multiple of 64). */
const ORGANISM_CONFIG: GptNeoXConfig = {
  vocabSize: 832,
  hiddenSize: 128,
  numLayers: 4,
  numHeads: 4,
  intermediateSize: 512,
  rotaryPct: 0.25,
  rotaryEmbBase: 10000,
  maxPositionEmbeddings: 64,
  layerNormEps: 1e-5,
  useParallelResidual: true,
  attentionBias: true,
};

/**
 * The grammar mix the organism trains on: DEFAULT_MIX with more subjects carrying a PP or an object
 * relative clause, the structures the harder agreement templates (nounpp, rc, within_rc) test.
 */
export const ORGANISM_MIX: Partial<GrammarMix> = {
  subjectSimple: 0.2,
  subjectPp: 0.25,
  subjectObjectRc: 0.3,
  subjectSubjectRc: 0.13,
  subjectCoord: 0.07,
};

interface ModelTrainOptions {
  config: GptNeoXConfig;
  /** Token id of every word token (' teachers', 'The', ' .'), from buildOrganismTokenizer().ids. */
  tokenIds: Map<string, number>;
  eosId: number;
  seed: number;
  /** Upper bound on optimizer steps; the cosine schedule runs over it. */
  maxSteps: number;
  batchSize?: number; // B, default 32
  /** T, default config.maxPositionEmbeddings. */
  ctx?: number;
  lr?: number; // peak, default 2e-3
  warmupSteps?: number; // default 200
  /** The schedule decays to lr * finalLrFraction at maxSteps (default 0.1). */
  finalLrFraction?: number;
  beta1?: number; // default 0.9
  beta2?: number; // default 0.98
  weightDecay?: number; // default 0.01, not applied to biases and layernorms
  /** Global gradient-norm clip (default 1). */
  clipNorm?: number;
  mix?: Partial<GrammarMix>;
  /** Agreement tasks checked every evalEvery steps (and at the end). */
  tasks?: { name: string; examples: TaskExample[] }[];
  evalEvery?: number; // default 250
  /** Stop once every task's accuracy is at least this (default 0.99). */
  target?: number;
  /** Steps without stopping early; a floor so the model is not cut at the first lucky check. */
  minSteps?: number;
  onProgress?: OnProgress;
  /** Called after each task check (e.g. to save a checkpoint). */
  onEval?: (record: EvalRecord, weights: GptNeoXWeights) => void;
}

export interface EvalRecord {
  step: number;
  accuracy: Record<string, number>;
}

interface ModelTrainResult {
  weights: GptNeoXWeights;
  steps: number;
  /** Mean training loss per logged window: [step, loss]. */
  losses: [number, number][];
  evals: EvalRecord[];
  tokensSeen: number;
  seconds: number;
  reachedTarget: boolean;
}

/** GPT-NeoX-style initialisation: N(0, 0.02) weights, output projections scaled by 1/sqrt(2L). */
function initWeights(config: GptNeoXConfig, rng: Rng): GptNeoXWeights {
  const w = zeroWeights(config);
  const std = 0.02;
  const outStd = std / Math.sqrt(2 * config.numLayers);
  const fill = (a: Float32Array, s: number) => {
    for (let i = 0; i < a.length; i++) a[i] = rng.normal() * s;
  };
  fill(w.embedIn, std);
  fill(w.embedOut, std);
  w.lnFinalWeight.fill(1);
  for (const layer of w.layers) {
    layer.ln1Weight.fill(1);
    layer.ln2Weight.fill(1);
    fill(layer.qkvWeight, std);
    fill(layer.fcInWeight, std);
    fill(layer.denseWeight, outStd);
    fill(layer.fcOutWeight, outStd);
  }
  return w;
}

/** The id of <|endoftext|> in the organism tokenizer (it is not among the word ids). */
export function organismEosId(json: object): number {
  const id = Tokenizer.fromJson(json).tokenId(END_OF_TEXT);
  if (id === undefined) throw new Error(`organism tokenizer has no ${END_OF_TEXT}`);
  return id;
}

/** A text's token ids; throws naming the word if the tokenizer lacks it. */
export function textTokenIds(text: AnnotatedText, tokenIds: Map<string, number>): number[] {
  return text.words.map((w) => {
    const id = tokenIds.get(w.token);
    if (id === undefined)
      throw new Error(`organism tokenizer has no token for word ${JSON.stringify(w.token)}`);
    return id;
  });
}

/**
 * Packs fresh grammar texts into rows of T + 1 tokens, each beginning at a text start (the text
 * cut at a row's end is not continued). Fills ids [B*T] (inputs) and targets [B*T] (next tokens).
 */
export class PackedRows {
  constructor(
    private readonly sampler: GrammarSampler,
    private readonly tokenIds: Map<string, number>,
    private readonly eosId: number,
  ) {}

  fill(ids: Int32Array, targets: Int32Array, B: number, T: number): void {
    const row: number[] = [];
    for (let b = 0; b < B; b++) {
      row.length = 0;
      while (row.length < T + 1) {
        for (const id of textTokenIds(realise(this.sampler.text()), this.tokenIds)) row.push(id);
        row.push(this.eosId);
      }
      for (let t = 0; t < T; t++) {
        ids[b * T + t] = row[t];
        targets[b * T + t] = row[t + 1];
      }
    }
  }
}

/** Linear warmup to lr, then cosine down to lr * finalFraction at maxSteps. */
export function learningRate(
  step: number,
  lr: number,
  warmup: number,
  maxSteps: number,
  finalFraction: number,
): number {
  if (step < warmup) return (lr * (step + 1)) / warmup;
  const progress = Math.min(1, (step - warmup) / Math.max(1, maxSteps - warmup));
  return lr * (finalFraction + (1 - finalFraction) * 0.5 * (1 + Math.cos(Math.PI * progress)));
}

/** Trains a fresh model on the grammar; reproducible from `seed`. */
function trainOrganismModel(o: ModelTrainOptions): ModelTrainResult {
  const c = o.config;
  const B = o.batchSize ?? 32;
  const T = o.ctx ?? c.maxPositionEmbeddings;
  const V = c.vocabSize;
  const lr = o.lr ?? 2e-3;
  const warmup = o.warmupSteps ?? 200;
  const finalFraction = o.finalLrFraction ?? 0.1;
  const clip = o.clipNorm ?? 1;
  const evalEvery = o.evalEvery ?? 250;
  const target = o.target ?? 0.99;
  const tasks = o.tasks ?? [];
  const started = performance.now();

  const root = new Rng(o.seed);
  const weights = initWeights(c, root.fork());
  const sampler = new GrammarSampler(root.fork(), o.mix);
  const rows = new PackedRows(sampler, o.tokenIds, o.eosId);
  const model = new GptNeoX(c, weights);
  const grads = zeroWeights(c);

  // Weight decay on matrices only (embeddings included), as in GPT-NeoX training.
  const layout = parameterLayout(c);
  const decayed = layout.filter((p) => p.shape.length === 2);
  const plain = layout.filter((p) => p.shape.length !== 2);
  const adamOptions = { lr, beta1: o.beta1 ?? 0.9, beta2: o.beta2 ?? 0.98, eps: 1e-8 };
  const adamDecay = new AdamW(
    decayed.map((p) => p.get(weights)),
    { ...adamOptions, weightDecay: o.weightDecay ?? 0.01 },
  );
  const adamPlain = new AdamW(
    plain.map((p) => p.get(weights)),
    { ...adamOptions, weightDecay: 0 },
  );
  const decayedGrads = decayed.map((p) => p.get(grads));
  const plainGrads = plain.map((p) => p.get(grads));
  const allGrads = [...decayedGrads, ...plainGrads];

  const ids = new Int32Array(B * T);
  const targets = new Int32Array(B * T);
  const batch: Batch = { ids, batchSize: B, seqLen: T, lengths: new Array<number>(B).fill(T) };
  const losses: [number, number][] = [];
  const evals: EvalRecord[] = [];
  const logEvery = Math.max(1, Math.min(50, Math.floor(o.maxSteps / 20)));
  let windowLoss = 0;
  let windowCount = 0;
  let tokensSeen = 0;
  let reachedTarget = false;
  let step = 0;

  const check = (): boolean => {
    if (tasks.length === 0) return false;
    const accuracy: Record<string, number> = {};
    for (const task of tasks)
      accuracy[task.name] = scoreTask(model, task.examples, { batchSize: 64 }).accuracy;
    const record = { step, accuracy };
    evals.push(record);
    o.onEval?.(record, weights);
    return Object.values(accuracy).every((a) => a >= target);
  };

  while (step < o.maxSteps) {
    rows.fill(ids, targets, B, T);
    for (const g of allGrads) g.fill(0);
    const pass = model.forward(batch, { logits: 'all', forBackward: true });
    const { loss, dLogits } = crossEntropy(pass.logits, targets, V);
    pass.backward(dLogits, { parameterGradients: grads });

    let sq = 0;
    for (const g of allGrads) for (let i = 0; i < g.length; i++) sq += g[i] * g[i];
    const norm = Math.sqrt(sq);
    if (norm > clip) {
      const s = clip / norm;
      for (const g of allGrads) for (let i = 0; i < g.length; i++) g[i] *= s;
    }
    const stepLr = learningRate(step, lr, warmup, o.maxSteps, finalFraction);
    adamDecay.step(decayedGrads, stepLr);
    adamPlain.step(plainGrads, stepLr);

    step++;
    tokensSeen += B * T;
    windowLoss += loss;
    windowCount++;
    if (step % logEvery === 0 || step === o.maxSteps) {
      losses.push([step, windowLoss / windowCount]);
      windowLoss = 0;
      windowCount = 0;
    }
    o.onProgress?.(step, o.maxSteps, { loss, lr: stepLr });
    if (step % evalEvery === 0 && step < o.maxSteps && check() && step >= (o.minSteps ?? 0)) {
      reachedTarget = true;
      break;
    }
  }
  if (!reachedTarget && tasks.length > 0) {
    if (evals.at(-1)?.step !== step) reachedTarget = check();
    else reachedTarget = Object.values(evals.at(-1)!.accuracy).every((a) => a >= target);
  }
  if (windowCount > 0) losses.push([step, windowLoss / windowCount]);
  return {
    weights,
    steps: step,
    losses,
    evals,
    tokensSeen,
    seconds: (performance.now() - started) / 1000,
    reachedTarget,
  };
}

// ---------------------------------------------------------------------------------------------
// The model stage of `npm run organism`: train, check the held-out tasks, write the folder.

/** Where the stages keep their records (read by report.ts). */
export const TRAINING_DIR = 'training';
export const MODEL_RECORD = 'model.json';

export interface ModelStageOptions {
  out: string;
  /** Folder of the task files {simple,nounpp,rc,within_rc}_{train,test}.jsonl. */
  dataDir: string;
  config?: GptNeoXConfig;
  seed?: number;
  maxSteps?: number;
  /** No early stop before this step (default 1200: the agreement tasks are solved within ~200 steps, the rest of the language later). */
  minSteps?: number;
  evalEvery?: number;
  batchSize?: number;
  mix?: Partial<GrammarMix>;
  /** Use only this many task examples per file (quick runs). */
  taskLimit?: number;
  onProgress?: OnProgress;
  log?: (line: string) => void;
}

/** The model stage's schedule (recorded, and assumed by report.ts for records that lack it). */
export const MODEL_STAGE_DEFAULTS = {
  lr: 2e-3,
  warmupSteps: 200,
  finalLrFraction: 0.1,
  betas: [0.9, 0.98],
  weightDecay: 0.01,
  clipNorm: 1,
  evalEvery: 200,
  minSteps: 1200,
  target: 0.99,
};

/** What the model stage records in <out>/training/model.json. */
export interface ModelRecord {
  schedule: typeof MODEL_STAGE_DEFAULTS;
  config: GptNeoXConfig;
  parameters: number;
  seed: number;
  batchSize: number;
  ctx: number;
  maxSteps: number;
  steps: number;
  tokensSeen: number;
  seconds: number;
  reachedTarget: boolean;
  losses: [number, number][];
  evals: EvalRecord[];
  test: Record<string, { accuracy: number; logitDiff: number; n: number }>;
  mix: Partial<GrammarMix>;
}

/** Loads the four agreement task files of one split with the organism tokenizer. */
export function loadAgreementTasks(
  dataDir: string,
  split: 'train' | 'test',
  tokenizer: Tokenizer,
  limit?: number,
): { name: string; examples: TaskExample[] }[] {
  return TEMPLATES.map((name) => ({
    name,
    examples: loadTask(path.join(dataDir, `${name}_${split}.jsonl`), tokenizer, { limit }).examples,
  }));
}

/** Trains the organism and writes config.json, model.safetensors, tokenizer.json and the record. */
export function runModelStage(o: ModelStageOptions): ModelRecord {
  const config = o.config ?? ORGANISM_CONFIG;
  const seed = o.seed ?? 1;
  const batchSize = o.batchSize ?? 32;
  const maxSteps = o.maxSteps ?? 1200;
  const mix = o.mix ?? ORGANISM_MIX;
  const schedule = {
    ...MODEL_STAGE_DEFAULTS,
    ...(o.evalEvery !== undefined ? { evalEvery: o.evalEvery } : {}),
    ...(o.minSteps !== undefined ? { minSteps: o.minSteps } : {}),
  };
  const log = o.log ?? (() => {});
  const built = buildOrganismTokenizer();
  if (built.vocabSize > config.vocabSize)
    throw new Error(
      `organism tokenizer has ${built.vocabSize} tokens but the config's vocab_size is ${config.vocabSize}`,
    );
  fs.mkdirSync(path.join(o.out, TRAINING_DIR), { recursive: true });
  const tokenizerFile = path.join(o.out, 'tokenizer.json');
  fs.writeFileSync(tokenizerFile, JSON.stringify(built.json) + '\n');
  const tokenizer = Tokenizer.fromFile(tokenizerFile);
  const eosId = organismEosId(built.json);

  const result = trainOrganismModel({
    config,
    tokenIds: built.ids,
    eosId,
    seed,
    maxSteps,
    batchSize,
    evalEvery: schedule.evalEvery,
    minSteps: schedule.minSteps,
    mix,
    tasks: loadAgreementTasks(o.dataDir, 'train', tokenizer, o.taskLimit),
    onProgress: o.onProgress,
    onEval: (r, weights) => {
      log(
        `step ${r.step}: train accuracy ` +
          Object.entries(r.accuracy)
            .map(([k, v]) => `${k} ${(100 * v).toFixed(1)}%`)
            .join(', '),
      );
      // A checkpoint at every check, so an interrupted run still leaves a usable model.
      saveModel(o.out, config, weights);
    },
  });
  saveModel(o.out, config, result.weights);

  const model = new GptNeoX(config, result.weights);
  const test: ModelRecord['test'] = {};
  for (const task of loadAgreementTasks(o.dataDir, 'test', tokenizer, o.taskLimit)) {
    const s = scoreTask(model, task.examples, { batchSize: 64 });
    test[task.name] = { accuracy: s.accuracy, logitDiff: s.logitDiff, n: s.n };
  }
  const parameters = parameterLayout(config).reduce(
    (sum, p) => sum + p.shape.reduce((a, b) => a * b, 1),
    0,
  );
  const record: ModelRecord = {
    schedule,
    config,
    parameters,
    seed,
    batchSize,
    ctx: config.maxPositionEmbeddings,
    maxSteps,
    steps: result.steps,
    tokensSeen: result.tokensSeen,
    seconds: result.seconds,
    reachedTarget: result.reachedTarget,
    losses: result.losses,
    evals: result.evals,
    test,
    mix,
  };
  fs.writeFileSync(
    path.join(o.out, TRAINING_DIR, MODEL_RECORD),
    JSON.stringify(record, null, 1) + '\n',
  );
  return record;
}
