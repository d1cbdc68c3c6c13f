import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { register } from '../../src/cli/commands/evaluate.ts';
import { parseThresholds, testDataFor } from '../../src/cli/commands/evaluate.ts';
import { readCircuit, writeCircuit, nodeId, type Circuit } from '../../src/circuit/circuit.ts';
import { GptNeoX } from '../../src/model/gptneox.ts';
import { saveModel } from '../../src/model/save.ts';
import { parseSite, siteNames } from '../../src/model/sites.ts';
import { saveDictionary } from '../../src/sae/formats.ts';
import { Tokenizer } from '../../src/model/tokenizer.ts';
import { loadTask, scoreTask } from '../../src/data/tasks.ts';
import { buildOrganismTokenizer } from '../../src/organism/tokenizer-builder.ts';
import { Rng } from '../../src/random.ts';
import { randomWeights, tinyConfig } from '../helpers/random-model.ts';
import { randomSaes } from '../helpers/random-saes.ts';
import { runCommand } from '../helpers/run-command.ts';

// A random 3-layer model with the organism's tokenizer, random SAEs at every site, a slice of the
// organism's relative-clause task as train/test files, and a hand-made circuit.
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sfc-evaluate-'));
const modelDir = path.join(dir, 'model');
const tokenizerJson = buildOrganismTokenizer().json;
const tokenizer = Tokenizer.fromJson(tokenizerJson);
const config = tinyConfig({ vocabSize: 832, numLayers: 3 });
const weights = randomWeights(config, 31);
fs.mkdirSync(modelDir);
fs.writeFileSync(path.join(dir, 'tokenizer.json'), JSON.stringify(tokenizerJson));
saveModel(modelDir, config, weights, { tokenizer: path.join(dir, 'tokenizer.json') });
const F = 12;
for (const sae of randomSaes(config, F, 32).values())
  saveDictionary(path.join(modelDir, 'saes'), sae);

const source = new URL('../../data/rc_test.jsonl', import.meta.url).pathname;
const lines = fs.readFileSync(source, 'utf8').trim().split('\n');
const T = tokenizer.encode((JSON.parse(lines[0]) as { clean_prefix: string }).clean_prefix).length;
const lengthT = (line: string) =>
  tokenizer.encode((JSON.parse(line) as { clean_prefix: string }).clean_prefix).length === T;
// Discovery data of one length, as discovery with aggregation none requires.
fs.writeFileSync(
  path.join(dir, 'task_train.jsonl'),
  lines.slice(0, 8).filter(lengthT).join('\n') + '\n',
);
// Test data of mixed lengths: relative clauses and a few short simple-agreement examples.
const simple = fs
  .readFileSync(new URL('../../data/simple_test.jsonl', import.meta.url).pathname, 'utf8')
  .split('\n')
  .slice(0, 5);
fs.writeFileSync(
  path.join(dir, 'task_test.jsonl'),
  [...lines.slice(8, 40), ...simple].join('\n') + '\n',
);

// The sites with SAEs (the organism's): what discover lists in circuit.json.
const sites = siteNames(config.numLayers);
function circuit(saes: string, width: number, data = path.join(dir, 'task_train.jsonl')): Circuit {
  const rng = new Rng(33);
  const nodes: Circuit['nodes'] = [];
  for (const site of sites)
    for (let t = 0; t < T; t++) {
      for (let i = 0; i < width; i++)
        if (rng.next() < 0.3)
          nodes.push({
            id: nodeId(site, i, t),
            site,
            layer: parseSite(site, 3).layer,
            kind: 'feature',
            feature: i,
            position: t,
            effect: 10 ** (-4 * rng.next()) * (rng.next() < 0.5 ? -1 : 1),
          });
      nodes.push({
        id: nodeId(site, null, t),
        site,
        layer: parseSite(site, 3).layer,
        kind: 'error',
        feature: null,
        position: t,
        effect: 0.05,
      });
    }
  return {
    version: 1,
    model: modelDir,
    saes,
    data,
    method: 'ig',
    steps: 10,
    aggregation: 'none',
    examples: lines.slice(0, 8).filter(lengthT).length,
    node_threshold: 0.001,
    edge_threshold: 0.01,
    sites,
    tokens: Array.from({ length: T }, (_, t) => `tok${t}`),
    metric: { clean: -1, patch: 1 },
    nodes,
    edges: [],
  };
}
const circuitFile = writeCircuit(path.join(dir, 'out'), circuit(path.join(modelDir, 'saes'), F));
const neuronsFile = writeCircuit(path.join(dir, 'neurons'), circuit('neurons', config.hiddenSize));

/** Runs `sfc evaluate ...` in this process; returns what it printed on stdout. */
function sfcEvaluate(...args: string[]): Promise<string> {
  return runCommand(register, ['evaluate', ...args]);
}

interface EvaluationJson {
  data: string;
  examples: number;
  start_layer: number;
  metric: { model: number; empty: number; empty_all_layers: number | null };
  circuit_score: { nodes: number; faithfulness: number; nodes_below_start_layer: number };
  circuit_score_all_layers: {
    nodes: number;
    faithfulness: number;
    nodes_below_start_layer: number;
  } | null;
  series: { name: string; skipped_thresholds: number[]; points: { threshold: number }[] }[];
}

