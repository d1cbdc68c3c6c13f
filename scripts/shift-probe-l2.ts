// The probe's L2 strength on the organism's bios task (docs/shift.md, "Probe L2 strength"): the
// original probe (trained on the ambiguous split) and the oracle (trained on balanced_train), both
// scored on balanced_test, for each L2. No SAE is involved, so it takes seconds.
//
//   npx tsx scripts/shift-probe-l2.ts            # prints the table, writes docs/shift/probe-l2.json
//   npx tsx scripts/shift-probe-l2.ts --no-write # prints only

import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadClassificationTask } from '../src/data/classification.ts';
import { GptNeoX } from '../src/model/gptneox.ts';
import { loadModel } from '../src/model/load.ts';
import { pooledActivations, trainProbe } from '../src/shift/probe.ts';
import { defaultProbeSite, scoreProbe, type Scores } from '../src/shift/shift.ts';

export const PROBE_L2S = [1e-4, 1e-3, 1e-2, 1e-1] as const;

export interface ProbeL2Row {
  l2: number;
  original: Scores;
  oracle: Scores;
}

const repo = path.dirname(path.dirname(fileURLToPath(import.meta.url)));

/** The table's rows, on the shipped organism and data/bios. */
export function probeL2Table(
  model = path.join(repo, 'models', 'organism'),
  taskDir = path.join(repo, 'data', 'bios'),
): ProbeL2Row[] {
  const { config, weights, tokenizer } = loadModel(model, { tokenizer: true });
  if (!tokenizer) throw new Error(`${model}: no tokenizer.json`);
  const gpt = new GptNeoX(config, weights);
  const task = loadClassificationTask(taskDir, tokenizer, {
    maxLength: config.maxPositionEmbeddings,
  });
  const site = defaultProbeSite(config.numLayers);
  const { ambiguous, balanced_train: train, balanced_test: test } = task.splits;
  const pooled = (texts: typeof test) =>
    pooledActivations(
      gpt,
      texts.map((t) => t.ids),
      site,
    );
  const [xAmbiguous, xTrain, xTest] = [pooled(ambiguous), pooled(train), pooled(test)];
  const y = (texts: typeof test) => texts.map((t) => t.y);
  return PROBE_L2S.map((l2) => ({
    l2,
    original: scoreProbe(trainProbe(site, xAmbiguous, y(ambiguous), { l2 }), xTest, test),
    oracle: scoreProbe(trainProbe(site, xTrain, y(train), { l2 }), xTest, test),
  }));
}

export function probeL2Markdown(rows: ProbeL2Row[]): string {
  const pct = (v: number) => (100 * v).toFixed(1);
  return [
    '| L2   | label | gender | worst | oracle label |',
    '| ---- | ----- | ------ | ----- | ------------ |',
    ...rows.map(
      (r) =>
        `| ${r.l2.toExponential(0).replace('e-', 'e-')} | ${pct(r.original.label)} | ${pct(r.original.gender)} | ${pct(r.original.worstGroup)} | ${pct(r.oracle.label)} |`,
    ),
  ].join('\n');
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const rows = probeL2Table();
  console.log(probeL2Markdown(rows));
  if (!process.argv.includes('--no-write')) {
    const file = path.join(repo, 'docs', 'shift', 'probe-l2.json');
    const command = 'npx tsx scripts/shift-probe-l2.ts';
    fs.writeFileSync(file, JSON.stringify({ command, rows }, null, 1) + '\n');
    console.log(`wrote ${file}`);
  }
}
