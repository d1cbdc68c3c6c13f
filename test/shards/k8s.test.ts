// deploy/k8s/ without a cluster: the manifests rendered as run-*.sh render them (envsubst) are
// Indexed Jobs and merge Jobs on one volume, and their containers' commands, run here as the pods
// would (the shard index in JOB_COMPLETION_INDEX, /work the shared volume), give the single run's
// circuit, evaluation and dashboards.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { register as registerDiscover } from '../../src/cli/commands/discover.ts';
import { register as registerEvaluate } from '../../src/cli/commands/evaluate.ts';
import { register as registerDashboards } from '../../src/cli/commands/report.ts';
import { readCircuit } from '../../src/circuit/circuit.ts';
import { runCommand } from '../helpers/run-command.ts';
import { compareCircuits } from '../helpers/compare-circuits.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const K8S = path.join(ROOT, 'deploy/k8s');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'sfc-k8s-'));

/** The manifest with ${VAR}s filled in, as run-discover.sh's envsubst does. */
function render(file: string, vars: Record<string, string>): string {
  return fs
    .readFileSync(path.join(K8S, file), 'utf8')
    .replace(/\$\{([A-Z_]+)\}/g, (m, k: string) => vars[k] ?? m);
}

/** The container's shell script (the item of `args:` after `command: [sh, -c]`). */
function containerScript(manifest: string): string {
  const lines = manifest.split('\n');
  const at = lines.findIndex((l) => /^\s+args:\s*$/.test(l));
  assert.ok(at >= 0, 'no args: in the manifest');
  const item = /^(\s*)- (.*)$/.exec(lines[at + 1])!;
  if (item[2] !== '|') return item[2];
  const body: string[] = [];
  const indent = item[1].length + 2;
  for (const l of lines.slice(at + 2)) {
    if (l.trim() !== '' && l.length - l.trimStart().length < indent) break;
    body.push(l.slice(indent));
  }
  return body.join('\n');
}

/** The volume's paths (/work/parts, /work/out) moved to `work`. */
const onVolume = (text: string) => text.replace(/\/work\/(parts|out)\b/g, `${work}/$1`);

/** Runs a pod's script with sfc on the PATH and the volume at `work` instead of /work. */
function runPod(script: string, env: Record<string, string>): void {
  const bin = path.join(work, 'bin');
  fs.mkdirSync(bin, { recursive: true });
  fs.writeFileSync(
    path.join(bin, 'sfc'),
    `#!/bin/sh\nexec "${process.execPath}" "${path.join(ROOT, 'bin/sfc.js')}" "$@"\n`,
    { mode: 0o755 },
  );
  const r = spawnSync('sh', ['-c', onVolume(script)], {
    env: { ...process.env, ...env, PATH: `${bin}:${process.env.PATH}` },
    encoding: 'utf8',
  });
  assert.equal(r.status, 0, `pod script failed:\n${script}\n${r.stderr}`);
}

