import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Rng } from '../../src/random.ts';
import { SparseAutoencoder } from '../../src/sae/dictionary.ts';
import { ArraySource } from '../../src/sae/activations.ts';
import { readSafetensors, writeSafetensors } from '../../src/io/safetensors.ts';
import {
  saeLossAndGradients,
  saeWorkspace,
  zeroGradients,
  type SaeGradients,
} from '../../src/sae/train-loss.ts';
import { trainSae, type TrainedKind } from '../../src/sae/train.ts';
import { loadDictionary, saveDictionary } from '../../src/sae/formats.ts';

// Dims: B batch, d input width, F dictionary width.

// These products are tiny: extra GEMM threads only add synchronisation (and stall badly when the
// cores are shared with other work), so this file runs the kernel single-threaded.
process.env.SFC_THREADS ??= '1';

function randomSae(kind: TrainedKind, d: number, F: number, rng: Rng, k?: number) {
  const r = (n: number, s: number) => Float32Array.from({ length: n }, () => rng.normal() * s);
  return new SparseAutoencoder({
    threshold:
      kind === 'jumprelu'
        ? Float32Array.from({ length: F }, () => 0.1 + 0.4 * rng.next())
        : undefined,
    site: 'resid_0',
    kind,
    dIn: d,
    width: F,
    encoder: r(F * d, 0.7),
    encoderBias: r(F, 0.3),
    decoder: r(F * d, 0.7),
    decoderBias: r(d, 0.3),
    k,
  });
}

/**
 * Independent truth: the training loss in float64 with plain loops, and its pre-activations.
 * `lambda` weighs ||f||₁ (relu) or ||f||₀ (jumprelu).
 */
function referenceLoss(sae: SparseAutoencoder, x: Float32Array, B: number, lambda: number) {
  const { dIn: d, width: F } = sae;
  let loss = 0;
  const pres: number[][] = [];
  for (let n = 0; n < B; n++) {
    const pre: number[] = [];
    for (let i = 0; i < F; i++) {
      let z = sae.encoderBias[i];
      for (let j = 0; j < d; j++) z += sae.encoder[i * d + j] * (x[n * d + j] - sae.decoderBias[j]);
      pre.push(z);
    }
    pres.push(pre);
    let f = pre.map((z) => Math.max(0, z));
    if (sae.kind === 'jumprelu') f = pre.map((z, i) => (z > sae.threshold![i] ? z : 0));
    if (sae.kind === 'topk') {
      const kth = [...pre].sort((a, b) => b - a)[sae.k! - 1];
      f = pre.map((z) => (z >= kth ? Math.max(0, z) : 0));
    }
    for (let j = 0; j < d; j++) {
      let xh = sae.decoderBias[j];
      for (let i = 0; i < F; i++) xh += f[i] * sae.decoder[i * d + j];
      loss += (xh - x[n * d + j]) ** 2 / B;
    }
    if (sae.kind === 'relu') loss += (lambda * f.reduce((a, b) => a + b, 0)) / B;
    if (sae.kind === 'jumprelu') loss += (lambda * f.filter((v) => v !== 0).length) / B;
  }
  return { loss, pres };
}

