// Cross-layer transcoders: the training gradients against finite differences, a small case
// worked by hand, circuit-tracer's cross_layer_transcoder folder layout (save -> load, lazy decoder
// rows through a bounded cache), Gemma Scope transcoder releases, and --transcoders' dispatch.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Rng } from '../../src/random.ts';
import { randomClt } from '../helpers/random-clt.ts';
import { openSafetensors } from '../../src/io/safetensors.ts';
import { writeNpz } from '../../src/sae/npy.ts';
import {
  cltDecode,
  cltEncode,
  memoryDecoders,
  type CrossLayerTranscoder,
} from '../../src/transcoders/clt.ts';
import { cltGradients, cltLossAndGradients, trainClt } from '../../src/transcoders/train-clt.ts';
import { loadClt, saveClt } from '../../src/transcoders/clt-file.ts';
import { loadGemmaScopeTranscoders } from '../../src/transcoders/gemma-scope.ts';
import { loadTranscoders } from '../../src/transcoders/load.ts';
import { transcoderEncode } from '../../src/transcoders/transcoder.ts';

// Scales of the CLTs these tests draw.
const SCALES = { encoder: 1, encoderBias: 0.3, decoderBias: 0.1, decoder: 1 };

test('CLT loss gradients match finite differences (ReLU + L1, every decoder)', () => {
  const rng = new Rng(1);
  const [n, d, F, B] = [3, 5, 7, 4];
  const clt = randomClt(rng, n, d, F, SCALES);
  const xs = Array.from({ length: n }, () =>
    Float32Array.from({ length: B * d }, () => rng.normal()),
  );
  const ys = Array.from({ length: n }, () =>
    Float32Array.from({ length: B * d }, () => rng.normal()),
  );
  const lambda = 0.6;
  const grads = cltGradients(clt);
  cltLossAndGradients(clt, xs, ys, B, lambda, grads);
  const scratch = cltGradients(clt);
  const loss = () => cltLossAndGradients(clt, xs, ys, B, lambda, scratch).loss;
  const groups: [string, Float32Array[], Float32Array[]][] = [
    ['W_enc', clt.encoders, grads.encoders],
    ['b_enc', clt.encoderBiases, grads.encoderBiases],
    ['W_dec', [0, 1, 2].map((l) => clt.decoders.layer(l)), grads.decoders],
    ['b_dec', clt.decoderBiases, grads.decoderBiases],
  ];
  let checked = 0;
  for (const [name, params, g] of groups)
    params.forEach((p, l) => {
      for (let j = 0; j < p.length; j += 2) {
        const h = 1e-3;
        const old = p[j];
        p[j] = old + h;
        const up = loss();
        p[j] = old - h;
        const down = loss();
        p[j] = old;
        const fd = (up - down) / (2 * h);
        assert.ok(
          Math.abs(fd - g[l][j]) <= 2e-2 * Math.max(1, Math.abs(fd)),
          `${name}_${l}[${j}]: analytic ${g[l][j]} vs finite difference ${fd}`,
        );
        checked++;
      }
    });
  assert.ok(checked > 150);
});

/** Two layers, d = 2, one feature per layer, by hand. */
function handClt(): CrossLayerTranscoder {
  return {
    numLayers: 2,
    dIn: 2,
    width: 1,
    activation: 'relu',
    encoders: [Float32Array.of(1, 0), Float32Array.of(0, 2)],
    encoderBiases: [Float32Array.of(-1), Float32Array.of(0)],
    decoderBiases: [Float32Array.of(0.5, 0), Float32Array.of(0, -1)],
    // W_dec_0 [1, 2, 2]: into layer 0 (1, 2), into layer 1 (3, 4); W_dec_1 [1, 1, 2]: (10, 20).
    decoders: memoryDecoders([Float32Array.of(1, 2, 3, 4), Float32Array.of(10, 20)], 1, 2),
  };
}