test('deploy/k8s: Indexed Jobs and merge Jobs on one volume give the single run', async () => {
  const SHARDS = '2';
  const sfcArgs = `--model ${ROOT}models/organism --data ${ROOT}data/nounpp_train.jsonl --examples 20 --batch-size 5`;
  const volume = fs.readFileSync(path.join(K8S, 'volume.yaml'), 'utf8');
  const claim = /^\s+name: (\S+)$/m.exec(volume.split('spec:')[0])![1];
  for (const [stage, nodes] of [
    ['nodes', ''],
    ['edges', '--nodes /work/out/nodes.json'],
  ]) {
    const vars = {
      NAME: `sfc-discover-${stage}`,
      SHARDS,
      IMAGE: 'sfc',
      SFC_ARGS: sfcArgs,
      NODES: nodes,
      PREFIX: `discover-${stage}`,
      MERGE_MEMORY: '1Gi',
    };
    const shards = render('discover-shards.yaml', vars);
    assert.match(shards, /completionMode: Indexed/);
    assert.match(shards, new RegExp(`completions: ${SHARDS}\\n`));
    assert.match(shards, new RegExp(`claimName: ${claim} `));
    assert.doesNotMatch(shards.replace(/^\s*#.*$/gm, ''), /\$\{/, 'a ${VAR} left unfilled');
    for (let i = 0; i < Number(SHARDS); i++)
      runPod(containerScript(shards), {
        JOB_COMPLETION_INDEX: String(i),
        SHARDS,
        SFC_ARGS: sfcArgs,
        NODES: onVolume(nodes),
      });
    const merge = render('merge.yaml', vars);
    assert.match(merge, new RegExp(`claimName: ${claim} `));
    assert.doesNotMatch(merge.replace(/^\s*#.*$/gm, ''), /\$\{/, 'a ${VAR} left unfilled');
    runPod(containerScript(merge), { SHARDS, PREFIX: `discover-${stage}` });
  }
  const single = path.join(work, 'single');
  await runCommand(registerDiscover, ['discover', ...sfcArgs.split(' '), '--out', single]);
  const worst = compareCircuits(readCircuit(single), readCircuit(path.join(work, 'out')));
  assert.ok(worst <= 1e-9, `worst relative difference ${worst}`);
});

test('deploy/k8s: the two passes of a sharded evaluation (shards.yaml, merge.yaml) give the single run', async () => {
  // The circuit the discovery test above merged.
  const circuit = path.join(work, 'out', 'circuit.json');
  assert.ok(fs.existsSync(circuit), 'run the discovery test first');
  const SHARDS = '2';
  const sfcArgs = `--circuit ${circuit} --examples 8 --batch-size 4 --series features,random_features --thresholds -1:0:3`;
  for (const [prefix, extra] of [
    ['evaluate-means', ''],
    ['evaluate-metrics', '--means /work/out/means.json'],
  ]) {
    const vars = {
      NAME: `sfc-${prefix}`,
      COMMAND: 'evaluate',
      SHARDS,
      IMAGE: 'sfc',
      SFC_ARGS: sfcArgs,
      EXTRA: extra,
      PREFIX: prefix,
      MERGE_MEMORY: '1Gi',
    };
    const shards = render('shards.yaml', vars);
    assert.match(shards, /completionMode: Indexed/);
    assert.doesNotMatch(shards.replace(/^\s*#.*$/gm, ''), /\$\{/, 'a ${VAR} left unfilled');
    for (let i = 0; i < Number(SHARDS); i++)
      runPod(containerScript(shards), {
        JOB_COMPLETION_INDEX: String(i),
        COMMAND: 'evaluate',
        SHARDS,
        SFC_ARGS: sfcArgs,
        EXTRA: onVolume(extra),
      });
    runPod(containerScript(render('merge.yaml', vars)), { SHARDS, PREFIX: prefix });
  }
  const single = path.join(work, 'single-evaluation');
  await runCommand(registerEvaluate, ['evaluate', ...sfcArgs.split(' '), '--out', single]);
  const read = (d: string) => JSON.parse(fs.readFileSync(path.join(d, 'evaluation.json'), 'utf8'));
  const merged = read(path.join(work, 'out'));
  const truth = read(single);
  assert.equal(truth.series[0].points.length, 3);
  // F sums reassociated over two shards: equal to within 1e-9 relative.
  const flat = (v: unknown): number[] =>
    typeof v === 'number' ? [v] : v && typeof v === 'object' ? Object.values(v).flatMap(flat) : [];
  const [a, b] = [flat(truth), flat(merged)];
  assert.equal(a.length, b.length);
  a.forEach((x, i) =>
    assert.ok(
      Math.abs(x - b[i]) <= 1e-9 * Math.max(Math.abs(x), Math.abs(b[i])),
      `${x} vs ${b[i]}`,
    ),
  );
});

test('deploy/k8s: sharded dashboards (shards.yaml, merge.yaml) are the single run byte for byte', async () => {
  const circuit = path.join(work, 'out', 'circuit.json');
  assert.ok(fs.existsSync(circuit), 'run the discovery test first');
  const SHARDS = '2';
  const sfcArgs = `--model ${ROOT}models/organism --corpus ${ROOT}data/corpus.txt --max-documents 24 --features ${circuit}`;
  const vars = {
    NAME: 'sfc-dashboards',
    COMMAND: 'dashboards',
    SHARDS,
    IMAGE: 'sfc',
    SFC_ARGS: sfcArgs,
    EXTRA: '',
    PREFIX: 'dashboards',
    MERGE_MEMORY: '4Gi',
  };
  const shards = render('shards.yaml', vars);
  for (let i = 0; i < Number(SHARDS); i++)
    runPod(containerScript(shards), {
      JOB_COMPLETION_INDEX: String(i),
      COMMAND: 'dashboards',
      SHARDS,
      SFC_ARGS: sfcArgs,
      EXTRA: '',
    });
  const merge = render('merge.yaml', vars);
  assert.match(merge, /memory: '4Gi'/);
  runPod(containerScript(merge), { SHARDS, PREFIX: 'dashboards' });
  const single = path.join(work, 'single-dashboards');
  await runCommand(registerDashboards, ['dashboards', ...sfcArgs.split(' '), '--out', single]);
  const file = (d: string) => fs.readFileSync(path.join(d, 'dashboards.json'), 'utf8');
  assert.ok(file(single).length > 1000);
  assert.equal(file(path.join(work, 'out')), file(single));
});
