// Contrastive task data in the paper's format: one JSON object per line,
//   {"clean_prefix": "The teacher", "patch_prefix": "The teachers",
//    "clean_answer": " is", "patch_answer": " are", "case": "singular"}
// (the paper's files are named *.json but hold one object per line; a top-level JSON array is
// read too). patch_prefix may be absent ("single input" data: no patch run) and so may
// patch_answer. Examples a model cannot score are dropped, with counts by reason.
// B batch, T tokens, V vocabulary.

import { readTextFile } from '../io/text-file.ts';
import { z } from 'zod';
import type { OnProgress } from '../progress.ts';
import { makeBatch, type Batch } from '../model/gptneox.ts';
import type { LanguageModel } from '../model/language-model.ts';
import { describeIssues } from '../io/validation.ts';
import type { BosMode } from '../model/tokenizer.ts';

/** What loading needs of a tokenizer (src/model/tokenizer.ts's Tokenizer has it). */
export interface TaskTokenizer {
  encode(text: string): number[];
  /** Prefix ids with or without the BOS token (Tokenizer.encodePrompt); used with options.bos. */
  encodePrompt?(text: string, mode: BosMode): { ids: number[]; bos: boolean };
}

const lineSchema = z.object({
  clean_prefix: z.string().min(1),
  patch_prefix: z.string().min(1).nullish(),
  clean_answer: z.string().min(1),
  patch_answer: z.string().min(1).nullish(),
  case: z.string().nullish(),
});

export interface TaskExample {
  /** 1-based line of the file (element number for a JSON array). */
  line: number;
  case: string | null;
  cleanPrefix: string;
  patchPrefix: string | null;
  cleanAnswer: string;
  patchAnswer: string | null;
  clean: number[];
  /** Same length as `clean`; null for single-input data. */
  patch: number[] | null;
  cleanAnswerId: number;
  patchAnswerId: number | null;
}

/**
 * An example made from token ids rather than read from a task file: synthetic data, or texts a
 * metric of their own scores (SHIFT's probe, which passes cleanAnswerId -1: no answer). Without
 * `patch` it is single-input (zero ablation). `text` is kept as the clean prefix.
 */
export function exampleFromIds(e: {
  line: number;
  clean: number[];
  cleanAnswerId: number;
  patch?: number[] | null;
  patchAnswerId?: number | null;
  text?: string;
  case?: string | null;
}): TaskExample {
  const patch = e.patch ?? null;
  return {
    line: e.line,
    case: e.case ?? null,
    cleanPrefix: e.text ?? '',
    patchPrefix: patch ? '' : null,
    cleanAnswer: '',
    patchAnswer: patch ? '' : null,
    clean: e.clean,
    patch,
    cleanAnswerId: e.cleanAnswerId,
    patchAnswerId: patch ? (e.patchAnswerId ?? null) : null,
  };
}

export const DROP_REASONS = [
  'clean_answer_not_one_token',
  'patch_answer_not_one_token',
  'prefix_lengths_differ',
  'prefix_too_long',
] as const;
export type DropReason = (typeof DROP_REASONS)[number];

export interface LoadedTask {
  file: string;
  examples: TaskExample[];
  /** Examples in the file (before dropping and before `limit`). */
  total: number;
  dropped: Record<DropReason, number>;
  /** Line and reason of each dropped example. */
  droppedLines: { line: number; reason: DropReason }[];
  /** Kept examples whose answers do not start with a space (often a mistake: ' is' vs 'is'). */
  answersWithoutSpace: number;
  /** Whether the prefixes start with the BOS token (options.bos). */
  bos: boolean;
}

export interface LoadTaskOptions {
  /** Keep at most this many examples (the first ones kept). */
  limit?: number;
  /** Drop examples whose prefix has more tokens than this (e.g. the model's context). */
  maxLength?: number;
  /** Put a space before answers that lack one (for files written as "is" rather than " is"). */
  addAnswerSpace?: boolean;
  /**
   * Start the prefixes with the BOS token: 'auto' as the model's tokenizer does, 'always',
   * 'never'. Default: no BOS, as before. Answers are single tokens scored without BOS either way;
   * maxLength counts the BOS.
   */
  bos?: BosMode;
}

