// Interventions against brute force: every intervened forward equals the clean forward with the
// site replaced by an activation computed here by hand (the encoder's formula written out in
// float64, decoder rows added row by row), and generation with a KV cache equals recomputing the
// whole sequence at every step.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { GptNeoX, makeBatch, type SiteHook } from '../../src/model/gptneox.ts';
import type { LanguageModel } from '../../src/model/language-model.ts';
import { IdentityDictionary, type Dictionary } from '../../src/sae/dictionary.ts';
import type { SparseAutoencoder } from '../../src/sae/dictionary.ts';
import {
  parseIntervention,
  resolveInterventions,
  type Intervention,
} from '../../src/steer/intervention.ts';
import { interventionHooks } from '../../src/steer/hooks.ts';
import {
  cachedFeatureStats,
  computeFeatureStats,
  type FeatureStats,
} from '../../src/steer/feature-stats.ts';
import {
  generate,
  interveneOnPrompt,
  klDivergence,
  lastLogits,
  nodeActivations,
} from '../../src/steer/run.ts';
import { randomWeights, tinyConfig } from '../helpers/random-model.ts';
import { randomModelSaes } from '../helpers/random-saes.ts';
import { tinyTransformer } from '../helpers/random-transformer.ts';

const config = tinyConfig();
const neox = new GptNeoX(config, randomWeights(config, 3));
const WIDTH = 24;
const PROMPT = [3, 7, 1, 12, 5, 9];
const CORPUS = [
  [1, 2, 3, 4, 5],
  [6, 7, 8],
  [9, 10, 11, 12, 13, 14, 15],
  [2, 4, 6, 8, 10, 12],
];

function world(model: LanguageModel) {
  const saes = randomModelSaes(model, WIDTH, 5);
  const dictionary = (site: string): Dictionary => saes.get(site)!;
  const statsCache = new Map<string, FeatureStats>();
  const stats = (site: string) => {
    if (!statsCache.has(site))
      statsCache.set(site, computeFeatureStats(model, dictionary(site), CORPUS, 3));
    return statsCache.get(site)!;
  };
  const resolve = (...texts: string[]) =>
    resolveInterventions(texts.map(parseIntervention), { model, dictionary, stats });
  const hooksFor = (ivs: Intervention[], ids = PROMPT) =>
    interventionHooks(ivs, { dictionary, batchSize: 1, offset: 0, promptLengths: [ids.length] });
  return { model, saes, dictionary, stats, resolve, hooksFor };
}

/** Feature i's activation at row x, written out: relu(W_E[i]·(x − b_D) + b_E[i]) in float64. */
function featureByHand(sae: SparseAutoencoder, x: Float32Array, i: number): number {
  const d = sae.dIn;
  let z = sae.encoderBias[i];
  for (let j = 0; j < d; j++) z += sae.encoder[i * d + j] * (x[j] - sae.decoderBias[j]);
  return Math.max(0, z);
}

/** x̂ of row x by hand: b_D + Σ_i f_i W_D[i]. */
function reconstructionByHand(sae: SparseAutoencoder, x: Float32Array): Float64Array {
  const d = sae.dIn;
  const out = Float64Array.from(sae.decoderBias);
  for (let i = 0; i < sae.width; i++) {
    const f = featureByHand(sae, x, i);
    for (let j = 0; j < d; j++) out[j] += f * sae.decoder[i * d + j];
  }
  return out;
}

function allLogits(model: LanguageModel, hooks: Record<string, SiteHook>, ids = PROMPT) {
  return model.forward(makeBatch([ids]), { hooks, logits: 'all' }).logits;
}

/** The clean activation of `site`, with `upstream` hooks applied (what the site then sees). */
function activation(model: LanguageModel, site: string, upstream: Record<string, SiteHook> = {}) {
  return model.forward(makeBatch([PROMPT]), { hooks: upstream, logits: 'none' }).activation(site);
}

function assertClose(a: Float32Array, b: Float32Array, tol: number, label: string) {
  assert.equal(a.length, b.length, `${label}: lengths`);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  assert.ok(worst <= tol, `${label}: differs by ${worst} (tolerance ${tol})`);
}

