// `sfc shift` end to end on the shipped organism: the spurious probe is what the task promises
// (gender, not the label), the oracle is not, the table has every row, a person's features file is
// ablated as given, and bad invocations fail with a message.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { register } from '../../src/cli/commands/shift.ts';
import { runCommand } from '../helpers/run-command.ts';

const run = (...args: string[]) => runCommand(register, ['shift', ...args]);

interface ShiftFile {
  scored_on: string;
  features: { id: string; spurious: boolean }[];
  extra_features: string[];
  rows: { name: string; ablated: number; label: number; gender: number; worst_group: number }[];
}

const quick = ['--examples', '20', '--steps', '3'];

test('sfc shift --auto --retrain on the organism: every row, and the probe learned the cue', async () => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'sfc-shift-'));
  const table = await run('--auto', '--retrain', '--out', out);
  assert.match(table, /original .*\n.*SHIFT/);
  const file = JSON.parse(fs.readFileSync(path.join(out, 'shift.json'), 'utf8')) as ShiftFile;
  const row = (name: string) => file.rows.find((r) => r.name === name)!;
  assert.deepEqual(
    file.rows.map((r) => r.name),
    [
      'original',
      ...['SHIFT', 'random', 'SHIFT, embed only', 'feature skyline', 'neuron skyline'].flatMap(
        (n) => (row(n).ablated > 0 ? [n, `${n} + retrain`] : [n]),
      ),
      'oracle',
    ],
  );
  // The ambiguous split teaches gender: the original probe follows it on balanced data.
  assert.ok(
    row('original').gender > 0.9 && row('original').worst_group < 0.2,
    JSON.stringify(row('original')),
  );
  // Balanced training data does not.
  assert.ok(row('oracle').label > 0.95 && Math.abs(row('oracle').gender - 0.5) < 0.05);
  // The headline (README, docs/shift.md), at the defaults the README's table uses (100
  // examples, 10 IG steps): SHIFT + retrain beats the original probe and random features, with
  // and without retraining, on label and worst-group accuracy, and takes gender to chance.
  // Measured with the shipped k = 3 embedding SAE: SHIFT + retrain 98.5 / 51.5 / 95.0 (label /
  // gender / worst group), original 52.5 / 97.5 / 4.0, random 51.7 / 81.8 / 4.0, random +
  // retrain 51.2 / 98.8 / 1.0. The margins asserted (0.3 on label and worst group, 0.3 on the
  // distance of gender from chance, random without retraining excepted, whose gender varies with
  // the draw) sit inside those gaps. Quick settings (20 examples, 3 steps) judge other features
  // and reached only 93.8 / 56.3 / 87.0, which is why this test pays for the defaults.
  const shift = row('SHIFT + retrain');
  assert.ok(shift.worst_group >= 0.9 && shift.label >= 0.9, JSON.stringify(shift));
  for (const name of ['original', 'random', 'random + retrain']) {
    const other = row(name);
    const why = `SHIFT + retrain ${JSON.stringify(shift)} vs ${name} ${JSON.stringify(other)}`;
    assert.ok(shift.label > other.label + 0.3, why);
    assert.ok(shift.worst_group > other.worst_group + 0.3, why);
    if (name !== 'random')
      assert.ok(Math.abs(shift.gender - 0.5) < Math.abs(other.gender - 0.5) - 0.3, why);
  }
  const spurious = file.features.filter((f) => f.spurious).length;
  assert.equal(row('SHIFT').ablated, spurious);
  assert.equal(row('random').ablated, spurious);
  assert.ok(fs.statSync(path.join(out, 'shift.svg')).size > 1000);
  assert.ok(fs.existsSync(path.join(out, 'circuit.json')));
});

test('sfc shift --features: the listed features are ablated, also ones outside the circuit', async () => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'sfc-shift-'));
  const list = path.join(out, 'features.json');
  fs.writeFileSync(list, JSON.stringify({ features: ['embed/0', 'resid_1/1'] }));
  const json = await run('--features', list, ...quick, '--out', out, '--json', '--score-on', 'val');
  const file = JSON.parse(json) as ShiftFile;
  assert.equal(file.scored_on, 'balanced_val');
  assert.equal(file.rows.find((r) => r.name === 'SHIFT')!.ablated, 2);
  const inCircuit = new Set(file.features.map((f) => f.id));
  assert.deepEqual(
    file.extra_features,
    ['embed/0', 'resid_1/1'].filter((id) => !inCircuit.has(id)),
  );
});

test('sfc shift: one judgement is required, and features above the probe are refused', async () => {
  await assert.rejects(
    run(...quick),
    /choose how features are judged: --features FILE .* or --auto/,
  );
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sfc-shift-'));
  const list = path.join(dir, 'features.json');
  fs.writeFileSync(list, JSON.stringify(['resid_3/5']));
  await assert.rejects(
    run('--features', list, ...quick),
    /resid_3\/5 is above the probe's site resid_2 and cannot change it/,
  );
  await assert.rejects(run('--auto', '--site', 'mlp_1'), /--site: the probe reads a residual site/);
  await assert.rejects(
    run('--auto', '--min-share', '0.5'),
    /--min-share: expected a share in \(0\.5, 1\], e\.g\. 0\.6; got "0\.5"/,
  );
  await assert.rejects(run('--auto', '--score-on', 'train'), /--score-on: expected test or val/);
  // A task folder without the validation split says so when asked to score on it.
  const task = fs.mkdtempSync(path.join(os.tmpdir(), 'sfc-bios-'));
  for (const split of ['ambiguous', 'balanced_train', 'balanced_test'])
    fs.copyFileSync(path.join('data', 'bios', `${split}.jsonl`), path.join(task, `${split}.jsonl`));
  await assert.rejects(
    run('--auto', '--task', task, '--score-on', 'val', ...quick),
    /no balanced_val.jsonl, the split the rows were asked to be scored on/,
  );
});