/** Raw records with their line numbers, from JSONL or a JSON array. */
export function jsonRecords(text: string, file: string): { line: number; value: unknown }[] {
  if (text.trimStart().startsWith('[')) {
    let array: unknown;
    try {
      array = JSON.parse(text);
    } catch (e) {
      throw new Error(
        `${file}: starts with "[" but is not a valid JSON array (${(e as Error).message})`,
        {
          cause: e,
        },
      );
    }
    if (!Array.isArray(array)) throw new Error(`${file}: expected a JSON array`);
    return array.map((value, i) => ({ line: i + 1, value }));
  }
  const out: { line: number; value: unknown }[] = [];
  text.split('\n').forEach((raw, i) => {
    if (raw.trim() === '') return;
    try {
      out.push({ line: i + 1, value: JSON.parse(raw) });
    } catch (e) {
      throw new Error(`${file}:${i + 1}: not valid JSON (${(e as Error).message})`, { cause: e });
    }
  });
  return out;
}

/** Parses task data already read into memory; `file` names it in errors. */
export function parseTask(
  text: string,
  file: string,
  tokenizer: TaskTokenizer,
  options: LoadTaskOptions = {},
): LoadedTask {
  const isArray = text.trimStart().startsWith('[');
  const where = (line: number) => (isArray ? `${file}: element ${line}` : `${file}:${line}`);
  const dropped = Object.fromEntries(DROP_REASONS.map((r) => [r, 0])) as Record<DropReason, number>;
  const droppedLines: { line: number; reason: DropReason }[] = [];
  const examples: TaskExample[] = [];
  const all = jsonRecords(text, file);
  let answersWithoutSpace = 0;
  const drop = (line: number, reason: DropReason) => {
    dropped[reason]++;
    droppedLines.push({ line, reason });
  };
  let bos = false;
  const prefixIds = (prefix: string): number[] => {
    if (options.bos === undefined) return tokenizer.encode(prefix);
    if (!tokenizer.encodePrompt)
      throw new Error(`${file}: a BOS option was given but the tokenizer cannot add a BOS`);
    const prompt = tokenizer.encodePrompt(prefix, options.bos);
    bos ||= prompt.bos;
    return prompt.ids;
  };
  const withSpace = (answer: string) =>
    options.addAnswerSpace && !/^\s/.test(answer) ? ` ${answer}` : answer;

  for (const { line, value } of all) {
    const parsed = lineSchema.safeParse(value);
    if (!parsed.success) {
      const problems = describeIssues(parsed.error, { root: '(line)' });
      throw new Error(
        `${where(line)}: not a task example (${problems}); expected {"clean_prefix": string, "clean_answer": string, ` +
          `"patch_prefix"?: string, "patch_answer"?: string, "case"?: string}`,
      );
    }
    if (options.limit !== undefined && examples.length >= options.limit) continue;
    const r = parsed.data;
    const cleanAnswer = withSpace(r.clean_answer);
    const patchAnswer = r.patch_answer == null ? null : withSpace(r.patch_answer);
    const cleanAnswerIds = tokenizer.encode(cleanAnswer);
    if (cleanAnswerIds.length !== 1) {
      drop(line, 'clean_answer_not_one_token');
      continue;
    }
    const patchAnswerIds = patchAnswer === null ? null : tokenizer.encode(patchAnswer);
    if (patchAnswerIds && patchAnswerIds.length !== 1) {
      drop(line, 'patch_answer_not_one_token');
      continue;
    }
    const clean = prefixIds(r.clean_prefix);
    const patch = r.patch_prefix == null ? null : prefixIds(r.patch_prefix);
    if (patch && patch.length !== clean.length) {
      drop(line, 'prefix_lengths_differ');
      continue;
    }
    if (options.maxLength !== undefined && clean.length > options.maxLength) {
      drop(line, 'prefix_too_long');
      continue;
    }
    if (!/^\s/.test(cleanAnswer) || (patchAnswer !== null && !/^\s/.test(patchAnswer)))
      answersWithoutSpace++;
    examples.push({
      line,
      case: r.case ?? null,
      cleanPrefix: r.clean_prefix,
      patchPrefix: r.patch_prefix ?? null,
      cleanAnswer,
      patchAnswer,
      clean,
      patch,
      cleanAnswerId: cleanAnswerIds[0],
      patchAnswerId: patchAnswerIds ? patchAnswerIds[0] : null,
    });
  }
  return { file, examples, total: all.length, dropped, droppedLines, answersWithoutSpace, bos };
}

/** Reads a task file (.jsonl, or the paper's .json with one object per line, or a JSON array). */
export function loadTask(
  path: string,
  tokenizer: TaskTokenizer,
  options: LoadTaskOptions = {},
): LoadedTask {
  const text = readTextFile(path);
  return parseTask(text, path, tokenizer, options);
}

