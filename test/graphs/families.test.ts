// Attribution graphs on every family of the generic engine (the tiny random checkpoints of
// test/fixtures/families/: GPT-2's biased layer norms and learned positions, Llama's RMSNorm and
// gated MLP with GQA, Qwen2's q/k/v biases, Qwen3's q/k norms, Gemma-2's sandwich norms, (1 + w)
// RMSNorm, sliding window and soft caps) and on a sequential GPT-NeoX block, with random
// transcoders (with a skip, so the skip's transpose through the frozen MLP norm is exercised).
// Against independent truth: the frozen replacement's own forward with the real sources gives
// the real model's transcoder pre-activations and pre-cap logits (for Gemma-2, capping them gives
// the engine's logits); every target's incoming edges plus the constant of that forward with all
// sources zeroed equal its input; single edges equal the change of their target when that source
// is removed from the frozen forward. The same on Llama and Gemma-2 with a random cross-layer
// transcoder. Then `sfc graph --model DIR --transcoders DIR` on each.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { GptNeoX, makeBatch } from '../../src/model/gptneox.ts';
import { feedForwardCache, feedForwardForward } from '../../src/model/layers/mlp.ts';
import { rmsNormForward } from '../../src/model/layers/rmsnorm.ts';
import { openModel } from '../../src/model/load-family.ts';
import { Transformer } from '../../src/model/transformer.ts';
import { Rng } from '../../src/random.ts';
import { randomClt } from '../helpers/random-clt.ts';
import type { Transcoder } from '../../src/transcoders/transcoder.ts';
import { saveTranscoderSet } from '../../src/transcoders/file.ts';
import {
  buildReplacement,
  frozenForward,
  replacementInputs,
  type ReplacementInputs,
} from '../../src/graphs/replacement.ts';
import { buildGraph } from '../../src/graphs/graph.ts';
import { close, targetValue } from './frozen-checks.ts';
import { readNeuronpediaGraph } from '../../src/graphs/neuronpedia-file.ts';
import { register as registerGraph } from '../../src/cli/commands/graph.ts';
import { runCommand } from '../helpers/run-command.ts';
import { randomWeights, tinyConfig } from '../helpers/random-model.ts';

const FAMILIES = ['gpt2', 'llama', 'qwen2', 'qwen3', 'gemma2'];
const ADDS_BOS = new Set(['llama', 'gemma2']);
const F = 16;
const fixture = (family: string) =>
  fileURLToPath(new URL(`../fixtures/families/${family}/`, import.meta.url));
const tokenizers = fileURLToPath(new URL('../fixtures/tokenizers/', import.meta.url));
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sfc-graph-families-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));

/** Random transcoders with a skip; encoders scaled so that a few features fire per token. */
function randomTranscoders(numLayers: number, d: number, seed: number): Transcoder[] {
  const rng = new Rng(seed);
  const vec = (n: number, s: number) => Float32Array.from({ length: n }, () => s * rng.normal());
  return Array.from({ length: numLayers }, (_, layer) => ({
    layer,
    dIn: d,
    width: F,
    activation: 'relu' as const,
    encoder: vec(F * d, 1 / Math.sqrt(d)),
    encoderBias: vec(F, 0.1),
    decoder: vec(F * d, 0.3 / Math.sqrt(d)),
    decoderBias: vec(d, 0.05),
    skip: vec(d * d, 0.2 / Math.sqrt(d)),
  }));
}

