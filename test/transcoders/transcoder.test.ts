// Transcoders: the training gradients against finite differences, training recovers a planted
// sparse map, the folder layout is circuit-tracer's (tensor names and shapes, config.yaml), and
// the shipped organism set loads and replaces the MLPs.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Rng } from '../../src/random.ts';
import { openSafetensors } from '../../src/io/safetensors.ts';
import {
  transcoderDecode,
  transcoderEncode,
  type Transcoder,
} from '../../src/transcoders/transcoder.ts';
import { loadTranscoderSet, parseFlatYaml, saveTranscoderSet } from '../../src/transcoders/file.ts';
import { trainTranscoder, transcoderLossAndGradients } from '../../src/transcoders/train.ts';

function randomTranscoder(
  rng: Rng,
  d: number,
  F: number,
  extra: Partial<Transcoder> = {},
): Transcoder {
  const vec = (n: number, s: number) => Float32Array.from({ length: n }, () => s * rng.normal());
  return {
    layer: 0,
    dIn: d,
    width: F,
    activation: 'relu',
    encoder: vec(F * d, 1 / Math.sqrt(d)),
    encoderBias: vec(F, 0.3),
    decoder: vec(F * d, 1 / Math.sqrt(d)),
    decoderBias: vec(d, 0.1),
    ...extra,
  };
}

test('transcoder loss gradients match finite differences (ReLU + L1, with skip)', () => {
  const rng = new Rng(1);
  const d = 6;
  const F = 10;
  const B = 5;
  const tc = randomTranscoder(rng, d, F, {
    skip: Float32Array.from({ length: d * d }, () => 0.3 * rng.normal()),
  });
  const x = Float32Array.from({ length: B * d }, () => rng.normal());
  const y = Float32Array.from({ length: B * d }, () => rng.normal());
  const lambda = 0.7;
  const params = [tc.encoder, tc.encoderBias, tc.decoder, tc.decoderBias, tc.skip!];
  const grads = params.map((p) => new Float32Array(p.length));
  transcoderLossAndGradients(tc, x, y, B, lambda, grads);
  const scratch = params.map((p) => new Float32Array(p.length));
  const loss = () => transcoderLossAndGradients(tc, x, y, B, lambda, scratch).loss;
  let checked = 0;
  params.forEach((p, pi) => {
    for (let j = 0; j < p.length; j += 3) {
      const h = 1e-3;
      const old = p[j];
      p[j] = old + h;
      const up = loss();
      p[j] = old - h;
      const down = loss();
      p[j] = old;
      const fd = (up - down) / (2 * h);
      assert.ok(
        Math.abs(fd - grads[pi][j]) <= 2e-2 * Math.max(1, Math.abs(fd)),
        `param ${pi} index ${j}: analytic ${grads[pi][j]} vs finite difference ${fd}`,
      );
      checked++;
    }
  });
  assert.ok(checked > 50);
});

test('training recovers most of a planted TopK transcoder', () => {
  const rng = new Rng(2);
  const d = 16;
  const truth = randomTranscoder(rng, d, 32, { activation: 'topk', k: 3 });
  const n = 4000;
  const x = Float32Array.from({ length: n * d }, () => rng.normal());
  const y = transcoderDecode(truth, transcoderEncode(truth, x, n), x, n);
  let lastFve = 0;
  trainTranscoder(0, x, y, n, d, {
    width: 64,
    activation: 'topk',
    k: 4,
    steps: 600,
    batchSize: 256,
    lr: 5e-3,
    onLog: (_, fve) => (lastFve = fve),
  });
  assert.ok(lastFve > 0.8, `batch FVE after training ${lastFve}`);
});

test("save and load use circuit-tracer's transcoder_set layout", () => {
  const rng = new Rng(3);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sfc-tc-'));
  const d = 4;
  const F = 8;
  const set: Transcoder[] = [
    {
      ...randomTranscoder(rng, d, F),
      layer: 0,
      activation: 'jumprelu',
      threshold: Float32Array.from({ length: F }, () => rng.next()),
    },
    {
      ...randomTranscoder(rng, d, F),
      layer: 1,
      activation: 'jumprelu',
      threshold: Float32Array.from({ length: F }, () => rng.next()),
      skip: Float32Array.from({ length: d * d }, () => rng.normal()),
    },
  ];
  saveTranscoderSet(dir, set, { modelName: 'tiny' });
  const file = openSafetensors(path.join(dir, 'layer_1.safetensors'));
  const shapes = Object.fromEntries(file.names().map((name) => [name, file.read(name).shape]));
  assert.deepEqual(shapes, {
    W_enc: [F, d],
    W_dec: [F, d],
    b_enc: [F],
    b_dec: [d],
    W_skip: [d, d],
    'activation_function.threshold': [F],
  });
  const config = parseFlatYaml(
    fs.readFileSync(path.join(dir, 'config.yaml'), 'utf8'),
    'config.yaml',
  );
  assert.equal(config.model_kind, 'transcoder_set');
  assert.deepEqual(config.transcoders, ['layer_0.safetensors', 'layer_1.safetensors']);
  const loaded = loadTranscoderSet(dir).transcoders;
  assert.equal(loaded.length, 2);
  assert.deepEqual(loaded[1].skip, set[1].skip);
  assert.deepEqual(loaded[0].threshold, set[0].threshold);
  assert.equal(loaded[0].skip, undefined);
  const x = Float32Array.from({ length: 3 * d }, () => rng.normal());
  assert.deepEqual(transcoderEncode(loaded[1], x, 3), transcoderEncode(set[1], x, 3));
});

test('config.yaml: circuit-tracer style quoting and comments; hf:// paths are refused with a message', () => {
  const text = [
    '# a published set',
    'model_name: "google/gemma-2-2b"',
    'model_kind: transcoder_set',
    "feature_input_hook: 'hook_resid_mid'",
    'feature_output_hook: hook_mlp_out  # after the MLP',
    'transcoders:',
    '  - "hf://org/repo/layer_0.safetensors"',
  ].join('\n');
  const parsed = parseFlatYaml(text, 'config.yaml');
  assert.equal(parsed.model_name, 'google/gemma-2-2b');
  assert.equal(parsed.feature_input_hook, 'hook_resid_mid');
  assert.equal(parsed.feature_output_hook, 'hook_mlp_out');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sfc-tc-'));
  fs.writeFileSync(path.join(dir, 'config.yaml'), text);
  assert.throws(() => loadTranscoderSet(dir), /hf:\/\/org\/repo\/layer_0\.safetensors.*local path/);
  fs.writeFileSync(path.join(dir, 'config.yaml'), 'model_kind: cross_layer_transcoder\n');
  assert.throws(() => loadTranscoderSet(dir), /config\.yaml: model_kind/);
});

test('the shipped organism transcoders load, one per layer, TopK', () => {
  const dir = fileURLToPath(new URL('../../models/organism/transcoders', import.meta.url));
  const { config, transcoders } = loadTranscoderSet(dir);
  assert.equal(config.activation, 'topk');
  assert.equal(transcoders.length, 4);
  for (const tc of transcoders) assert.equal(tc.dIn, 128);
});
