// Zero-ablating features (errors kept) equals splicing the SAEs in with those features set to 0,
// the slow obvious way, including features at a later site computed from the edited earlier one;
// identity dictionaries zero neurons.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makeBatch } from '../../src/model/gptneox.ts';
import { IdentityDictionary, SparseAutoencoder } from '../../src/sae/dictionary.ts';
import { zeroAblationHooks } from '../../src/shift/ablation.ts';
import { makeWorld, splicedHooks } from '../attribution/world.ts';

test('zeroAblationHooks: equal to splicing with the chosen features at 0 and errors kept', () => {
  for (const parallel of [true, false]) {
    const w = makeWorld({ parallel, examples: 1, T: 5 });
    const ids = w.examples[0].clean;
    const T = ids.length;
    const chosen = [
      { site: 'embed', feature: 3 },
      { site: 'embed', feature: 7 },
      { site: 'mlp_0', feature: 1 },
      { site: 'resid_0', feature: 5 },
      { site: 'attn_1', feature: 2 },
    ];
    const spliced = splicedHooks(w, T, (site, features) => {
      const F = w.saes.get(site)!.width;
      for (const c of chosen)
        if (c.site === site) for (let t = 0; t < T; t++) features[t * F + c.feature] = 0;
    });
    const batch = makeBatch([ids]);
    const truth = w.model.forward(batch, { hooks: spliced, logits: 'all' }).logits;
    const hooks = zeroAblationHooks((s) => w.saes.get(s)!, chosen);
    const got = w.model.forward(batch, { hooks, logits: 'all' }).logits;
    const plain = w.model.forward(batch, { logits: 'all' }).logits;
    let changed = 0;
    for (let i = 0; i < truth.length; i++) {
      assert.ok(Math.abs(got[i] - truth[i]) < 1e-4, `logit ${i}: ${got[i]} vs ${truth[i]}`);
      changed = Math.max(changed, Math.abs(got[i] - plain[i]));
    }
    assert.ok(changed > 1e-3, 'the chosen features were active and the ablation matters');
  }
});

test('zeroAblationHooks: identity dictionaries zero neurons; bad features are refused', () => {
  const w = makeWorld({ parallel: true, examples: 1 });
  const d = w.config.hiddenSize;
  const neurons = (site: string) => new IdentityDictionary(site, d);
  const hooks = zeroAblationHooks(neurons, [{ site: 'resid_0', feature: 2 }]);
  const x = Float32Array.from({ length: 2 * d }, (_, i) => i - 5);
  const out = hooks.resid_0(x, 'resid_0') as Float32Array;
  for (let i = 0; i < x.length; i++) assert.equal(out[i], i % d === 2 ? 0 : x[i]);
  assert.throws(
    () => zeroAblationHooks((s) => w.saes.get(s)!, [{ site: 'resid_0', feature: 999 }]),
    /feature 999 is outside resid_0's dictionary of 24/,
  );
});

test('zeroAblationHooks with JumpReLU and TopK dictionaries: equal to splicing them in, features zeroed', () => {
  const w = makeWorld({ parallel: true, examples: 1, T: 5 });
  // The random ReLU SAEs' weights, as JumpReLU at embed and resid_0, TopK at mlp_0 and attn_1.
  const as = (site: string, kind: 'jumprelu' | 'topk') => {
    const s = w.saes.get(site)!;
    w.saes.set(
      site,
      new SparseAutoencoder({
        site,
        kind,
        dIn: s.dIn,
        width: s.width,
        encoder: s.encoder,
        encoderBias: s.encoderBias,
        decoder: s.decoder,
        decoderBias: s.decoderBias,
        threshold: new Float32Array(s.width).fill(0.15),
        k: 6,
      }),
    );
  };
  as('embed', 'jumprelu');
  as('resid_0', 'jumprelu');
  as('mlp_0', 'topk');
  as('attn_1', 'topk');
  const ids = w.examples[0].clean;
  const T = ids.length;
  const chosen = [
    { site: 'embed', feature: 3 },
    { site: 'mlp_0', feature: 1 },
    { site: 'resid_0', feature: 5 },
    { site: 'attn_1', feature: 2 },
  ];
  const fired = new Set<string>();
  const spliced = splicedHooks(w, T, (site, features) => {
    const F = w.saes.get(site)!.width;
    for (const c of chosen)
      if (c.site === site)
        for (let t = 0; t < T; t++) {
          if (features[t * F + c.feature] !== 0) fired.add(site);
          features[t * F + c.feature] = 0;
        }
  });
  const batch = makeBatch([ids]);
  const truth = w.model.forward(batch, { hooks: spliced, logits: 'all' }).logits;
  assert.deepEqual([...fired].sort(), chosen.map((c) => c.site).sort(), 'every chosen one fires');
  const hooks = zeroAblationHooks((s) => w.saes.get(s)!, chosen);
  const got = w.model.forward(batch, { hooks, logits: 'all' }).logits;
  for (let i = 0; i < truth.length; i++)
    assert.ok(Math.abs(got[i] - truth[i]) < 1e-4, `logit ${i}: ${got[i]} vs ${truth[i]}`);
  // The kinds matter here: the same weights as ReLU ablate to other logits.
  const relu = makeWorld({ parallel: true, examples: 1, T: 5 });
  const asRelu = zeroAblationHooks((s) => relu.saes.get(s)!, chosen);
  const other = w.model.forward(batch, { hooks: asRelu, logits: 'all' }).logits;
  assert.ok(
    other.some((v, i) => Math.abs(v - got[i]) > 1e-3),
    'JumpReLU/TopK ablations differ from ReLU ones',
  );
});
