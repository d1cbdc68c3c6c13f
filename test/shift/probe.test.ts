// The probe: Newton's method reaches the penalised logistic optimum (zero gradient, checked
// independently in float64, and a 1-D case solved by hand); pooling averages real tokens only;
// scores count label, gender and the worst group as defined.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GptNeoX, makeBatch } from '../../src/model/gptneox.ts';
import { pooledActivations, probeLogit, trainProbe } from '../../src/shift/probe.ts';
import { scoreProbe } from '../../src/shift/shift.ts';
import type { ClassifiedText } from '../../src/data/classification.ts';
import { Rng } from '../../src/random.ts';
import { randomWeights, tinyConfig } from '../helpers/random-model.ts';

test('trainProbe: the gradient of mean logloss + l2/2 |w|² vanishes at the result', () => {
  const rng = new Rng(3);
  const n = 60;
  const d = 5;
  const X = new Float32Array(n * d);
  const y: number[] = [];
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < d; j++) X[i * d + j] = rng.normal();
    y.push(X[i * d] + 0.5 * X[i * d + 1] + 0.8 * rng.normal() > 0 ? 1 : 0);
  }
  const l2 = 0.01;
  const p = trainProbe('resid_0', X, y, { l2 });
  const grad = new Float64Array(d + 1);
  for (let i = 0; i < n; i++) {
    const r = 1 / (1 + Math.exp(-probeLogit(p, X, i))) - y[i];
    for (let j = 0; j < d; j++) grad[j] += (r * X[i * d + j]) / n;
    grad[d] += r / n;
  }
  for (let j = 0; j < d; j++) grad[j] += l2 * p.weight[j];
  for (const g of grad) assert.ok(Math.abs(g) < 1e-9, `gradient ${[...grad]}`);
  assert.ok(p.weight[0] > p.weight[1] && p.weight[1] > 0, 'the weights follow the generating rule');
});

test('trainProbe: a separable 1-D case has the optimum the penalty fixes by hand', () => {
  // x = ±1 with labels 1/0: by symmetry b = 0 and w solves σ(-w) = l2·w (from the gradient).
  const X = Float32Array.from([1, -1]);
  const p = trainProbe('embed', X, [1, 0], { l2: 0.1 });
  const w = p.weight[0];
  assert.ok(Math.abs(p.bias) < 1e-9);
  assert.ok(Math.abs(1 / (1 + Math.exp(w)) - 0.1 * w) < 1e-12, `w = ${w}`);
  assert.throws(() => trainProbe('embed', new Float32Array(0), []), /no training examples/);
});

test('pooledActivations: the mean over real tokens, padding ignored', () => {
  const config = tinyConfig();
  const model = new GptNeoX(config, randomWeights(config, 4));
  const seqs = [
    [1, 2, 3, 4],
    [5, 6],
  ];
  const pooled = pooledActivations(model, seqs, 'resid_0');
  const d = config.hiddenSize;
  for (const [i, seq] of seqs.entries()) {
    const act = model.forward(makeBatch([seq]), { logits: 'none' }).activation('resid_0');
    for (let j = 0; j < d; j++) {
      let mean = 0;
      for (let t = 0; t < seq.length; t++) mean += act[t * d + j] / seq.length;
      assert.ok(Math.abs(pooled[i * d + j] - mean) < 1e-5);
    }
  }
  assert.throws(() => pooledActivations(model, seqs, 'resid_9'), /resid_9 is not a site/);
});

test('scoreProbe: label, gender and worst-group accuracy', () => {
  // One input dimension; the probe predicts 1 where x > 0.
  const probe = { site: 'embed', weight: Float64Array.from([1]), bias: 0 };
  const X = Float32Array.from([1, 1, -1, -1, 1, -1, 1, 1]);
  const groups: [number, number][] = [
    [1, 1],
    [1, 1],
    [0, 0],
    [0, 0],
    [0, 1], // predicted 1: wrong label, follows gender
    [1, 0], // predicted 0: wrong label, follows gender
    [1, 0], // right
    [0, 1], // predicted 1: wrong
  ];
  const texts = groups.map(([y, genderClass]) => ({ y, genderClass }) as ClassifiedText);
  const s = scoreProbe(probe, X, texts);
  assert.equal(s.label, 5 / 8);
  assert.equal(s.gender, 7 / 8);
  assert.equal(s.worstGroup, 0); // group (0, 1): both wrong
});
