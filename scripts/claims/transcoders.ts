// The shipped per-layer transcoders and cross-layer transcoder, measured from their folders as the
// organism's transcoders / clt stages record them (measureTranscoderSet in
// src/organism/train-transcoders.ts, with the labels scored again from the weights rather than read
// from labels.jsonl): FVE, L0 and dead per layer and the next-token losses on the corpus's
// held-out documents, and the label counts, as models/organism/TRAINING.md, README.md and
// docs/graphs.md state them.

import path from 'node:path';
import {
  measureTranscoderSet,
  TRANSCODER_CORPUS,
  TRANSCODER_STAGE_FILES,
  TRANSCODER_STAGE_SETTINGS,
  type TranscoderStage,
} from '../../src/organism/train-transcoders.ts';
import { EXACT_COUNT, ORGANISM_DIR, SEEDED } from './lib/organism.ts';
import type { Claim, ClaimGroup } from './types.ts';

const STAGES: TranscoderStage[] = ['transcoders', 'clt'];

async function measure(): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  const fves: number[] = [];
  for (const stage of STAGES) {
    const s = TRANSCODER_STAGE_SETTINGS[stage];
    const { stats, labels } = measureTranscoderSet({
      modelDir: ORGANISM_DIR,
      dir: path.join(ORGANISM_DIR, TRANSCODER_STAGE_FILES[stage].dir),
      corpus: path.join('data', TRANSCODER_CORPUS),
      heldOut: s.heldOut,
      labelTokens: s.labelTokens,
      relabel: true,
    });
    for (const l of stats.layers) {
      out[`${stage}.fve.${l.layer}`] = l.fve;
      out[`${stage}.l0.${l.layer}`] = l.l0;
      out[`${stage}.dead_pct.${l.layer}`] = 100 * l.dead;
      fves.push(l.fve);
    }
    out[`${stage}.loss_clean`] = stats.lossClean;
    out[`${stage}.loss_replaced`] = stats.lossReplaced;
    out[`${stage}.loss_zero`] = stats.lossZeroMlps;
    out[`${stage}.tokens`] = stats.tokens;
    out[`${stage}.labels_features`] = labels.features;
    out[`${stage}.labels_alive`] = labels.alive;
    out[`${stage}.labels_confident`] = labels.confident;
    labels.top.forEach(([label, n]) => (out[`${stage}.label.${label}`] = n));
  }
  out['both.fve_min'] = Math.min(...fves);
  out['both.fve_max'] = Math.max(...fves);
  return out;
}

// As TRAINING.md states them (report.ts writes the rows): FVE 4 decimals, L0 1, dead % 1.
const STATED: Record<TranscoderStage, [number, number, number][]> = {
  transcoders: [
    [0.9992, 8.0, 74.7],
    [0.9986, 7.8, 88.4],
    [0.9978, 7.9, 82.6],
    [0.9986, 8.0, 81.6],
  ],
  clt: [
    [0.9991, 8.0, 54.9],
    [0.9984, 7.8, 76.4],
    [0.9981, 8.0, 69.1],
    [0.9993, 8.0, 67.8],
  ],
};
const LOSSES = { clean: 2.3571, replaced: 2.3576, zero: 6.141 };
const LABELS: Record<TranscoderStage, { confident: number; alive: number; features: number }> = {
  transcoders: { confident: 223, alive: 908, features: 4096 },
  clt: { confident: 200, alive: 765, features: 2048 },
};
// The most common confident labels TRAINING.md lists, with their counts.
const TOP: Record<TranscoderStage, [string, number][]> = {
  transcoders: [
    ['pos_punct', 29],
    ['pos_comp', 26],
    ['pos_neg', 22],
    ['pos_conj', 21],
    ['pos_det', 20],
    ['pos_prep', 15],
  ],
  clt: [
    ['pos_punct', 24],
    ['pos_comp', 23],
    ['pos_neg', 18],
    ['pos_det', 17],
    ['pos_conj', 15],
    ['subject_pl', 15],
  ],
};

const TRAINING = 'models/organism/TRAINING.md';
const DEAD_WHY = SEEDED('0.1% (one feature of 1024 is 0.1%)');

function layerRowClaims(stage: TranscoderStage, doc: string, row: (L: number) => string): Claim[] {
  return STATED[stage].flatMap(([fve, l0, dead], L) => [
    {
      key: `${stage}.fve.${L}`,
      doc,
      text: row(L),
      stated: fve,
      tolerance: 0.00005,
      why: SEEDED('4 decimals'),
    },
    {
      key: `${stage}.l0.${L}`,
      doc,
      text: row(L),
      stated: l0,
      tolerance: 0.05,
      why: SEEDED('1 decimal'),
    },
    {
      key: `${stage}.dead_pct.${L}`,
      doc,
      text: row(L),
      stated: dead,
      tolerance: 0.05,
      why: DEAD_WHY,
    },
  ]);
}

