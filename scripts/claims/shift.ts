// SHIFT on the shipped organism (README "Editing a classifier: SHIFT", docs/shift.md):
//   shift-organism  the table of `sfc shift --auto --retrain` on balanced_test, run through the
//                   command itself (minutes);
//   shift-sweep     the selection of k and --min-share on balanced_val and the test row over the
//                   embedding-SAE seeds, read from docs/shift/sweep.json, which
//                   scripts/shift-sweep.ts wrote (rerunning it takes about an hour on 2 busy cores);
//   shift-probe-l2  the probe's L2 table, recomputed by scripts/shift-probe-l2.ts (seconds).

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { register } from '../../src/cli/commands/shift.ts';
import { readShift } from '../../src/shift/file.ts';
import { probeL2Table, PROBE_L2S } from '../shift-probe-l2.ts';
import type { Claim, ClaimGroup } from './types.ts';

const repo = path.dirname(path.dirname(path.dirname(fileURLToPath(import.meta.url))));

/** Runs `sfc shift ARGS --out TMP` in this process, silenced, and returns its shift.json. */
async function runShiftCommand(args: string[]) {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'sfc-claims-shift-'));
  const program = new Command().exitOverride();
  register(program);
  const log = console.log;
  const write = process.stdout.write;
  const writeErr = process.stderr.write;
  console.log = () => {};
  process.stdout.write = (() => true) as typeof write;
  process.stderr.write = (() => true) as typeof writeErr;
  try {
    await program.parseAsync(
      [
        'shift',
        ...args,
        '--model',
        path.join(repo, 'models', 'organism'),
        '--task',
        path.join(repo, 'data', 'bios'),
        '--out',
        out,
      ],
      { from: 'user' },
    );
  } finally {
    console.log = log;
    process.stdout.write = write;
    process.stderr.write = writeErr;
  }
  const file = readShift(path.join(out, 'shift.json'));
  fs.rmSync(out, { recursive: true, force: true });
  return file;
}

const SEEDED =
  'seeded and deterministic (probe by Newton steps, IG, the judge corpus seed 606, random row seed 1; two runs gave identical tables); the doc rounds to 0.1';

/** Row name in shift.json -> key prefix. */
const ROWS = {
  original: 'original',
  SHIFT: 'shift',
  'SHIFT + retrain': 'shift_retrain',
  random: 'random',
  'random + retrain': 'random_retrain',
  'SHIFT, embed only': 'embed',
  'SHIFT, embed only + retrain': 'embed_retrain',
  'feature skyline': 'feature_skyline',
  'feature skyline + retrain': 'feature_skyline_retrain',
  'neuron skyline': 'neuron_skyline',
  'neuron skyline + retrain': 'neuron_skyline_retrain',
  oracle: 'oracle',
} as const;

async function measureOrganism(): Promise<Record<string, number>> {
  const file = await runShiftCommand(['--auto', '--retrain']);
  const out: Record<string, number> = {
    candidates: file.features.length,
    judged: file.features.filter((f) => f.spurious).length,
    judged_embed: file.features.filter((f) => f.spurious && f.site === 'embed').length,
  };
  for (const row of file.rows) {
    const key = ROWS[row.name as keyof typeof ROWS];
    if (!key) throw new Error(`claims: unexpected SHIFT row "${row.name}"`);
    out[`${key}.label`] = 100 * row.label!;
    out[`${key}.gender`] = 100 * row.gender!;
    out[`${key}.worst`] = 100 * row.worst_group!;
    out[`${key}.ablated`] = row.ablated;
  }
  return out;
}

const pct = (v: number) => v.toFixed(1);

/** Claims on the three scores of one row, stated as "label / gender / worst" in `text`. */
function tripleClaims(
  key: string,
  doc: string,
  text: string,
  stated: [number, number, number],
  why = SEEDED,
): Claim[] {
  return (['label', 'gender', 'worst'] as const).map((score, i) => ({
    key: `${key}.${score}`,
    doc,
    text,
    stated: stated[i],
    // Scores are multiples of 0.25% (400 test texts); the doc prints them as \`sfc shift\` does,
    // toFixed(1), which may round x.x5 either way, so half a digit plus float error.
    tolerance: 0.05 + 1e-9,
    why,
  }));
}

