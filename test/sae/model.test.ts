// The parts that run the language model: activations streamed from a site, spliced-in losses.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Rng } from '../../src/random.ts';
import { parseConfig } from '../../src/model/config.ts';
import { parameterLayout, zeroWeights } from '../../src/model/weights.ts';
import { GptNeoX } from '../../src/model/gptneox.ts';
import { SparseAutoencoder } from '../../src/sae/dictionary.ts';
import {
  ArraySource,
  ModelActivationSource,
  WindowStream,
  type ActivationSource,
} from '../../src/sae/activations.ts';
import { evaluateSaes, reconstructionStats } from '../../src/sae/metrics.ts';
import { openSaes } from '../../src/sae/library.ts';
import { saveDictionary } from '../../src/sae/formats.ts';
import { trainSae } from '../../src/sae/train.ts';
import { tinyTransformer } from '../helpers/random-transformer.ts';

process.env.SFC_THREADS ??= '1'; // tiny products; see train.test.ts

// Dims: d model width, V vocab, T window length.
const [d, V, T] = [16, 40, 8];

function tinyModel(seed: number): GptNeoX {
  const config = parseConfig(
    {
      vocab_size: V,
      hidden_size: d,
      num_hidden_layers: 2,
      num_attention_heads: 4,
      intermediate_size: 4 * d,
      max_position_embeddings: 32,
      rotary_pct: 0.5,
    },
    'tiny config',
  );
  const weights = zeroWeights(config);
  const rng = new Rng(seed);
  for (const p of parameterLayout(config)) {
    const isNormWeight = /layernorm\.weight$|final_layer_norm\.weight$/.test(p.name);
    p.get(weights).forEach((_, i, a) => (a[i] = isNormWeight ? 1 : rng.normal() * 0.3));
  }
  return new GptNeoX(config, weights);
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

function documents(seed: number, count: number): number[][] {
  const rng = new Rng(seed);
  return Array.from({ length: count }, () =>
    Array.from({ length: 3 + rng.int(20) }, () => 1 + rng.int(V - 1)),
  );
}

test('WindowStream packs documents with EOS between them and wraps around', () => {
  const s = new WindowStream([[1, 2, 3], [4], [5, 6]], 4, 0, 0, false);
  const w = new Int32Array(4);
  const seen: number[] = [];
  for (let i = 0; i < 3; i++) {
    s.nextWindow(w);
    seen.push(...w);
  }
  assert.deepEqual(seen, [1, 2, 3, 0, 4, 0, 5, 6, 0, 1, 2, 3]);
});

test('the model source serves exactly the site activations of the packed windows', () => {
  const model = tinyModel(1);
  const docs = documents(2, 30);
  // One buffer fill: 4 windows in 2 forward passes; the source must serve those 32 vectors (shuffled).
  const source = new ModelActivationSource({
    model,
    site: 'mlp_0',
    documents: docs,
    ctx: T,
    eosId: 0,
    windowsPerForward: 2,
    bufferWindows: 4,
    seed: 3,
  });
  const served = new Float32Array(16 * d);
  source.next(served, 16); // served from a buffer of 32 without a refill (refill below half)
  const stream = new WindowStream(docs, T, 0, 3);
  const ids = new Int32Array(4 * T);
  for (let w = 0; w < 4; w++) stream.nextWindow(ids.subarray(w * T, (w + 1) * T));
  let site = new Float32Array(0);
  model.forward(
    { ids, batchSize: 4, seqLen: T, lengths: [T, T, T, T] },
    { logits: 'none', hooks: { mlp_0: (a) => void (site = a.slice()) } },
  );
  const key = (v: Float32Array) => Array.from(v, (x) => x.toFixed(4)).join(',');
  // Multiset inclusion: drawn without replacement from these 32 (identical vectors may repeat,
  // e.g. the same token at position 0 of two windows).
  const available = new Map<string, number>();
  for (let r = 0; r < 4 * T; r++) {
    const k = key(site.subarray(r * d, (r + 1) * d));
    available.set(k, (available.get(k) ?? 0) + 1);
  }
  for (let r = 0; r < 16; r++) {
    const k = key(served.subarray(r * d, (r + 1) * d));
    const left = available.get(k) ?? 0;
    assert.ok(
      left > 0,
      `served vector ${r} is not (or no longer) among the first windows' activations`,
    );
    available.set(k, left - 1);
  }
});

test('training from the model resumes bit for bit (shuffled buffer state is checkpointed)', () => {
  const model = tinyModel(4);
  const docs = documents(5, 40);
  const source = () =>
    new ModelActivationSource({
      model,
      site: 'resid_0',
      documents: docs,
      ctx: T,
      eosId: 0,
      windowsPerForward: 2,
      bufferWindows: 6,
      seed: 7,
    });
  const options = {
    site: 'resid_0',
    width: 32,
    l1: 2,
    lr: 3e-3,
    steps: 40,
    batchSize: 16,
    warmupSteps: 5,
    resampleEvery: 10,
    deadWindow: 3,
    resampleSamples: 64,
    seed: 1,
  };
  const whole = trainSae(source(), options);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sae-model-ckpt-'));
  try {
    trainSae(source(), { ...options, checkpointDir: dir, stopAt: 17 });
    const resumed = trainSae(source(), { ...options, checkpointDir: dir, resume: true });
    assert.equal(resumed.resumedFrom, 17);
    assert.deepEqual(resumed.dictionary.decoder, whole.dictionary.decoder);
    assert.deepEqual(resumed.dictionary.encoderBias, whole.dictionary.encoderBias);
    // The saved stream state is typed by its reader; a source of the other kind, or a position
    // past this corpus, is refused naming the checkpoint file.
    const jsonFile = path.join(dir, 'trainer.json');
    const resumeWith = (s: ActivationSource) => () =>
      trainSae(s, { ...options, checkpointDir: dir, resume: true });
    const vectors = new ArraySource(new Float32Array(64 * d).fill(1), d);
    assert.throws(
      resumeWith(vectors),
      new RegExp(
        `^Error: ${escape(jsonFile)}: the saved data stream is a model source, not an array`,
      ),
    );
    const good = fs.readFileSync(jsonFile, 'utf8');
    fs.writeFileSync(jsonFile, good.replace(/"doc": \d+/, '"doc": 41'));
    assert.throws(
      resumeWith(source()),
      new RegExp(
        `^Error: ${escape(jsonFile)}: the saved data stream is at document 41 of an epoch, but the corpus holds 40`,
      ),
    );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('reconstruction statistics match brute force', () => {
  const rng = new Rng(6);
  const [N, F] = [20, 12];
  const r = (n: number) => Float32Array.from({ length: n }, () => rng.normal());
  const sae = new SparseAutoencoder({
    site: 'embed',
    kind: 'relu',
    dIn: d,
    width: F,
    encoder: r(F * d),
    encoderBias: r(F).map((b) => b - 3), // most features off; some never fire
    decoder: r(F * d),
    decoderBias: r(d),
  });
  const x = r(N * d);
  const out = sae.run(x, N);
  let active = 0;
  const fired = new Set<number>();
  out.features.forEach((v, i) => {
    if (v !== 0) {
      active++;
      fired.add(i % F);
    }
  });
  const mean = new Float64Array(d);
  for (let i = 0; i < N * d; i++) mean[i % d] += x[i] / N;
  let sse = 0;
  let variance = 0;
  for (let i = 0; i < N * d; i++) {
    sse += (x[i] - out.reconstruction[i]) ** 2;
    variance += (x[i] - mean[i % d]) ** 2;
  }
  const s = reconstructionStats(sae, x, N);
  assert.equal(s.tokens, N);
  assert.equal(s.l0, active / N);
  assert.ok(Math.abs(s.fve - (1 - sse / variance)) < 1e-9 + 1e-6 * Math.abs(s.fve));
  assert.ok(Math.abs(s.mse - sse / (N * d)) < 1e-6 * s.mse);
  assert.equal(s.deadFraction, 1 - fired.size / F);
  assert.ok(s.deadFraction > 0 && s.deadFraction < 1, 'the case should have some dead features');
});

/** Independent truth: mean next-token loss with a plain log-softmax in float64. */
function referenceLoss(
  model: GptNeoX,
  docs: number[][],
  windows: number,
  hook?: (x: Float32Array) => Float32Array,
) {
  const stream = new WindowStream(docs, T, 0, 0, false);
  const ids = new Int32Array(windows * T);
  for (let w = 0; w < windows; w++) stream.nextWindow(ids.subarray(w * T, (w + 1) * T));
  const pass = model.forward(
    { ids, batchSize: windows, seqLen: T, lengths: new Array(windows).fill(T) },
    { logits: 'all', hooks: hook ? { attn_1: hook } : {} },
  );
  let sum = 0;
  for (let w = 0; w < windows; w++)
    for (let t = 0; t + 1 < T; t++) {
      const row = pass.logits.subarray((w * T + t) * V, (w * T + t + 1) * V);
      const max = Math.max(...row);
      const lse = max + Math.log(row.reduce((a, v) => a + Math.exp(v - max), 0));
      sum += lse - row[ids[w * T + t + 1]];
    }
  return sum / (windows * (T - 1));
}

test('evaluateSaes: clean, spliced and zero-ablated losses, and loss recovered', () => {
  const model = tinyModel(8);
  const docs = documents(9, 30);
  const tokens = 5 * T; // 5 windows, over batches of 2
  const common = { documents: docs, tokens, ctx: T, eosId: 0, windowsPerForward: 2 };

  // Neurons: the spliced-in reconstruction is the activation itself.
  const neurons = evaluateSaes(model, openSaes('neurons', 2, { modelWidth: d }), {
    ...common,
    sites: ['attn_1'],
  })[0];
  const clean = referenceLoss(model, docs, 5);
  assert.ok(Math.abs(neurons.lossClean - clean) < 1e-5, `${neurons.lossClean} vs ${clean}`);
  assert.equal(neurons.lossSae, neurons.lossClean);
  assert.equal(neurons.fve, 1);
  assert.equal(neurons.lossRecovered, 1);
  const zero = referenceLoss(model, docs, 5, (x) => new Float32Array(x.length));
  assert.ok(Math.abs(neurons.lossZero - zero) < 1e-5);

  // A real SAE, saved and opened like any other.
  const rng = new Rng(10);
  const F = 24;
  const r = (n: number, s: number) => Float32Array.from({ length: n }, () => rng.normal() * s);
  const sae = new SparseAutoencoder({
    site: 'attn_1',
    kind: 'relu',
    dIn: d,
    width: F,
    encoder: r(F * d, 0.5),
    encoderBias: r(F, 0.1),
    decoder: r(F * d, 0.3),
    decoderBias: r(d, 0.1),
  });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sae-eval-'));
  try {
    saveDictionary(dir, sae);
    const stats = evaluateSaes(model, openSaes(dir, 2, { modelWidth: d }), common)[0];
    assert.equal(stats.site, 'attn_1');
    assert.equal(stats.tokens, tokens);
    const spliced = referenceLoss(model, docs, 5, (x) => sae.run(x, x.length / d).reconstruction);
    assert.ok(Math.abs(stats.lossSae - spliced) < 1e-4, `${stats.lossSae} vs ${spliced}`);
    assert.ok(Math.abs(stats.lossRecovered - (zero - spliced) / (zero - clean)) < 1e-3);
    assert.throws(
      () => evaluateSaes(model, openSaes(dir, 2), { ...common, sites: ['mlp_0'] }),
      /no SAE for site mlp_0; found attn_1/,
    );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a model of the generic engine: the source serves attn_z (H·Dh wide), neurons splice in exactly', () => {
  const model = tinyTransformer('gemma2', 3); // d 16, attn_z 4 heads x 6 = 24, vocab 23
  const docs = documents(4, 20).map((doc) => doc.map((id) => id % 23));
  const source = new ModelActivationSource({
    model,
    site: 'attn_z_0',
    documents: docs,
    ctx: T,
    eosId: 0,
    windowsPerForward: 2,
    bufferWindows: 4,
    seed: 3,
  });
  assert.equal(source.dIn, 24);
  const served = new Float32Array(16 * 24);
  source.next(served, 16);
  const stream = new WindowStream(docs, T, 0, 3);
  const ids = new Int32Array(4 * T);
  for (let w = 0; w < 4; w++) stream.nextWindow(ids.subarray(w * T, (w + 1) * T));
  const site = model
    .forward({ ids, batchSize: 4, seqLen: T, lengths: [T, T, T, T] }, { logits: 'none' })
    .activation('attn_z_0');
  const rows = new Set(
    Array.from({ length: 4 * T }, (_, r) => site.subarray(r * 24, (r + 1) * 24).join(',')),
  );
  for (let r = 0; r < 16; r++) assert.ok(rows.has(served.subarray(r * 24, (r + 1) * 24).join(',')));
  const [stats] = evaluateSaes(model, openSaes('neurons', 2, { model }), {
    documents: docs,
    tokens: 4 * T,
    ctx: T,
    eosId: 0,
    windowsPerForward: 2,
    sites: ['attn_z_1'],
  });
  assert.equal(stats.lossSae, stats.lossClean);
  assert.equal(stats.fve, 1);
  assert.ok(
    Math.abs(stats.lossZero - stats.lossClean) > 1e-3,
    'zeroing the heads changes the loss',
  );
});
