// The attribution graph against independent truth: the frozen replacement model's own forward
// (replacement.ts) reproduces the real model on the prompt; every target's incoming edges plus
// the constant the forward gives with every source zeroed sum to its input; and single edges
// equal the change of the target when that one source is removed from the frozen forward.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { loadModel } from '../../src/model/load.ts';
import { GptNeoX } from '../../src/model/gptneox.ts';
import { Rng } from '../../src/random.ts';
import { randomClt } from '../helpers/random-clt.ts';
import type { Transcoder } from '../../src/transcoders/transcoder.ts';
import {
  buildReplacement,
  frozenForward,
  replacementInputs,
  type ReplacementInputs,
} from '../../src/graphs/replacement.ts';
import { buildGraph } from '../../src/graphs/graph.ts';
import { close, targetValue } from './frozen-checks.ts';

const dir = fileURLToPath(new URL('../../models/organism', import.meta.url));
const loaded = loadModel(dir, { tokenizer: true });
const model = new GptNeoX(loaded.config, loaded.weights);
const ids = loaded.tokenizer!.encode('The parents that the dog sees near the tree');
const d = model.config.hiddenSize;

/** Random transcoders whose encoders fire on a few features per token. */
function randomTranscoders(
  seed: number,
  withSkip: boolean,
  activation: 'relu' | 'jumprelu',
): Transcoder[] {
  const rng = new Rng(seed);
  const F = 96;
  return Array.from({ length: model.config.numLayers }, (_, L) => {
    const vec = (n: number, s: number) => Float32Array.from({ length: n }, () => s * rng.normal());
    return {
      layer: L,
      dIn: d,
      width: F,
      activation,
      ...(activation === 'jumprelu'
        ? { threshold: Float32Array.from({ length: F }, () => 0.2 * rng.next()) }
        : {}),
      encoder: vec(F * d, 0.3 / Math.sqrt(d)),
      encoderBias: vec(F, 0.1).map((b) => b - 0.15),
      decoder: vec(F * d, 0.5 / Math.sqrt(d)),
      decoderBias: vec(d, 0.05),
      ...(withSkip ? { skip: vec(d * d, 0.2 / Math.sqrt(d)) } : {}),
    };
  });
}

/** A random CLT of the same width: layer l's features write to every layer l' >= l. */
function randomCltOfModel(seed: number, activation: 'relu' | 'jumprelu' | 'topk') {
  const rng = new Rng(seed);
  const F = 96;
  const n = model.config.numLayers;
  const extra = {
    activation,
    ...(activation === 'topk' ? { k: 5 } : {}),
    ...(activation === 'jumprelu'
      ? {
          thresholds: Array.from({ length: n }, () =>
            Float32Array.from({ length: F }, () => 0.2 * rng.next()),
          ),
        }
      : {}),
  };
  const scales = {
    encoder: 0.3,
    encoderBias: 0.1,
    encoderBiasOffset: -0.15,
    decoderBias: 0.05,
    decoder: 0.4,
  };
  return randomClt(rng, n, d, F, scales, extra);
}

for (const [name, skip, activation, firstPosition, clt] of [
  ['ReLU, no skip', false, 'relu', 1, false],
  ['JumpReLU with skip', true, 'jumprelu', 1, false],
  ['ReLU with skip, position 0 included', true, 'relu', 0, false],
  ['cross-layer transcoder, JumpReLU', false, 'jumprelu', 1, true],
  ['cross-layer transcoder, TopK, position 0 included', false, 'topk', 0, true],
] as const) {
  test(`attribution graph (${name}): frozen forward, linearity, brute-force edges`, () => {
    const transcoders = clt
      ? randomCltOfModel(11, activation)
      : randomTranscoders(7, skip, activation as 'relu' | 'jumprelu');
    const r = buildReplacement(model, transcoders, ids, firstPosition);
    const g = buildGraph(r, { batchTargets: 16 });
    const features = g.nodes.filter((n) => n.kind === 'feature');
    const logits = g.nodes.filter((n) => n.kind === 'logit');
    assert.ok(features.length > 20, `only ${features.length} active features`);
    assert.ok(logits.length >= 1 && logits.length <= 10);
    assert.equal(
      features.some((n) => n.position === 0),
      firstPosition === 0,
      'position 0 is left out by default, kept on request',
    );
    const tokens = logits.map((n) => (n.kind === 'logit' ? n.token : -1));
    const N = g.nodes.length;

    // 1. The frozen replacement model with the real sources is the real model on this prompt.
    const real = frozenForward(r, replacementInputs(r), tokens);
    g.targets.forEach((_, k) =>
      close(targetValue(g, real, k, 96), g.inputs[k], Math.abs(g.inputs[k]), `target ${k} forward`),
    );

    // 2. Linearity: Σ incoming edges + the zero-source constant = the input.
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
      const c = targetValue(g, constant, k, 96);
      close(
        sum + c,
        g.inputs[k],
        abs + Math.abs(c),
        `target ${k} (${g.nodes[g.targets[k]].kind}) linearity`,
      );
    });

    // 3. Brute force: remove one source from the frozen forward; the targets move by its edges.
    const rng = new Rng(3);
    const sources = [
      ...Array.from({ length: 4 }, () => rng.int(features.length)),
      g.nodes.findIndex((n) => n.kind === 'error' && n.layer === 1 && n.position === 2),
      g.nodes.findIndex((n) => n.kind === 'token' && n.position === 3),
    ];
    for (const s of sources) {
      const node = g.nodes[s];
      const inputs = replacementInputs(r);
      if (node.kind === 'feature')
        inputs.activations[node.layer][node.position * 96 + node.feature] = 0;
      else if (node.kind === 'error')
        inputs.errors[node.layer].fill(0, node.position * d, (node.position + 1) * d);
      else inputs.embed.fill(0, node.position * d, (node.position + 1) * d);
      const out = frozenForward(r, inputs, tokens);
      let nonzero = 0;
      g.targets.forEach((_, k) => {
        const delta = targetValue(g, real, k, 96) - targetValue(g, out, k, 96);
        const edge = g.adjacency[k * N + s];
        if (edge !== 0) nonzero++;
        close(edge, delta, Math.abs(g.inputs[k]) + Math.abs(edge), `edge ${s} -> target ${k}`);
      });
      if (node.kind !== 'feature' || node.layer < model.config.numLayers - 1)
        assert.ok(nonzero > 0, `source ${s} (${node.kind}) has no edge at all`);
    }
  });
}