// README's table: "| name | ablated | label | gender | worst |", with "(+ retrain)" pairs.
const README = 'README.md';
const organismClaims: Claim[] = [
  {
    key: 'candidates',
    doc: README,
    text: '92 candidate features, 10 judged',
    stated: 92,
    tolerance: 0,
    why: SEEDED,
  },
  {
    key: 'judged',
    doc: README,
    text: '92 candidate features, 10 judged',
    stated: 10,
    tolerance: 0,
    why: SEEDED,
  },
  {
    key: 'judged_embed',
    doc: README,
    text: 'The embedding features do all of it (9 of\n10',
    stated: 9,
    tolerance: 0,
    why: SEEDED,
  },
  ...tripleClaims(
    'original',
    README,
    '| original probe                                           |       0 |                 52.5 |                 97.5 |                  4.0 |',
    [52.5, 97.5, 4.0],
  ),
  ...tripleClaims(
    'shift',
    README,
    '| SHIFT                                                    |      10 |                 50.2 |                 50.2 |                  0.0 |',
    [50.2, 50.2, 0.0],
  ),
  ...tripleClaims(
    'shift_retrain',
    README,
    '| **SHIFT + retrain**                                      |      10 |             **98.5** |             **51.5** |             **95.0** |',
    [98.5, 51.5, 95.0],
  ),
  ...tripleClaims(
    'random',
    README,
    '| random features (+ retrain)                              |      10 |          51.7 (51.2) |          81.8 (98.8) |            4.0 (1.0) |',
    [51.7, 81.8, 4.0],
  ),
  ...tripleClaims(
    'random_retrain',
    README,
    '| random features (+ retrain)                              |      10 |          51.7 (51.2) |          81.8 (98.8) |            4.0 (1.0) |',
    [51.2, 98.8, 1.0],
  ),
  ...tripleClaims(
    'embed',
    README,
    '| SHIFT, embed only (+ retrain)                            |       9 |          50.2 (98.5) |          50.2 (51.5) |           0.0 (95.0) |',
    [50.2, 50.2, 0.0],
  ),
  ...tripleClaims(
    'embed_retrain',
    README,
    '| SHIFT, embed only (+ retrain)                            |       9 |          50.2 (98.5) |          50.2 (51.5) |           0.0 (95.0) |',
    [98.5, 51.5, 95.0],
  ),
  ...tripleClaims(
    'feature_skyline',
    README,
    '| feature skyline (+ retrain)                              |      10 |          50.0 (62.7) |          50.0 (87.3) |           0.0 (22.0) |',
    [50.0, 50.0, 0.0],
  ),
  ...tripleClaims(
    'feature_skyline_retrain',
    README,
    '| feature skyline (+ retrain)                              |      10 |          50.0 (62.7) |          50.0 (87.3) |           0.0 (22.0) |',
    [62.7, 87.3, 22.0],
  ),
  ...tripleClaims(
    'neuron_skyline',
    README,
    '| neuron skyline (+ retrain)                               |      10 |          50.0 (56.3) |          50.0 (93.8) |           0.0 (11.0) |',
    [50.0, 50.0, 0.0],
  ),
  ...tripleClaims(
    'neuron_skyline_retrain',
    README,
    '| neuron skyline (+ retrain)                               |      10 |          50.0 (56.3) |          50.0 (93.8) |           0.0 (11.0) |',
    [56.3, 93.8, 11.0],
  ),
  ...tripleClaims(
    'oracle',
    README,
    '| oracle (trained on balanced data)                        |       0 |                 99.0 |                 49.5 |                 98.0 |',
    [99.0, 49.5, 98.0],
  ),
  ...tripleClaims(
    'shift_retrain',
    README,
    'label 98.5%, gender 51.5% (chance is 50), worst group 95%',
    [98.5, 51.5, 95.0],
  ),
  ...tripleClaims('shift', README, 'falls to one class (50.2 / 50.2 / 0.0)', [50.2, 50.2, 0.0]),
  // docs/shift.md restates the headline rows in prose.
  ...tripleClaims(
    'shift_retrain',
    'docs/shift.md',
    'SHIFT + retrain 98.5 / 51.5 / 95.0 against the oracle',
    [98.5, 51.5, 95.0],
  ),
  ...tripleClaims('oracle', 'docs/shift.md', "the oracle's 99.0 / 49.5 / 98.0", [99.0, 49.5, 98.0]),
  ...tripleClaims(
    'shift',
    'docs/shift.md',
    'SHIFT\nwithout retraining gives 50.2 / 50.2 / 0.0',
    [50.2, 50.2, 0.0],
  ),
  ...tripleClaims(
    'random_retrain',
    'docs/shift.md',
    'random features, 51.2 / 98.8 / 1.0',
    [51.2, 98.8, 1.0],
  ),
  ...tripleClaims(
    'feature_skyline_retrain',
    'docs/shift.md',
    'gender-biased after retraining (62.7 / 87.3 / 22.0)',
    [62.7, 87.3, 22.0],
  ),
];

// The sweep, as recorded.
const SWEEP_JSON = path.join(repo, 'docs', 'shift', 'sweep.json');
const RECORDED =
  'checks the recorded sweep (docs/shift/sweep.json, written by `npx tsx scripts/shift-sweep.ts`, about an hour on 2 busy cores; rerun it to remeasure); its runs are seeded and deterministic (k = 3, seed 303 is the shipped configuration); the doc rounds to 0.1';

interface SweepSpread {
  mean: number;
  min: number;
  max: number;
}
interface SweepScores {
  label: SweepSpread;
  gender: SweepSpread;
  worstGroup: SweepSpread;
}
interface SweepJson {
  chosen: { k: number; share: number };
  seeds: number[];
  selection: { k: number; share: number; judged: SweepSpread; shiftRetrain: SweepScores }[];
  test: {
    original: { label: number; gender: number; worstGroup: number };
    oracle: { label: number; gender: number; worstGroup: number };
    shiftRetrain: SweepScores;
    randomRetrain: SweepScores;
  };
}

