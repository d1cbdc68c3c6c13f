// Ground-truth labels of SAE features on the model organism. Every token of the organism is one
// word of the grammar, and every word carries named yes/no annotations (labels.ts's WORD_LABELS:
// pending_pl, subject_sg, in_object_rc, ...). A feature's label is the annotation that best
// predicts where it fires, scored by F1 over a held-out annotated corpus:
//   precision = P(label | feature active), recall = P(feature active | label).
// N tokens, F features, K labels, d model dim, T context.

import type { WeightDtype } from '../sae/dictionary.ts';
import fs from 'node:fs';
import path from 'node:path';
import type { OnProgress } from '../progress.ts';
import { GptNeoX } from '../model/gptneox.ts';
import type { LanguageModel, ModelPass } from '../model/language-model.ts';
import type { Tokenizer } from '../model/tokenizer.ts';
import { loadModel } from '../model/load.ts';
import { Rng } from '../random.ts';
import { openSaes, type SaeLibrary } from '../sae/library.ts';
import { END_OF_TEXT } from './tokenizer-builder.ts';
import { tokenForms } from './lexicon.ts';
import type { Word } from './grammar.ts';
import { realise } from './grammar-realiser.ts';
import { GrammarSampler, type GrammarMix } from './grammar-sampler.ts';
import { WORD_LABELS } from './labels.ts';
import { readGroundTruthLabels, type GroundTruthLabel } from './labels-file.ts';
import { ORGANISM_MIX, textTokenIds, TRAINING_DIR } from './train-model.ts';

/** One feature's ground-truth label, as labels.jsonl holds it (the format is labels-file.ts's). */
export type FeatureLabel = GroundTruthLabel;

/** Seed of the labelling corpus (the model trained on seed 1, the SAEs on 101..303). */
export const LABEL_SEED = 404;
/** F1 from which a label counts as confident in summaries. */
export const CONFIDENT_F1 = 0.7;

/**
 * Co-occurrence counts of feature activity and token labels, accumulated over batches of tokens.
 * Scoring then picks, per feature, the label with the highest F1 (ties: the earlier label).
 */
export class LabelCounter {
  readonly F: number;
  readonly K: number;
  tokens = 0;
  /** [F*K] tokens where feature f is active and label k holds. */
  private readonly both: Float64Array;
  /** [F] tokens where feature f is active. */
  private readonly fires: Float64Array;
  /** [K] tokens where label k holds. */
  private readonly holds: Float64Array;

  constructor(F: number, K: number) {
    this.F = F;
    this.K = K;
    this.both = new Float64Array(F * K);
    this.fires = new Float64Array(F);
    this.holds = new Float64Array(K);
  }

  /** features [n*F], labels [n*K] (1 where the label holds); active means > threshold. */
  add(features: Float32Array, labels: Uint8Array, n: number, threshold = 0): void {
    const { F, K } = this;
    if (features.length < n * F || labels.length < n * K)
      throw new Error(
        `LabelCounter.add: ${n} tokens need ${n * F} feature values and ${n * K} labels, got ${features.length} and ${labels.length}`,
      );
    const truths: number[] = [];
    for (let i = 0; i < n; i++) {
      truths.length = 0;
      for (let k = 0; k < K; k++)
        if (labels[i * K + k]) {
          truths.push(k);
          this.holds[k]++;
        }
      const row = i * F;
      for (let f = 0; f < F; f++) {
        if (!(features[row + f] > threshold)) continue;
        this.fires[f]++;
        const o = f * K;
        for (const k of truths) this.both[o + k]++;
      }
    }
    this.tokens += n;
  }

  /** Precision, recall and F1 of "feature f active" as a predictor of label k. */
  score(f: number, k: number): { precision: number; recall: number; f1: number } {
    const both = this.both[f * this.K + k];
    const fires = this.fires[f];
    const holds = this.holds[k];
    return {
      precision: fires > 0 ? both / fires : 0,
      recall: holds > 0 ? both / holds : 0,
      f1: fires + holds > 0 ? (2 * both) / (fires + holds) : 0,
    };
  }