function lossClaims(stage: TranscoderStage, doc: string, text: string): Claim[] {
  return (
    [
      ['loss_clean', LOSSES.clean],
      ['loss_replaced', LOSSES.replaced],
      ['loss_zero', LOSSES.zero],
    ] as const
  ).map(([key, stated]) => ({
    key: `${stage}.${key}`,
    doc,
    text,
    stated,
    tolerance: 0.00005,
    why: SEEDED('4 decimals'),
  }));
}

function trainingClaims(stage: TranscoderStage): Claim[] {
  const fmt = (x: number) => x.toFixed(1);
  const { confident, alive, features } = LABELS[stage];
  const labelText = `${confident} confident at F1 ≥ 0.7 of ${alive} alive features (of ${features})`;
  const topText = TOP[stage].map(([l, c]) => `\`${l}\` (${c})`).join(', ');
  return [
    ...layerRowClaims(
      stage,
      TRAINING,
      (L) =>
        `| ${L} | ${STATED[stage][L][0].toFixed(4)} | ${fmt(STATED[stage][L][1])} | ${fmt(STATED[stage][L][2])}% |`,
    ),
    ...lossClaims(
      stage,
      TRAINING,
      `Next-token loss: clean 2.3571, every MLP replaced by the ${stage === 'clt' ? 'CLT' : 'transcoders'} 2.3576, every MLP zeroed 6.1410.`,
    ),
    {
      key: `${stage}.tokens`,
      doc: TRAINING,
      text: "Held out: the corpus's last 200 documents, 4,445 tokens.",
      stated: 4445,
      tolerance: 0,
      why: "real tokens of the corpus's last 200 documents (the tokenizer is exact)",
    },
    ...(
      [
        ['labels_confident', confident],
        ['labels_alive', alive],
        ['labels_features', features],
      ] as const
    ).map(([key, stated]) => ({
      key: `${stage}.${key}`,
      doc: TRAINING,
      text: labelText,
      stated,
      tolerance: 0,
      why: EXACT_COUNT,
    })),
    ...TOP[stage].map(([label, n]) => ({
      key: `${stage}.label.${label}`,
      doc: TRAINING,
      text: topText,
      stated: n,
      tolerance: 0,
      why: `${EXACT_COUNT}; listed among the six most common`,
    })),
  ];
}

// README "Attribution graphs": the per-layer table (aligned by prettier) and the sentences below it.
const README_ROWS = [
  '| 0     | 0.9992                | 8.0 | 74.7% |',
  '| 1     | 0.9986                | 7.8 | 88.4% |',
  '| 2     | 0.9978                | 7.9 | 82.6% |',
  '| 3     | 0.9986                | 8.0 | 81.6% |',
];

const GRAPHS_DOC =
  'FVE\n0.998–0.999 per layer for both, next-token loss with every MLP replaced 2.3576 for both against\n2.3571 clean';

export const groups: ClaimGroup[] = [
  {
    name: 'organism-transcoders',
    script:
      'npm run organism -- --stage transcoders|clt --remeasure (measureTranscoderSet; labels rescored from the weights)',
    fast: false,
    measure,
    claims: [
      ...trainingClaims('transcoders'),
      ...trainingClaims('clt'),
      ...layerRowClaims('transcoders', 'README.md', (L) => README_ROWS[L]),
      ...lossClaims(
        'transcoders',
        'README.md',
        'Next-token loss: clean 2.3571, every MLP replaced 2.3576, every MLP zeroed 6.1410.',
      ),
      {
        key: 'transcoders.tokens',
        doc: 'README.md',
        text: 'held-out 200 documents, 4,445 tokens',
        stated: 4445,
        tolerance: 0,
        why: "real tokens of the corpus's last 200 documents (the tokenizer is exact)",
      },
      {
        key: 'transcoders.labels_confident',
        doc: 'README.md',
        text: '223 confident at F1 ≥ 0.7 of 908 alive',
        stated: 223,
        tolerance: 0,
        why: EXACT_COUNT,
      },
      {
        key: 'transcoders.labels_alive',
        doc: 'README.md',
        text: '223 confident at F1 ≥ 0.7 of 908 alive',
        stated: 908,
        tolerance: 0,
        why: EXACT_COUNT,
      },
      {
        key: 'both.fve_min',
        doc: 'docs/graphs.md',
        text: GRAPHS_DOC,
        stated: 0.998,
        tolerance: 0.0005,
        why: SEEDED('3 decimals (the lowest FVE of any layer of either set)'),
      },
      {
        key: 'both.fve_max',
        doc: 'docs/graphs.md',
        text: GRAPHS_DOC,
        stated: 0.999,
        tolerance: 0.0005,
        why: SEEDED('3 decimals (the highest FVE of any layer of either set)'),
      },
      ...(['transcoders', 'clt'] as const).flatMap((stage) =>
        lossClaims(stage, 'docs/graphs.md', GRAPHS_DOC).filter((c) => !c.key.endsWith('loss_zero')),
      ),
    ],
  },
];
