// The graph file format against the real thing: Neuronpedia's published JSON schema
// (test/fixtures/graphs/neuronpedia-graph-schema.json, checked with ajv, an independent
// validator) accepts our exports and a graph circuit-tracer made for Neuronpedia
// (test/fixtures/graphs/neuronpedia-123-gemma-2-2b-clt-hp.json); our reader rejects what the
// schema rejects, naming the field; `sfc graph --import` turns the real graph into our own file
// with the node and link counts the file has, by feature_type (counted here by hand).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Ajv from 'ajv';
import { GptNeoX } from '../../src/model/gptneox.ts';
import { Rng } from '../../src/random.ts';
import type { Transcoder } from '../../src/transcoders/transcoder.ts';
import { buildReplacement } from '../../src/graphs/replacement.ts';
import { buildGraph } from '../../src/graphs/graph.ts';
import { pruneGraph } from '../../src/graphs/prune.ts';
import { toNeuronpedia } from '../../src/graphs/export.ts';
import { readNeuronpediaGraph } from '../../src/graphs/neuronpedia-file.ts';
import { cantorUnpair, type ImportedGraph } from '../../src/graphs/import.ts';
import { register as registerGraph } from '../../src/cli/commands/graph.ts';
import { runCommand } from '../helpers/run-command.ts';
import { randomWeights, tinyConfig } from '../helpers/random-model.ts';

const fixtures = fileURLToPath(new URL('../fixtures/graphs/', import.meta.url));
const schema = JSON.parse(
  fs.readFileSync(path.join(fixtures, 'neuronpedia-graph-schema.json'), 'utf8'),
) as object;
const validate = new Ajv({ allErrors: true }).compile(schema);
const realFile = path.join(fixtures, 'neuronpedia-123-gemma-2-2b-clt-hp.json');
const real = JSON.parse(fs.readFileSync(realFile, 'utf8')) as {
  nodes: Record<string, unknown>[];
  links: Record<string, unknown>[];
  [k: string]: unknown;
};
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sfc-graph-export-'));

function schemaErrors(value: unknown): string[] {
  return validate(value) ? [] : validate.errors!.map((e) => `${e.dataPath} ${e.message}`);
}

test('the published schema accepts the real circuit-tracer graph and rejects a broken one', () => {
  assert.deepEqual(schemaErrors(real), []);
  assert.ok(schemaErrors({ metadata: {}, qParams: {}, nodes: [], links: [] }).length >= 4);
});

test('our export of a graph on a tiny random model validates against the published schema', () => {
  const config = tinyConfig({ numLayers: 2 });
  const model = new GptNeoX(config, randomWeights(config, 5));
  const rng = new Rng(9);
  const d = config.hiddenSize;
  const F = 24;
  const vec = (n: number, s: number) => Float32Array.from({ length: n }, () => s * rng.normal());
  const transcoders: Transcoder[] = [0, 1].map((layer) => ({
    layer,
    dIn: d,
    width: F,
    activation: 'relu',
    encoder: vec(F * d, 1 / Math.sqrt(d)),
    encoderBias: vec(F, 0.1),
    decoder: vec(F * d, 0.3),
    decoderBias: vec(d, 0.05),
  }));
  const g = buildGraph(buildReplacement(model, transcoders, [3, 1, 4, 1, 5]));
  const pruned = pruneGraph(g, 0.8, 0.98);
  const exported = toNeuronpedia(g, pruned, {
    slug: 'tiny',
    scan: 'tiny-neox',
    prompt: 'abcde',
    tokenString: (id) => `t${id}`,
    numLayers: config.numLayers,
    nodeThreshold: 0.8,
    edgeThreshold: 0.98,
  });
  const types = new Set(exported.nodes.map((n) => n.feature_type));
  for (const t of ['cross layer transcoder', 'embedding', 'logit']) assert.ok(types.has(t), t);
  assert.ok(exported.links.length > 0);
  assert.deepEqual(schemaErrors(exported), []);
  // and it survives a JSON round trip through our reader
  const file = path.join(dir, 'tiny.json');
  fs.writeFileSync(file, JSON.stringify(exported));
  assert.equal(readNeuronpediaGraph(file).nodes.length, exported.nodes.length);
});

/** Writes a mutated copy of the real graph and returns its path. */
function mutated(name: string, change: (g: typeof real) => void): string {
  const g = structuredClone(real);
  change(g);
  const file = path.join(dir, `${name}.json`);
  fs.writeFileSync(file, JSON.stringify(g));
  return file;
}

