// shift.json, the file format between `sfc shift --out DIR` (which writes it beside its
// circuit.json, aggregation sum) and the report (which shows its results table and lets a person
// judge the candidate features, then download the `{"features": [...]}` file `sfc shift
// --features FILE` reads). Like circuit.json and dashboards.json, the format stands apart from the
// code that computes it, so the viewer reads it without the engine.
//
//   {"version": 1, "task", "model", "saes", "site", "scored_on", "labels": [...], "genders": [...], "judge",
//    "features": [{"id": "embed/102", "site", "feature", "effect", "spurious", "note"}],
//    "rows": [{"name", "description", "ablated", "retrained", "label", "gender", "worst_group"}],
//    "extra_features": [ids judged spurious outside the circuit], "command", "seconds"}
//
// Keys the report does not use are accepted and dropped.

import { z } from 'zod';
import { nodeId } from '../circuit/circuit.ts';
import { readJsonFile } from '../io/text-file.ts';
import { describeIssues } from '../io/validation.ts';

export const SHIFT_FILE = 'shift.json';

const accuracy = z.number().min(0).max(1).nullable();

const featureSchema = z.object({
  id: z.string().min(1),
  site: z.string().min(1),
  feature: z.number().int().min(0),
  effect: z.number(),
  spurious: z.boolean(),
  note: z.string().nullish(),
});

const rowSchema = z.object({
  name: z.string(),
  description: z.string().nullish(),
  ablated: z.number().int().min(0),
  retrained: z.boolean(),
  label: accuracy,
  gender: accuracy,
  worst_group: accuracy,
});

const shiftSchema = z.object({
  version: z.literal(1),
  task: z.string().min(1),
  model: z.string().optional(),
  saes: z.string().optional(),
  site: z.string().optional(),
  /** The split the rows are scored on (balanced_test unless settings were being chosen). */
  scored_on: z.enum(['balanced_test', 'balanced_val']).optional(),
  labels: z.array(z.string()).optional(),
  genders: z.array(z.string()).optional(),
  judge: z.string().optional(),
  features: z.array(featureSchema),
  extra_features: z.array(z.string()).optional(),
  rows: z.array(rowSchema),
  command: z.string().optional(),
  seconds: z.number().optional(),
});

/** What shift.json holds. */
export type ShiftFile = z.infer<typeof shiftSchema>;
export type ShiftView = ShiftFile & { file: string };

/** Checks a parsed value as a shift file; errors name the file and the first problems. */
function validateShift(json: unknown, file: string): ShiftView {
  const parsed = shiftSchema.safeParse(json);
  if (!parsed.success) {
    const problems = describeIssues(parsed.error, { limit: 5 });
    throw new Error(`${file}: not a shift results file (${problems})`);
  }
  const ids = new Set<string>();
  parsed.data.features.forEach((f, i) => {
    if (f.id !== nodeId(f.site, f.feature, null))
      throw new Error(
        `${file}: features.${i}: id "${f.id}" should be "${f.site}/${f.feature}" (site/feature)`,
      );
    if (ids.has(f.id)) throw new Error(`${file}: features.${i}: duplicate feature ${f.id}`);
    ids.add(f.id);
  });
  return { ...parsed.data, file };
}

/** Reads and validates a shift.json. */
export function readShift(file: string): ShiftView {
  return validateShift(readJsonFile(file), file);
}
