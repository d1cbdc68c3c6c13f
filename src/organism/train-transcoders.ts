// The organism's transcoders and clt stages: per-layer transcoders in <out>/transcoders/ and a
// cross-layer transcoder in <out>/clt/, trained on data/corpus.txt exactly as the commands in
// README.md do (through the same trainTranscoderSet), labelled with the grammar's ground truth,
// and measured into <out>/training/transcoders.json and clt.json, which report.ts turns into
// TRAINING.md. The measuring half (measureTranscoderSet) reads only the folder on disk, so
// `npm run claims` recomputes TRAINING.md's figures from the shipped weights without retraining.

import fs from 'node:fs';
import path from 'node:path';
import { GptNeoX } from '../model/gptneox.ts';
import { loadModel } from '../model/load.ts';
import { readCorpus } from '../data/corpus.ts';
import {
  collectMlpPairs,
  evaluateTranscoders,
  type TranscoderSetStats,
} from '../transcoders/train.ts';
import { trainTranscoderSet, type TranscoderSetSettings } from '../transcoders/train-set.ts';
import { saveTranscoderSet } from '../transcoders/file.ts';
import { saveClt } from '../transcoders/clt-file.ts';
import { loadTranscoders } from '../transcoders/load.ts';
import {
  CONFIDENT_F1,
  LABELS_FILE,
  readLabels,
  summariseLabels,
  type FeatureLabel,
} from './feature-labels.ts';
import { labelTranscoderFeatures, runTranscoderLabels } from './transcoder-labels.ts';
import { TRAINING_DIR } from './train-model.ts';
import { readRecordSeconds } from './records-file.ts';
import type { OnProgress } from '../progress.ts';

export type TranscoderStage = 'transcoders' | 'clt';

export interface TranscoderStageSettings extends TranscoderSetSettings {
  /** The corpus's last documents, kept out of training and measured on. */
  heldOut: number;
  /** Tokens of annotated grammar text the labels are scored on. */
  labelTokens: number;
}

/** Where each stage writes its folder (under <out>) and its record (under <out>/training). */
export const TRANSCODER_STAGE_FILES: Record<TranscoderStage, { dir: string; record: string }> = {
  transcoders: { dir: 'transcoders', record: 'transcoders.json' },
  clt: { dir: 'clt', record: 'clt.json' },
};

/** The corpus both stages train on, in the data folder. */
export const TRANSCODER_CORPUS = 'corpus.txt';

// What both shipped sets were trained and labelled with.
const SHARED_STAGE_SETTINGS = {
  k: 8,
  steps: 1000,
  batchSize: 512,
  lr: 2e-3,
  seed: 0,
  heldOut: 200,
  labelTokens: 65536,
};

/** What the shipped sets were trained with: `sfc transcoder train`'s defaults but for these. */
export const TRANSCODER_STAGE_SETTINGS: Record<TranscoderStage, TranscoderStageSettings> = {
  transcoders: { clt: false, width: 1024, ...SHARED_STAGE_SETTINGS },
  clt: { clt: true, width: 512, ...SHARED_STAGE_SETTINGS },
};

/** A tiny budget for --quick (the pipeline end to end in seconds), on the corpus's first documents. */
const QUICK: Partial<TranscoderStageSettings> = {
  width: 32,
  k: 4,
  steps: 20,
  batchSize: 64,
  heldOut: 20,
  labelTokens: 1024,
};
const QUICK_DOCUMENTS = 120;

/** The record a stage writes: the equivalent command, training time, metrics, label counts. */
export interface TranscoderRecord {
  command: string;
  seconds: number;
  settings: TranscoderStageSettings;
  stats: TranscoderSetStats;
  labels: {
    tokens: number;
    minF1: number;
    features: number;
    alive: number;
    confident: number;
    /** [label, confident features] over all layers, most common first. */
    top: [string, number][];
  };
}

/** The `sfc transcoder train` command that trains what the stage trains (its defaults left out). */
export function transcoderCommand(s: TranscoderStageSettings): string {
  return [
    'sfc transcoder train --corpus data/corpus.txt',
    s.clt ? ' --clt' : '',
    s.width !== 1024 ? ` --width ${s.width}` : '',
    s.l1 === undefined ? ` --topk ${s.k ?? 8}` : ` --l1 ${s.l1}`,
    s.skip ? ' --skip' : '',
    ` --steps ${s.steps}`,
    s.batchSize !== 512 ? ` --batch ${s.batchSize}` : '',
    s.lr !== 2e-3 ? ` --lr ${s.lr}` : '',
    s.seed !== 0 ? ` --seed ${s.seed}` : '',
    s.heldOut !== 200 ? ` --held-out ${s.heldOut}` : '',
  ].join('');
}

function loadOrganism(dir: string): GptNeoX {
  const { config, weights } = loadModel(dir);
  return new GptNeoX(config, weights);
}

/** The corpus's documents as token ids, split into training and held-out documents. */
function corpusDocuments(
  modelDir: string,
  corpus: string,
  heldOut: number,
  maxDocuments?: number,
): { train: number[][]; heldOut: number[][] } {
  const { tokenizer } = loadModel(modelDir, { tokenizer: true });
  if (!tokenizer) throw new Error(`${modelDir}: no tokenizer.json, needed to read ${corpus}`);
  const docs = readCorpus(corpus, maxDocuments).map((line) => tokenizer.encode(line));
  if (heldOut >= docs.length)
    throw new Error(
      `${corpus}: ${docs.length} documents, but ${heldOut} are to be held out for the report`,
    );
  return {
    train: docs.slice(0, docs.length - heldOut),
    heldOut: docs.slice(docs.length - heldOut),
  };
}

