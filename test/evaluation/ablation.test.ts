import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GptNeoX, type SiteHook } from '../../src/model/gptneox.ts';
import {
  exampleFromIds,
  taskBatches,
  type TaskBatch,
  type TaskExample,
} from '../../src/data/tasks.ts';
import { AblatedModel, type AblationKind, type KeepMask } from '../../src/evaluation/ablation.ts';
import type { SparseAutoencoder } from '../../src/sae/dictionary.ts';
import { Rng } from '../../src/random.ts';
import { randomWeights, tinyConfig } from '../helpers/random-model.ts';
import { randomSaes } from '../helpers/random-saes.ts';

// B examples, T tokens, d model width, F SAE width, V vocabulary.
const config = tinyConfig();
const model = new GptNeoX(config, randomWeights(config, 3));
const F = 24;
const d = config.hiddenSize;
const V = config.vocabSize;
const saes = randomSaes(config, F, 5);

function makeExamples(seed: number, count: number, T: number): TaskExample[] {
  const rng = new Rng(seed);
  return Array.from({ length: count }, (_, k) => {
    const clean = Array.from({ length: T }, () => rng.int(V));
    const patch = Array.from({ length: T }, () => rng.int(V));
    const cleanAnswerId = rng.int(V);
    const patchAnswerId = (cleanAnswerId + 1 + rng.int(V - 1)) % V;
    return exampleFromIds({ line: k + 1, clean, patch, cleanAnswerId, patchAnswerId });
  });
}

// The sites with SAEs (the organism's; attn_z_L has none and runs as it is).
const allSites = [...saes.keys()];
const dictionaries = (sites: string[]) => new Map(sites.map((s) => [s, saes.get(s)!]));

// Float64 features of one activation row, straight from the SAE's parameters.
function features64(sae: SparseAutoencoder, x: Float32Array, o: number): Float64Array {
  const f = new Float64Array(F);
  for (let i = 0; i < F; i++) {
    let z = sae.encoderBias[i];
    for (let j = 0; j < d; j++) z += sae.encoder[i * d + j] * (x[o + j] - sae.decoderBias[j]);
    f[i] = Math.max(0, z);
  }
  return f;
}

function decode64(sae: SparseAutoencoder, f: Float64Array): Float64Array {
  const x = Float64Array.from(sae.decoderBias);
  for (let i = 0; i < F; i++) for (let j = 0; j < d; j++) x[j] += f[i] * sae.decoder[i * d + j];
  return x;
}

// Every (b, t)'s features and error at a site when the model reads the patch inputs untouched.
function patchStates(batch: TaskBatch, site: string) {
  const sae = saes.get(site)!;
  const x = model.forward(batch.patch!, { logits: 'none' }).activation(site);
  const { batchSize: B, seqLen: T } = batch.patch!;
  return Array.from({ length: B }, (_, b) =>
    Array.from({ length: T }, (_, t) => {
      const f = features64(sae, x, (b * T + t) * d);
      const xHat = decode64(sae, f);
      return { f, err: Float64Array.from(xHat, (v, j) => x[(b * T + t) * d + j] - v) };
    }),
  );
}

interface Ablated {
  site: string;
  position: number;
  feature: number | null; // null: the error node
}

/**
 * The slow, obvious way: a plain forward with a hook only where something is ablated, computing
 * features in float64 from the activation as it arrives and writing x' = decode(f') + ε'.
 */
function bruteForce(batch: TaskBatch, ablated: Ablated[], kind: AblationKind): Float32Array {
  const { batchSize: B, seqLen: T } = batch.clean;
  const states = new Map(
    [...new Set(ablated.map((a) => a.site))].map((s) => [s, patchStates(batch, s)]),
  );
  const value = (site: string, b: number, t: number) => {
    const s = states.get(site)!;
    if (kind === 'zero') return { f: new Float64Array(F), err: new Float64Array(d) };
    if (kind === 'patch') return s[b][t];
    const f = new Float64Array(F);
    const err = new Float64Array(d);
    for (let e = 0; e < B; e++) {
      for (let i = 0; i < F; i++) f[i] += s[e][t].f[i] / B;
      for (let j = 0; j < d; j++) err[j] += s[e][t].err[j] / B;
    }
    return { f, err };
  };
  const hooks: Record<string, SiteHook> = {};
  for (const site of states.keys()) {
    const sae = saes.get(site)!;
    hooks[site] = (x) => {
      const out = x.slice();
      for (let b = 0; b < B; b++) {
        for (let t = 0; t < T; t++) {
          const here = ablated.filter((a) => a.site === site && a.position === t);
          if (here.length === 0) continue;
          const o = (b * T + t) * d;
          const f = features64(sae, x, o);
          const xHat = decode64(sae, f);
          const err = Float64Array.from(xHat, (v, j) => x[o + j] - v);
          const abl = value(site, b, t);
          for (const a of here) {
            if (a.feature === null) err.set(abl.err);
            else f[a.feature] = abl.f[a.feature];
          }
          const xNew = decode64(sae, f);
          for (let j = 0; j < d; j++) out[o + j] = xNew[j] + err[j];
        }
      }
      return out;
    };
  }
  return model.forward(batch.clean, { hooks, logits: 'last' }).logits;
}