/** Copies `act` and changes rows `positions` with `change(row, t)` (returns the new row). */
function replaceRows(
  act: Float32Array,
  d: number,
  positions: number[],
  change: (row: Float32Array, t: number) => ArrayLike<number>,
): Float32Array {
  const out = act.slice();
  for (const t of positions) out.set(change(act.slice(t * d, (t + 1) * d), t), t * d);
  return out;
}

const last = PROMPT.length - 1;

test('zero, set, scale and mean of a feature equal x + (v − f_i)·d_i computed by hand', () => {
  const w = world(neox);
  const site = 'resid_0';
  const sae = w.saes.get(site)!;
  const d = sae.dIn;
  const x = activation(neox, site);
  // A feature active at the last position, so that every op changes something.
  const row = x.slice(last * d, (last + 1) * d);
  const i = [...Array(WIDTH).keys()].find((k) => featureByHand(sae, row, k) > 0.05)!;
  assert.ok(i !== undefined, 'no active feature at the last position');
  const clean = allLogits(neox, {});
  const cases: [string, (f: number) => number][] = [
    ['zero', () => 0],
    ['set=1.75', () => 1.75],
    ['scale=3', (f) => 3 * f],
    ['mean', () => w.stats(site).mean[i]],
  ];
  for (const [op, value] of cases) {
    const ivs = w.resolve(`${site}:${i}@-1=${op}`);
    const byHand = replaceRows(x, d, [last], (r) => {
      const f = featureByHand(sae, r, i);
      return Array.from(r, (v, j) => v + (value(f) - f) * sae.decoder[i * d + j]);
    });
    const expected = allLogits(neox, { [site]: () => byHand });
    const got = allLogits(neox, w.hooksFor(ivs));
    assertClose(got, expected, 1e-5, op);
    // Causal: earlier positions' logits are untouched, the last one moved.
    const V = config.vocabSize;
    assertClose(got.subarray(0, last * V), clean.subarray(0, last * V), 1e-6, `${op}: earlier`);
    assert.ok(klDivergence(clean.subarray(last * V), got.subarray(last * V)) > 1e-8, op);
  }
  // The corpus mean by hand: every real token of the corpus, zeros included.
  let sum = 0;
  let n = 0;
  for (const doc of CORPUS) {
    const a = neox.forward(makeBatch([doc]), { logits: 'none' }).activation(site);
    for (let t = 0; t < doc.length; t++) sum += featureByHand(sae, a.slice(t * d, (t + 1) * d), i);
    n += doc.length;
  }
  assert.ok(Math.abs(w.stats(site).mean[i] - sum / n) < 1e-5, 'mean activation');
  assert.equal(w.stats(site).tokens, n);
});

test('zeroing a feature equals splicing the SAE with that feature at 0 and the error kept', () => {
  const w = world(neox);
  const site = 'mlp_1';
  const sae = w.saes.get(site)!;
  const x = activation(neox, site);
  const T = PROMPT.length;
  const f = sae.encode(x, T);
  const i = [...Array(WIDTH).keys()].sort((a, b) => f[b] - f[a])[0]; // the strongest at t = 0
  const error = Float32Array.from(x, (v, k) => v - sae.decode(f, T)[k]);
  const spliced = f.slice();
  for (let t = 0; t < T; t++) spliced[t * WIDTH + i] = 0;
  const xSpliced = sae.decode(spliced, T).map((v, k) => v + error[k]);
  const expected = allLogits(neox, { [site]: () => xSpliced });
  assertClose(allLogits(neox, w.hooksFor(w.resolve(`${site}:${i}@all=zero`))), expected, 1e-5, '');
});

test("the error node: zero leaves x̂, scale=k gives x̂ + kε, mean gives x̂ + the corpus's mean ε", () => {
  const w = world(neox);
  const site = 'attn_1';
  const sae = w.saes.get(site)!;
  const d = sae.dIn;
  const x = activation(neox, site);
  const errorMean = w.stats(site).errorMean;
  const cases: [string, (eps: number, j: number) => number][] = [
    ['zero', () => 0],
    ['scale=-2', (eps) => -2 * eps],
    ['mean', (_, j) => errorMean[j]],
  ];
  for (const [op, next] of cases) {
    const byHand = replaceRows(x, d, [1, 3], (r) => {
      const xHat = reconstructionByHand(sae, r);
      return Array.from(r, (v, j) => xHat[j] + next(v - xHat[j], j));
    });
    const expected = allLogits(neox, { [site]: () => byHand });
    assertClose(
      allLogits(neox, w.hooksFor(w.resolve(`${site}:err@1,3=${op}`))),
      expected,
      1e-5,
      op,
    );
  }
});