test('CLT encode and decode on a small case worked by hand', () => {
  const clt = handClt();
  // x_0 = (3, 9): a_0 = relu(3 − 1) = 2; x_1 = (0, 0.25): a_1 = relu(0.5) = 0.5.
  const a0 = cltEncode(clt, 0, Float32Array.of(3, 9), 1);
  const a1 = cltEncode(clt, 1, Float32Array.of(0, 0.25), 1);
  assert.deepEqual([...a0, ...a1], [2, 0.5]);
  // ŷ_0 = 2·(1, 2) + (0.5, 0) = (2.5, 4); ŷ_1 = 2·(3, 4) + 0.5·(10, 20) + (0, −1) = (11, 17).
  assert.deepEqual([...cltDecode(clt, 0, [a0, a1], 1)], [2.5, 4]);
  assert.deepEqual([...cltDecode(clt, 1, [a0, a1], 1)], [11, 17]);
});

test("save and load use circuit-tracer's cross_layer_transcoder layout, decoders read lazily", () => {
  const rng = new Rng(3);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sfc-clt-'));
  const [n, d, F] = [3, 4, 6];
  const clt = randomClt(rng, n, d, F, SCALES, {
    activation: 'jumprelu',
    thresholds: [0, 1, 2].map(() => Float32Array.from({ length: F }, () => rng.next())),
  });
  saveClt(dir, clt, { modelName: 'tiny' });
  const files = fs.readdirSync(dir).sort();
  assert.deepEqual(files, [
    'W_dec_0.safetensors',
    'W_dec_1.safetensors',
    'W_dec_2.safetensors',
    'W_enc_0.safetensors',
    'W_enc_1.safetensors',
    'W_enc_2.safetensors',
    'config.yaml',
  ]);
  const enc1 = openSafetensors(path.join(dir, 'W_enc_1.safetensors'));
  assert.deepEqual(enc1.names().sort(), ['W_enc_1', 'b_dec_1', 'b_enc_1', 'threshold_1']);
  assert.deepEqual(enc1.shape('W_enc_1'), [F, d]);
  assert.deepEqual(openSafetensors(path.join(dir, 'W_dec_1.safetensors')).shape('W_dec_1'), [
    F,
    2,
    d,
  ]);
  assert.match(
    fs.readFileSync(path.join(dir, 'config.yaml'), 'utf8'),
    /^model_kind: cross_layer_transcoder$/m,
  );

  // A cache of 2 rows' worth: rows must still come back right after evictions.
  const { clt: back, config } = loadClt(dir, 2 * n * d);
  assert.equal(config.model_name, 'tiny');
  assert.equal(back.activation, 'jumprelu');
  assert.deepEqual([back.numLayers, back.dIn, back.width], [n, d, F]);
  for (let l = 0; l < n; l++) {
    assert.deepEqual(back.encoders[l], clt.encoders[l]);
    assert.deepEqual(back.thresholds![l], clt.thresholds![l]);
    assert.deepEqual(back.decoderBiases[l], clt.decoderBiases[l]);
    assert.deepEqual(back.decoders.layer(l), clt.decoders.layer(l));
    for (const ids of [[5, 0, 3], [1], [5, 2, 4, 0]])
      assert.deepEqual(back.decoders.rows(l, ids), clt.decoders.rows(l, ids));
  }
  assert.throws(() => back.decoders.rows(0, [F]), /no feature 6 \(width 6\)/);
  assert.equal(loadTranscoders(dir).kind, 'cross_layer_transcoder');

  // The hand case survives the round trip exactly.
  const hand = path.join(dir, 'hand');
  saveClt(hand, handClt());
  const h = loadClt(hand).clt;
  const a = [
    cltEncode(h, 0, Float32Array.of(3, 9), 1),
    cltEncode(h, 1, Float32Array.of(0, 0.25), 1),
  ];
  assert.deepEqual([...cltDecode(h, 1, a, 1)], [11, 17]);

  fs.rmSync(path.join(dir, 'W_dec_2.safetensors'));
  assert.throws(() => loadClt(dir), /W_dec_2\.safetensors/);
});

