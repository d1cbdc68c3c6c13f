// deploy/slurm/ on a real single-node Slurm cluster started for this test (test/helpers/
// slurm-cluster.ts): submit-discover.sh submits the two job arrays and their merges for a
// discovery on the organism, and submit-evaluate.sh the two passes of its evaluation, waiting for
// the discovery (AFTER); the merged circuit and evaluation.json must equal single-process runs'. A machine
// where the cluster cannot start fails here with the reason (CI installs the packages in .ci/run).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { register as registerDiscover } from '../../src/cli/commands/discover.ts';
import { register as registerEvaluate } from '../../src/cli/commands/evaluate.ts';
import { readCircuit } from '../../src/circuit/circuit.ts';
import { runCommand } from '../helpers/run-command.ts';
import { compareCircuits } from '../helpers/compare-circuits.ts';
import { slurmCommand, startSlurmCluster, waitForJob } from '../helpers/slurm-cluster.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const ARGS = [
  '--model',
  path.join(ROOT, 'models/organism'),
  '--data',
  path.join(ROOT, 'data/rc_train.jsonl'),
  '--examples',
  '30',
  '--batch-size',
  '5',
];

test('a sharded discovery and its evaluation on Slurm (job arrays, dependent merges) equal single runs', async () => {
  const cluster = await startSlurmCluster();
  let passed = false;
  try {
    const work = path.join(cluster.dir, 'run');
    const env = { ...cluster.env, SFC: `${process.execPath} ${path.join(ROOT, 'bin/sfc.js')}` };
    const id = slurmCommand(env, path.join(ROOT, 'deploy/slurm/submit-discover.sh'), [
      '3',
      work,
      ...ARGS,
    ]).trim();
    assert.match(id, /^\d+$/, `submit-discover.sh printed ${id}, not a job id`);
    const evaluation = path.join(cluster.dir, 'evaluation');
    const evalArgs = [
      '--circuit',
      path.join(work, 'out', 'circuit.json'),
      '--examples',
      '10',
      '--batch-size',
      '5',
      '--series',
      'features',
      '--thresholds',
      '-1:0:2',
    ];
    const evalId = slurmCommand(
      { ...env, AFTER: id },
      path.join(ROOT, 'deploy/slurm/submit-evaluate.sh'),
      ['2', evaluation, ...evalArgs],
    ).trim();
    assert.match(evalId, /^\d+$/, `submit-evaluate.sh printed ${evalId}, not a job id`);
    const jobLogs = () =>
      fs
        .readdirSync(path.join(work, 'logs'))
        .map((f) => `--- ${f} ---\n${fs.readFileSync(path.join(work, 'logs', f), 'utf8')}`)
        .concat(
          fs
            .readdirSync(path.join(evaluation, 'logs'))
            .map(
              (f) => `--- ${f} ---\n${fs.readFileSync(path.join(evaluation, 'logs', f), 'utf8')}`,
            ),
        )
        .join('\n');
    try {
      await waitForJob(cluster, evalId, 300_000);
    } catch (e) {
      throw new Error(`${(e as Error).message}\n${jobLogs()}`, { cause: e });
    }
    // Both passes ran as 3-task arrays.
    const parts = fs.readdirSync(path.join(work, 'parts')).sort();
    assert.deepEqual(parts, [
      'discover-edges-0-of-3.part.json',
      'discover-edges-1-of-3.part.json',
      'discover-edges-2-of-3.part.json',
      'discover-nodes-0-of-3.part.json',
      'discover-nodes-1-of-3.part.json',
      'discover-nodes-2-of-3.part.json',
    ]);
    const merged = readCircuit(path.join(work, 'out'));
    const single = path.join(cluster.dir, 'single');
    await runCommand(registerDiscover, ['discover', ...ARGS, '--out', single]);
    const circuit = readCircuit(single);
    assert.ok(circuit.nodes.length > 10 && circuit.edges.length > 50);
    const worst = compareCircuits(circuit, merged);
    assert.ok(worst <= 1e-9, `worst relative difference ${worst}`);
    // The evaluation's two passes ran as 2-task arrays; its scores are the single run's.
    assert.deepEqual(fs.readdirSync(path.join(evaluation, 'parts')).sort(), [
      'evaluate-means-0-of-2.part.json',
      'evaluate-means-1-of-2.part.json',
      'evaluate-metrics-0-of-2.part.json',
      'evaluate-metrics-1-of-2.part.json',
    ]);
    const singleEvaluation = path.join(cluster.dir, 'single-evaluation');
    await runCommand(registerEvaluate, ['evaluate', ...evalArgs, '--out', singleEvaluation]);
    const read = (d: string) =>
      JSON.parse(fs.readFileSync(path.join(d, 'evaluation.json'), 'utf8')) as {
        series: { points: { nodes: number; f_circuit: number; f_complement: number }[] }[];
      };
    const want = read(singleEvaluation).series[0].points;
    const got = read(path.join(evaluation, 'out')).series[0].points;
    assert.equal(got.length, 2);
    got.forEach((p, i) => {
      assert.equal(p.nodes, want[i].nodes);
      for (const f of ['f_circuit', 'f_complement'] as const)
        assert.ok(
          Math.abs(p[f] - want[i][f]) <= 1e-9 * Math.abs(want[i][f]),
          `${f}: ${p[f]} vs ${want[i][f]}`,
        );
    });
    passed = true;
  } finally {
    await cluster.stop();
    // Kept on failure: the daemons' and jobs' logs.
    if (passed) fs.rmSync(cluster.dir, { recursive: true, force: true });
  }
});