function checkGraph(model: GptNeoX | Transformer, ids: number[], name: string, clt = false): void {
  const d = model.config.hiddenSize;
  const nL = model.config.numLayers;
  const transcoders = clt
    ? randomClt(new Rng(13), nL, d, F, {
        encoder: 1,
        encoderBias: 0.1,
        decoderBias: 0.05,
        decoder: 0.3,
      })
    : randomTranscoders(nL, d, 11);
  const r = buildReplacement(model, transcoders, ids);
  const g = buildGraph(r, { batchTargets: 8 });
  const features = g.nodes.filter((n) => n.kind === 'feature');
  const logits = g.nodes.filter((n) => n.kind === 'logit');
  assert.ok(features.length >= 10, `${name}: only ${features.length} active features`);
  assert.ok(
    features.some((n) => n.kind === 'feature' && n.layer === model.config.numLayers - 1),
    `${name}: no feature in the top layer`,
  );
  const tokens = logits.map((n) => (n.kind === 'logit' ? n.token : -1));
  const N = g.nodes.length;

  // The pre-cap logits are the real ones before the cap (Gemma-2's final soft cap).
  const cap = model instanceof Transformer ? model.config.finalSoftcap : null;
  r.preCapLogits.forEach((z, v) =>
    close(
      cap ? cap * Math.tanh(z / cap) : z,
      r.logits[v],
      Math.abs(r.logits[v]),
      `${name} logit ${v}`,
    ),
  );

  // The transcoders read what the real MLP reads: the engine's MLP (and Gemma-2's post-norm) on
  // the replacement's MLP inputs gives the engine's mlp_L sites.
  if (model instanceof Transformer) {
    const c = model.config;
    const pass = model.forward(makeBatch([ids]), { logits: 'none' });
    const T = ids.length;
    r.mlpInputs.forEach((x, L) => {
      const lw = model.weights.layers[L];
      let m = new Float32Array(T * d);
      const cache = feedForwardCache(T, c.intermediateSize, c.gatedMlp);
      feedForwardForward(m, cache, x, lw.mlp, c.activation, T, d, c.intermediateSize);
      if (lw.postMlpNorm) {
        const post = new Float32Array(T * d);
        rmsNormForward(post, new Float64Array(T), m, lw.postMlpNorm.weight, T, d, c.normEps, 1);
        m = post;
      }
      const real = pass.activation(`mlp_${L}`);
      m.forEach((v, i) => close(v, real[i], Math.abs(real[i]) + 1, `${name} mlp_${L}[${i}]`));
    });
  }

  // 1. The frozen replacement with the real sources is the real model on this prompt.
  const real = frozenForward(r, replacementInputs(r), tokens);
  g.targets.forEach((_, k) =>
    close(
      targetValue(g, real, k, F),
      g.inputs[k],
      Math.abs(g.inputs[k]),
      `${name} target ${k} forward`,
    ),
  );

  // 2. Linearity: Σ incoming edges + the zero-source constant = the real forward's input.
  const zero: ReplacementInputs = {
    embed: new Float32Array(r.resid[0].length),
    activations: r.activations.map((a) => new Float32Array(a.length)),
    errors: r.errors.map((e) => new Float32Array(e.length)),
  };
  const constant = frozenForward(r, zero, tokens);
  g.targets.forEach((_, k) => {
    let sum = 0;
    let abs = 0;
    for (let s = 0; s < N; s++) {
      sum += g.adjacency[k * N + s];
      abs += Math.abs(g.adjacency[k * N + s]);
    }
    const c = targetValue(g, constant, k, F);
    close(sum + c, g.inputs[k], abs + Math.abs(c), `${name} target ${k} linearity`);
    close(g.constants[k], c, abs + Math.abs(c), `${name} target ${k} constant`);
  });

  // 3. Brute force: remove one source; every target moves by that source's edge.
  const rng = new Rng(5);
  const sources = [
    ...Array.from({ length: 3 }, () => rng.int(features.length)),
    g.nodes.findIndex((n) => n.kind === 'error' && n.layer === 0 && n.position === 1),
    g.nodes.findIndex((n) => n.kind === 'token' && n.position === 0),
  ];
  for (const s of sources) {
    const node = g.nodes[s];
    const inputs = replacementInputs(r);
    if (node.kind === 'feature')
      inputs.activations[node.layer][node.position * F + node.feature] = 0;
    else if (node.kind === 'error')
      inputs.errors[node.layer].fill(0, node.position * d, (node.position + 1) * d);
    else inputs.embed.fill(0, node.position * d, (node.position + 1) * d);
    const out = frozenForward(r, inputs, tokens);
    g.targets.forEach((_, k) => {
      const edge = g.adjacency[k * N + s];
      const delta = targetValue(g, real, k, F) - targetValue(g, out, k, F);
      close(edge, delta, Math.abs(g.inputs[k]) + Math.abs(edge), `${name} edge ${s} -> ${k}`);
    });
  }
}

for (const family of FAMILIES) {
  test(`${family}: the frozen replacement, linearity and brute-force edges`, () => {
    const { model } = openModel(fixture(family));
    assert.ok(model instanceof Transformer);
    checkGraph(model, [1, 7, 12, 3, 29, 5, 18], family);
  });
}

// A CLT on the generic engine: its features write to every later layer's MLP output, so their
// edges sum over several decoders, and the brute-force removals below check that sum.
for (const family of ['llama', 'gemma2']) {
  test(`${family} with a cross-layer transcoder: the frozen replacement, linearity and edges`, () => {
    const { model } = openModel(fixture(family));
    assert.ok(model instanceof Transformer);
    checkGraph(model, [1, 7, 12, 3, 29, 5, 18], `${family} CLT`, true);
  });
}

test('GPT-NeoX with a sequential block: the frozen replacement, linearity and edges', () => {
  const config = tinyConfig({ useParallelResidual: false, numLayers: 3 });
  checkGraph(new GptNeoX(config, randomWeights(config, 8)), [2, 9, 4, 17, 11, 6], 'neox-seq');
});

for (const family of FAMILIES) {
  test(`${family}: sfc graph --model DIR --transcoders DIR writes a graph that reads back`, async () => {
    const dir = path.join(tmp, family);
    fs.cpSync(fixture(family), dir, { recursive: true });
    const tokenizer = ADDS_BOS.has(family) ? 'chars-bos' : 'chars-no-bos';
    fs.copyFileSync(
      path.join(tokenizers, `${tokenizer}.tokenizer.json`),
      path.join(dir, 'tokenizer.json'),
    );
    const { model } = openModel(dir);
    const tcDir = path.join(dir, 'transcoders');
    saveTranscoderSet(tcDir, randomTranscoders(model.config.numLayers, model.config.hiddenSize, 3));
    const out = path.join(dir, 'graphs');
    const summary = JSON.parse(
      await runCommand(registerGraph, [
        'graph',
        '--model',
        dir,
        '--transcoders',
        tcDir,
        '--prompt',
        'my cat sat',
        '--out',
        out,
        '--json',
      ]),
    ) as {
      slug: string;
      tokens: number;
      features: number;
      keptNodes: number;
      completenessScore: number;
    };
    assert.equal(summary.tokens, 'my cat sat'.length + (ADDS_BOS.has(family) ? 1 : 0));
    assert.ok(summary.features > 0, `${family}: no active feature`);
    assert.ok(summary.completenessScore > 0 && summary.completenessScore <= 1 + 1e-9);
    const g = readNeuronpediaGraph(path.join(out, `${summary.slug}.json`));
    assert.equal(g.nodes.length, summary.keptNodes);
    assert.ok(g.nodes.some((n) => n.feature_type === 'logit'));
  });
}
