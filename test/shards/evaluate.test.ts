// Sharded evaluation on the organism: the merged evaluation.json equals a single-process run's
// (same structure and node counts, every F and score within 1e-9 relative; identical with one
// shard) for mean ablation (two passes, with the neurons series and a start layer that leaves
// sites out) and zero ablation (one pass); merge names missing, duplicate and mismatched parts, and
// a means file from another run is refused.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { register as registerDiscover } from '../../src/cli/commands/discover.ts';
import { register as registerEvaluate } from '../../src/cli/commands/evaluate.ts';
import { register as registerMerge } from '../../src/cli/commands/merge.ts';
import { runCommand } from '../helpers/run-command.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const MODEL = path.join(ROOT, 'models/organism');
const TRAIN = path.join(ROOT, 'data/simple_train.jsonl');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sfc-shards-evaluate-'));
const CIRCUIT = path.join(dir, 'circuit', 'circuit.json');
const NEURONS = path.join(dir, 'neurons', 'circuit.json');

const run = (register: typeof registerMerge, args: string[]) => runCommand(register, args);
const evaluate = (...args: string[]) =>
  run(registerEvaluate, [
    'evaluate',
    '--circuit',
    CIRCUIT,
    '--examples',
    '20',
    '--batch-size',
    '4',
    '--thresholds',
    '-3:0:4',
    ...args,
  ]);
const merge = (...args: string[]) => run(registerMerge, ['merge', ...args]);
const wrote = (printed: string) => /wrote (\S+)/.exec(printed)![1];

async function circuits(): Promise<void> {
  if (fs.existsSync(NEURONS)) return;
  const common = ['discover', '--model', MODEL, '--data', TRAIN, '--examples', '30'];
  const rest = ['--nodes-only', '--node-threshold', '0.001'];
  await run(registerDiscover, [...common, ...rest, '--out', path.dirname(CIRCUIT)]);
  await run(registerDiscover, [
    ...common,
    ...rest,
    '--saes',
    'neurons',
    '--out',
    path.dirname(NEURONS),
  ]);
}

/** Every shard of a sharded evaluation, both passes for mean ablation; returns evaluation.json. */
async function sharded(name: string, count: number, args: string[]): Promise<unknown> {
  const parts = path.join(dir, name, 'parts');
  const out = path.join(dir, name, 'out');
  const shards = async (extra: string[]) => {
    const files: string[] = [];
    // Out of order on purpose: merge sorts by shard.
    for (let i = count - 1; i >= 0; i--)
      files.push(
        wrote(await evaluate(...args, ...extra, '--shard', `${i}/${count}`, '--out', parts)),
      );
    return files;
  };
  if (!args.includes('zero')) {
    const printed = await merge(...(await shards([])), '--out', out);
    assert.match(printed, /wrote .*means\.json\nnext: the scoring pass/);
    await merge(...(await shards(['--means', path.join(out, 'means.json')])), '--out', out);
  } else {
    await merge(...(await shards([])), '--out', out);
  }
  return JSON.parse(fs.readFileSync(path.join(out, 'evaluation.json'), 'utf8'));
}

/** The largest relative difference between two JSON values of the same shape (strings equal). */
function worstDifference(a: unknown, b: unknown, at = ''): number {
  if (typeof a === 'number' && typeof b === 'number') {
    if (a === b) return 0;
    return Math.abs(a - b) / Math.max(Math.abs(a), Math.abs(b));
  }
  if (typeof a === 'object' && a !== null && typeof b === 'object' && b !== null) {
    assert.deepEqual(Object.keys(a), Object.keys(b), `keys at ${at}`);
    let worst = 0;
    for (const k of Object.keys(a))
      worst = Math.max(
        worst,
        worstDifference(
          (a as Record<string, unknown>)[k],
          (b as Record<string, unknown>)[k],
          `${at}.${k}`,
        ),
      );
    return worst;
  }
  assert.equal(a, b, `at ${at}`);
  return 0;
}

const single = async (name: string, args: string[]) => {
  await evaluate(...args, '--out', path.join(dir, name));
  return JSON.parse(fs.readFileSync(path.join(dir, name, 'evaluation.json'), 'utf8'));
};

