// Dashboards against brute force on a tiny random model with random SAEs (ReLU, one TopK, one
// JumpReLU): every window run on its own (no padding, no batching), feature activations from the
// encoder formula in float64 loops, logit effects as explicit sums over W_U (γ ⊙ d).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { computeDashboards, type FeatureRef } from '../../src/dashboards/compute.ts';
import { readDashboards, writeDashboards } from '../../src/dashboards/file.ts';
import { circuitFeatures, toDashboardsFile } from '../../src/dashboards/run.ts';
import { readCorpus } from '../../src/data/corpus.ts';
import { GptNeoX, makeBatch } from '../../src/model/gptneox.ts';
import { SparseAutoencoder, type Dictionary } from '../../src/sae/dictionary.ts';
import { Rng } from '../../src/random.ts';
import { randomWeights, tinyConfig } from '../helpers/random-model.ts';
import { randomSaes } from '../helpers/random-saes.ts';

const config = tinyConfig();
const model = new GptNeoX(config, randomWeights(config, 1));
const F = 8;
const JUMP = 0.5; // thresholds 0.5..0.57: some positive pre-activations fall under them (asserted)
const saes = randomSaes(config, F, 2);
// One top-k dictionary too: it cannot be computed feature by feature.
const base = saes.get('mlp_0')!;
const topk = new SparseAutoencoder({
  site: 'mlp_0',
  kind: 'topk',
  k: 3,
  dIn: base.dIn,
  width: F,
  encoder: base.encoder,
  encoderBias: base.encoderBias,
  decoder: base.decoder,
  decoderBias: base.decoderBias,
});
// And one JumpReLU (SAELens semantics, input centred): features 0 and 5 are in the list below.
const resid1 = saes.get('resid_1')!;
const jumprelu = new SparseAutoencoder({
  site: 'resid_1',
  kind: 'jumprelu',
  threshold: Float32Array.from({ length: F }, (_, i) => JUMP + 0.01 * i),
  dIn: resid1.dIn,
  width: F,
  encoder: resid1.encoder,
  encoderBias: resid1.encoderBias,
  decoder: resid1.decoder,
  decoderBias: resid1.decoderBias,
});
const dictionary = (site: string): Dictionary =>
  site === 'mlp_0' ? topk : site === 'resid_1' ? jumprelu : saes.get(site)!;

const rng = new Rng(3);
const documents = Array.from({ length: 9 }, () =>
  Array.from({ length: 1 + rng.int(19) }, () => rng.int(config.vocabSize)),
);
const features: FeatureRef[] = [
  { site: 'resid_1', feature: 0 },
  { site: 'embed', feature: 3 },
  { site: 'attn_0', feature: 7 },
  { site: 'mlp_0', feature: 2 },
  { site: 'resid_1', feature: 5 },
  { site: 'mlp_1', feature: 1 },
];
const T = 8;
const TOP = 3;
const BINS = 5;
const LOGIT_TOKENS = 4;
const options = {
  model,
  dictionary,
  documents,
  features,
  top: TOP,
  ctx: T,
  bins: BINS,
  logitTokens: LOGIT_TOKENS,
  before: 3,
  after: 2,
};

/** Positive pre-activations a JumpReLU feature's threshold held back, over bruteActivations calls. */
let belowThreshold = 0;

/** Feature activations [window][t] by brute force. */
function bruteActivations(ref: FeatureRef): { windows: number[][]; acts: number[][] } {
  const dict = dictionary(ref.site) as SparseAutoencoder;
  const d = config.hiddenSize;
  const windows: number[][] = [];
  for (const doc of documents)
    for (let s = 0; s < doc.length; s += T) windows.push(doc.slice(s, s + T));
  const acts = windows.map((w) => {
    let x = new Float32Array(0);
    model.forward(makeBatch([w]), {
      logits: 'none',
      hooks: { [ref.site]: (a) => void (x = a.slice()) },
    });
    return w.map((_, t) => {
      const z = Array.from({ length: F }, (_, f) => {
        let s = dict.encoderBias[f];
        for (let j = 0; j < d; j++)
          s += dict.encoder[f * d + j] * (x[t * d + j] - dict.decoderBias[j]);
        return s;
      });
      if (dict.kind === 'topk') {
        const order = z.map((_, i) => i).sort((a, b) => z[b] - z[a] || a - b);
        return order.slice(0, dict.k!).includes(ref.feature) ? Math.max(0, z[ref.feature]) : 0;
      }
      if (dict.kind === 'jumprelu') {
        const v = z[ref.feature];
        if (v > 0 && !(v > dict.threshold![ref.feature])) belowThreshold++;
        return v > dict.threshold![ref.feature] ? v : 0;
      }
      return Math.max(0, z[ref.feature]);
    });
  });
  return { windows, acts };
}

