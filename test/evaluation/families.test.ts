// Evaluation, dashboards and SHIFT's pooling on the generic engine (transformer.ts): tiny random
// GPT-2 (sequential) and Gemma-2 (sandwich; attn_z_L is H·Dh = 24 wide, d = 16) models with random
// SAEs at every site. Against the same truths as ablation.test.ts, faithfulness.test.ts,
// dashboards/compute.test.ts and shift/probe.test.ts: splicing without ablating changes nothing;
// ablating single nodes equals a float64 brute force; the full circuit is faithful (1) and the
// empty one is not (0); logit effects are explicit sums over W_U (γ ⊙ d); pooling equals the
// full model's activations.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makeBatch, type SiteHook } from '../../src/model/gptneox.ts';
import type { Transformer } from '../../src/model/transformer.ts';
import { exampleFromIds, taskBatches, type TaskBatch } from '../../src/data/tasks.ts';
import { AblatedModel, type AblationKind } from '../../src/evaluation/ablation.ts';
import { evaluate, type EvalNode } from '../../src/evaluation/faithfulness.ts';
import { computeDashboards } from '../../src/dashboards/compute.ts';
import { pooledActivations } from '../../src/shift/probe.ts';
import type { SparseAutoencoder } from '../../src/sae/dictionary.ts';
import { Rng } from '../../src/random.ts';
import { tinyTransformer } from '../helpers/random-transformer.ts';
import { randomModelSaes } from '../helpers/random-saes.ts';

const F = 20;
const T = 4;

function world(family: string) {
  const model = tinyTransformer(family, 11);
  const saes = randomModelSaes(model, F, 12);
  const V = model.shape.vocabSize;
  const rng = new Rng(13);
  const examples = Array.from({ length: 6 }, (_, k) => {
    const cleanAnswerId = rng.int(V);
    return exampleFromIds({
      line: k + 1,
      clean: Array.from({ length: T }, () => rng.int(V)),
      patch: Array.from({ length: T }, () => rng.int(V)),
      cleanAnswerId,
      patchAnswerId: (cleanAnswerId + 1 + rng.int(V - 1)) % V,
    });
  });
  return { model, saes, batches: taskBatches(examples, 3) };
}

const maxAbs = (a: Float32Array) => a.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

// Float64 features of one activation row, from the SAE's parameters (its own width d).
function features64(sae: SparseAutoencoder, x: Float32Array, o: number): Float64Array {
  const d = sae.dIn;
  const f = new Float64Array(F);
  for (let i = 0; i < F; i++) {
    let z = sae.encoderBias[i];
    for (let j = 0; j < d; j++) z += sae.encoder[i * d + j] * (x[o + j] - sae.decoderBias[j]);
    f[i] = Math.max(0, z);
  }
  return f;
}

function decode64(sae: SparseAutoencoder, f: Float64Array): Float64Array {
  const d = sae.dIn;
  const x = Float64Array.from(sae.decoderBias);
  for (let i = 0; i < F; i++) for (let j = 0; j < d; j++) x[j] += f[i] * sae.decoder[i * d + j];
  return x;
}

interface Ablated {
  site: string;
  position: number;
  feature: number | null;
}

/**
 * Zero or patch ablation the slow way: a hook only where something is ablated, features in
 * float64 from the activation as it arrives, x' = decode(f') + ε'.
 */