test('sharded mean-ablation evaluation equals the single run (1, 2 and 3 shards)', async () => {
  await circuits();
  const args = ['--neurons-circuit', NEURONS];
  const truth = await single('single-mean', args);
  // The data the shards split: a start layer that leaves sites out, every series, real scores.
  assert.equal(truth.series.length, 5);
  assert.ok(truth.circuit_score.nodes_below_start_layer > 0);
  assert.ok(truth.circuit_score.faithfulness > 0.1, `${truth.circuit_score.faithfulness}`);
  assert.equal(worstDifference(truth, await sharded('mean-1', 1, args)), 0);
  for (const count of [2, 3]) {
    const worst = worstDifference(truth, await sharded(`mean-${count}`, count, args));
    assert.ok(worst <= 1e-9, `${count} shards: worst relative difference ${worst}`);
  }
  // The plots are drawn from the same numbers.
  assert.ok(fs.statSync(path.join(dir, 'mean-3', 'out', 'faithfulness.svg')).size > 1000);
});

test('sharded zero-ablation evaluation takes one pass and equals the single run', async () => {
  await circuits();
  const args = ['--ablation', 'zero', '--series', 'features,random_features'];
  const truth = await single('single-zero', args);
  const worst = worstDifference(truth, await sharded('zero-2', 2, args));
  assert.ok(worst <= 1e-9, `worst relative difference ${worst}`);
  await assert.rejects(
    evaluate(...args, '--shard', '0/2', '--means', path.join(dir, 'mean-2', 'out', 'means.json')),
    /--means: only with --ablation mean/,
  );
});

test("evaluation merge names missing, duplicate and mismatched parts; another run's means are refused", async () => {
  await circuits();
  if (!fs.existsSync(path.join(dir, 'mean-3')))
    await sharded('mean-3', 3, ['--neurons-circuit', NEURONS]);
  const parts = path.join(dir, 'mean-3', 'parts');
  const p = (i: number, stage = 'metrics') =>
    path.join(parts, `evaluate-${stage}-${i}-of-3.part.json`);
  const out = path.join(dir, 'bad-out');
  await assert.rejects(merge(p(0), p(2), '--out', out), /missing shard 1\/3 \(got 2 of 3 parts\)/);
  await assert.rejects(
    merge(p(0), p(1), p(1), p(2), '--out', out),
    /shard 1\/3 given twice: .*metrics-1-of-3.* and .*metrics-1-of-3/,
  );
  await assert.rejects(
    merge(p(0), p(1, 'means'), p(2), '--out', out),
    /means-1-of-3\.part\.json does not belong with .*metrics-0-of-3\.part\.json: stage \("evaluate-metrics" vs "evaluate-means"\) differs/,
  );
  const other = path.join(dir, 'other.part.json');
  const part = JSON.parse(fs.readFileSync(p(1), 'utf8'));
  part.options.seed = 7;
  fs.writeFileSync(other, JSON.stringify(part));
  await assert.rejects(
    merge(p(0), other, p(2), '--out', out),
    /other\.part\.json does not belong with .*: options\.seed \(0 vs 7\) differs/,
  );
  part.options.seed = 0;
  part.inputs.circuit.sha256 = '0'.repeat(64);
  fs.writeFileSync(other, JSON.stringify(part));
  await assert.rejects(
    merge(p(0), other, p(2), '--out', out),
    /input circuit \("[0-9a-f]{64}" vs "0{64}"\) differs/,
  );
  part.inputs.circuit.sha256 = JSON.parse(fs.readFileSync(p(1), 'utf8')).inputs.circuit.sha256;
  part.calls = null;
  fs.writeFileSync(other, JSON.stringify(part));
  await assert.rejects(
    merge(p(0), other, p(2), '--out', out),
    /other\.part\.json: an evaluate-metrics part without calls/,
  );
  // A half-written part (what a rename-less writer could leave) is refused by name.
  fs.writeFileSync(other, fs.readFileSync(p(1), 'utf8').slice(0, 500));
  await assert.rejects(merge(p(0), other, p(2), '--out', out), /other\.part\.json: not valid JSON/);
  // The scoring pass checks its means file against its own inputs and options.
  await assert.rejects(
    evaluate(
      '--neurons-circuit',
      NEURONS,
      '--seed',
      '3',
      '--shard',
      '0/3',
      '--means',
      path.join(dir, 'mean-3', 'out', 'means.json'),
      '--out',
      out,
    ),
    /--means .*means\.json: made by merging another run's parts; options\.seed \(3 vs 0\)/,
  );
  await assert.rejects(evaluate('--means', 'x.json'), /--means: only with --shard/);
  await assert.rejects(
    evaluate('--shard', '0/2', '--out', out),
    /--shard: the neurons series needs --neurons-circuit/,
  );
});