test('dashboards equal brute force: contexts, frequency, histogram, logit effects', () => {
  const result = computeDashboards({ ...options, windowsPerForward: 3 });
  assert.equal(result.dashboards.length, features.length);
  const V = config.vocabSize;
  const d = config.hiddenSize;
  for (const [i, ref] of features.entries()) {
    const dash = result.dashboards[i];
    assert.deepEqual({ site: dash.site, feature: dash.feature }, ref, 'caller order kept');
    const { windows, acts } = bruteActivations(ref);
    const flat = acts.flat();
    assert.equal(result.tokens, flat.length);
    const nonzero = flat.filter((v) => v !== 0);
    assert.ok(nonzero.length > 0, `${ref.site}/${ref.feature} should fire somewhere`);
    assert.equal(
      dash.frequency,
      nonzero.length / flat.length,
      `${ref.site}/${ref.feature} frequency`,
    );
    const max = Math.max(...nonzero);
    assert.ok(Math.abs(dash.maxActivation - max) < 1e-4);

    // Histogram over [0, max] for ReLU features.
    const counts = new Array(BINS).fill(0);
    for (const v of nonzero) counts[Math.min(BINS - 1, Math.floor((v / max) * BINS))]++;
    assert.deepEqual(dash.histogram.counts, counts, `${ref.site}/${ref.feature} histogram`);

    // Top contexts: windows ranked by their largest activation (ties: earlier window).
    const ranked = windows
      .map((w, k) => {
        const m = Math.max(...acts[k]);
        return { k, m, at: acts[k].indexOf(m) };
      })
      .filter((c) => c.m > 0)
      .sort((a, b) => b.m - a.m || a.k - b.k)
      .slice(0, TOP);
    assert.equal(dash.contexts.length, ranked.length);
    ranked.forEach((c, j) => {
      const got = dash.contexts[j];
      const start = Math.max(0, c.at - 3);
      const end = Math.min(windows[c.k].length, c.at + 3);
      assert.deepEqual(got.ids, windows[c.k].slice(start, end), `context ${j} tokens`);
      assert.equal(got.at, c.at - start);
      assert.ok(Math.abs(got.max - c.m) < 1e-4);
      got.acts.forEach((a, t) => assert.ok(Math.abs(a - acts[c.k][start + t]) < 1e-4));
    });

    // Logit effects W_U (γ ⊙ d).
    const row = dictionary(ref.site).decoderRow(ref.feature);
    const gamma = model.weights.lnFinalWeight;
    const U = model.weights.embedOut;
    const logit = Array.from({ length: V }, (_, t) => {
      let s = 0;
      for (let j = 0; j < d; j++) s += U[t * d + j] * gamma[j] * row[j];
      return s;
    });
    const ids = logit.map((_, t) => t);
    const up = [...ids].sort((a, b) => logit[b] - logit[a]).slice(0, LOGIT_TOKENS);
    const down = [...ids].sort((a, b) => logit[a] - logit[b]).slice(0, LOGIT_TOKENS);
    assert.deepEqual(
      dash.promoted.map((p) => p.id),
      up,
    );
    assert.deepEqual(
      dash.suppressed.map((p) => p.id),
      down,
    );
    dash.promoted.forEach((p) => assert.ok(Math.abs(p.value - logit[p.id]) < 1e-4));
  }
  assert.ok(belowThreshold > 0, 'the JumpReLU thresholds held some positive pre-activations back');
});

test('batching and padding change nothing', () => {
  const one = computeDashboards({ ...options, windowsPerForward: 1 });
  const many = computeDashboards({ ...options, windowsPerForward: 4 });
  for (const [i, a] of one.dashboards.entries()) {
    const b = many.dashboards[i];
    assert.deepEqual(
      b.contexts.map((c) => c.ids),
      a.contexts.map((c) => c.ids),
    );
    assert.deepEqual(b.histogram.counts, a.histogram.counts);
    assert.equal(b.frequency, a.frequency);
  }
});

test('vocabLimit keeps padding rows of W_U out of the token lists', () => {
  const r = computeDashboards({ ...options, vocabLimit: 10 });
  for (const dash of r.dashboards)
    for (const t of [...dash.promoted, ...dash.suppressed]) assert.ok(t.id < 10);
});

test('bad input names the problem', () => {
  assert.throws(
    () => computeDashboards({ ...options, features: [{ site: 'resid_7', feature: 0 }] }),
    /unknown site "resid_7"/,
  );
  assert.throws(
    () => computeDashboards({ ...options, features: [{ site: 'resid_0', feature: 99 }] }),
    /resid_0: feature 99 does not exist/,
  );
  assert.throws(
    () => computeDashboards({ ...options, documents: [[1, 2, 999]] }),
    /document 0 holds token id 999/,
  );
  assert.throws(() => computeDashboards({ ...options, ctx: 1000 }), /ctx 1000/);
});

test('dashboards.json round trip, corpus and circuit features', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sfc-dash-'));
  const result = computeDashboards(options);
  const file = writeDashboards(
    dir,
    toDashboardsFile(result, { model: 'm', saes: 's', corpus: 'c', top: TOP }, (id) => `<${id}>`),
  );
  const back = readDashboards(file);
  assert.equal(Object.keys(back.features).length, features.length);
  const f = back.features['resid_1/0'];
  assert.equal(f.contexts.length, result.dashboards[0].contexts.length);
  for (const c of f.contexts) for (const id of c.ids) assert.equal(back.vocab[id], `<${id}>`);
  // Rounded to 4 significant digits.
  assert.ok(
    Math.abs(f.max_activation - result.dashboards[0].maxActivation) < 1e-3 * f.max_activation,
  );

  fs.writeFileSync(path.join(dir, 'bad.json'), JSON.stringify({ ...back, version: 2 }));
  assert.throws(
    () => readDashboards(path.join(dir, 'bad.json')),
    /bad\.json: not a dashboards file/,
  );

  fs.writeFileSync(path.join(dir, 'corpus.txt'), 'one doc\n\n  \nanother doc\r\nthird\n');
  assert.deepEqual(readCorpus(path.join(dir, 'corpus.txt')), ['one doc', 'another doc', 'third']);
  assert.deepEqual(readCorpus(path.join(dir, 'corpus.txt'), 2), ['one doc', 'another doc']);
  fs.writeFileSync(path.join(dir, 'empty.txt'), '\n');
  assert.throws(() => readCorpus(path.join(dir, 'empty.txt')), /no documents/);

  const refs = circuitFeatures('test/fixtures/viewer/small/circuit.json');
  assert.equal(refs.length, 12);
  assert.deepEqual(refs[0], { site: 'embed', feature: 3 });
  fs.rmSync(dir, { recursive: true });
});