for (const kind of ['relu', 'topk', 'jumprelu'] as const) {
  test(`${kind} training gradients match finite differences of a float64 reference loss`, () => {
    const [B, d, F, k, l1] = [4, 5, 7, 3, 0.3];
    const rng = new Rng({ relu: 7, topk: 11, jumprelu: 13 }[kind]);
    const sae = randomSae(kind, d, F, rng, k);
    const x = Float32Array.from({ length: B * d }, () => rng.normal());
    const { loss, pres } = referenceLoss(sae, x, B, l1);
    // Finite differences are only valid away from the kinks of ReLU / the top-k boundary.
    for (const pre of pres) {
      const sorted = [...pre].sort((a, b) => b - a);
      assert.ok(Math.min(...pre.map(Math.abs)) > 1e-2, 'a pre-activation sits near 0');
      if (kind === 'jumprelu')
        pre.forEach((z, i) =>
          assert.ok(Math.abs(z - sae.threshold![i]) > 1e-2, 'a pre-activation sits near θ'),
        );
      if (kind === 'topk') assert.ok(sorted[k - 1] - sorted[k] > 1e-2, 'top-k boundary too close');
    }
    const grads = zeroGradients(d, F);
    // The bandwidth is narrower than every |z - θ|: θ's pseudo-derivative is 0 here (tested below).
    const penalty = { lambda: l1, bandwidth: 1e-3 };
    const stats = saeLossAndGradients(sae, x, B, penalty, grads, saeWorkspace(B, d, F));
    if (kind === 'jumprelu') assert.ok(stats.activeCount > 0 && stats.activeCount < B * F);
    assert.ok(Math.abs(stats.loss - loss) < 1e-4 * (1 + loss), `loss ${stats.loss} vs ${loss}`);
    const h = 1e-3;
    // θ too: away from the jumps (every |z - θ| > 1e-2 > ε/2) the loss is flat in θ, and so is
    // the estimator.
    const names: (keyof SaeGradients)[] = ['encoder', 'encoderBias', 'decoder', 'decoderBias'];
    if (kind === 'jumprelu') names.push('threshold');
    for (const name of names) {
      const p = sae[name]!;
      for (let i = 0; i < p.length; i++) {
        const keep = p[i];
        p[i] = keep + h;
        const up = referenceLoss(sae, x, B, l1).loss;
        p[i] = keep - h;
        const down = referenceLoss(sae, x, B, l1).loss;
        p[i] = keep;
        // Central difference of a float64 loss whose parameters are f32: the step is exact in f32
        // only approximately, so compare against the step actually taken.
        const taken = Math.fround(keep + h) - Math.fround(keep - h);
        const numeric = (up - down) / taken;
        const analytic = grads[name][i];
        assert.ok(
          Math.abs(numeric - analytic) <= 2e-3 * (1 + Math.abs(numeric)),
          `${name}[${i}]: analytic ${analytic} vs numeric ${numeric}`,
        );
      }
    }
  });
}

test('jumprelu threshold gradient: the straight-through estimator of Jumping Ahead by its formula; its L0 term a finite difference of step ε/2', () => {
  // Rajamanoharan et al. 2024, eqs. 11-12 with a rectangle kernel K(u) = 1[|u| < 1/2]:
  //   ∂loss/∂θ_i = Σ_n ∂loss/∂f_ni · (-(θ_i/ε) K((z_ni - θ_i)/ε)) + (λ/B) Σ_n (-(1/ε) K((z_ni - θ_i)/ε))
  // with ∂loss/∂f_ni = (2/B) (x̂_n - x_n) · W_D[i], computed here in float64 from scratch.
  const [B, d, F, lambda, epsilon] = [16, 5, 6, 0.7, 0.4];
  const rng = new Rng(21);
  const sae = randomSae('jumprelu', d, F, rng);
  const x = Float32Array.from({ length: B * d }, () => rng.normal());
  const grads = zeroGradients(d, F);
  saeLossAndGradients(sae, x, B, { lambda, bandwidth: epsilon }, grads, saeWorkspace(B, d, F));
  const { pres } = referenceLoss(sae, x, B, lambda);
  const expected = new Float64Array(F);
  let inWindow = 0;
  for (let n = 0; n < B; n++) {
    const f = pres[n].map((z, i) => (z > sae.threshold![i] ? z : 0));
    const residual = Array.from({ length: d }, (_, j) => {
      let xh = sae.decoderBias[j];
      for (let i = 0; i < F; i++) xh += f[i] * sae.decoder[i * d + j];
      return xh - x[n * d + j];
    });
    for (let i = 0; i < F; i++) {
      const u = (pres[n][i] - sae.threshold![i]) / epsilon;
      if (!(Math.abs(u) < 0.5)) continue;
      inWindow++;
      let dLdf = 0;
      for (let j = 0; j < d; j++) dLdf += (2 / B) * residual[j] * sae.decoder[i * d + j];
      expected[i] += dLdf * (-sae.threshold![i] / epsilon) - lambda / B / epsilon;
    }
  }
  assert.ok(inWindow >= 5, `only ${inWindow} pre-activations within ε/2 of θ`);
  for (let i = 0; i < F; i++)
    assert.ok(
      Math.abs(grads.threshold[i] - expected[i]) <= 1e-4 * (1 + Math.abs(expected[i])),
      `θ[${i}]: ${grads.threshold[i]} vs ${expected[i]}`,
    );
  // The L0 term's estimator is exactly a central finite difference of the true L0 term with step
  // ε/2: moving θ_i from θ_i - ε/2 to θ_i + ε/2 switches off the pre-activations within ε/2 of
  // it. With W_D = 0 the reconstruction does not depend on f, so the whole θ gradient is that term.
  const eps = 0.15; // θ ≥ 0.1 > ε/2: the window stays above 0
  sae.decoder.fill(0);
  const onlyL0 = zeroGradients(d, F);
  saeLossAndGradients(sae, x, B, { lambda, bandwidth: eps }, onlyL0, saeWorkspace(B, d, F));
  let moved = 0;
  for (let i = 0; i < F; i++) {
    const keep = sae.threshold![i];
    sae.threshold![i] = keep + eps / 2;
    const up = referenceLoss(sae, x, B, lambda).loss;
    sae.threshold![i] = keep - eps / 2;
    const down = referenceLoss(sae, x, B, lambda).loss;
    sae.threshold![i] = keep;
    const numeric = (up - down) / eps;
    if (numeric !== 0) moved++;
    assert.ok(
      Math.abs(onlyL0.threshold[i] - numeric) <= 1e-4 * (1 + Math.abs(numeric)),
      `θ[${i}] L0 term: estimator ${onlyL0.threshold[i]} vs (L(θ+ε/2) - L(θ-ε/2))/ε ${numeric}`,
    );
  }
  assert.ok(moved >= 2, `only ${moved} thresholds had pre-activations within ε/2`);
});