test('sfc evaluate writes evaluation.json and both plots, on the held-out data by default', async () => {
  const stdout = await sfcEvaluate(
    '--circuit',
    circuitFile,
    '--thresholds',
    '1e-4,0.01,0.1',
    '--json',
  );
  const printed = JSON.parse(stdout) as EvaluationJson;
  const written = JSON.parse(
    fs.readFileSync(path.join(dir, 'out', 'evaluation.json'), 'utf8'),
  ) as EvaluationJson;
  assert.deepEqual(printed, written);
  assert.equal(written.data, path.join(dir, 'task_test.jsonl'));
  assert.equal(written.start_layer, 1); // a third of 3 layers
  assert.deepEqual(
    written.series.map((s) => s.name),
    [
      'features',
      'features_without_errors',
      'features_without_attn_mlp_errors',
      'neurons',
      'random_features',
    ],
  );
  assert.deepEqual(written.series[0].skipped_thresholds, [1e-4]);
  // The neuron circuit was found here, listing nodes down to the lowest threshold.
  const neurons = readCircuit(path.join(dir, 'out', 'neurons', 'circuit.json'));
  assert.equal(neurons.saes, 'neurons');
  assert.equal(neurons.node_threshold, 1e-4);
  assert.ok(neurons.nodes.length > 0);
  assert.deepEqual(written.series[3].skipped_thresholds, []);
  assert.deepEqual(
    written.series[0].points.map((p) => p.threshold),
    [0.01, 0.1],
  );
  for (const kind of ['faithfulness', 'completeness'])
    assert.match(
      fs.readFileSync(path.join(dir, 'out', `${kind}.svg`), 'utf8'),
      /^<svg[^]*<\/svg>$/,
    );
  // F(M) is discovery's m = logit[patch] - logit[clean] on the same examples: minus the logit
  // difference eval-task prints (clean - patch).
  const task = loadTask(path.join(dir, 'task_test.jsonl'), tokenizer);
  const same = task.examples.filter((e) => e.clean.length === T);
  assert.equal(written.examples, same.length);
  const score = scoreTask(new GptNeoX(config, weights), same);
  assert.ok(Math.abs(written.metric.model + score.logitDiff) < 1e-4);
  // Nodes at layer 0 and the embedding are not counted (start layer 1) but are counted as left
  // out, and the all-layers score counts every node.
  const c = circuit(path.join(modelDir, 'saes'), F);
  const above = c.nodes.filter((n) => n.layer >= 1).length;
  assert.equal(written.circuit_score.nodes, above);
  assert.ok(above < c.nodes.length);
  assert.equal(written.circuit_score.nodes_below_start_layer, c.nodes.length - above);
  assert.equal(written.circuit_score_all_layers!.nodes, c.nodes.length);
  assert.equal(written.circuit_score_all_layers!.nodes_below_start_layer, 0);
  assert.equal(typeof written.metric.empty_all_layers, 'number');
});

test('sfc evaluate prints a table; the neurons series comes from a circuit found with neurons', async () => {
  const out = path.join(dir, 'table');
  const stdout = await sfcEvaluate(
    ...['--circuit', circuitFile, '--neurons-circuit', neuronsFile, '--out', out],
    ...['--thresholds', '0.01', '--series', 'features,neurons', '--ablation', 'zero'],
    ...['--start-layer', '-1', '--examples', '5'],
  );
  assert.match(stdout, /^F\(M\) model/);
  assert.match(
    stdout,
    /series\s+threshold\s+nodes\s+features\s+errors\s+faithfulness\s+completeness/,
  );
  assert.match(stdout, /\nneurons\s+0\.0100\s+\d+/);
  // Start layer -1 splices every site already: both lines agree and nothing is left out.
  const saved = /circuit as saved .*layers >= -1: (\d+) nodes.*faithfulness (\S+)/.exec(stdout);
  const every = /circuit as saved, every layer .*: (\d+) nodes.*faithfulness (\S+)/.exec(stdout);
  assert.ok(saved && every, stdout);
  assert.deepEqual(saved.slice(1), every.slice(1));
  assert.doesNotMatch(stdout, /below the start layer/);
  const written = JSON.parse(
    fs.readFileSync(path.join(out, 'evaluation.json'), 'utf8'),
  ) as EvaluationJson;
  assert.deepEqual(
    written.series.map((s) => s.name),
    ['features', 'neurons'],
  );
  assert.equal(written.examples, 5);
  assert.equal(written.start_layer, -1);
});