function maskWithout(runner: AblatedModel, ablated: Ablated[]): KeepMask {
  const mask = runner.uniformMask(1);
  for (const a of ablated) {
    const m = mask.get(a.site)!;
    if (a.feature === null) m.errors[a.position] = 0;
    else m.features[a.position * F + a.feature] = 0;
  }
  return mask;
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

function maxAbs(a: Float32Array): number {
  return a.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
}

test('splicing SAEs with their error terms everywhere and ablating nothing changes no logit', () => {
  const batches = taskBatches(makeExamples(1, 6, 5), 3);
  const runner = new AblatedModel(model, dictionaries(allSites), batches);
  const spliced = runner.logits(runner.uniformMask(1));
  const plain = runner.logits(null);
  for (let i = 0; i < batches.length; i++) {
    assert.ok(maxAbsDiff(spliced[i], plain[i]) < 1e-5 * maxAbs(plain[i]), `batch ${i}`);
  }
  // Not vacuous: the dictionaries leave a real error term and fire on these inputs.
  const x = model.forward(batches[0].clean, { logits: 'none' }).activation('resid_0');
  const { features, error } = saes.get('resid_0')!.run(x, 15);
  assert.ok(maxAbs(error) > 0.1);
  assert.ok(features.filter((v) => v > 0).length > 15);
});

test('ablating single features and error nodes equals the brute-force computation', () => {
  const batch = taskBatches(makeExamples(2, 4, 5), 4)[0];
  // Features that fire at the chosen places, so that ablating them matters.
  const busiest = (site: string, t: number) => {
    const s = patchStates(batch, site);
    let best = 0;
    for (let i = 0; i < F; i++)
      if (s[0][t].f[i] + s[1][t].f[i] > s[0][t].f[best] + s[1][t].f[best]) best = i;
    return best;
  };
  const ablated: Ablated[] = [
    { site: 'attn_0', position: 2, feature: busiest('attn_0', 2) },
    { site: 'resid_0', position: 3, feature: busiest('resid_0', 3) },
    { site: 'resid_0', position: 3, feature: null },
    { site: 'mlp_1', position: 4, feature: null },
    { site: 'resid_1', position: 4, feature: busiest('resid_1', 4) },
  ];
  const clean = model.forward(batch.clean, { logits: 'last' }).logits;
  for (const kind of ['mean', 'zero', 'patch'] as const) {
    const runner = new AblatedModel(model, dictionaries(allSites), [batch], { ablation: kind });
    const got = runner.logits(maskWithout(runner, ablated))[0];
    const want = bruteForce(batch, ablated, kind);
    const scale = maxAbs(want);
    assert.ok(maxAbsDiff(got, want) < 1e-5 * scale, `${kind}: ${maxAbsDiff(got, want)}`);
    assert.ok(maxAbsDiff(want, clean) > 1e-2 * scale, `${kind}: the ablation changes the logits`);
  }
});

test('kept nodes are recomputed from the already-ablated upstream, not frozen', () => {
  // Ablating the error at resid_0 changes what reaches mlp_1, whose features are all kept: the
  // result must differ from freezing mlp_1 at its clean value.
  const batch = taskBatches(makeExamples(4, 3, 4), 3)[0];
  const ablated: Ablated[] = [{ site: 'resid_0', position: 3, feature: null }];
  const runner = new AblatedModel(model, dictionaries(allSites), [batch]);
  const got = runner.logits(maskWithout(runner, ablated))[0];
  assert.ok(maxAbsDiff(got, bruteForce(batch, ablated, 'mean')) < 1e-5 * maxAbs(got));
  const cleanMlp = model.forward(batch.clean, { logits: 'none' }).activation('mlp_1').slice();
  const frozen = bruteForceWithFrozen(batch, ablated, 'mlp_1', cleanMlp);
  assert.ok(maxAbsDiff(got, frozen) > 1e-3 * maxAbs(got));
});

// The resid_0 error ablated at one position (mean ablation), and `frozenSite` set to a fixed array.
function bruteForceWithFrozen(
  batch: TaskBatch,
  ablated: Ablated[],
  frozenSite: string,
  frozen: Float32Array,
): Float32Array {
  const { batchSize: B, seqLen: T } = batch.clean;
  const s = patchStates(batch, 'resid_0');
  const sae = saes.get('resid_0')!;
  const hooks: Record<string, SiteHook> = {
    resid_0: (x) => {
      const out = x.slice();
      for (let b = 0; b < B; b++) {
        const t = ablated[0].position;
        const o = (b * T + t) * d;
        const xHat = decode64(sae, features64(sae, x, o));
        for (let j = 0; j < d; j++) {
          let mean = 0;
          for (let e = 0; e < B; e++) mean += s[e][t].err[j] / B;
          out[o + j] = xHat[j] + mean;
        }
      }
      return out;
    },
    [frozenSite]: () => frozen,
  };
  return model.forward(batch.clean, { hooks, logits: 'last' }).logits;
}

test('mean ablation over one example equals patching', () => {
  const batch = taskBatches(makeExamples(6, 1, 5), 1)[0];
  const mean = new AblatedModel(model, dictionaries(allSites), [batch], { ablation: 'mean' });
  const patch = new AblatedModel(model, dictionaries(allSites), [batch], { ablation: 'patch' });
  const rng = new Rng(9);
  const mask = mean.uniformMask(1);
  for (const m of mask.values()) {
    for (let i = 0; i < m.features.length; i++) m.features[i] = rng.next() < 0.5 ? 1 : 0;
    for (let t = 0; t < m.errors.length; t++) m.errors[t] = rng.next() < 0.5 ? 1 : 0;
  }
  const a = mean.logits(mask)[0];
  const b = patch.logits(mask)[0];
  assert.ok(maxAbsDiff(a, b) <= 1e-6 * maxAbs(a));
  assert.ok(maxAbsDiff(a, model.forward(batch.clean).logits) > 1e-2 * maxAbs(a));
  // Repeatable: the scratch buffers reused between calls carry no state from one to the next.
  assert.equal(mean.metric(mask), mean.metric(mask));
});

test("the metric is discovery's: the mean of logit[patch answer] - logit[clean answer]", () => {
  const examples = makeExamples(7, 5, 3);
  const runner = new AblatedModel(model, dictionaries(['resid_1']), taskBatches(examples, 2));
  let sum = 0;
  for (const e of examples) {
    const l = model.forward(taskBatches([e], 1)[0].clean).logits;
    sum += l[e.patchAnswerId!] - l[e.cleanAnswerId];
  }
  assert.ok(Math.abs(runner.metricModel() - sum / 5) < 1e-5);
  // Without patch answers (and prefixes): m = -logit[clean answer], as discovery's zero ablation.
  const single = examples.map((e) => ({
    ...e,
    patch: null,
    patchPrefix: null,
    patchAnswerId: null,
  }));
  const zero = new AblatedModel(model, dictionaries(['resid_1']), taskBatches(single, 2), {
    ablation: 'zero',
  });
  let raw = 0;
  for (const e of single)
    raw -= model.forward(taskBatches([e], 1)[0].clean).logits[e.cleanAnswerId];
  assert.ok(Math.abs(zero.metricModel() - raw / 5) < 1e-5);
});

test('data mixing examples with and without patch answers is refused, naming the lines', () => {
  const examples = makeExamples(7, 6, 3);
  // Two batches of 3: the second lacks patch answers (the old code averaged raw logits with it).
  const mixed = examples.map((e, i) => (i >= 3 ? { ...e, patchAnswerId: null } : e));
  assert.throws(
    () => new AblatedModel(model, dictionaries(['resid_1']), taskBatches(mixed, 3)),
    /3 of 6 examples have a patch_prefix and a patch_answer .* and 3 do not .*cannot be averaged.*lines 1, 2, 3/,
  );
  const oneWithout = examples.map((e, i) => (i === 4 ? { ...e, patchAnswerId: null } : e));
  assert.throws(
    () => new AblatedModel(model, dictionaries(['resid_1']), taskBatches(oneWithout, 2)),
    /5 of 6 examples .* \(without them: line 5\)/,
  );
});

test('bad inputs are refused with a clear message', () => {
  const batches = taskBatches(makeExamples(8, 2, 3), 2);
  assert.throws(
    () =>
      new AblatedModel(model, dictionaries(allSites), batches, {
        ablation: 'median' as AblationKind,
      }),
    /ablation: expected one of mean, zero, patch, got "median"/,
  );
  assert.throws(() => new AblatedModel(model, dictionaries(allSites), []), /no examples/);
  const single = makeExamples(8, 2, 3).map((e) => ({ ...e, patch: null, patchPrefix: null }));
  assert.throws(
    () =>
      new AblatedModel(model, dictionaries(allSites), taskBatches(single, 2), {
        ablation: 'patch',
      }),
    /"patch" needs patch inputs/,
  );
  const wrong = new Map([['resid_9', saes.get('resid_0')!]]);
  assert.throws(() => new AblatedModel(model, wrong, batches), /site resid_9 is not a site/);
  const runner = new AblatedModel(model, dictionaries(['resid_0']), batches);
  assert.throws(() => runner.metric(new Map()), /site resid_0 needs features \[3\*24\].*missing/);
});
