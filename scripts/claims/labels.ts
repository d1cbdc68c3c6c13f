// Ground-truth feature labels: per site, how many features there are, how many fired on the
// labelling corpus and how many got a confident label (F1 ≥ 0.7), as TRAINING.md's table and
// README.md state. Two groups claim the same texts: `labels-file` summarises the shipped
// labels.jsonl (seconds), `labels` recomputes it as `sfc label` does (66k tokens, seed 404) into a
// temporary file, so the shipped file and a fresh run are both held to the docs.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  LABELS_FILE,
  readLabels,
  runLabels,
  summariseLabels,
  type FeatureLabel,
} from '../../src/organism/feature-labels.ts';
import { EXACT_COUNT, ORGANISM_DIR } from './lib/organism.ts';
import type { Claim, ClaimGroup } from './types.ts';

function summary(labels: FeatureLabel[]): Record<string, number> {
  const out: Record<string, number> = {};
  const rows = summariseLabels(labels);
  for (const r of rows) {
    out[`${r.site}.features`] = r.features;
    out[`${r.site}.alive`] = r.alive;
    out[`${r.site}.confident`] = r.confident;
  }
  const confident = rows.map((r) => r.confident);
  out['confident_min'] = Math.min(...confident);
  out['confident_max'] = Math.max(...confident);
  // Which sites hold the extremes (stated by name in README): index in this order.
  out['confident_min_is_attn_3'] =
    rows
      .filter((r) => r.confident === out.confident_min)
      .map((r) => r.site)
      .join() === 'attn_3'
      ? 1
      : 0;
  out['confident_max_is_mlp_0'] =
    rows
      .filter((r) => r.confident === out.confident_max)
      .map((r) => r.site)
      .join() === 'mlp_0'
      ? 1
      : 0;
  return out;
}

// TRAINING.md's table as it stands: site, features, alive, confident.
const TABLE: [string, number, number, number][] = [
  ['embed', 1024, 308, 18],
  ['attn_0', 1024, 1018, 5],
  ['mlp_0', 1024, 539, 147],
  ['resid_0', 1024, 929, 58],
  ['attn_1', 1024, 998, 2],
  ['mlp_1', 1024, 819, 63],
  ['resid_1', 1024, 980, 63],
  ['attn_2', 1024, 988, 2],
  ['mlp_2', 1024, 896, 36],
  ['resid_2', 1024, 990, 64],
  ['attn_3', 1024, 934, 1],
  ['mlp_3', 1024, 805, 49],
  ['resid_3', 1024, 958, 55],
];

const README_RANGE = 'Confident labels (F1 ≥ 0.7) per site range from 1 (attn_3) to 147 (mlp_0)';

const CLAIMS: Claim[] = [
  {
    key: 'confident_min',
    doc: 'README.md',
    text: README_RANGE,
    stated: 1,
    tolerance: 0,
    why: EXACT_COUNT,
  },
  {
    key: 'confident_max',
    doc: 'README.md',
    text: README_RANGE,
    stated: 147,
    tolerance: 0,
    why: EXACT_COUNT,
  },
  {
    key: 'confident_min_is_attn_3',
    doc: 'README.md',
    text: README_RANGE,
    stated: 1,
    tolerance: 0,
    why: 'the site named (1 = attn_3 alone has the fewest)',
  },
  {
    key: 'confident_max_is_mlp_0',
    doc: 'README.md',
    text: README_RANGE,
    stated: 1,
    tolerance: 0,
    why: 'the site named (1 = mlp_0 alone has the most)',
  },
  ...TABLE.flatMap(([site, features, alive, confident]): Claim[] => {
    const text = `| ${site} | ${features} | ${alive} | ${confident} |`;
    const doc = 'models/organism/TRAINING.md';
    return [
      { key: `${site}.features`, doc, text, stated: features, tolerance: 0, why: 'the SAE width' },
      { key: `${site}.alive`, doc, text, stated: alive, tolerance: 0, why: EXACT_COUNT },
      { key: `${site}.confident`, doc, text, stated: confident, tolerance: 0, why: EXACT_COUNT },
    ];
  }),
];

export const groups: ClaimGroup[] = [
  {
    name: 'labels-file',
    script: `summariseLabels of models/organism/${LABELS_FILE} (what sfc label prints)`,
    fast: true,
    measure: async () => summary(readLabels(path.join(ORGANISM_DIR, LABELS_FILE))),
    claims: CLAIMS,
  },
  {
    name: 'labels',
    script: 'sfc label --out <tmp>/labels.jsonl (65536 tokens, seed 404)',
    fast: false,
    measure: async () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'claims-labels-'));
      try {
        const result = runLabels({ model: ORGANISM_DIR, out: path.join(dir, LABELS_FILE) });
        return { ...summary(result.labels), tokens: result.tokens };
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    },
    claims: [
      ...CLAIMS,
      {
        key: 'tokens',
        doc: 'models/organism/TRAINING.md',
        text: 'over 66k held-out tokens (seed 404)',
        stated: 65536,
        tolerance: 500,
        why: 'the corpus size (1024 rows of 64 tokens); the doc rounds to thousands',
      },
    ],
  },
];
