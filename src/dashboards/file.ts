// dashboards.json: precomputed feature dashboards, written by `sfc dashboards` and read by the
// viewer (which reads files only, never the model). Token ids are stored once with their strings
// in `vocab`; activations and logit effects are rounded to 4 significant digits to stay compact.
//
//   {"version": 1, "model", "saes", "corpus", "windows", "tokens", "ctx", "top", "logit_lens",
//    "vocab": {"<id>": "<token string>"},
//    "features": {"resid_1/17": {"site", "feature", "max_activation", "frequency",
//       "histogram": {"lo", "hi", "counts": [...]},
//       "contexts": [{"ids": [...], "acts": [...], "at": i}],
//       "promoted": [[id, value], ...], "suppressed": [[id, value], ...]}}}

import { fileInFolder, readJsonFile } from '../io/text-file.ts';
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { describeIssues } from '../io/validation.ts';
import { nodeId } from '../circuit/circuit.ts';

export const DASHBOARDS_FILE = 'dashboards.json';
export const LOGIT_LENS = 'W_U (γ ⊙ d): decoder row scaled by the final layer norm gain';

const tokenEffect = z.tuple([z.number().int().min(0), z.number()]);

const dashboardSchema = z.object({
  site: z.string(),
  feature: z.number().int().min(0),
  max_activation: z.number(),
  frequency: z.number().min(0).max(1),
  histogram: z.object({ lo: z.number(), hi: z.number(), counts: z.array(z.number().int().min(0)) }),
  contexts: z.array(
    z.object({
      ids: z.array(z.number().int().min(0)),
      acts: z.array(z.number()),
      at: z.number().int().min(0),
    }),
  ),
  promoted: z.array(tokenEffect),
  suppressed: z.array(tokenEffect),
});

const fileSchema = z.object({
  version: z.literal(1),
  model: z.string(),
  saes: z.string(),
  corpus: z.string(),
  windows: z.number().int().min(0),
  tokens: z.number().int().min(0),
  ctx: z.number().int().min(1),
  top: z.number().int().min(1),
  logit_lens: z.string(),
  vocab: z.record(z.string(), z.string()),
  features: z.record(z.string(), dashboardSchema),
});

export type DashboardsFile = z.infer<typeof fileSchema>;
export type DashboardEntry = z.infer<typeof dashboardSchema>;

export const round4 = (v: number): number => (v === 0 ? 0 : Number(v.toPrecision(4)));

/** Checks a parsed value as a dashboards file; errors name the file and the first problems. */
function validateDashboards(json: unknown, file: string): DashboardsFile {
  const parsed = fileSchema.safeParse(json);
  if (!parsed.success) {
    const problems = describeIssues(parsed.error, { limit: 5 });
    throw new Error(`${file}: not a dashboards file (${problems})`);
  }
  const data = parsed.data;
  for (const [key, f] of Object.entries(data.features)) {
    if (key !== nodeId(f.site, f.feature, null))
      throw new Error(`${file}: features.${key} describes ${f.site}/${f.feature}`);
    for (const [i, c] of f.contexts.entries()) {
      if (c.ids.length !== c.acts.length || c.at >= c.ids.length)
        throw new Error(
          `${file}: features.${key}.contexts.${i}: ${c.ids.length} ids, ${c.acts.length} acts, at ${c.at}`,
        );
      for (const id of c.ids)
        if (!(String(id) in data.vocab))
          throw new Error(`${file}: features.${key}: token id ${id} is missing from vocab`);
    }
  }
  return data;
}

/** Reads `file` (a dashboards.json or a folder holding one). */
export function readDashboards(file: string): DashboardsFile {
  const target = fileInFolder(file, DASHBOARDS_FILE);
  const json = readJsonFile(target);
  return validateDashboards(json, target);
}

/** Writes `dir/dashboards.json` (one feature per line); returns its path. */
export function writeDashboards(dir: string, data: DashboardsFile): string {
  const file = path.join(dir, DASHBOARDS_FILE);
  validateDashboards(data, file);
  fs.mkdirSync(dir, { recursive: true });
  const { features, vocab, ...head } = data;
  const headText = JSON.stringify(head, null, 2).slice(0, -2);
  const featureLines = Object.entries(features)
    .map(([k, v]) => `    ${JSON.stringify(k)}: ${JSON.stringify(v)}`)
    .join(',\n');
  const text =
    `${headText},\n  "vocab": ${JSON.stringify(vocab)},\n` +
    `  "features": {\n${featureLines}\n  }\n}\n`;
  fs.writeFileSync(file, text);
  return file;
}