/** One line on what was kept and dropped, e.g. "kept 298 of 300 (dropped: 2 prefix_lengths_differ)". */
export function describeTask(task: LoadedTask): string {
  const drops = DROP_REASONS.filter((r) => task.dropped[r] > 0).map(
    (r) => `${task.dropped[r]} ${r}`,
  );
  let text = `${task.file}: kept ${task.examples.length} of ${task.total} examples`;
  if (drops.length > 0) text += ` (dropped: ${drops.join(', ')})`;
  if (task.answersWithoutSpace > 0)
    text += `; ${task.answersWithoutSpace} kept examples have an answer without a leading space (see --add-answer-space)`;
  return text;
}

export interface TaskBatch {
  examples: TaskExample[];
  clean: Batch;
  /** Null when the examples have no patch prefixes. */
  patch: Batch | null;
  /** [B] */
  cleanAnswers: Int32Array;
  /** [B]; null unless every example has a patch answer. */
  patchAnswers: Int32Array | null;
}

/**
 * Right-padded batches of at most `batchSize` examples. Examples with and without patch prefixes
 * go in separate batches, so a batch's patch run covers all of it or none.
 */
export function taskBatches(examples: TaskExample[], batchSize: number, padId = 0): TaskBatch[] {
  if (!Number.isInteger(batchSize) || batchSize < 1)
    throw new Error(`taskBatches: batch size ${batchSize} is not a positive integer`);
  const batches: TaskBatch[] = [];
  for (const group of [examples.filter((e) => e.patch), examples.filter((e) => !e.patch)]) {
    for (let start = 0; start < group.length; start += batchSize) {
      const chunk = group.slice(start, start + batchSize);
      const allPatchAnswers = chunk.every((e) => e.patchAnswerId !== null);
      batches.push({
        examples: chunk,
        clean: makeBatch(
          chunk.map((e) => e.clean),
          padId,
        ),
        patch: chunk[0].patch
          ? makeBatch(
              chunk.map((e) => e.patch!),
              padId,
            )
          : null,
        cleanAnswers: Int32Array.from(chunk, (e) => e.cleanAnswerId),
        patchAnswers: allPatchAnswers ? Int32Array.from(chunk, (e) => e.patchAnswerId!) : null,
      });
    }
  }
  return batches;
}

export interface TaskScore {
  /** Fraction of examples whose clean answer outscores the patch answer on the clean prefix. */
  accuracy: number;
  /** Mean of logit(clean answer) - logit(patch answer) at the clean prefix's last token. */
  logitDiff: number;
  n: number;
  byCase: Record<string, { accuracy: number; logitDiff: number; n: number }>;
}

/**
 * How well the model prefers the clean answer to the patch answer after the clean prefix.
 * Only examples with a patch answer count; throws if there are none.
 */
export function scoreTask(
  model: LanguageModel,
  examples: TaskExample[],
  options: { batchSize?: number; onProgress?: OnProgress } = {},
): TaskScore {
  const scored = examples.filter((e) => e.patchAnswerId !== null);
  if (scored.length === 0)
    throw new Error('no examples with a patch_answer to compare the clean answer against');
  const V = model.shape.vocabSize;
  for (const e of scored)
    for (const id of [e.cleanAnswerId, e.patchAnswerId!, ...e.clean])
      if (id >= V)
        throw new Error(
          `line ${e.line}: token id ${id} is outside the model's vocabulary of ${V} (tokenizer and model do not match?)`,
        );
  const batches = taskBatches(scored, options.batchSize ?? 32);
  const cases = new Map<string, { correct: number; diff: number; n: number }>();
  let correct = 0;
  let diffSum = 0;
  let done = 0;
  for (const batch of batches) {
    const logits = model.forward(batch.clean, { logits: 'last' }).logits; // [B*V]
    batch.examples.forEach((e, b) => {
      const diff = logits[b * V + batch.cleanAnswers[b]] - logits[b * V + batch.patchAnswers![b]];
      const key = e.case ?? '(none)';
      const c = cases.get(key) ?? { correct: 0, diff: 0, n: 0 };
      c.n++;
      c.diff += diff;
      if (diff > 0) {
        c.correct++;
        correct++;
      }
      cases.set(key, c);
      diffSum += diff;
    });
    done += batch.examples.length;
    options.onProgress?.(done, scored.length);
  }
  const byCase: TaskScore['byCase'] = {};
  for (const [key, c] of [...cases].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
    byCase[key] = { accuracy: c.correct / c.n, logitDiff: c.diff / c.n, n: c.n };
  return {
    accuracy: correct / scored.length,
    logitDiff: diffSum / scored.length,
    n: scored.length,
    byCase,
  };
}