test('steering adds α·d_i, absolute or in units of the max activation on the corpus', () => {
  const w = world(neox);
  const site = 'embed';
  const sae = w.saes.get(site)!;
  const d = sae.dIn;
  const x = activation(neox, site);
  const i = [...Array(WIDTH).keys()].find((k) => w.stats(site).max[k] > 0)!;
  // The max by hand over the corpus.
  let max = 0;
  for (const doc of CORPUS) {
    const a = neox.forward(makeBatch([doc]), { logits: 'none' }).activation(site);
    for (let t = 0; t < doc.length; t++)
      max = Math.max(max, featureByHand(sae, a.slice(t * d, (t + 1) * d), i));
  }
  assert.ok(Math.abs(w.stats(site).max[i] - max) < 1e-5);
  for (const [op, alpha] of [
    ['steer=4', 4],
    ['steer=-1.5max', -1.5 * max],
  ] as const) {
    const byHand = replaceRows(x, d, [0, 2, 4], (r) =>
      Array.from(r, (v, j) => v + alpha * sae.decoder[i * d + j]),
    );
    const expected = allLogits(neox, { [site]: () => byHand });
    assertClose(
      allLogits(neox, w.hooksFor(w.resolve(`${site}:${i}@0,2,4=${op}`))),
      expected,
      1e-5,
      op,
    );
  }
});

test('interventions at several sites apply in layer order, downstream recomputing', () => {
  const w = world(neox);
  const [early, late] = ['resid_0', 'mlp_1'];
  const [se, sl] = [w.saes.get(early)!, w.saes.get(late)!];
  const d = se.dIn;
  // Given latest first: the order of --do does not matter.
  const ivs = w.resolve(`${late}:5@all=set=2`, `${early}:3@-1=steer=3`, `${early}:err@0=zero`);
  assert.deepEqual(
    ivs.map((iv) => iv.site),
    [early, early, late],
  );
  const earlyHand = replaceRows(activation(neox, early), d, [0, last], (r, t) => {
    if (t === last) return Array.from(r, (v, j) => v + 3 * se.decoder[3 * d + j]);
    return Array.from(reconstructionByHand(se, r));
  });
  const upstream = { [early]: () => earlyHand };
  // The late site as the changed upstream makes it, then changed by hand.
  const lateHand = replaceRows(activation(neox, late, upstream), d, [...PROMPT.keys()], (r) => {
    const f = featureByHand(sl, r, 5);
    return Array.from(r, (v, j) => v + (2 - f) * sl.decoder[5 * d + j]);
  });
  const expected = allLogits(neox, { ...upstream, [late]: () => lateHand });
  assertClose(allLogits(neox, w.hooksFor(ivs)), expected, 1e-5, 'two sites');
});

test('neurons: zero and set act on one dimension of the site', () => {
  const site = 'mlp_0';
  const dictionary = (s: string): Dictionary => new IdentityDictionary(s, config.hiddenSize);
  const ivs = resolveInterventions([parseIntervention(`${site}:7@2=set=0.5`)], {
    model: neox,
    dictionary,
  });
  const d = config.hiddenSize;
  const byHand = replaceRows(activation(neox, site), d, [2], (r) => {
    r[7] = 0.5;
    return r;
  });
  const hooks = interventionHooks(ivs, {
    dictionary,
    batchSize: 1,
    offset: 0,
    promptLengths: [PROMPT.length],
  });
  assertClose(allLogits(neox, hooks), allLogits(neox, { [site]: () => byHand }), 1e-5, 'neuron');
  assert.throws(
    () =>
      resolveInterventions([parseIntervention(`${site}:${d}=zero`)], { model: neox, dictionary }),
    new RegExp(`feature ${d} is out of range: the site at ${site} has ${d} neurons`),
  );
  assert.throws(
    () =>
      resolveInterventions([parseIntervention(`${site}:err=zero`)], { model: neox, dictionary }),
    /neurons have no error node/,
  );
});