function bruteForce(
  model: Transformer,
  saes: Map<string, SparseAutoencoder>,
  batch: TaskBatch,
  ablated: Ablated[],
  kind: 'zero' | 'patch',
): Float32Array {
  const { batchSize: B, seqLen: Tb } = batch.clean;
  const hooks: Record<string, SiteHook> = {};
  for (const site of new Set(ablated.map((a) => a.site))) {
    const sae = saes.get(site)!;
    const d = sae.dIn;
    const xPatch = model.forward(batch.patch!, { logits: 'none' }).activation(site);
    hooks[site] = (x) => {
      const out = x.slice();
      for (let b = 0; b < B; b++)
        for (let t = 0; t < Tb; t++) {
          const here = ablated.filter((a) => a.site === site && a.position === t);
          if (here.length === 0) continue;
          const o = (b * Tb + t) * d;
          const f = features64(sae, x, o);
          const err = Float64Array.from(decode64(sae, f), (v, j) => x[o + j] - v);
          const fP = features64(sae, xPatch, o);
          const errP = Float64Array.from(decode64(sae, fP), (v, j) => xPatch[o + j] - v);
          for (const a of here) {
            if (a.feature === null) err.set(kind === 'zero' ? new Float64Array(d) : errP);
            else f[a.feature] = kind === 'zero' ? 0 : fP[a.feature];
          }
          const xNew = decode64(sae, f);
          for (let j = 0; j < d; j++) out[o + j] = xNew[j] + err[j];
        }
      return out;
    };
  }
  return model.forward(batch.clean, { hooks, logits: 'last' }).logits;
}

