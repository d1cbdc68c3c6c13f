// The generic engine on tiny random models of every family (configs read by the families' own
// readers): gradients at every site and of every parameter against finite differences
// (test/model/finite-differences.ts; tolerance 1e-3 relative, as gptneox.test.ts), hook, seed and
// stopGradient semantics; GPT-NeoX on the generic engine against the dedicated GptNeoX engine on
// the neox-reference checkpoints; and the config readers' refusals.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parseConfig, toConfigJson } from '../../src/model/config.ts';
import { GptNeoX, makeBatch, type Batch, type SiteHook } from '../../src/model/gptneox.ts';
import { parameterLayout, zeroWeights } from '../../src/model/weights.ts';
import { Transformer } from '../../src/model/transformer.ts';
import { readFamilyConfig } from '../../src/model/families/index.ts';
import {
  namedParameters,
  readTransformerWeights,
  zeroTransformerWeights,
} from '../../src/model/families/family.ts';
import { gptNeoX } from '../../src/model/families/gptneox.ts';
import { assertDerivative, derivative, dot, maxAbsDiff, randn, rng } from './finite-differences.ts';
import { TINY_CONFIGS, tinyTransformer as tinyModel } from '../helpers/random-transformer.ts';

const sequences = [
  [5, 1, 9, 22, 0, 14, 3],
  [17, 2, 8, 11],
];
const [TOKEN_A, TOKEN_B] = [3, 7];

function metricGradient(B: number, V: number): Float32Array {
  const g = new Float32Array(B * V);
  for (let b = 0; b < B; b++) [g[b * V + TOKEN_A], g[b * V + TOKEN_B]] = [1, -1];
  return g;
}

function metric(model: Transformer, batch: Batch, hooks: Record<string, SiteHook> = {}): number {
  const { logits } = model.forward(batch, { hooks });
  return dot(logits, metricGradient(batch.batchSize, model.config.vocabSize));
}

const perturb =
  (u: Float32Array, step: number): SiteHook =>
  (act) =>
    act.map((v, i) => v + step * u[i]);

for (const family of Object.keys(TINY_CONFIGS)) {
  test(`${family}: every site's gradient matches finite differences through replace-hooks`, () => {
    const model = tinyModel(family);
    const batch = makeBatch(sequences);
    const pass = model.forward(batch, { forBackward: true });
    const grads = pass.backward(metricGradient(2, model.config.vocabSize));
    assert.deepEqual([...grads.keys()], model.sites);
    assert.ok(model.sites.includes('attn_z_1'));
    const next = rng(2);
    for (const site of model.sites) {
      const g = grads.get(site)!;
      assert.equal(g.length, pass.activation(site).length, site);
      assert.ok(
        g.some((v) => v !== 0),
        `${site}: gradient is zero`,
      );
      const u = randn(g.length, next);
      const fd = derivative((step) => metric(model, batch, { [site]: perturb(u, step) }));
      assertDerivative(`${family} ${site}`, fd, g, u, 1e-3);
    }
  });

  test(`${family}: every parameter's gradient matches finite differences`, () => {
    const model = tinyModel(family, 3);
    const batch = makeBatch(sequences);
    const pg = zeroTransformerWeights(model.config);
    model
      .forward(batch, { forBackward: true })
      .backward(metricGradient(2, model.config.vocabSize), { parameterGradients: pg });
    const gradByName = new Map(namedParameters(pg));
    const next = rng(4);
    for (const [name, t] of namedParameters(model.weights)) {
      const g = gradByName.get(name)!;
      const u = randn(t.length, next);
      if (model.config.rotaryDims === 0 && name.endsWith('attn.kBias')) {
        // Without rotary, q·b_k is the same for every key of a query: softmax ignores it, so the
        // gradient is exactly 0 and a difference would only see float32 rounding.
        assert.ok(
          Math.sqrt(dot(g, g)) < 1e-5,
          `${family} ${name}: gradient ${Math.sqrt(dot(g, g))}`,
        );
        continue;
      }
      const base = Float32Array.from(t);
      const fd = derivative((step) => {
        for (let i = 0; i < t.length; i++) t[i] = base[i] + step * u[i];
        const value = metric(model, batch);
        t.set(base);
        return value;
      });
      assertDerivative(`${family} ${name}`, fd, g, u, 1e-3);
    }
  });
}

