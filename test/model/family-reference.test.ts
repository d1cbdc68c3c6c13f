// The generic engine against independent PyTorch implementations of each family
// (scripts/make-family-references.py -> test/fixtures/families/<family>/: config.json and
// model.safetensors as Hugging Face writes them, expected logits and gradients computed in float64
// by torch autograd). Logits and every site's gradient must agree to 1e-4 of the tensor's largest
// value (float32 engine against float64 truth); parameter gradients are compared in the
// checkpoint's own layout through the weight map: for a random u in the tensor's HF layout,
// <g_HF, u> must equal <g_canonical, map(u)>, since the map only moves entries (transposes,
// splits, ties), to 1e-4 of |g_HF| |u|.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { openSafetensors } from '../../src/io/safetensors.ts';
import { makeBatch } from '../../src/model/gptneox.ts';
import { Transformer } from '../../src/model/transformer.ts';
import { readFamilyConfig } from '../../src/model/families/index.ts';
import {
  namedParameters,
  readTransformerWeights,
  zeroTransformerWeights,
  type TransformerConfig,
} from '../../src/model/families/family.ts';
import { dot, randn, rng } from './finite-differences.ts';

interface Reference {
  ids: number[][];
  lengths: number[];
  logits: number[];
  metric: { token_a: number; token_b: number; value: number };
  site_gradients: Record<string, number[]>;
  parameter_gradients: Record<string, number[]>;
}

/** max |a - b| / max |b|. */
function relError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, 'lengths differ');
  let worst = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    worst = Math.max(worst, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return worst / scale;
}

function loadFamily(family: string, prefix = '') {
  const dir = new URL(`../fixtures/families/${family}/`, import.meta.url);
  const configFile = fileURLToPath(new URL('config.json', dir));
  const { family: description, config } = readFamilyConfig(
    JSON.parse(readFileSync(configFile, 'utf8')),
    configFile,
  );
  const file = openSafetensors(fileURLToPath(new URL('model.safetensors', dir)));
  // `prefix` renames every tensor, as a checkpoint saved with another prefix would have it
  const stored = (name: string) => (name.startsWith(prefix) ? name.slice(prefix.length) : '');
  const weights = readTransformerWeights(
    description,
    config,
    (name) => {
      const n = stored(name);
      return n && file.has(n) ? { shape: file.shape(n), data: () => file.read(n).data } : undefined;
    },
    file.path,
  );
  const ref = JSON.parse(readFileSync(new URL('expected.json', dir), 'utf8')) as Reference;
  return { description, model: new Transformer(config, weights), ref, file };
}

const worst: Record<string, number> = {};

for (const family of ['gpt2', 'llama', 'qwen2', 'qwen3', 'gemma2']) {
  test(`${family} matches the PyTorch reference: logits, every site's and parameters' gradients`, () => {
    const { description, model, ref } = loadFamily(family);
    const batch = makeBatch(ref.ids.map((seq, b) => seq.slice(0, ref.lengths[b])));
    const V = model.config.vocabSize;
    const T = batch.seqLen;
    const pass = model.forward(batch, { forBackward: true, logits: 'all' });
    const check = (label: string, got: ArrayLike<number>, want: number[]) => {
      const e = relError(got, want);
      worst[family] = Math.max(worst[family] ?? 0, e);
      assert.ok(e <= 1e-4, `${family} ${label}: error ${e} of the largest value`);
    };
    // padding holds token 0 in both, so every position is comparable
    check('logits', pass.logits, ref.logits);
    const dLogits = new Float32Array(pass.logits.length);
    batch.lengths.forEach((len, b) => {
      dLogits[(b * T + len - 1) * V + ref.metric.token_a] = 1;
      dLogits[(b * T + len - 1) * V + ref.metric.token_b] = -1;
    });
    const pg = zeroTransformerWeights(model.config);
    const grads = pass.backward(dLogits, { parameterGradients: pg });
    assert.deepEqual(Object.keys(ref.site_gradients).sort(), [...model.sites].sort());
    for (const site of model.sites) check(site, grads.get(site)!, ref.site_gradients[site]);

    const sources = new Map(
      description.tensors(model.config, () => family !== 'gpt2').map((t) => [t.name, t]),
    );
    const canonical = namedParameters(pg);
    const next = rng(11);
    for (const [name, want] of Object.entries(ref.parameter_gradients)) {
      const source = sources.get(name);
      assert.ok(source, `${family}: the weight map has no tensor ${name}`);
      const u = randn(want.length, next);
      const probe = zeroTransformerWeights(model.config);
      source.assign(probe, u);
      const mapped = new Map(namedParameters(probe));
      let got = 0;
      for (const [p, g] of canonical) got += dot(g, mapped.get(p)!);
      const expect = dot(want, u);
      const e = Math.abs(got - expect) / Math.sqrt(dot(want, want) * dot(u, u));
      worst[family] = Math.max(worst[family], e);
      assert.ok(e <= 1e-4, `${family} ${name}: <g, u> ${got} vs ${expect}`);
    }
  });
}

