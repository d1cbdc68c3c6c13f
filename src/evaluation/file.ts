// Reading evaluation.json (written by ./output.ts's evaluationJson): the one reader every caller
// uses, validated with zod. Objects are loose: fields added by later versions of the writer pass
// through, so an older reader still reads a newer file.

import { z } from 'zod';
import { fileInFolder, readJsonFile } from '../io/text-file.ts';
import { describeIssues } from '../io/validation.ts';

export const EVALUATION_FILE = 'evaluation.json';

// NaN and ±Infinity are written as null by JSON.stringify.
const value = z.number().nullable();

const scoreSchema = z.looseObject({
  nodes: z.number().int().min(0),
  feature_nodes: z.number().int().min(0),
  error_nodes: z.number().int().min(0),
  f_circuit: value,
  f_complement: value,
  faithfulness: value,
  completeness: value,
});

const evaluationFileSchema = z.looseObject({
  version: z.literal(1),
  circuit: z.string(),
  neurons_circuit: z.string().nullable(),
  model: z.string(),
  saes: z.string(),
  data: z.string(),
  examples: z.number().int().min(0),
  ablation: z.string(),
  start_layer: z.number().int().min(-1),
  errors: z.string(),
  thresholds: z.array(z.number()),
  seed: z.number(),
  metric: z.looseObject({ model: value, empty: value }),
  circuit_score: z.looseObject({
    ...scoreSchema.shape,
    node_threshold: z.number(),
    // Files written before every layer was counted have neither of these two.
    nodes_below_start_layer: z.number().int().min(0).optional(),
  }),
  circuit_score_all_layers: z
    .looseObject({ ...scoreSchema.shape, node_threshold: z.number() })
    .nullish(),
  series: z.array(
    z.looseObject({
      name: z.string(),
      label: z.string(),
      f_empty: value,
      skipped_thresholds: z.array(z.number()),
      points: z.array(z.looseObject({ ...scoreSchema.shape, threshold: z.number() })),
    }),
  ),
});

export type EvaluationFile = z.infer<typeof evaluationFileSchema>;

/** Checks a parsed JSON value as evaluation.json; `file` names it in errors. */
export function validateEvaluation(json: unknown, file: string): EvaluationFile {
  const parsed = evaluationFileSchema.safeParse(json);
  if (!parsed.success)
    throw new Error(
      `${file}: not an evaluation file (${describeIssues(parsed.error, { limit: 5 })})`,
    );
  return parsed.data;
}

/** Reads and validates `file` (an evaluation.json, or a folder holding one). */
export function readEvaluationFile(file: string): EvaluationFile {
  const target = fileInFolder(file, EVALUATION_FILE);
  return validateEvaluation(readJsonFile(target), target);
}