test('gemma2: a stopped attn_z leaves the heads out; seeds act as vector-Jacobian products', () => {
  const model = tinyModel('gemma2', 5);
  const batch = makeBatch(sequences);
  const pass = model.forward(batch, { forBackward: true });
  const dLogits = metricGradient(2, model.config.vocabSize);
  const full = pass.backward(dLogits);
  const stopped = pass.backward(dLogits, { stopGradient: ['attn_z_1'] });
  // attn_z_1 is still reported; everything below it differs only through layer 1's heads
  assert.deepEqual(Array.from(stopped.get('attn_z_1')!), Array.from(full.get('attn_z_1')!));
  assert.ok(maxAbsDiff(stopped.get('resid_0')!, full.get('resid_0')!) > 1e-6);
  // The stopped gradient is the finite difference with attn_z_1 frozen at its clean value.
  const clean = Float32Array.from(pass.activation('attn_z_1'));
  const u = randn(clean.length * 0 + pass.activation('resid_0').length, rng(6));
  const fd = derivative((step) =>
    metric(model, batch, { resid_0: perturb(u, step), attn_z_1: () => clean }),
  );
  assertDerivative('gemma2 resid_0 with attn_z_1 frozen', fd, stopped.get('resid_0')!, u, 1e-3);
  // A seed r at mlp_0 alone gives d(sum r·mlp_0)/d(site) below it: at embed, by differences.
  const r = randn(pass.activation('mlp_0').length, rng(7));
  const seeded = pass.backward(null, { seeds: { mlp_0: r } });
  const v = randn(pass.activation('embed').length, rng(8));
  const fdSeed = derivative((step) => {
    let value = 0;
    model.forward(batch, {
      logits: 'none',
      hooks: {
        embed: perturb(v, step),
        mlp_0: (act) => void (value = dot(act, r)),
      },
    });
    return value;
  });
  assertDerivative('gemma2 seed at mlp_0 -> embed', fdSeed, seeded.get('embed')!, v, 1e-3);
  assert.ok(seeded.get('resid_1')!.every((x) => x === 0));
});