test('our reader rejects what the published schema rejects, naming the field', () => {
  const cases: [string, (g: typeof real) => void, RegExp][] = [
    ['no-qparams', (g) => delete g.qParams, /qParams/],
    ['no-slug', (g) => delete (g.metadata as Record<string, unknown>).slug, /metadata\.slug/],
    [
      'tokens-not-strings',
      (g) => ((g.metadata as { prompt_tokens: unknown }).prompt_tokens = [1]),
      /metadata\.prompt_tokens\.0/,
    ],
    ['no-clerp', (g) => delete g.nodes[3].clerp, /nodes\.3\.clerp/],
    ['no-jsnodeid', (g) => delete g.nodes[0].jsNodeId, /nodes\.0\.jsNodeId/],
    ['fractional-feature', (g) => (g.nodes[2].feature = 1.5), /nodes\.2\.feature/],
    ['layer-object', (g) => (g.nodes[1].layer = {}), /nodes\.1\.layer/],
    ['ctx-string', (g) => (g.nodes[4].ctx_idx = '3'), /nodes\.4\.ctx_idx/],
    ['weight-string', (g) => (g.links[7].weight = '1'), /links\.7\.weight/],
    ['no-target', (g) => delete g.links[0].target, /links\.0\.target/],
  ];
  for (const [name, change, field] of cases) {
    const file = mutated(name, change);
    assert.ok(
      schemaErrors(JSON.parse(fs.readFileSync(file, 'utf8'))).length > 0,
      `${name}: the schema accepts it`,
    );
    assert.throws(() => readNeuronpediaGraph(file), field, name);
  }
  // Beyond the schema: node ids must be unique and links must join nodes of the file.
  const dup = mutated('duplicate-id', (g) => (g.nodes[5].node_id = g.nodes[4].node_id));
  assert.throws(
    () => readNeuronpediaGraph(dup),
    /nodes\.5\.node_id 0_95057_3 is used by an earlier node/,
  );
  const dangling = mutated('dangling', (g) => (g.links[2].source = '9_9_9'));
  assert.throws(() => readNeuronpediaGraph(dangling), /links\.2\.source is 9_9_9/);
});

test('Cantor unpairing inverts circuit-tracer feature ids, large ones included', () => {
  // From the real file: node 0_18753_3 has feature 175865634, node 20_93988_3 has 4418893024.
  assert.deepEqual(cantorUnpair(175865634), [0, 18753]);
  assert.deepEqual(cantorUnpair(4418893024), [20, 93988]);
  assert.deepEqual(cantorUnpair(0), [0, 0]);
});

test('sfc graph --import reads the real graph and writes our own file with its counts', async () => {
  const out = path.join(dir, 'imported');
  const summary = JSON.parse(
    await runCommand(registerGraph, ['graph', '--import', realFile, '--out', out, '--json']),
  ) as { nodes: number; links: number; featureTypes: Record<string, number>; wrote: string };
  // Counted in the fixture by hand: 13 CLT features, 2 error nodes, 4 tokens, 5 logits; 75 links.
  assert.deepEqual(summary.featureTypes, {
    'cross layer transcoder': 13,
    'mlp reconstruction error': 2,
    embedding: 4,
    logit: 5,
  });
  assert.equal(summary.links, 75);
  assert.equal(summary.wrote, path.join(out, 'ie-tiny-123-clt-hp.graph.json'));
  const own = JSON.parse(fs.readFileSync(summary.wrote, 'utf8')) as ImportedGraph;
  const count = (kind: string) => own.nodes.filter((n) => n.kind === kind).length;
  assert.deepEqual(['feature', 'error', 'token', 'logit'].map(count), [13, 2, 4, 5]);
  assert.equal(own.edges.length, 75);
  // Links by (source kind -> target kind), counted by hand in the fixture.
  const pairs: Record<string, number> = {};
  for (const [t, s] of own.edges) {
    const key = `${own.nodes[s].kind}->${own.nodes[t].kind}`;
    pairs[key] = (pairs[key] ?? 0) + 1;
  }
  assert.deepEqual(pairs, {
    'token->feature': 23,
    'feature->logit': 30,
    'token->logit': 14,
    'error->logit': 6,
    'feature->feature': 2,
  });
  // Nodes read as circuit-tracer means them.
  assert.deepEqual(own.nodes[0], {
    kind: 'feature',
    layer: 0,
    position: 3,
    feature: 18753,
    activation: 5.59375,
  });
  assert.deepEqual(own.ids, [2, 235274, 235284, 235304]);
  const logit = own.nodes.find((n) => n.kind === 'logit');
  assert.deepEqual(logit, { kind: 'logit', position: 3, token: 235310, probability: 0.2333984375 });
  assert.deepEqual(own.nodes[13], { kind: 'error', layer: 24, position: 3 });
});

test('sfc graph --import names the field of a file it cannot read as a graph', async () => {
  const bad = mutated('ctx-outside', (g) => (g.nodes[0].ctx_idx = 4));
  await assert.rejects(
    runCommand(registerGraph, ['graph', '--import', bad, '--out', dir]),
    /nodes\.0\.ctx_idx is 4, outside the 4 prompt_tokens/,
  );
  const layer = mutated('feature-layer', (g) => (g.nodes[0].layer = 'E'));
  await assert.rejects(
    runCommand(registerGraph, ['graph', '--import', layer, '--out', dir]),
    /nodes\.0\.layer is "E", expected a layer number/,
  );
  const slugFile = mutated(
    'hostile-slug',
    (g) => ((g.metadata as { slug: string }).slug = '../../x'),
  );
  const summary = JSON.parse(
    await runCommand(registerGraph, ['graph', '--import', slugFile, '--out', dir, '--json']),
  ) as { wrote: string };
  assert.equal(summary.wrote, path.join(dir, 'x.graph.json'));
});