test('gpt2: the same checkpoint with the "transformer." prefix gives the same logits', () => {
  const plain = loadFamily('gpt2');
  const prefixed = loadFamily('gpt2', 'transformer.');
  const batch = makeBatch([[3, 17, 25, 8]]);
  const a = plain.model.forward(batch, { logits: 'all' }).logits;
  const b = prefixed.model.forward(batch, { logits: 'all' }).logits;
  assert.deepEqual(Array.from(a), Array.from(b));
  // the attn.bias / attn.masked_bias buffers are in the file and were not needed
  assert.ok(plain.file.has('h.0.attn.bias') && plain.file.has('h.0.attn.masked_bias'));
});

test('a checkpoint tensor of the wrong shape or missing is named in the error', () => {
  const { description, model, file } = loadFamily('qwen3');
  const read = (rename: Record<string, string>) => (name: string) => {
    const n = rename[name] ?? name;
    return file.has(n) ? { shape: file.shape(n), data: () => file.read(n).data } : undefined;
  };
  assert.throws(
    () =>
      readTransformerWeights(
        description,
        model.config,
        read({ 'model.layers.1.self_attn.k_norm.weight': 'nothing' }),
        'ckpt',
      ),
    /ckpt: missing tensor model\.layers\.1\.self_attn\.k_norm\.weight \(shape \[6\]\) for Qwen3ForCausalLM/,
  );
  assert.throws(
    () =>
      readTransformerWeights(
        description,
        model.config,
        read({
          'model.layers.0.self_attn.q_proj.weight': 'model.layers.0.self_attn.k_proj.weight',
        }),
        'ckpt',
      ),
    /ckpt: tensor model\.layers\.0\.self_attn\.q_proj\.weight has shape \[12,16\], expected \[24,16\]/,
  );
});

test('the references see each distinctive option: without it the logits move', () => {
  const variants: [string, (c: TransformerConfig) => TransformerConfig][] = [
    ['gemma2', (c) => ({ ...c, slidingWindows: c.slidingWindows.map(() => null) })],
    ['gemma2', (c) => ({ ...c, attnSoftcap: null })],
    ['gemma2', (c) => ({ ...c, finalSoftcap: null })],
    ['llama', (c) => ({ ...c, ropeScaling: null })],
    ['qwen3', (c) => ({ ...c, ropeTheta: 10000 })],
  ];
  for (const [family, change] of variants) {
    const { model, ref } = loadFamily(family);
    const batch = makeBatch(ref.ids.map((seq, b) => seq.slice(0, ref.lengths[b])));
    const changed = new Transformer(change(model.config), model.weights);
    const e = relError(changed.forward(batch, { logits: 'all' }).logits, ref.logits);
    assert.ok(e > 1e-3, `${family}: a changed config still matches (${e})`);
  }
});

test('worst errors against the references (reported)', () => {
  for (const [family, e] of Object.entries(worst))
    console.log(`${family}: worst error ${e.toExponential(2)} of the largest value`);
});