for (const family of Object.keys(TINY_CONFIGS)) {
  test(`${family}: a past of P positions continues the sequences exactly as the full forward`, () => {
    const model = tinyModel(family, 7);
    const full = makeBatch([...sequences, [4, 4, 19, 6, 2]]);
    const { batchSize: B, seqLen: T } = full;
    const V = model.config.vocabSize;
    const whole = model.forward(full, { forBackward: true });
    const gWhole = whole.backward(metricGradient(B, V));
    const rel = (a: ArrayLike<number>, b: ArrayLike<number>) =>
      maxAbsDiff(a, b) / Math.max(1, ...Array.from(b, Math.abs));
    for (const P of [1, 3]) {
      // the batch's positions P.. as their own batch (every example keeps >= 1 real token)
      const ids = new Int32Array(B * (T - P));
      for (let b = 0; b < B; b++) ids.set(full.ids.subarray(b * T + P, (b + 1) * T), b * (T - P));
      const rest: Batch = {
        ids,
        batchSize: B,
        seqLen: T - P,
        lengths: full.lengths.map((l) => l - P),
      };
      const suffix = (a: Float32Array) => {
        const width = a.length / (B * T);
        const out = new Float32Array(B * (T - P) * width);
        for (let b = 0; b < B; b++)
          out.set(a.subarray((b * T + P) * width, (b + 1) * T * width), b * (T - P) * width);
        return out;
      };
      const past = whole.past(P);
      for (const topLayerRows of ['all', 'last'] as const) {
        const label = `${family} P ${P}, topLayerRows ${topLayerRows}`;
        const pass = model.forward(rest, { past, forBackward: true, topLayerRows });
        assert.ok(rel(pass.logits, whole.logits) < 1e-5, `${label}: logits`);
        // A continued pass's past starts at the past's start: what generation chains step by step.
        for (const Q of [P - 1, T - 1, T]) {
          const [chained, direct] = [pass.past(Q), whole.past(Q)];
          assert.equal(chained.length, Q);
          chained.layers.forEach((l, L) => {
            assert.ok(rel(l.keys, direct.layers[L].keys) < 1e-6, `${label}: past ${Q} keys`);
            assert.ok(rel(l.values, direct.layers[L].values) < 1e-6, `${label}: values`);
          });
        }
        assert.throws(() => pass.past(T + 1), /past: length/);
        const g = pass.backward(metricGradient(B, V));
        for (const site of model.sites) {
          const e = rel(g.get(site)!, suffix(gWhole.get(site)!));
          assert.ok(e < 1e-5, `${label}: gradient at ${site} differs by ${e}`);
          if (topLayerRows === 'all' || !site.endsWith('_1'))
            assert.ok(rel(pass.activation(site), suffix(whole.activation(site))) < 1e-5, site);
          else assert.throws(() => pass.activation(site), /topLayerRows 'last'/);
        }
      }
    }
    assert.throws(() => whole.past(T + 1), /past: length/);
    assert.throws(() => model.forward(full).past(1), /forBackward/);
    const wrong = { length: 1, layers: whole.past(1).layers.slice(1) };
    assert.throws(() => model.forward(full, { past: wrong }), /layers/);
    assert.throws(
      () => model.forward(full, { topLayerRows: 'last', hooks: { mlp_1: () => {} } }),
      /hook on mlp_1/,
    );
    assert.throws(
      () => model.forward(full, { topLayerRows: 'last', logits: 'all' }),
      /needs logits 'last'/,
    );
    const top = model.forward(full, { topLayerRows: 'last', forBackward: true });
    assert.throws(
      () => top.backward(null, { seeds: { resid_1: new Float32Array(B * T * 16) } }),
      /seed at resid_1/,
    );
    assert.throws(
      () => model.forward(makeBatch([Array(13).fill(1)])),
      /exceeds the model's context of 12/,
    );
  });
}

test("topLayerRows 'last' gives the full forward's logits, site and parameter gradients", () => {
  for (const family of Object.keys(TINY_CONFIGS)) {
    const model = tinyModel(family, 9);
    const batch = makeBatch(sequences);
    const dLogits = metricGradient(2, model.config.vocabSize);
    const run = (topLayerRows: 'all' | 'last') => {
      const pass = model.forward(batch, { forBackward: true, topLayerRows });
      const pg = zeroTransformerWeights(model.config);
      const grads = pass.backward(dLogits, { parameterGradients: pg });
      return { logits: pass.logits, grads, params: namedParameters(pg) };
    };
    const all = run('all');
    const last = run('last');
    const rel = (a: ArrayLike<number>, b: ArrayLike<number>) =>
      maxAbsDiff(a, b) / Math.max(1e-30, ...Array.from(b, Math.abs));
    assert.ok(rel(last.logits, all.logits) < 1e-6, `${family} logits`);
    for (const site of model.sites)
      assert.ok(rel(last.grads.get(site)!, all.grads.get(site)!) < 1e-5, `${family} ${site}`);
    last.params.forEach(([name, g], i) => {
      const e = rel(g, all.params[i][1]);
      assert.ok(
        e < 1e-5 || Math.max(...Array.from(all.params[i][1], Math.abs)) < 1e-7,
        `${family} ${name}: ${e}`,
      );
    });
  }
});

// ---- GPT-NeoX expressed on the generic engine, against the dedicated engine.