  /** The best label of every feature; labelNames has K entries. */
  best(site: string, labelNames: readonly string[]): FeatureLabel[] {
    if (labelNames.length !== this.K)
      throw new Error(`LabelCounter.best: ${labelNames.length} label names for ${this.K} labels`);
    const out: FeatureLabel[] = [];
    for (let f = 0; f < this.F; f++) {
      const frequency = this.tokens > 0 ? this.fires[f] / this.tokens : 0;
      let best = { label: null as string | null, precision: 0, recall: 0, f1: 0 };
      if (this.fires[f] > 0)
        for (let k = 0; k < this.K; k++) {
          const s = this.score(f, k);
          if (best.label === null || s.f1 > best.f1) best = { label: labelNames[k], ...s };
        }
      out.push({ site, feature: f, ...best, frequency });
    }
    return out;
  }
}

/** The label matrix [n*K] of a list of words (null = a token with no word, e.g. <|endoftext|>). */
export function wordLabelMatrix(words: (Word | null)[], labelNames: readonly string[]): Uint8Array {
  const K = labelNames.length;
  const predicates = labelNames.map((name) => {
    const p = WORD_LABELS[name];
    if (!p) throw new Error(`unknown word label "${name}"`);
    return p;
  });
  const m = new Uint8Array(words.length * K);
  words.forEach((w, i) => {
    if (w) predicates.forEach((holds, k) => (m[i * K + k] = holds(w) ? 1 : 0));
  });
  return m;
}

export interface LabelCorpus {
  /** [rows*T] token ids, rows starting at text starts, texts separated by <|endoftext|>. */
  ids: Int32Array;
  /** The word at each token (null for <|endoftext|>). */
  words: (Word | null)[];
  rows: number;
  T: number;
}

/** A held-out annotated corpus of at least `tokens` tokens, packed as in training. */
export function labelCorpus(
  tokens: number,
  T: number,
  tokenIds: Map<string, number>,
  eosId: number,
  seed = LABEL_SEED,
  mix?: Partial<GrammarMix>,
): LabelCorpus {
  const rows = Math.max(1, Math.ceil(tokens / T));
  const ids = new Int32Array(rows * T);
  const words: (Word | null)[] = [];
  const sampler = new GrammarSampler(new Rng(seed), mix);
  for (let r = 0; r < rows; r++) {
    const rowIds: number[] = [];
    const rowWords: (Word | null)[] = [];
    while (rowIds.length < T) {
      const text = realise(sampler.text());
      rowIds.push(...textTokenIds(text, tokenIds), eosId);
      rowWords.push(...text.words, null);
    }
    ids.set(rowIds.slice(0, T), r * T);
    words.push(...rowWords.slice(0, T));
  }
  return { ids, words, rows, T };
}

/**
 * Runs `model` over the corpus, `rows` rows at a time; `visit` gets each pass, its first row and
 * its token count n (rows·T).
 */
export function forEachCorpusBatch(
  model: LanguageModel,
  corpus: LabelCorpus,
  rows: number,
  visit: (pass: ModelPass, firstRow: number, n: number) => void,
): void {
  const T = corpus.T;
  for (let r0 = 0; r0 < corpus.rows; r0 += rows) {
    const b = Math.min(rows, corpus.rows - r0);
    const n = b * T;
    const pass = model.forward(
      {
        ids: corpus.ids.subarray(r0 * T, r0 * T + n),
        batchSize: b,
        seqLen: T,
        lengths: new Array<number>(b).fill(T),
      },
      { logits: 'none' },
    );
    visit(pass, r0, n);
  }
}

interface LabelFeaturesOptions {
  corpus: LabelCorpus;
  sites?: string[];
  /** A feature is active where its activation exceeds this (default 0). */
  threshold?: number;
  rowsPerForward?: number; // default 32
  onProgress?: OnProgress;
}