/** n samples, each a sparse non-negative mix of ~3 of the `truth` unit directions [G, d]. */
function sparseMixtures(truth: Float32Array, G: number, d: number, n: number, rng: Rng) {
  const x = new Float32Array(n * d);
  for (let s = 0; s < n; s++) {
    for (let g = 0; g < G; g++) {
      if (rng.next() >= 3 / G) continue;
      const a = 0.5 + rng.next();
      for (let j = 0; j < d; j++) x[s * d + j] += a * truth[g * d + j];
    }
  }
  return x;
}

function randomDirections(G: number, d: number, rng: Rng) {
  const t = Float32Array.from({ length: G * d }, () => rng.normal());
  for (let g = 0; g < G; g++) {
    const row = t.subarray(g * d, (g + 1) * d);
    const norm = Math.hypot(...row);
    for (let j = 0; j < d; j++) row[j] /= norm;
  }
  return t;
}

/** Share of true directions that some learned decoder row matches with cosine >= 0.9. */
function recovered(sae: SparseAutoencoder, truth: Float32Array, G: number) {
  const d = sae.dIn;
  let matched = 0;
  for (let g = 0; g < G; g++) {
    let best = -1;
    for (let i = 0; i < sae.width; i++) {
      const row = sae.decoderRow(i);
      let dot = 0;
      for (let j = 0; j < d; j++) dot += row[j] * truth[g * d + j];
      best = Math.max(best, dot);
    }
    if (best >= 0.9) matched++;
  }
  return matched / G;
}

for (const kind of ['relu', 'topk', 'jumprelu'] as const) {
  test(`${kind} training recovers the directions of a known sparse dictionary`, () => {
    const [d, G] = [32, 64];
    const rng = new Rng(2024);
    const truth = randomDirections(G, d, rng);
    const data = sparseMixtures(truth, G, d, 16384, rng);
    const result = trainSae(new ArraySource(data, d, 1), {
      site: 'resid_0',
      width: 128,
      kind,
      k: 4,
      l1: 1,
      l0Penalty: 1,
      lr: kind === 'relu' ? 1e-2 : 3e-3,
      steps: 800,
      batchSize: 128,
      warmupSteps: 50,
      resampleEvery: 200,
      resampleSamples: 2048,
      seed: 5,
    });
    const share = recovered(result.dictionary, truth, G);
    // Over data seeds 2024-2027 with training seeds 5-8 and all three kinds (12 runs), the share
    // recovered was 96.9-100% and FVE 0.879-0.915 (this run: 100%, 0.888 / 0.891 / 0.907); the
    // bounds sit under that spread, not under this run alone.
    assert.ok(share >= 0.95, `recovered ${(100 * share).toFixed(1)}% of the true directions`);
    assert.ok(result.metrics.fve > 0.87, `FVE ${result.metrics.fve}`);
    // The data has 3 active directions per input on average; the L0 penalty (through θ's
    // straight-through gradient) found that: L0 3.00-3.05 over the same 4 seeds.
    if (kind === 'jumprelu')
      assert.ok(Math.abs(result.metrics.l0 - 3) < 0.3, `L0 ${result.metrics.l0}`);
    console.log(
      `${kind}: recovered ${(100 * share).toFixed(1)}%`,
      result.metrics,
      'resampled',
      result.resampled,
    );
  });
}