for (const variant of ['parallel', 'sequential']) {
  test(`gpt_neox (${variant}) on the generic engine reproduces GptNeoX: logits and site gradients`, () => {
    const dir = new URL(`../fixtures/neox-reference/${variant}/`, import.meta.url);
    const neoxConfig = parseConfig(
      JSON.parse(readFileSync(new URL('config.json', dir), 'utf8')),
      'config.json',
    );
    const index = JSON.parse(readFileSync(new URL('weights.json', dir), 'utf8')) as {
      tensors: { name: string; shape: number[]; offset: number }[];
    };
    const raw = readFileSync(new URL('weights.bin', dir));
    const floats = new Float32Array(
      raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength),
    );
    const neoxWeights = zeroWeights(neoxConfig);
    const byName = new Map(index.tensors.map((t) => [t.name, t]));
    for (const p of parameterLayout(neoxConfig)) {
      const t = byName.get(p.name)!;
      p.set(neoxWeights, floats.slice(t.offset, t.offset + p.shape.reduce((a, b) => a * b, 1)));
    }
    const neox = new GptNeoX(neoxConfig, neoxWeights);
    const config = gptNeoX.readConfig(toConfigJson(neoxConfig), 'config.json');
    const byLayout = new Map(parameterLayout(neoxConfig).map((p) => [p.name, p]));
    const weights = readTransformerWeights(
      gptNeoX,
      config,
      (name) => {
        const p = byLayout.get(name);
        return p && { shape: p.shape, data: () => p.get(neoxWeights) };
      },
      'neox-reference',
    );
    const generic = new Transformer(config, weights);
    const batch = makeBatch([
      [3, 17, 25, 8, 0, 30, 12, 5, 9],
      [14, 2, 2, 27, 19, 6],
    ]);
    const a = neox.forward(batch, { forBackward: true, logits: 'all' });
    const b = generic.forward(batch, { forBackward: true, logits: 'all' });
    const rel = (x: ArrayLike<number>, y: ArrayLike<number>) =>
      maxAbsDiff(x, y) / Math.max(...Array.from(y, Math.abs));
    assert.ok(rel(b.logits, a.logits) < 1e-5, `logits differ by ${rel(b.logits, a.logits)}`);
    const dLogits = randn(a.logits.length, rng(9));
    const pgA = zeroWeights(neoxConfig);
    const ga = a.backward(dLogits, { parameterGradients: pgA });
    const pgB = zeroTransformerWeights(config);
    const gb = b.backward(dLogits, { parameterGradients: pgB });
    for (const site of neox.sites) {
      const e = rel(gb.get(site)!, ga.get(site)!);
      assert.ok(e < 1e-5, `${site}: gradients differ by ${e} of the largest`);
    }
    // attn_z_L is the input of attention.dense: its gradient times dense's input equals dense's
    // weight gradient, which both engines give.
    const e = rel(pgB.layers[1].oWeight, pgA.layers[1].denseWeight);
    assert.ok(e < 1e-5, `dense weight gradient differs by ${e}`);
    assert.ok(rel(pgB.embed, pgA.embedIn) < 1e-5);
    // Both engines have the same sites, attn_z_L included, with the same activations; a
    // replacement at attn_z_0 and a stop at attn_z_1 act the same on both.
    assert.deepEqual(neox.sites, generic.sites);
    for (const site of neox.sites) {
      const e = rel(b.activation(site), a.activation(site));
      assert.ok(e < 1e-5, `${site}: activations differ by ${e} of the largest`);
    }
    const hooks = { attn_z_0: (z: Float32Array) => z.map((v, i) => (i % 3 === 0 ? 0 : 2 * v)) };
    const ha = neox.forward(batch, { forBackward: true, logits: 'all', hooks });
    const hb = generic.forward(batch, { forBackward: true, logits: 'all', hooks });
    assert.ok(rel(ha.logits, a.logits) > 1e-3, 'the replacement changes the logits');
    assert.ok(
      rel(hb.logits, ha.logits) < 1e-5,
      `replaced logits differ by ${rel(hb.logits, ha.logits)}`,
    );
    const options = { stopGradient: ['attn_z_1'] };
    const [sa, sb] = [ha.backward(dLogits, options), hb.backward(dLogits, options)];
    assert.ok(rel(sa.get('embed')!, ga.get('embed')!) > 1e-3, 'the stop changes the gradient');
    for (const site of neox.sites) {
      const e = rel(sb.get(site)!, sa.get(site)!);
      assert.ok(e < 1e-5, `replaced attn_z_0, stopped attn_z_1: ${site} differs by ${e}`);
    }
  });
}