for (const family of ['gpt2', 'gemma2']) {
  test(`${family}: splicing SAEs at every site (attn_z included) and ablating nothing changes no logit`, () => {
    const { model, saes, batches } = world(family);
    const runner = new AblatedModel(model, saes, batches);
    assert.deepEqual(runner.sites, model.sites);
    const spliced = runner.logits(runner.uniformMask(1));
    const plain = runner.logits(null);
    batches.forEach((_, i) =>
      assert.ok(maxAbsDiff(spliced[i], plain[i]) < 1e-5 * maxAbs(plain[i]), `batch ${i}`),
    );
    // Not vacuous: attn_z's dictionary leaves a real error and fires.
    const x = model.forward(batches[0].clean, { logits: 'none' }).activation('attn_z_1');
    const { features, error } = saes.get('attn_z_1')!.run(x, 3 * T);
    assert.ok(maxAbs(error) > 0.05 && features.filter((v) => v > 0).length > 3 * T);
  });

  test(`${family}: ablating single features and errors equals the brute-force computation`, () => {
    const { model, saes, batches } = world(family);
    const batch = batches[0];
    // A feature that fires on the patch input at (example 0, t), so that ablating it matters.
    const firing = (site: string, t: number) => {
      const sae = saes.get(site)!;
      const x = model.forward(batch.patch!, { logits: 'none' }).activation(site);
      const f = features64(sae, x, t * sae.dIn);
      return f.indexOf(Math.max(...f));
    };
    const ablated: Ablated[] = [
      { site: 'attn_z_0', position: 1, feature: firing('attn_z_0', 1) },
      { site: 'attn_z_1', position: 3, feature: null },
      { site: 'attn_0', position: 2, feature: null },
      { site: 'mlp_0', position: 3, feature: firing('mlp_0', 3) },
      { site: 'resid_1', position: 3, feature: firing('resid_1', 3) },
    ];
    const clean = model.forward(batch.clean, { logits: 'last' }).logits;
    for (const kind of ['zero', 'patch'] as AblationKind[] as ('zero' | 'patch')[]) {
      const runner = new AblatedModel(model, saes, [batch], { ablation: kind });
      const mask = runner.uniformMask(1);
      for (const a of ablated) {
        const m = mask.get(a.site)!;
        if (a.feature === null) m.errors[a.position] = 0;
        else m.features[a.position * F + a.feature] = 0;
      }
      const got = runner.logits(mask)[0];
      const want = bruteForce(model, saes, batch, ablated, kind);
      const scale = maxAbs(want);
      assert.ok(maxAbsDiff(got, want) < 1e-5 * scale, `${kind}: ${maxAbsDiff(got, want)}`);
      assert.ok(maxAbsDiff(want, clean) > 1e-2 * scale, `${kind}: the ablation changes the logits`);
    }
  });

  test(`${family}: the full circuit is faithful (1) and the empty one is not (0)`, () => {
    const { model, saes, batches } = world(family);
    const runner = new AblatedModel(model, saes, batches);
    const rng = new Rng(1);
    const all: EvalNode[] = [];
    for (const site of model.sites)
      for (let t = 0; t < T; t++) {
        for (let i = 0; i < F; i++)
          all.push({ site, kind: 'feature', feature: i, position: t, effect: rng.normal() });
        all.push({ site, kind: 'error', feature: null, position: t, effect: rng.normal() });
      }
    const full = evaluate(
      { model: runner, circuit: { nodes: all, nodeThreshold: 0 } },
      { thresholds: [] },
    );
    assert.ok(Math.abs(full.circuit.faithfulness - 1) < 1e-4, `${full.circuit.faithfulness}`);
    assert.ok(Math.abs(full.circuit.completeness) < 1e-4, `${full.circuit.completeness}`);
    assert.ok(Math.abs(full.fModel - full.fEmpty) > 0.1, 'the ablation must matter for this test');
    const empty = evaluate(
      { model: runner, circuit: { nodes: [], nodeThreshold: 0 } },
      { thresholds: [] },
    );
    assert.ok(empty.circuit.faithfulness === 0, `${empty.circuit.faithfulness}`);
    assert.ok(Math.abs(empty.circuit.completeness - 1) < 1e-4);
  });

  test(`${family}: dashboards read every site; logit effects are W_U (γ ⊙ d) by hand, none at attn_z`, () => {
    const { model, saes } = world(family);
    const c = model.config;
    const rng = new Rng(5);
    const documents = Array.from({ length: 5 }, () =>
      Array.from({ length: 3 + rng.int(8) }, () => rng.int(c.vocabSize)),
    );
    const features = [
      { site: 'attn_z_0', feature: 2 },
      { site: 'resid_1', feature: 4 },
    ];
    const result = computeDashboards({
      model,
      dictionary: (site) => saes.get(site)!,
      documents,
      features,
      ctx: 6,
      logitTokens: 3,
    });
    const [z, resid] = result.dashboards;
    assert.deepEqual([z.promoted, z.suppressed], [[], []]);
    // attn_z's activations: the encoder formula on the H·Dh-wide site, at a context's best token
    assert.ok(z.contexts.length > 0 && z.maxActivation > 0);
    const best = z.contexts[0];
    const x = model.forward(makeBatch([best.ids]), { logits: 'none' }).activation('attn_z_0');
    const sae = saes.get('attn_z_0')!;
    const f = features64(sae, x, best.at * sae.dIn)[2];
    assert.ok(Math.abs(f - best.max) < 1e-4 * Math.max(1, f), `${f} vs ${best.max}`);
    // logit effects by hand: (offset + w) ⊙ d through W_U, offset 1 for Gemma's norm
    const d = c.hiddenSize;
    const gain = model.weights.finalNorm.weight;
    const offset = c.norm === 'rmsnorm_1p' ? 1 : 0;
    const row = saes.get('resid_1')!.decoderRow(4);
    const effect = (v: number) => {
      let s = 0;
      for (let j = 0; j < d; j++)
        s += model.weights.unembed[v * d + j] * (offset + gain[j]) * row[j];
      return s;
    };
    const effects = Array.from({ length: c.vocabSize }, (_, v) => effect(v));
    const top = [...effects.keys()].sort((a, b) => effects[b] - effects[a]).slice(0, 3);
    assert.deepEqual(
      resid.promoted.map((p) => p.id),
      top,
    );
    for (const p of resid.promoted) assert.ok(Math.abs(p.value - effects[p.id]) < 1e-5);
  });

  test(`${family}: SHIFT's pooled activations run the layers up to the site only, and equal the full model's`, () => {
    const { model } = world(family);
    const seqs = [
      [1, 2, 3, 4],
      [5, 6],
    ];
    for (const site of ['attn_z_0', 'resid_0']) {
      const pooled = pooledActivations(model, seqs, site);
      const w = model.siteWidth(site);
      assert.equal(pooled.length, seqs.length * w);
      seqs.forEach((seq, i) => {
        const act = model.forward(makeBatch([seq]), { logits: 'none' }).activation(site);
        for (let j = 0; j < w; j++) {
          let mean = 0;
          for (let t = 0; t < seq.length; t++) mean += act[t * w + j] / seq.length;
          assert.ok(Math.abs(pooled[i * w + j] - mean) < 1e-5, `${site} ${i} ${j}`);
        }
      });
    }
  });
}