/** Labels of every feature of every site's dictionary, from one pass over the corpus per batch. */
function labelFeatures(
  model: GptNeoX,
  library: SaeLibrary,
  o: LabelFeaturesOptions,
): FeatureLabel[] {
  const { corpus } = o;
  const T = corpus.T;
  const B = o.rowsPerForward ?? 32;
  const labelNames = Object.keys(WORD_LABELS);
  const labels = wordLabelMatrix(corpus.words, labelNames);
  const K = labelNames.length;
  const sites = o.sites ?? library.sites();
  const dicts = new Map(sites.map((s) => [s, library.get(s)]));
  const counters = new Map(sites.map((s) => [s, new LabelCounter(dicts.get(s)!.width, K)]));
  forEachCorpusBatch(model, corpus, B, (pass, r0, n) => {
    const rowLabels = labels.subarray(r0 * T * K, (r0 * T + n) * K);
    for (const site of sites) {
      const features = dicts.get(site)!.encode(pass.activation(site), n);
      counters.get(site)!.add(features, rowLabels, n, o.threshold ?? 0);
    }
    o.onProgress?.(r0 + n / T, corpus.rows);
  });
  return sites.flatMap((site) => counters.get(site)!.best(site, labelNames));
}

/** One JSON object per line, in site and feature order. */
export function writeLabels(file: string, labels: FeatureLabel[]): void {
  const round = (x: number) => Number(x.toPrecision(4));
  const lines = labels.map((l) =>
    JSON.stringify({
      site: l.site,
      feature: l.feature,
      label: l.label,
      precision: round(l.precision),
      recall: round(l.recall),
      f1: round(l.f1),
      frequency: round(l.frequency),
    }),
  );
  fs.writeFileSync(file, lines.join('\n') + '\n');
}

/** Reads a labels.jsonl written by writeLabels; errors name the file and line. */
export function readLabels(file: string): FeatureLabel[] {
  return readGroundTruthLabels(file);
}

export interface SiteLabelSummary {
  site: string;
  features: number;
  /** Features that fired at least once on the corpus. */
  alive: number;
  /** Features whose best label has F1 >= minF1. */
  confident: number;
  /** Confident features per label, most common first. */
  labels: [string, number][];
}

/** Per site: how many features got a confident label, and which labels. */
export function summariseLabels(labels: FeatureLabel[], minF1 = CONFIDENT_F1): SiteLabelSummary[] {
  const bySite = new Map<string, SiteLabelSummary & { counts: Map<string, number> }>();
  for (const l of labels) {
    let s = bySite.get(l.site);
    if (!s) {
      s = { site: l.site, features: 0, alive: 0, confident: 0, labels: [], counts: new Map() };
      bySite.set(l.site, s);
    }
    s.features++;
    if (l.frequency > 0) s.alive++;
    if (l.label !== null && l.f1 >= minF1) {
      s.confident++;
      s.counts.set(l.label, (s.counts.get(l.label) ?? 0) + 1);
    }
  }
  return [...bySite.values()].map(({ counts, ...s }) => ({
    ...s,
    labels: [...counts].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)),
  }));
}

/** A plain-text table of summariseLabels' rows. */
export function formatLabelSummary(rows: SiteLabelSummary[], minF1 = CONFIDENT_F1): string {
  const lines = [`site      features  alive  F1>=${minF1}  most common confident labels`];
  for (const r of rows)
    lines.push(
      `${r.site.padEnd(9)} ${String(r.features).padStart(8)} ${String(r.alive).padStart(6)} ${String(r.confident).padStart(7)}  ` +
        r.labels
          .slice(0, 5)
          .map(([l, c]) => `${l} ${c}`)
          .join(', '),
    );
  return lines.join('\n');
}

export const LABELS_FILE = 'labels.jsonl';
export const LABEL_RECORD = 'labels.json';

