// The LanguageModel interface on both engines: slices (the tails discovery runs) reproduce the
// full model's upper layers and, with a vocabulary, its chosen logits (Gemma-2's final soft-cap
// included); embed() is the embed site; site widths; the site graph per wiring; --sites lists.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GptNeoX, makeBatch } from '../../src/model/gptneox.ts';
import { parseSiteList, siteInputs, type LanguageModel } from '../../src/model/language-model.ts';
import { randomWeights, tinyConfig } from '../helpers/random-model.ts';
import { tinyTransformer } from '../helpers/random-transformer.ts';

const models: [string, LanguageModel][] = [
  ['gptneox', new GptNeoX(tinyConfig(), randomWeights(tinyConfig(), 1))],
  ...['gpt2', 'llama', 'gemma2'].map((f): [string, LanguageModel] => [f, tinyTransformer(f, 2)]),
];

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  return a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);
}

for (const [name, model] of models) {
  test(`${name}: a slice fed resid_0 reproduces layer 1 and the cut head's logits`, () => {
    const batch = makeBatch([
      [1, 5, 2, 7, 3],
      [4, 4, 9],
    ]);
    const full = model.forward(batch, { logits: 'all' });
    assert.deepEqual(model.embed(batch), full.activation('embed'));
    const vocab = Int32Array.from([7, 2, 11]);
    const tail = model.slice(1, 1, vocab);
    assert.equal(tail.shape.numLayers, 1);
    assert.equal(tail.shape.vocabSize, 3);
    const resid0 = full.activation('resid_0');
    const pass = tail.forward(
      { ...batch, ids: new Int32Array(batch.ids.length) },
      { hooks: { embed: () => resid0 }, logits: 'all' },
    );
    for (const site of tail.sites) {
      const outer = site === 'embed' ? 'resid_0' : site.replace(/_0$/, '_1');
      assert.ok(
        maxAbsDiff(pass.activation(site), full.activation(outer)) < 1e-6,
        `${site} vs ${outer}`,
      );
    }
    const V = model.shape.vocabSize;
    const want = new Float32Array(pass.logits.length);
    for (let n = 0; n < batch.batchSize * batch.seqLen; n++)
      vocab.forEach((id, i) => (want[n * 3 + i] = full.logits[n * V + id]));
    assert.ok(maxAbsDiff(pass.logits, want) < 1e-5);
    assert.throws(() => model.slice(1, 2), /go past the model's 2/);
    assert.throws(() => model.slice(0, 1, Int32Array.from([V])), /token id \d+ is outside/);
  });
}

test('site widths: d everywhere but attn_z_L, H·Dh', () => {
  const [, neox] = models[0];
  const gemma = models[3][1];
  assert.equal(neox.siteWidth('attn_1'), 16);
  assert.equal(neox.siteWidth('attn_z_0'), 16); // H·Dh = d for GPT-NeoX
  assert.throws(() => neox.siteWidth('attn_q_0'), /unknown site "attn_q_0"/);
  assert.equal(gemma.siteWidth('attn_z_0'), 24);
  assert.equal(gemma.siteWidth('mlp_1'), 16);
  assert.equal(
    gemma.forward(makeBatch([[1, 2]]), { logits: 'none' }).activation('attn_z_1').length,
    2 * 24,
  );
});

test('the site graph of each wiring', () => {
  const names = (x: { site: string; path: string }[]) => x.map((u) => `${u.site}:${u.path}`);
  assert.deepEqual(names(siteInputs('mlp_1', 2, 'parallel', false)), ['resid_0:local']);
  assert.deepEqual(names(siteInputs('mlp_1', 2, 'sequential', true)), [
    'attn_1:local',
    'resid_0:local',
  ]);
  assert.deepEqual(names(siteInputs('mlp_0', 2, 'sandwich', true)), [
    'attn_0:local',
    'embed:local',
  ]);
  assert.deepEqual(names(siteInputs('attn_1', 2, 'parallel', false)), ['resid_0:mixing']);
  assert.deepEqual(names(siteInputs('attn_1', 2, 'sandwich', true)), ['attn_z_1:local']);
  assert.deepEqual(names(siteInputs('attn_z_0', 2, 'sandwich', true)), ['embed:mixing']);
  assert.deepEqual(names(siteInputs('resid_0', 2, 'sequential', true)), [
    'mlp_0:identity',
    'attn_0:identity',
    'embed:identity',
  ]);
  assert.deepEqual(siteInputs('embed', 2, 'parallel', false), []);
  assert.equal(models[3][1].wiring, 'sandwich');
  assert.equal(models[1][1].wiring, 'sequential');
});

test('site lists: sites and kinds at every layer, in model order', () => {
  const gemma = models[3][1];
  assert.deepEqual(parseSiteList(gemma, 'resid,embed,attn_z,mlp', '--sites'), [
    'embed',
    'attn_z_0',
    'mlp_0',
    'resid_0',
    'attn_z_1',
    'mlp_1',
    'resid_1',
  ]);
  assert.deepEqual(parseSiteList(gemma, 'mlp_1, resid_0', '--sites'), ['resid_0', 'mlp_1']);
  assert.throws(
    () => parseSiteList(models[0][1], 'attn_q', '--sites'),
    /--sites: "attn_q" is neither a site of this model nor a kind of site \(embed, attn_z, attn, mlp, resid/,
  );
});
