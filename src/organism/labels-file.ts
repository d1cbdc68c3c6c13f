// Reading feature-label files, the one reader for both kinds (validated with zod, errors naming
// the file and line):
//   ground truth, labels.jsonl as writeLabels writes it: {"site","feature","label","precision",
//     "recall","f1","frequency"} per line (label null for a feature that never fired);
//   annotations as the paper ships them: {"Name": "resid_5/3036", "Annotation": "..."} per line.
// Only the file format lives here (no engine), so the viewer reads labels through it too.

import { z } from 'zod';
import { readTextFile } from '../io/text-file.ts';
import { describeIssues } from '../io/validation.ts';

const groundTruthSchema = z.looseObject({
  site: z.string().min(1),
  feature: z.number().int().min(0),
  label: z.string().nullable(),
  precision: z.number(),
  recall: z.number(),
  f1: z.number(),
  frequency: z.number(),
});

const annotationSchema = z.looseObject({
  Name: z.string().regex(/^[a-z]+(_\d+)?\/\d+$/, 'should look like "resid_5/3036"'),
  Annotation: z.string(),
});

export interface GroundTruthLabel {
  site: string;
  feature: number;
  /** Best-predicting annotation; null for a feature that never fired on the corpus. */
  label: string | null;
  precision: number;
  recall: number;
  f1: number;
  /** Share of the corpus's tokens on which the feature is active. */
  frequency: number;
}

export type LabelLine =
  | { kind: 'ground truth'; line: number; label: GroundTruthLabel }
  | { kind: 'annotation'; line: number; name: string; annotation: string };

/** Every line of a label file of either kind, in order; errors name the file and line. */
export function readLabelLines(file: string): LabelLine[] {
  const out: LabelLine[] = [];
  readTextFile(file)
    .split('\n')
    .forEach((raw, i) => {
      if (raw.trim() === '') return;
      const line = i + 1;
      const where = `${file}:${line}`;
      let value: unknown;
      try {
        value = JSON.parse(raw);
      } catch (e) {
        throw new Error(`${where}: not valid JSON (${(e as Error).message})`, { cause: e });
      }
      const isAnnotation =
        typeof value === 'object' && value !== null && ('Name' in value || 'Annotation' in value);
      if (isAnnotation) {
        const parsed = annotationSchema.safeParse(value);
        if (!parsed.success)
          throw new Error(
            `${where}: not an annotation (${describeIssues(parsed.error, { root: '(line)', limit: 3 })}); expected {"Name": "resid_5/3036", "Annotation": "..."}`,
          );
        out.push({
          kind: 'annotation',
          line,
          name: parsed.data.Name,
          annotation: parsed.data.Annotation,
        });
        return;
      }
      const parsed = groundTruthSchema.safeParse(value);
      if (!parsed.success)
        throw new Error(
          `${where}: not a feature label (${describeIssues(parsed.error, { root: '(line)', limit: 3 })}); expected {"site","feature","label","precision","recall","f1","frequency"} (ground truth) or {"Name","Annotation"} (annotations)`,
        );
      const { site, feature, label, precision, recall, f1, frequency } = parsed.data;
      out.push({
        kind: 'ground truth',
        line,
        label: { site, feature, label, precision, recall, f1, frequency },
      });
    });
  return out;
}

/** A ground-truth labels.jsonl (as writeLabels writes it); annotation lines are refused. */
export function readGroundTruthLabels(file: string): GroundTruthLabel[] {
  return readLabelLines(file).map((l) => {
    if (l.kind !== 'ground truth')
      throw new Error(
        `${file}:${l.line}: an annotation line ({"Name","Annotation"}) in a ground-truth labels file`,
      );
    return l.label;
  });
}