test('training recovers most of a planted CLT (TopK)', () => {
  const rng = new Rng(4);
  const [n, d, F, N] = [2, 12, 24, 3000];
  const truth = randomClt(rng, n, d, F, SCALES, { activation: 'topk', k: 3 });
  const xs = [0, 1].map(() => Float32Array.from({ length: N * d }, () => rng.normal()));
  const acts = xs.map((x, l) => cltEncode(truth, l, x, N));
  const pairs = xs.map((x, l) => ({ x, y: cltDecode(truth, l, acts, N), n: N }));
  let last: number[] = [];
  trainClt(pairs, d, {
    width: 48,
    activation: 'topk',
    k: 4,
    steps: 500,
    batchSize: 256,
    lr: 5e-3,
    onLog: (_, fve) => (last = fve),
  });
  assert.ok(
    last.every((f) => f > 0.8),
    `batch FVE per layer after training ${last}`,
  );
});

test('Gemma Scope transcoder releases load as per-layer JumpReLU transcoders', () => {
  const rng = new Rng(5);
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'sfc-gst-'));
  const [d, F] = [3, 4];
  const vec = (m: number) => Float32Array.from({ length: m }, () => rng.normal());
  const written: Record<string, Float32Array>[] = [];
  for (let L = 0; L < 2; L++) {
    for (const l0 of [12, 40]) {
      const folder = path.join(root, `layer_${L}`, 'width_16k', `average_l0_${l0}`);
      fs.mkdirSync(folder, { recursive: true });
      const arrays = {
        W_enc: vec(d * F),
        W_dec: vec(F * d),
        b_enc: vec(F),
        b_dec: vec(d),
        threshold: vec(F).map(Math.abs),
      };
      if (l0 === 40) written.push(arrays);
      writeNpz(path.join(folder, 'params.npz'), [
        { name: 'W_enc', shape: [d, F], data: arrays.W_enc },
        { name: 'W_dec', shape: [F, d], data: arrays.W_dec },
        { name: 'b_enc', shape: [F], data: arrays.b_enc },
        { name: 'b_dec', shape: [d], data: arrays.b_dec },
        { name: 'threshold', shape: [F], data: arrays.threshold },
      ]);
    }
  }
  assert.throws(
    () => loadGemmaScopeTranscoders(root),
    /several L0s \(average_l0_12, average_l0_40\)/,
  );
  const { transcoders, files } = loadGemmaScopeTranscoders(root, { l0: 35 });
  assert.equal(transcoders.length, 2);
  assert.match(files[1], /layer_1\/width_16k\/average_l0_40\/params\.npz$/);
  transcoders.forEach((tc, L) => {
    const w = written[L];
    assert.equal(tc.activation, 'jumprelu');
    assert.equal(tc.layer, L);
    // Stored W_enc is [d, F]; ours is [F, d]: feature i's row is column i.
    for (let i = 0; i < F; i++)
      for (let j = 0; j < d; j++) assert.equal(tc.encoder[i * d + j], w.W_enc[j * F + i]);
    assert.deepEqual(tc.decoder, w.W_dec);
    // One token by hand: a_i = pre_i if pre_i > threshold_i, pre = x·W_enc + b_enc.
    const x = Float32Array.of(0.5, -1, 2);
    const a = transcoderEncode(tc, x, 1);
    for (let i = 0; i < F; i++) {
      let pre = w.b_enc[i];
      for (let j = 0; j < d; j++) pre += x[j] * w.W_enc[j * F + i];
      assert.ok(Math.abs(a[i] - (pre > w.threshold[i] ? pre : 0)) < 1e-5);
    }
  });
  assert.equal(loadTranscoders(root, { l0: 12 }).kind, 'gemma_scope');
  assert.throws(
    () => loadTranscoders(path.join(root, 'layer_0')),
    /neither a circuit-tracer folder/,
  );
});
