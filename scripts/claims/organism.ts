// The shipped model organism: its shape and size (`sfc info`) and its agreement accuracy and mean
// logit difference on the four held-out task files (`sfc eval-task`), as README.md and
// models/organism/TRAINING.md state them.

import fs from 'node:fs';
import path from 'node:path';
import { parameterLayout } from '../../src/model/weights.ts';
import { scoreTask } from '../../src/data/tasks.ts';
import {
  EXACT_COUNT,
  ORGANISM_DIR,
  SEEDED,
  folderBytes,
  organism,
  taskExamples,
} from './lib/organism.ts';
import type { Claim, ClaimGroup } from './types.ts';

const TASKS = ['simple', 'nounpp', 'rc', 'within_rc'] as const;

async function measure(): Promise<Record<string, number>> {
  const { model, library } = organism();
  const c = model.config;
  const out: Record<string, number> = {
    parameters_m:
      parameterLayout(c).reduce((n, p) => n + p.shape.reduce((a, b) => a * b, 1), 0) / 1e6,
    folder_mb: folderBytes(ORGANISM_DIR) / 1e6,
    layers: c.numLayers,
    d_model: c.hiddenSize,
    heads: c.numHeads,
    sites: library.sites().length,
    sae_width: Math.max(...library.sites().map((s) => library.get(s).width)),
    sae_width_min: Math.min(...library.sites().map((s) => library.get(s).width)),
    corpus_texts: fs
      .readFileSync('data/corpus.txt', 'utf8')
      .split('\n')
      .filter((l) => l.trim()).length,
  };
  for (const task of TASKS) {
    const examples = taskExamples(path.join('data', `${task}_test.jsonl`));
    const score = scoreTask(model, examples, { batchSize: 32 });
    out[`${task}.accuracy_pct`] = 100 * score.accuracy;
    out[`${task}.logit_diff`] = score.logitDiff;
    out[`${task}.n`] = score.n;
  }
  library.dropAll();
  return out;
}

// As the docs state them: accuracy %, mean logit diff (2 decimals), examples.
const STATED: Record<(typeof TASKS)[number], [string, number, number]> = {
  simple: ['`simple` ("The teacher" → " is")                     | 100%     | 5.46 ', 100, 5.46],
  nounpp: ['`nounpp` ("The teachers near the desk" → " are")     | 100%     | 7.49 ', 100, 7.49],
  rc: ['`rc` ("The teacher that the guards like" → " is")    | 100%     | 7.52 ', 100, 7.52],
  within_rc: ['`within_rc` ("The teacher that the guards" → " are") | 100%     | 7.00 ', 100, 7.0],
};

const taskClaims: Claim[] = TASKS.flatMap((task) => {
  const [readmeRow, acc, diff] = STATED[task];
  const trainingRow = `| ${task} | ${acc.toFixed(1)}% | ${diff.toFixed(2)} | 300 |`;
  return [
    {
      key: `${task}.accuracy_pct`,
      doc: 'README.md',
      text: readmeRow,
      stated: acc,
      tolerance: 0.5,
      why: SEEDED('whole percent'),
    },
    {
      key: `${task}.logit_diff`,
      doc: 'README.md',
      text: readmeRow,
      stated: diff,
      tolerance: 0.005,
      why: SEEDED('2 decimals'),
    },
    {
      key: `${task}.accuracy_pct`,
      doc: 'models/organism/TRAINING.md',
      text: trainingRow,
      stated: acc,
      tolerance: 0.05,
      why: SEEDED('1 decimal'),
    },
    {
      key: `${task}.logit_diff`,
      doc: 'models/organism/TRAINING.md',
      text: trainingRow,
      stated: diff,
      tolerance: 0.005,
      why: SEEDED('2 decimals'),
    },
    {
      key: `${task}.n`,
      doc: 'models/organism/TRAINING.md',
      text: trainingRow,
      stated: 300,
      tolerance: 0,
      why: EXACT_COUNT,
    },
  ];
});

const SHAPE = '(4 layers, d_model 128, 4 heads, parallel residual, rotary, 1.01 M parameters)';

export const groups: ClaimGroup[] = [
  {
    name: 'organism',
    script: 'sfc info; sfc eval-task --data data/{simple,nounpp,rc,within_rc}_test.jsonl',
    fast: true,
    measure,
    claims: [
      {
        key: 'parameters_m',
        doc: 'README.md',
        text: SHAPE,
        stated: 1.01,
        tolerance: 0.005,
        why: 'the config fixes it; the doc rounds to 0.01 M',
      },
      { key: 'layers', doc: 'README.md', text: SHAPE, stated: 4, tolerance: 0, why: 'the config' },
      {
        key: 'd_model',
        doc: 'README.md',
        text: SHAPE,
        stated: 128,
        tolerance: 0,
        why: 'the config',
      },
      { key: 'heads', doc: 'README.md', text: SHAPE, stated: 4, tolerance: 0, why: 'the config' },
      {
        key: 'parameters_m',
        doc: 'models/organism/TRAINING.md',
        text: '1.01 M parameters',
        stated: 1.01,
        tolerance: 0.005,
        why: 'the config fixes it; the doc rounds to 0.01 M',
      },
      {
        key: 'folder_mb',
        doc: 'README.md',
        text: '`models/organism/` (28 MB)',
        stated: 28,
        tolerance: 0.5,
        why: 'the shipped files; the doc rounds to whole MB',
      },
      {
        key: 'folder_mb',
        doc: 'models/organism/TRAINING.md',
        text: 'Total size of this folder: 27.9 MB.',
        stated: 27.9,
        tolerance: 0.05,
        why: 'the shipped files; the doc rounds to 0.1 MB',
      },
      {
        key: 'sites',
        doc: 'README.md',
        text: 'With an SAE of width\n1024 at each of the 13 sites',
        stated: 13,
        tolerance: 0,
        why: 'the shipped SAE folders',
      },
      {
        key: 'sae_width',
        doc: 'README.md',
        text: 'With an SAE of width\n1024 at each of the 13 sites',
        stated: 1024,
        tolerance: 0,
        why: 'the widest shipped SAE',
      },
      {
        key: 'sae_width_min',
        doc: 'README.md',
        text: 'With an SAE of width\n1024 at each of the 13 sites',
        stated: 1024,
        tolerance: 0,
        why: 'the narrowest shipped SAE',
      },
      {
        key: 'corpus_texts',
        doc: 'README.md',
        text: '`data/corpus.txt` holds 2,000',
        stated: 2000,
        tolerance: 0,
        why: 'lines of the shipped file',
      },
      ...taskClaims,
    ],
  },
];
