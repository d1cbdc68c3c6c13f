// sfc transcoder train (per-layer and --clt) and sfc graph end to end on a tiny random model: the set is written in
// circuit-tracer's layout and never replaced without --force; the graph JSON reads back.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { saveModel } from '../../src/model/save.ts';
import { buildOrganismTokenizer } from '../../src/organism/tokenizer-builder.ts';
import { register as registerTranscoder } from '../../src/cli/commands/transcoder.ts';
import { register as registerGraph } from '../../src/cli/commands/graph.ts';
import { readNeuronpediaGraph } from '../../src/graphs/neuronpedia-file.ts';
import { writeNpz } from '../../src/sae/npy.ts';
import type { ImportedGraph } from '../../src/graphs/import.ts';
import { runCommand } from '../helpers/run-command.ts';
import { randomWeights, tinyConfig } from '../helpers/random-model.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sfc-graph-cli-'));
const modelDir = path.join(dir, 'model');
const config = tinyConfig({ vocabSize: 832, numLayers: 2 });
const tokenizerFile = path.join(dir, 'tokenizer.json');
fs.writeFileSync(tokenizerFile, JSON.stringify(buildOrganismTokenizer().json));
saveModel(modelDir, config, randomWeights(config, 4), { tokenizer: tokenizerFile });
const corpus = path.join(dir, 'train.txt');
fs.writeFileSync(corpus, 'The teacher is here .\nThe teachers are here .\n'.repeat(20));
const out = path.join(dir, 'tc');
const train = ['transcoder', 'train', '--model', modelDir, '--corpus', corpus, '--out', out];
const tiny = ['--steps', '5', '--batch', '16', '--width', '32', '--topk', '4', '--held-out', '4'];

test('transcoder train writes a transcoder_set and refuses to replace it without --force', async () => {
  const report = JSON.parse(
    await runCommand(registerTranscoder, [...train, ...tiny, '--json']),
  ) as {
    layers: { fve: number; l0: number }[];
    lossReplaced: number;
  };
  assert.equal(report.layers.length, 2);
  assert.ok(report.layers.every((l) => l.l0 <= 4 && Number.isFinite(l.fve)));
  assert.ok(Number.isFinite(report.lossReplaced));
  assert.deepEqual(fs.readdirSync(out).sort(), [
    'config.yaml',
    'layer_0.safetensors',
    'layer_1.safetensors',
  ]);
  const before = fs.readFileSync(path.join(out, 'layer_0.safetensors'));
  await assert.rejects(runCommand(registerTranscoder, [...train, ...tiny]), /refusing.*--force/);
  assert.deepEqual(fs.readFileSync(path.join(out, 'layer_0.safetensors')), before);
});

test('graph writes the Neuronpedia JSON and our own file; --import reads it back', async () => {
  const graphOut = path.join(dir, 'graphs');
  const args = ['graph', '--model', modelDir, '--transcoders', out, '--out', graphOut];
  const summary = JSON.parse(
    await runCommand(registerGraph, [...args, '--prompt', 'The teachers are', '--json']),
  ) as { slug: string; keptNodes: number };
  assert.equal(summary.slug, 'the-teachers-are');
  const file = path.join(graphOut, 'the-teachers-are.json');
  const g = readNeuronpediaGraph(file);
  assert.equal(g.nodes.length, summary.keptNodes);
  assert.deepEqual(g.metadata.prompt_tokens, ['The', ' teachers', ' are']);
  assert.ok(fs.existsSync(path.join(graphOut, 'the-teachers-are.graph.json')));
  // Our own export imported back: the same nodes, by kind, and links.
  const importOut = path.join(dir, 'imported');
  const imported = JSON.parse(
    await runCommand(registerGraph, ['graph', '--import', file, '--out', importOut, '--json']),
  ) as { nodes: number; links: number; featureTypes: Record<string, number>; wrote: string };
  assert.equal(imported.nodes, g.nodes.length);
  assert.equal(imported.links, g.links.length);
  const byType: Record<string, number> = {};
  for (const n of g.nodes) byType[n.feature_type] = (byType[n.feature_type] ?? 0) + 1;
  assert.deepEqual(imported.featureTypes, byType);
  const own = JSON.parse(fs.readFileSync(imported.wrote, 'utf8')) as ImportedGraph;
  g.nodes.forEach((n, i) => {
    const back = own.nodes[i];
    assert.equal(back.position, n.ctx_idx);
    if (back.kind === 'feature')
      assert.equal(`${back.layer}_${back.feature}_${back.position}`, n.node_id);
    if (back.kind === 'error') assert.equal(`${back.layer}_-1_${back.position}`, n.node_id);
    if (back.kind === 'token') assert.equal(`E_${back.token}_${back.position}`, n.node_id);
  });
});