async function measureSweep(): Promise<Record<string, number>> {
  const sweep = JSON.parse(fs.readFileSync(SWEEP_JSON, 'utf8')) as SweepJson;
  const out: Record<string, number> = {
    'chosen.k': sweep.chosen.k,
    'chosen.share': sweep.chosen.share,
    seeds: sweep.seeds.length,
  };
  const spreadKeys = (prefix: string, s: SweepScores) => {
    for (const [name, v] of [
      ['label', s.label],
      ['gender', s.gender],
      ['worst', s.worstGroup],
    ] as const) {
      out[`${prefix}.${name}.mean`] = 100 * v.mean;
      out[`${prefix}.${name}.min`] = 100 * v.min;
      out[`${prefix}.${name}.max`] = 100 * v.max;
    }
  };
  spreadKeys('test.shift_retrain', sweep.test.shiftRetrain);
  spreadKeys('test.random_retrain', sweep.test.randomRetrain);
  for (const row of sweep.selection) {
    spreadKeys(`val.k${row.k}.s${row.share}`, row.shiftRetrain);
    out[`val.k${row.k}.s${row.share}.judged.mean`] = row.judged.mean;
  }
  return out;
}

async function measureProbeL2(): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const row of probeL2Table()) {
    const l2 = row.l2.toExponential(0);
    out[`${l2}.label`] = 100 * row.original.label;
    out[`${l2}.gender`] = 100 * row.original.gender;
    out[`${l2}.worst`] = 100 * row.original.worstGroup;
    out[`${l2}.oracle_label`] = 100 * row.oracle.label;
  }
  return out;
}

const L2_TABLE: Record<string, [string, number, number, number, number]> = {
  '1e-4': ['| 1e-4 | 52.5  | 97.5   | 4.0   | 99.0         |', 52.5, 97.5, 4.0, 99.0],
  '1e-3': ['| 1e-3 | 55.5  | 94.5   | 8.0   | 95.0         |', 55.5, 94.5, 8.0, 95.0],
  '1e-2': ['| 1e-2 | 64.0  | 83.0   | 22.0  | 89.0         |', 64.0, 83.0, 22.0, 89.0],
  '1e-1': ['| 1e-1 | 62.7  | 65.3   | 40.0  | 70.8         |', 62.7, 65.3, 40.0, 70.8],
};
const L2_WHY =
  'no SAE, no sampling: pooled activations and Newton steps are deterministic; the doc rounds to 0.1';
const probeL2Claims: Claim[] = PROBE_L2S.flatMap((l2) => {
  const key = l2.toExponential(0);
  const [text, label, gender, worst, oracle] = L2_TABLE[key];
  return [
    ...tripleClaims(key, 'docs/shift.md', text, [label, gender, worst], L2_WHY),
    {
      key: `${key}.oracle_label`,
      doc: 'docs/shift.md',
      text,
      stated: oracle,
      tolerance: 0.05,
      why: L2_WHY,
    },
  ];
});

const R = (key: string, text: string, stated: number): Claim => ({
  key,
  doc: README,
  text,
  stated,
  tolerance: key.startsWith('chosen') ? 0 : 0.05,
  why: RECORDED,
});
const sweepClaims: Claim[] = [
  R('chosen.k', 'it selects k = 3, share 0.6', 3),
  R('chosen.share', 'it selects k = 3, share 0.6', 0.6),
  R('test.shift_retrain.label.mean', 'SHIFT + retrain 97.9 / 52.1 / 92.6', 97.9),
  R('test.shift_retrain.gender.mean', 'SHIFT + retrain 97.9 / 52.1 / 92.6', 52.1),
  R('test.shift_retrain.worst.mean', 'SHIFT + retrain 97.9 / 52.1 / 92.6', 92.6),
  R('test.shift_retrain.label.min', 'label 91.5–100.0', 91.5),
  R('test.shift_retrain.label.max', 'label 91.5–100.0', 100.0),
  R('test.shift_retrain.worst.min', 'worst group 70.0–100.0', 70.0),
  R('test.shift_retrain.worst.max', 'worst group 70.0–100.0', 100.0),
  R('val.k3.s0.75.worst.mean', 'validation worst group of k = 3 is 54.6', 54.6),
  R('val.k3.s0.6.worst.mean', 'against 92.8 at 0.6', 92.8),
];

export const groups: ClaimGroup[] = [
  {
    name: 'shift-organism',
    script: 'sfc shift --auto --retrain (src/cli/commands/shift.ts)',
    fast: false,
    measure: measureOrganism,
    claims: organismClaims,
  },
  {
    name: 'shift-sweep',
    script: 'scripts/shift-sweep.ts (recorded in docs/shift/sweep.json)',
    fast: true,
    measure: measureSweep,
    claims: sweepClaims,
  },
  {
    name: 'shift-probe-l2',
    script: 'scripts/shift-probe-l2.ts',
    fast: true,
    measure: measureProbeL2,
    claims: probeL2Claims,
  },
];
void pct;
