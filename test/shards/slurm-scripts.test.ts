// deploy/slurm's submit scripts for evaluation and dashboards against a stand-in sbatch that
// records its arguments and answers job ids 1, 2, ...: which jobs they submit, with which
// dependencies, part prefixes and options (the real cluster runs in slurm.test.ts). And
// shard.sbatch's command line for a task of the array.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const SLURM = fileURLToPath(new URL('../../deploy/slurm/', import.meta.url));
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sfc-slurm-scripts-'));

/** Runs a submit script with the stand-in sbatch; returns what it printed and each sbatch call. */
function submit(
  script: string,
  args: string[],
  env: Record<string, string> = {},
): { printed: string; calls: string[][] } {
  const bin = path.join(dir, 'bin');
  const log = path.join(dir, `calls-${Math.random()}.log`);
  fs.mkdirSync(bin, { recursive: true });
  // One line per call: the arguments separated by \x1f; the id is the number of calls so far.
  fs.writeFileSync(
    path.join(bin, 'sbatch'),
    `#!/usr/bin/env bash\nIFS=$'\\x1f'; echo "$*" >> "$CALLS"\necho "$(wc -l < "$CALLS")"\n`,
    { mode: 0o755 },
  );
  const r = spawnSync('bash', [path.join(SLURM, script), ...args], {
    env: { ...process.env, ...env, PATH: `${bin}:${process.env.PATH}`, CALLS: log },
    encoding: 'utf8',
  });
  assert.equal(r.status, 0, r.stderr);
  const calls = fs
    .readFileSync(log, 'utf8')
    .trim()
    .split('\n')
    .map((l) => l.split('\x1f'));
  return { printed: r.stdout.trim(), calls };
}

const work = () => fs.mkdtempSync(path.join(dir, 'work-'));
const has = (call: string[], arg: string) => call.includes(arg);

test('submit-evaluate.sh: mean ablation submits both passes, each merge after its array', () => {
  const w = work();
  const { printed, calls } = submit('submit-evaluate.sh', ['4', w, '--circuit', 'c.json']);
  assert.equal(printed, '4');
  assert.equal(calls.length, 4);
  const [means, mergeMeans, scores, mergeScores] = calls;
  assert.ok(has(means, '--array=0-3') && has(means, path.join(SLURM, 'shard.sbatch')));
  assert.ok(!means.some((a) => a.startsWith('--dependency')));
  assert.deepEqual(means.slice(-2), ['--circuit', 'c.json']);
  assert.ok(has(mergeMeans, '--dependency=afterok:1'));
  assert.ok(has(mergeMeans, '--export=ALL,PREFIX=evaluate-means'));
  assert.ok(has(scores, '--dependency=afterok:2') && has(scores, '--array=0-3'));
  assert.deepEqual(scores.slice(-4), ['--circuit', 'c.json', '--means', `${w}/out/means.json`]);
  assert.ok(has(mergeScores, '--dependency=afterok:3'));
  assert.ok(has(mergeScores, '--export=ALL,PREFIX=evaluate-metrics'));
});

test('submit-evaluate.sh: zero ablation is one pass; AFTER makes the first array wait', () => {
  for (const ablation of [['--ablation', 'zero'], ['--ablation=patch']]) {
    const { printed, calls } = submit('submit-evaluate.sh', ['2', work(), ...ablation], {
      AFTER: '77',
    });
    assert.equal(printed, '2');
    assert.equal(calls.length, 2);
    assert.ok(has(calls[0], '--dependency=afterok:77'));
    assert.ok(!calls[0].includes('--means'));
    assert.ok(has(calls[1], '--export=ALL,PREFIX=evaluate-metrics'));
  }
  const { calls } = submit('submit-evaluate.sh', ['2', work(), '--ablation', 'mean'], {
    AFTER: '77',
  });
  assert.equal(calls.length, 4);
  assert.ok(has(calls[0], '--dependency=afterok:77'));
});

test('submit-dashboards.sh: the array, then a merge with more memory', () => {
  const { printed, calls } = submit('submit-dashboards.sh', ['3', work(), '--features', 'all'], {
    MERGE_MEM: '8G',
  });
  assert.equal(printed, '2');
  assert.equal(calls.length, 2);
  assert.ok(has(calls[0], '--array=0-2'));
  assert.deepEqual(calls[0].slice(-2), ['--features', 'all']);
  assert.ok(has(calls[1], '--dependency=afterok:1') && has(calls[1], '--mem=8G'));
  assert.ok(has(calls[1], '--export=ALL,PREFIX=dashboards'));
});

test('shard.sbatch runs the command for its array task; merge.sbatch names every part', () => {
  const run = (script: string, env: Record<string, string>, args: string[] = []) => {
    const r = spawnSync('bash', [path.join(SLURM, script), ...args], {
      env: { PATH: process.env.PATH, SFC: 'echo', ...env },
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stderr);
    return r.stdout.trim();
  };
  assert.equal(
    run(
      'shard.sbatch',
      { SFC_COMMAND: 'evaluate', SHARDS: '4', PARTS: '/p', SLURM_ARRAY_TASK_ID: '2' },
      ['--circuit', 'c.json'],
    ),
    'evaluate --circuit c.json --shard 2/4 --out /p',
  );
  assert.equal(
    run('merge.sbatch', { SHARDS: '2', PARTS: '/p', OUT: '/o', PREFIX: 'evaluate-means' }),
    'merge /p/evaluate-means-0-of-2.part.json /p/evaluate-means-1-of-2.part.json --out /o',
  );
  // Discovery's STAGE still names its parts.
  assert.equal(
    run('merge.sbatch', { SHARDS: '1', PARTS: '/p', OUT: '/o', STAGE: 'edges' }),
    'merge /p/discover-edges-0-of-1.part.json --out /o',
  );
});