test('transcoder train --clt writes a cross_layer_transcoder folder, and graph picks that kind', async () => {
  const cltOut = path.join(dir, 'clt');
  const report = JSON.parse(
    await runCommand(registerTranscoder, [
      ...train.slice(0, -1),
      cltOut,
      ...tiny,
      '--clt',
      '--json',
    ]),
  ) as { layers: { fve: number; l0: number }[]; lossReplaced: number };
  assert.equal(report.layers.length, 2);
  assert.ok(report.layers.every((l) => l.l0 <= 4 && Number.isFinite(l.fve)));
  assert.ok(Number.isFinite(report.lossReplaced));
  assert.deepEqual(fs.readdirSync(cltOut).sort(), [
    'W_dec_0.safetensors',
    'W_dec_1.safetensors',
    'W_enc_0.safetensors',
    'W_enc_1.safetensors',
    'config.yaml',
  ]);
  await assert.rejects(
    runCommand(registerTranscoder, [
      ...train.slice(0, -1),
      path.join(dir, 'clt-skip'),
      ...tiny,
      '--clt',
      '--skip',
    ]),
    /--skip: cross-layer transcoders have no skip/,
  );
  const graphOut = path.join(dir, 'graphs-clt');
  const summary = JSON.parse(
    await runCommand(registerGraph, [
      'graph',
      '--model',
      modelDir,
      '--transcoders',
      cltOut,
      '--out',
      graphOut,
      '--prompt',
      'The teachers are',
      '--json',
    ]),
  ) as { transcoders: string; keptNodes: number };
  assert.equal(summary.transcoders, 'cross_layer_transcoder');
  assert.equal(
    readNeuronpediaGraph(path.join(graphOut, 'the-teachers-are.json')).nodes.length,
    summary.keptNodes,
  );
});

test('graph reads a Gemma Scope transcoder release (--gemma-l0 picks among several L0s)', async () => {
  const release = path.join(dir, 'gemma-scope-transcoders');
  const d = config.hiddenSize;
  const F = 16;
  let seed = 1;
  const vec = (n: number, s: number) =>
    Float32Array.from({ length: n }, () => s * Math.sin(12.9898 * seed++));
  for (let L = 0; L < config.numLayers; L++)
    for (const l0 of [5, 50]) {
      const folder = path.join(release, `layer_${L}`, 'width_16', `average_l0_${l0}`);
      fs.mkdirSync(folder, { recursive: true });
      writeNpz(path.join(folder, 'params.npz'), [
        { name: 'W_enc', shape: [d, F], data: vec(d * F, 1) },
        { name: 'W_dec', shape: [F, d], data: vec(F * d, 0.1) },
        { name: 'b_enc', shape: [F], data: vec(F, 0.1) },
        { name: 'b_dec', shape: [d], data: vec(d, 0.01) },
        { name: 'threshold', shape: [F], data: new Float32Array(F).fill(0.05) },
      ]);
    }
  const args = [
    'graph',
    '--model',
    modelDir,
    '--transcoders',
    release,
    '--prompt',
    'The teachers are',
  ];
  await assert.rejects(runCommand(registerGraph, args), /several L0s/);
  const summary = JSON.parse(
    await runCommand(registerGraph, [
      ...args,
      '--gemma-l0',
      '40',
      '--out',
      path.join(dir, 'graphs-gemma'),
      '--json',
    ]),
  ) as { transcoders: string; features: number };
  assert.equal(summary.transcoders, 'gemma_scope');
  assert.ok(summary.features > 0, 'no active features');
});