// ---- Config readers.

test('config readers: 4.x and 5.x rope layouts agree; computation-changing fields are refused', () => {
  const base = TINY_CONFIGS.llama;
  const { rope_theta: theta, rope_scaling: scaling, ...rest } = base;
  const v5 = readFamilyConfig(
    { ...rest, rope_parameters: { rope_theta: theta, ...(scaling as object) } },
    'v5.json',
  ).config;
  assert.deepEqual(v5, readFamilyConfig(base, 'v4.json').config);
  assert.throws(
    () => readFamilyConfig({ ...base, architectures: ['MistralForCausalLM'] }, 'c.json'),
    /c\.json: architecture MistralForCausalLM is not supported; supported: GPT2LMHeadModel, LlamaForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM, Gemma2ForCausalLM, GPTNeoXForCausalLM/,
  );
  assert.throws(
    () => readFamilyConfig({ ...base, rope_scaling: { rope_type: 'yarn', factor: 4 } }, 'c.json'),
    /c\.json: rope_scaling\.rope_type "yarn" is not implemented/,
  );
  assert.throws(
    () => readFamilyConfig({ ...base, rope_scaling: { type: 'linear', factor: 2 } }, 'c.json'),
    /rope_type "linear" is not implemented/,
  );
  assert.throws(
    () => readFamilyConfig({ ...base, hidden_act: 'relu2' }, 'c.json'),
    /c\.json: hidden_act "relu2" is not implemented/,
  );
  assert.throws(
    () =>
      readFamilyConfig(
        { ...TINY_CONFIGS.gemma2, layer_types: ['full_attention', 'full_attention'] },
        'g.json',
      ),
    /g\.json: layer_types \[full_attention, full_attention\] is not implemented/,
  );
  const gemma = readFamilyConfig(
    { ...TINY_CONFIGS.gemma2, layer_types: ['sliding_attention', 'full_attention'] },
    'g.json',
  ).config;
  assert.deepEqual(gemma.slidingWindows, [3, null]);
  assert.equal(gemma.attnScale, 1 / Math.sqrt(5));
  assert.throws(
    () => readFamilyConfig({ ...TINY_CONFIGS.gpt2, activation_function: 'quick_gelu' }, 'c.json'),
    /activation_function "quick_gelu" is not implemented/,
  );
  assert.throws(
    () => readFamilyConfig({ ...base, num_key_value_heads: 3 }, 'c.json'),
    /num_attention_heads 4 is not a multiple of num_key_value_heads 3/,
  );
  assert.throws(
    () => readFamilyConfig({ vocab_size: 3 }, 'c.json'),
    /c\.json: no "architectures" entry; supported: .* \(architectures: /,
  );
  assert.throws(
    () => readFamilyConfig({ ...base, architectures: [7] }, 'c.json'),
    /c\.json: no "architectures" entry; supported: .* \(architectures\.0: /,
  );
  assert.throws(() => readFamilyConfig([base], 'c.json'), /c\.json: no "architectures" entry/);
  assert.throws(
    () => readFamilyConfig({ ...base, hidden_size: 'big' }, 'c.json'),
    /c\.json: not a valid LlamaForCausalLM config \(.*hidden_size/,
  );
  // Qwen3's default head_dim is transformers' 128, not d / H
  const { head_dim: _, ...qwen3 } = TINY_CONFIGS.qwen3;
  assert.equal(readFamilyConfig(qwen3, 'q.json').config.headDim, 128);
});