test('sfc evaluate on a sum circuit uses examples of every length', async () => {
  const c = circuit(path.join(modelDir, 'saes'), F);
  const seen = new Set<string>();
  const nodes = c.nodes
    .map((n) => ({ ...n, position: null, id: nodeId(n.site, n.feature, null) }))
    .filter((n) => !seen.has(n.id) && seen.add(n.id));
  const file = writeCircuit(path.join(dir, 'sum'), { ...c, aggregation: 'sum', nodes });
  const stdout = await sfcEvaluate(
    ...['--circuit', file, '--series', 'features', '--thresholds', '0.01', '--json'],
  );
  const written = JSON.parse(stdout) as EvaluationJson;
  const all = loadTask(path.join(dir, 'task_test.jsonl'), tokenizer).examples;
  assert.ok(
    all.some((e) => e.clean.length !== T),
    'the test data should mix lengths',
  );
  assert.equal(written.examples, all.length);
  assert.equal(written.circuit_score.nodes, nodes.filter((n) => n.layer >= 1).length);
});

test('helpers: thresholds and the held-out file name', () => {
  assert.deepEqual(parseThresholds('0.5, 0.1,0'), [0.5, 0.1, 0]);
  assert.equal(parseThresholds('-4:0:15').length, 15);
  assert.deepEqual(parseThresholds('-1:0:2'), [0.1, 1]);
  assert.equal(testDataFor('data/rc_train.jsonl'), 'data/rc_test.jsonl');
  assert.equal(testDataFor('a/simple_train.json'), 'a/simple_test.json');
  assert.equal(testDataFor('a/rc.jsonl'), null);
});

test('bad files and flags get clear errors', async () => {
  const noTrain = writeCircuit(
    path.join(dir, 'no-train'),
    circuit(path.join(modelDir, 'saes'), F, path.join(dir, 'task.jsonl')),
  );
  const bad = path.join(dir, 'bad.json');
  fs.writeFileSync(bad, '{"version": 1}');
  const cases: [string[], RegExp][] = [
    [['--circuit', path.join(dir, 'nope.json')], /nope\.json: no such file/],
    [['--circuit', bad], /bad\.json: not a circuit file/],
    [
      ['--circuit', circuitFile, '--ablation', 'median'],
      /--ablation: expected one of mean, zero, patch, got "median"/,
    ],
    [
      ['--circuit', circuitFile, '--errors', 'drop'],
      /--errors: expected one of default, remove, keep/,
    ],
    [
      ['--circuit', circuitFile, '--thresholds', '0.1,x'],
      /--thresholds: "x" is not a non-negative number/,
    ],
    [
      ['--circuit', circuitFile, '--start-layer', '3'],
      /--start-layer: expected an integer in -1\.\.2, got "3"/,
    ],
    [['--circuit', circuitFile, '--neurons-circuit', circuitFile], /not with neurons/],
    [
      ['--circuit', noTrain],
      /task\.jsonl; evaluation uses held-out data, but that name has no _train part.*--data/,
    ],
    [['--circuit', circuitFile, '--saes', path.join(dir, 'none')], /no such folder of SAEs/],
    [
      ['--circuit', noTrain, '--data', path.join(dir, 'task_test.jsonl')],
      /rediscovers the circuit with neurons on its data .*task\.jsonl, which does not exist/,
    ],
  ];
  // Half the examples without a patch answer: the metric cannot be averaged, the file is named.
  const mixed = path.join(dir, 'mixed_test.jsonl');
  fs.writeFileSync(
    mixed,
    lines
      .slice(8, 16)
      .map((l, i) => {
        const r = JSON.parse(l) as Record<string, unknown>;
        if (i % 2 === 1) delete r.patch_answer;
        return JSON.stringify(r);
      })
      .join('\n') + '\n',
  );
  cases.push([
    ['--circuit', circuitFile, '--data', mixed, '--series', 'features'],
    /mixed_test\.jsonl: metric: \d+ of \d+ examples have a patch_prefix and a patch_answer.*cannot be averaged/,
  ]);
  for (const [args, message] of cases)
    await assert.rejects(sfcEvaluate(...args), message, args.join(' '));
});

test('sfc evaluate on a circuit found at some sites needs dictionaries there only', async () => {
  const partial = path.join(dir, 'saes-no-attn');
  fs.cpSync(path.join(modelDir, 'saes'), partial, { recursive: true });
  for (let L = 0; L < 3; L++) fs.rmSync(path.join(partial, `attn_${L}`), { recursive: true });
  const full = circuit(partial, F);
  const some = full.sites.filter((s) => !s.startsWith('attn'));
  const c: Circuit = {
    ...full,
    sites: some,
    nodes: full.nodes.filter((n) => some.includes(n.site)),
  };
  const out = path.join(dir, 'some-sites');
  const file = writeCircuit(out, c);
  await sfcEvaluate('--circuit', file, '--series', 'features', '--thresholds', '0.01', '--json');
  const written = JSON.parse(
    fs.readFileSync(path.join(out, 'evaluation.json'), 'utf8'),
  ) as EvaluationJson;
  const above = c.nodes.filter((n) => n.layer >= 1).length;
  assert.equal(written.circuit_score.nodes, above);
  assert.equal(written.circuit_score_all_layers!.nodes, c.nodes.length);
  // the same circuit claimed at every site needs the attention dictionaries
  const everyFile = writeCircuit(path.join(dir, 'every-sites'), { ...c, sites: full.sites });
  await assert.rejects(
    sfcEvaluate('--circuit', everyFile, '--series', 'features', '--thresholds', '0.01'),
    /no SAE for site attn_1/,
  );
});