interface MeasureOptions {
  modelDir: string;
  dir: string;
  corpus: string;
  heldOut: number;
  labelTokens: number;
  /** Score the labels again from the weights, rather than read the folder's labels.jsonl. */
  relabel?: boolean;
  maxDocuments?: number;
}

/**
 * FVE, L0 and dead per layer and the next-token losses of the transcoder folder `dir`, on the
 * corpus's held-out documents, with the organism in `modelDir`.
 */
export function transcoderSetStats(o: MeasureOptions): TranscoderSetStats {
  const model = loadOrganism(o.modelDir);
  const docs = corpusDocuments(o.modelDir, o.corpus, o.heldOut, o.maxDocuments);
  return evaluateTranscoders(model, loadTranscoders(o.dir).transcoders, docs.heldOut);
}

/** Label counts over all layers: features, alive, confident, the most common confident labels. */
export function transcoderLabelCounts(
  labels: FeatureLabel[],
  tokens: number,
): TranscoderRecord['labels'] {
  const summary = summariseLabels(labels);
  const top = new Map<string, number>();
  for (const s of summary)
    for (const [label, n] of s.labels) top.set(label, (top.get(label) ?? 0) + n);
  return {
    tokens,
    minF1: CONFIDENT_F1,
    features: summary.reduce((n, s) => n + s.features, 0),
    alive: summary.reduce((n, s) => n + s.alive, 0),
    confident: summary.reduce((n, s) => n + s.confident, 0),
    // Most common first; ties in label order, so the record is the same on every run.
    top: [...top].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).slice(0, 6),
  };
}

/** What a stage records about the folder `dir`, from the folder alone (no training). */
export function measureTranscoderSet(o: MeasureOptions): {
  stats: TranscoderSetStats;
  labels: TranscoderRecord['labels'];
} {
  const labels = o.relabel
    ? labelTranscoderFeatures({ model: o.modelDir, transcoders: o.dir, tokens: o.labelTokens })
        .labels
    : readLabels(path.join(o.dir, LABELS_FILE));
  return { stats: transcoderSetStats(o), labels: transcoderLabelCounts(labels, o.labelTokens) };
}

/**
 * Trains the stage's set on <dataDir>/corpus.txt with the organism in `out`, writes it to
 * <out>/<dir>/ with its labels.jsonl, and writes the record <out>/training/<record>.
 * With remeasure, trains nothing: measures the folder already there and rewrites the record,
 * keeping the training time the previous record holds.
 */
export function runTranscoderStage(o: {
  stage: TranscoderStage;
  out: string;
  dataDir: string;
  quick?: boolean;
  remeasure?: boolean;
  log?: (line: string) => void;
  /** Training steps done of all. */
  onProgress?: OnProgress;
}): TranscoderRecord {
  const { dir: dirName, record: recordName } = TRANSCODER_STAGE_FILES[o.stage];
  const settings = { ...TRANSCODER_STAGE_SETTINGS[o.stage], ...(o.quick ? QUICK : {}) };
  const maxDocuments = o.quick ? QUICK_DOCUMENTS : undefined;
  const corpus = path.join(o.dataDir, TRANSCODER_CORPUS);
  const dir = path.join(o.out, dirName);
  const recordFile = path.join(o.out, TRAINING_DIR, recordName);
  const measure: MeasureOptions = {
    modelDir: o.out,
    dir,
    corpus,
    heldOut: settings.heldOut,
    labelTokens: settings.labelTokens,
    maxDocuments,
  };
  let measured: Pick<TranscoderRecord, 'stats' | 'labels'>;
  let seconds: number;
  if (o.remeasure) {
    if (!fs.existsSync(path.join(dir, 'config.yaml')))
      throw new Error(`--remeasure: ${dir} holds no transcoders (config.yaml) to measure`);
    seconds = fs.existsSync(recordFile) ? (readRecordSeconds(recordFile) ?? NaN) : NaN;
    measured = measureTranscoderSet(measure);
  } else {
    // Timed as `sfc transcoder train` runs: collect the pairs, train, save, evaluate.
    const started = Date.now();
    const model = loadOrganism(o.out);
    const docs = corpusDocuments(o.out, corpus, settings.heldOut, maxDocuments);
    const trained = trainTranscoderSet(
      collectMlpPairs(model, docs.train),
      model.config.hiddenSize,
      settings,
      o.log,
      o.onProgress,
    );
    const modelName = path.basename(path.resolve(o.out));
    if (Array.isArray(trained)) saveTranscoderSet(dir, trained, { modelName });
    else saveClt(dir, trained, { modelName });
    // Measured from the saved folder, as --remeasure and the claims measure it.
    const stats = transcoderSetStats(measure);
    seconds = (Date.now() - started) / 1000;
    const { labels } = runTranscoderLabels({
      model: o.out,
      transcoders: dir,
      tokens: settings.labelTokens,
    });
    measured = { stats, labels: transcoderLabelCounts(labels, settings.labelTokens) };
  }
  const record: TranscoderRecord = {
    command: transcoderCommand(settings),
    seconds,
    settings,
    ...measured,
  };
  fs.mkdirSync(path.dirname(recordFile), { recursive: true });
  fs.writeFileSync(recordFile, JSON.stringify(record, null, 2) + '\n');
  return record;
}