for (const [engine, model] of [
  ['GptNeoX', neox],
  ['Transformer (llama)', tinyTransformer('llama', 2)],
] as const) {
  test(`${engine}: generation with the interventions held equals recomputing every step in full`, () => {
    const w = world(model);
    const prompt = PROMPT.slice(0, 4);
    const ivs = w.resolve(
      'resid_0:2@all+generated=steer=2',
      'mlp_1:4@-1=zero',
      'attn_0:err@1=scale=0',
    );
    for (const temperature of [0, 1.5]) {
      const steps = 5;
      const cached: Float32Array[] = [];
      const tokens = generate(w, prompt, steps, ivs, {
        temperature,
        seed: 9,
        onLogits: (l) => cached.push(l.slice()),
      });
      assert.equal(tokens.length, steps);
      // Full recomputation: the whole sequence so far, interventions at their absolute positions.
      for (let s = 0; s < steps; s++) {
        const ids = [...prompt, ...tokens.slice(0, s)];
        const hooks = interventionHooks(ivs, {
          dictionary: w.dictionary,
          batchSize: 1,
          offset: 0,
          promptLengths: [prompt.length],
        });
        const full = model.forward(makeBatch([ids]), { hooks, logits: 'last' }).logits;
        assertClose(cached[s], full, 1e-5, `${engine} T=${temperature} step ${s}`);
      }
      // The first step is the prompt's intervened next-token distribution.
      assertClose(cached[0], lastLogits(w, prompt, ivs), 1e-6, 'first step');
    }
    // Without interventions generation differs somewhere (the intervention does something).
    const plain = generate(w, prompt, 5, [], { onLogits: () => {} });
    const steered: Float32Array[] = [];
    generate(w, prompt, 5, ivs, { onLogits: (l) => steered.push(l.slice()) });
    assert.equal(plain.length, 5);
    assert.ok(klDivergence(lastLogits(w, prompt), steered[0]) > 1e-6);
  });
}

test('parse errors name the bad part and what was expected', () => {
  const w = world(neox);
  const cases: [string, RegExp][] = [
    ['resid_0', /no "=OP"/],
    ['resid_0=zero', /no ":FEATURE"/],
    ['resid_0:x=zero', /feature "x" is not a feature index; expected a non-negative integer/],
    ['resid_0:1@first=zero', /position "first" is not a token position; expected an integer/],
    ['resid_0:1=ablate', /operation "ablate" is unknown; expected zero, mean, set=V/],
    ['resid_0:1=set=big', /set value "big" is not a number/],
    ['resid_0:1=steer=2maxx', /steering coefficient/],
    ['resid_0:1@1@2=zero', /more than one "@"/],
  ];
  for (const [text, re] of cases) assert.throws(() => parseIntervention(text), re, text);
  assert.throws(
    () => w.resolve('resid_9:1=zero'),
    /unknown site "resid_9"; this model's sites are embed, attn_z_0, attn_0, mlp_0, resid_0, attn_z_1, attn_1/,
  );
  assert.throws(
    () => w.resolve(`resid_0:${WIDTH}=zero`),
    new RegExp(`feature ${WIDTH} is out of range: the dictionary at resid_0 has ${WIDTH} features`),
  );
  assert.throws(() => w.resolve('resid_0:err=set=1'), /error node is a vector/);
  assert.throws(() => w.resolve('resid_0:1=zero', 'resid_0:1@0=scale=2'), /intervened on twice/);
  assert.throws(() => lastLogits(w, PROMPT, w.resolve('resid_0:1@6=zero')), /outside the prompt/);
  assert.throws(() => lastLogits(w, PROMPT, w.resolve('resid_0:1@-7=zero')), /outside the prompt/);
  const dead = [...Array(WIDTH).keys()].find((k) => w.stats('resid_1').max[k] === 0);
  if (dead !== undefined)
    assert.throws(() => w.resolve(`resid_1:${dead}=steer=1max`), /never fires on the corpus/);
});