export interface LabelRunOptions {
  model: string;
  /** Default <model>/saes. */
  saes?: string;
  /** The dictionary size to use when the folder holds several per site. */
  saeWidth?: number;
  dtype?: WeightDtype;
  /** Gemma Scope: the average L0 to aim for (see OpenSaesOptions.l0). */
  saeL0?: number;
  /** Default <saes>/../labels.jsonl (beside the saes folder). */
  out?: string;
  tokens?: number; // default 65536
  threshold?: number;
  seed?: number;
  sites?: string[];
  onProgress?: OnProgress;
}

export interface LabelRunResult {
  file: string;
  labels: FeatureLabel[];
  summary: SiteLabelSummary[];
  tokens: number;
  seconds: number;
}

/**
 * The id of every grammar word's token and of <|endoftext|> in the tokenizer of `model` (a
 * folder, named in errors); throws unless every word is one token, as in the organism's.
 */
export function grammarTokenIds(
  tok: Tokenizer,
  model: string,
): { tokenIds: Map<string, number>; eosId: number } {
  const tokenIds = new Map<string, number>();
  for (const form of tokenForms()) {
    const id = tok.tokenId(form);
    if (id === undefined)
      throw new Error(
        `${model}: its tokenizer has no single token for the grammar word ${JSON.stringify(form)}; ground-truth labels need the model organism (every word one token)`,
      );
    tokenIds.set(form, id);
  }
  const eosId = tok.tokenId(END_OF_TEXT);
  if (eosId === undefined) throw new Error(`${model}: its tokenizer has no ${END_OF_TEXT}`);
  return { tokenIds, eosId };
}

/** `sfc label` and the labels stage: label every feature of every site and write the file. */
export function runLabels(o: LabelRunOptions): LabelRunResult {
  const started = performance.now();
  const loaded = loadModel(o.model, { tokenizer: true });
  if (!loaded.tokenizer)
    throw new Error(`${o.model}: no tokenizer.json; labelling needs the organism's tokenizer`);
  const { tokenIds, eosId } = grammarTokenIds(loaded.tokenizer, o.model);
  const model = new GptNeoX(loaded.config, loaded.weights);
  const saesDir = o.saes ?? path.join(o.model, 'saes');
  const library = openSaes(saesDir, loaded.config.numLayers, {
    width: o.saeWidth,
    l0: o.saeL0,
    dtype: o.dtype,
  });
  const file = o.out ?? path.join(path.dirname(path.resolve(saesDir)), LABELS_FILE);
  const tokens = o.tokens ?? 65536;
  const corpus = labelCorpus(
    tokens,
    loaded.config.maxPositionEmbeddings,
    tokenIds,
    eosId,
    o.seed ?? LABEL_SEED,
    ORGANISM_MIX,
  );
  const labels = labelFeatures(model, library, {
    corpus,
    sites: o.sites,
    threshold: o.threshold,
    onProgress: o.onProgress,
  });
  writeLabels(file, labels);
  return {
    file,
    labels,
    summary: summariseLabels(labels),
    tokens: corpus.rows * corpus.T,
    seconds: (performance.now() - started) / 1000,
  };
}

/** The labels stage of `npm run organism`: <out>/labels.jsonl and <out>/training/labels.json. */
export function runLabelStage(
  out: string,
  tokens?: number,
  onProgress?: OnProgress,
): LabelRunResult {
  const result = runLabels({ model: out, out: path.join(out, LABELS_FILE), tokens, onProgress });
  fs.mkdirSync(path.join(out, TRAINING_DIR), { recursive: true });
  fs.writeFileSync(
    path.join(out, TRAINING_DIR, LABEL_RECORD),
    JSON.stringify(
      {
        tokens: result.tokens,
        seconds: result.seconds,
        minF1: CONFIDENT_F1,
        summary: result.summary,
      },
      null,
      1,
    ) + '\n',
  );
  return result;
}