test('same seed gives bitwise the same dictionary; a split, resumed run equals an unbroken one', () => {
  const d = 16;
  const rng = new Rng(3);
  const data = Float32Array.from({ length: 4096 * d }, () => Math.max(0, rng.normal()));
  // A strong penalty and a short dead window, so that resampling happens within 120 steps.
  const options = {
    site: 'mlp_1',
    width: 48,
    l1: 20,
    lr: 1e-2,
    steps: 120,
    batchSize: 64,
    warmupSteps: 20,
    resampleEvery: 25,
    deadWindow: 10,
    resampleSamples: 512,
    seed: 9,
  };
  const a = trainSae(new ArraySource(data, d, 4), options);
  const b = trainSae(new ArraySource(data, d, 4), options);
  assert.deepEqual(a.dictionary.decoder, b.dictionary.decoder);
  assert.deepEqual(a.dictionary.encoder, b.dictionary.encoder);
  assert.ok(a.resampled > 0, 'the schedule should exercise resampling');
  const other = trainSae(new ArraySource(data, d, 4), { ...options, seed: 10 });
  assert.notDeepEqual(other.dictionary.decoder, a.dictionary.decoder);

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sae-ckpt-'));
  try {
    const first = trainSae(new ArraySource(data, d, 4), {
      ...options,
      checkpointDir: dir,
      stopAt: 70,
    });
    assert.equal(first.steps, 70);
    const second = trainSae(new ArraySource(data, d, 4), {
      ...options,
      checkpointDir: dir,
      resume: true,
    });
    assert.equal(second.resumedFrom, 70);
    assert.equal(second.steps, 120);
    for (const p of ['encoder', 'encoderBias', 'decoder', 'decoderBias'] as const)
      assert.deepEqual(second.dictionary[p], a.dictionary[p], p);
    assert.throws(
      () =>
        trainSae(new ArraySource(data, d, 4), {
          ...options,
          width: 40,
          checkpointDir: dir,
          resume: true,
        }),
      /trained with width 48, not 40/,
    );
    // A damaged checkpoint is refused by its reader, naming the file and the field.
    const resume = () =>
      trainSae(new ArraySource(data, d, 4), { ...options, checkpointDir: dir, resume: true });
    const jsonFile = path.join(dir, 'trainer.json');
    const good = fs.readFileSync(jsonFile, 'utf8');
    fs.writeFileSync(jsonFile, good.replace(/"step": (\d+)/, '"step": "$1"'));
    assert.throws(resume, /trainer\.json: not an SAE training checkpoint \(step: /);
    fs.writeFileSync(jsonFile, good.replace('"kind": "array"', '"kind": "elsewhere"'));
    assert.throws(resume, /trainer\.json: not an SAE training checkpoint \(source\.kind: /);
    // A valid state of the other source kind, or a position past this data, is refused by the
    // source, naming the file.
    fs.writeFileSync(
      jsonFile,
      good.replace(
        /"source": \{[^}]*\}/,
        '"source": {"kind": "model", "windows": {"epoch": 0, "doc": 0, "offset": 0}, "buffer": {"refills": 1}}',
      ),
    );
    assert.throws(
      resume,
      /trainer\.json: the saved data stream is a model source, not an array of vectors/,
    );
    fs.writeFileSync(jsonFile, good.replace(/"cursor": \d+/, '"cursor": 999999'));
    assert.throws(
      resume,
      /trainer\.json: the saved data stream is at vector 999999 of an epoch, but the data holds \d+/,
    );
    fs.writeFileSync(jsonFile, good);
    const tensorFile = path.join(dir, 'trainer.safetensors');
    const tensors = readSafetensors(tensorFile);
    writeSafetensors(
      tensorFile,
      [...tensors].map(([name, t]) => ({
        name,
        shape: [name === 'adam.v.decoder' ? 5 : t.data.length],
        data: name === 'adam.v.decoder' ? t.data.subarray(0, 5) : t.data,
      })),
    );
    assert.throws(
      resume,
      /trainer\.safetensors: tensor adam\.v\.decoder has 5 values, but width 48 and input width \d+ .* need \d+/,
    );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

for (const kind of ['relu', 'jumprelu'] as const)
  test(`${kind}: normalisation is folded into the saved dictionary (θ included): it applies to raw activations`, () => {
    const [d, G] = [8, 12];
    const rng = new Rng(8);
    const data = sparseMixtures(randomDirections(G, d, rng), G, d, 2048, rng);
    const scaled = data.map((v) => v * 40); // raw activations with a large norm
    const options = {
      site: 'embed',
      width: 16,
      kind,
      l1: 1,
      lr: 1e-3,
      steps: 40,
      batchSize: 32,
      seed: 1,
    };
    const small = trainSae(new ArraySource(data, d, 2), options);
    const big = trainSae(new ArraySource(scaled, d, 2), options);
    assert.ok(Math.abs(big.scale * 40 - small.scale) < 1e-3 * small.scale);
    // The same training in normalised units: reconstructions scale with the input exactly.
    const x = scaled.subarray(0, 5 * d);
    const rBig = big.dictionary.run(x, 5).reconstruction;
    const rSmall = small.dictionary.run(data.subarray(0, 5 * d), 5).reconstruction;
    for (let i = 0; i < 5 * d; i++)
      assert.ok(
        Math.abs(rBig[i] - 40 * rSmall[i]) < 1e-2 * (1 + Math.abs(rBig[i])),
        `${rBig[i]} vs ${40 * rSmall[i]}`,
      );
    if (kind === 'jumprelu')
      big.dictionary.threshold!.forEach((t, i) => {
        const want = 40 * small.dictionary.threshold![i];
        assert.ok(Math.abs(t - want) < 1e-2 * (1e-3 + want), `θ[${i}]: ${t} vs 40 · ${want / 40}`);
      });
  });

for (const kind of ['relu', 'topk', 'jumprelu'] as const) {
  test(`${kind}: train, save (SAELens folder), load: the same encodings; a resumed run equals an unbroken one`, () => {
    const d = 8;
    const rng = new Rng(31);
    const data = sparseMixtures(randomDirections(12, d, rng), 12, d, 2048, rng);
    const options = {
      site: 'resid_1',
      width: 24,
      kind,
      k: 3,
      l1: 1,
      l0Penalty: 1,
      lr: 3e-3,
      steps: 60,
      batchSize: 32,
      resampleEvery: 20,
      resampleSamples: 256,
      seed: 2,
    };
    const trained = trainSae(new ArraySource(data, d, 2), options).dictionary;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sae-save-'));
    try {
      const folder = saveDictionary(dir, trained);
      const cfg = JSON.parse(fs.readFileSync(path.join(folder, 'cfg.json'), 'utf8'));
      assert.equal(cfg.architecture, kind === 'relu' ? 'standard' : kind);
      const loaded = loadDictionary(folder);
      assert.equal(loaded.kind, kind);
      assert.equal(loaded.k, trained.k);
      assert.deepEqual(loaded.threshold, trained.threshold);
      const x = data.subarray(0, 64 * d);
      const want = trained.encode(x, 64);
      assert.deepEqual(loaded.encode(x, 64), want);
      const active = want.filter((v) => v !== 0).length;
      assert.ok(active > 0 && active < want.length, `${active} of ${want.length} active`);
      if (kind === 'jumprelu')
        assert.ok(
          trained.threshold!.some((t) => t > 0),
          'the thresholds were trained',
        );

      const ckpt = path.join(dir, 'ckpt');
      trainSae(new ArraySource(data, d, 2), { ...options, checkpointDir: ckpt, stopAt: 35 });
      const resumed = trainSae(new ArraySource(data, d, 2), {
        ...options,
        checkpointDir: ckpt,
        resume: true,
      });
      assert.equal(resumed.resumedFrom, 35);
      for (const p of ['encoder', 'encoderBias', 'decoder', 'decoderBias', 'threshold'] as const)
        assert.deepEqual(resumed.dictionary[p], trained[p], p);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
}