test("nodeActivations: the circuit's nodes read from the intervened run, by hand", () => {
  const w = world(neox);
  const site = 'resid_0';
  const sae = w.saes.get(site)!;
  const d = sae.dIn;
  const ivs = w.resolve(`${site}:4@-1=steer=5`);
  const byHand = replaceRows(activation(neox, site), d, [last], (r) =>
    Array.from(r, (v, j) => v + 5 * sae.decoder[4 * d + j]),
  );
  const nodes = [
    { site: 'mlp_1', feature: 6, position: last },
    { site: 'resid_1', feature: null, position: last },
    { site: 'attn_1', feature: 2, position: 2 },
  ];
  const { before, after } = nodeActivations(w, PROMPT, nodes, ivs);
  nodes.forEach((n, k) => {
    const s = w.saes.get(n.site)!;
    for (const [got, upstream] of [
      [before[k], {}],
      [after[k], { [site]: () => byHand }],
    ] as const) {
      const x = activation(neox, n.site, upstream).slice(n.position * d, (n.position + 1) * d);
      let want: number;
      if (n.feature !== null) want = featureByHand(s, x, n.feature);
      else {
        const xHat = reconstructionByHand(s, x);
        want = Math.hypot(...Array.from(x, (v, j) => v - xHat[j]));
      }
      assert.ok(Math.abs(got - want) < 1e-4, `${n.site}/${n.feature}: ${got} vs ${want}`);
    }
  });
  // The last-position nodes downstream of the steered row moved; position 2 did not.
  assert.ok(Math.abs(after[1] - before[1]) > 1e-3);
  assert.equal(after[2], before[2]);
});

test('interveneOnPrompt: the top tokens, KL and continuations agree with their parts', () => {
  const w = world(neox);
  const ivs = w.resolve('mlp_0:3@all+generated=steer=3');
  const o = interveneOnPrompt(w, PROMPT, ivs, { top: 5, generate: 3 });
  assertClose(o.logitsBefore, lastLogits(w, PROMPT), 0, 'before');
  assertClose(o.logitsAfter, lastLogits(w, PROMPT, ivs), 0, 'after');
  assert.equal(o.top.length, 5);
  for (const r of o.top)
    assert.ok(Math.abs(r.logitChange - (o.logitsAfter[r.id] - o.logitsBefore[r.id])) < 1e-6);
  assert.equal(o.kl, klDivergence(o.logitsBefore, o.logitsAfter));
  assert.deepEqual(o.generated, {
    without: generate(w, PROMPT, 3),
    with: generate(w, PROMPT, 3, ivs),
  });
});

test('cachedFeatureStats: written once, read back equal, recomputed when an input file changes or the cache is damaged', () => {
  const w = world(neox);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sfc-stats-'));
  try {
    const input = path.join(dir, 'corpus.txt');
    fs.writeFileSync(input, 'one\n');
    let computed = 0;
    const compute = () => {
      computed++;
      return w.stats('resid_1');
    };
    const cache = path.join(dir, 'cache');
    const first = cachedFeatureStats(cache, 'resid_1', [input], compute);
    const again = cachedFeatureStats(cache, 'resid_1', [input], compute);
    assert.equal(computed, 1);
    assert.deepEqual(again, first);
    // Another corpus (size and time change): another key, computed again.
    fs.writeFileSync(input, 'one\ntwo\n');
    fs.utimesSync(input, new Date(), new Date(Date.now() + 5000));
    cachedFeatureStats(cache, 'resid_1', [input], compute);
    assert.equal(computed, 2);
    assert.equal(fs.readdirSync(cache).length, 2);
    // A damaged file (not JSON, or not the schema) is recomputed and replaced.
    for (const [k, damage] of ['not json{', '{"version": 1}'].entries()) {
      for (const f of fs.readdirSync(cache)) fs.writeFileSync(path.join(cache, f), damage);
      const repaired = cachedFeatureStats(cache, 'resid_1', [input], compute);
      assert.equal(computed, 3 + k);
      assert.deepEqual(repaired, first);
    }
  } finally {
    fs.rmSync(dir, { recursive: true });
  }
});
