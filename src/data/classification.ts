// Classification data for SHIFT, in the shape of Bias in Bios: one JSON object per line,
//   {"text": "The woman is a nurse . She likes her friend .", "label": "nurse", "gender": "female"}
// A task is a folder of three splits: ambiguous.jsonl (label and gender perfectly correlated:
// the only data SHIFT trains and discovers on), balanced_train.jsonl and balanced_test.jsonl
// (every label/gender combination; for the oracle, the skylines and all accuracies), and
// optionally balanced_val.jsonl (balanced too, kept apart from the test split, on which settings
// such as the judge's share are chosen: `sfc shift --score-on val`).

import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { readTextFile } from '../io/text-file.ts';
import { jsonRecords, type TaskTokenizer } from './tasks.ts';
import type { BosMode } from '../model/tokenizer.ts';
import { describeIssues } from '../io/validation.ts';

const lineSchema = z.object({
  text: z.string().min(1),
  label: z.string().min(1),
  gender: z.string().min(1),
});

export interface ClassifiedText {
  line: number;
  text: string;
  ids: number[];
  label: string;
  gender: string;
  /** 0 or 1: the label's index in the task's `labels`. */
  y: number;
  /** 0 or 1: the class the ambiguous split pairs with this example's gender. */
  genderClass: number;
}

export const CLASSIFICATION_SPLITS = ['ambiguous', 'balanced_train', 'balanced_test'] as const;
export type ClassificationSplit = (typeof CLASSIFICATION_SPLITS)[number];
/** Read when its file is there. */
export const OPTIONAL_SPLITS = ['balanced_val'] as const;
export type OptionalSplit = (typeof OPTIONAL_SPLITS)[number];

export interface ClassificationTask {
  dir: string;
  /** The two labels, sorted: y = 0 for labels[0]. */
  labels: [string, string];
  /** genders[y]: the gender the ambiguous split pairs with label y. */
  genders: [string, string];
  splits: Record<ClassificationSplit, ClassifiedText[]> &
    Partial<Record<OptionalSplit, ClassifiedText[]>>;
  /** Whether the texts start with the BOS token (options.bos). */
  bos: boolean;
}

interface RawText {
  line: number;
  text: string;
  label: string;
  gender: string;
}

function readSplit(file: string): RawText[] {
  return jsonRecords(readTextFile(file), file).map(({ line, value }) => {
    const parsed = lineSchema.safeParse(value);
    if (!parsed.success)
      throw new Error(
        `${file}:${line}: not a classification example (${describeIssues(parsed.error, { root: '(line)' })}); ` +
          'expected {"text": string, "label": string, "gender": string}',
      );
    return { line, ...parsed.data };
  });
}

/** Reads and checks the three splits of the task folder `dir`, tokenised. */
export function loadClassificationTask(
  dir: string,
  tokenizer: TaskTokenizer,
  options: {
    maxLength?: number;
    /** As LoadTaskOptions.bos: 'auto', 'always', 'never'; default no BOS, as before. */
    bos?: BosMode;
  } = {},
): ClassificationTask {
  let bos = false;
  const textIds = (text: string, file: string): number[] => {
    if (options.bos === undefined) return tokenizer.encode(text);
    if (!tokenizer.encodePrompt)
      throw new Error(`${file}: a BOS option was given but the tokenizer cannot add a BOS`);
    const prompt = tokenizer.encodePrompt(text, options.bos);
    bos ||= prompt.bos;
    return prompt.ids;
  };
  const present = OPTIONAL_SPLITS.filter((s) => fs.existsSync(path.join(dir, `${s}.jsonl`)));
  const names = [...CLASSIFICATION_SPLITS, ...present];
  const raw = Object.fromEntries(
    names.map((s) => [s, readSplit(path.join(dir, `${s}.jsonl`))]),
  ) as Record<ClassificationSplit | OptionalSplit, RawText[]>;
  const ambiguousFile = path.join(dir, 'ambiguous.jsonl');
  const labels = [...new Set(raw.ambiguous.map((r) => r.label))].sort();
  if (labels.length !== 2)
    throw new Error(
      `${ambiguousFile}: SHIFT needs exactly two labels, found ${labels.length} (${labels.join(', ') || 'none'})`,
    );
  const genders = labels.map((label) => {
    const seen = [...new Set(raw.ambiguous.filter((r) => r.label === label).map((r) => r.gender))];
    if (seen.length !== 1)
      throw new Error(
        `${ambiguousFile}: in the ambiguous split each label must come with one gender only; "${label}" comes with ${seen.join(', ')}`,
      );
    return seen[0];
  }) as [string, string];
  if (genders[0] === genders[1])
    throw new Error(`${ambiguousFile}: both labels come with gender "${genders[0]}"`);

  const splits = {} as ClassificationTask['splits'];
  for (const split of names) {
    const file = path.join(dir, `${split}.jsonl`);
    if (raw[split].length === 0) throw new Error(`${file}: no examples`);
    splits[split] = raw[split].map((r) => {
      const y = labels.indexOf(r.label);
      const genderClass = genders.indexOf(r.gender);
      if (y < 0)
        throw new Error(
          `${file}:${r.line}: label "${r.label}" is not one of the ambiguous split's (${labels.join(', ')})`,
        );
      if (genderClass < 0)
        throw new Error(
          `${file}:${r.line}: gender "${r.gender}" is not one of the ambiguous split's (${genders.join(', ')})`,
        );
      const ids = textIds(r.text, file);
      if (ids.length === 0) throw new Error(`${file}:${r.line}: the text has no tokens`);
      if (options.maxLength !== undefined && ids.length > options.maxLength)
        throw new Error(
          `${file}:${r.line}: ${ids.length} tokens, more than the model's context of ${options.maxLength}`,
        );
      return { line: r.line, text: r.text, ids, label: r.label, gender: r.gender, y, genderClass };
    });
    if (split !== 'ambiguous') {
      const groups = new Set(splits[split].map((e) => `${e.y}${e.genderClass}`));
      if (groups.size !== 4)
        throw new Error(
          `${file}: a balanced split needs all four label/gender combinations; it has ${groups.size}`,
        );
    }
  }
  return { dir, labels: labels as [string, string], genders, splits, bos };
}
