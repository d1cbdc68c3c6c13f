// The whole model on tiny random GPT-NeoX configurations (parallel and sequential residual):
// site and parameter gradients against finite differences, hook, stopGradient and seed
// semantics, padding, input errors, and agreement with an independent PyTorch implementation
// (test/fixtures/neox-reference, written by scripts/make-neox-reference.py).
// Finite differences: Richardson-extrapolated central differences (steps 2h, h) of a float64
// metric; tolerance 1e-3 of max(|derivative|, |g| |u| / sqrt(size)).

import { Rng } from '../../src/random.ts';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { GptNeoXConfig } from '../../src/model/config.ts';
import { parseConfig } from '../../src/model/config.ts';
import { GptNeoX, makeBatch, type Batch, type SiteHook } from '../../src/model/gptneox.ts';
import { parameterLayout, zeroWeights } from '../../src/model/weights.ts';
import { transformerSiteNames } from '../../src/model/sites.ts';

// Normal samples from the project's seeded generator.
function rng(seed: number): () => number {
  const generator = new Rng(seed);
  return () => generator.normal();
}

function randn(n: number, next: () => number, scale = 1): Float32Array {
  return Float32Array.from({ length: n }, () => scale * next());
}

function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

function tinyConfig(parallel: boolean): GptNeoXConfig {
  return {
    vocabSize: 23,
    hiddenSize: 16,
    numLayers: 2,
    numHeads: 2,
    intermediateSize: 64,
    rotaryPct: 0.5,
    rotaryEmbBase: 10000,
    maxPositionEmbeddings: 12,
    layerNormEps: 1e-5,
    useParallelResidual: parallel,
    attentionBias: true,
  };
}

function tinyModel(parallel: boolean, seed = 1): GptNeoX {
  const config = tinyConfig(parallel);
  const next = rng(seed);
  const weights = zeroWeights(config);
  for (const p of parameterLayout(config)) {
    const t = p.get(weights);
    const isNorm = p.name.includes('layernorm') || p.name.includes('final_layer_norm');
    for (let i = 0; i < t.length; i++) {
      if (isNorm && p.name.endsWith('weight')) t[i] = 1 + 0.2 * next();
      else if (p.name.endsWith('bias')) t[i] = 0.1 * next();
      else t[i] = (p.shape.length === 2 && p.name.includes('embed') ? 1 : 0.3) * next();
    }
  }
  return new GptNeoX(config, weights);
}

// Two right-padded examples; the metric is the logit difference (token 3 - token 7) at each
// example's last real token, summed over examples.
const sequences = [
  [5, 1, 9, 22, 0, 14, 3],
  [17, 2, 8, 11],
];
const [TOKEN_A, TOKEN_B] = [3, 7];

function metricGradient(B: number, V: number): Float32Array {
  const dLogits = new Float32Array(B * V);
  for (let b = 0; b < B; b++) {
    dLogits[b * V + TOKEN_A] = 1;
    dLogits[b * V + TOKEN_B] = -1;
  }
  return dLogits;
}

function metric(model: GptNeoX, batch: Batch, hooks: Record<string, SiteHook> = {}): number {
  const { logits } = model.forward(batch, { hooks, logits: 'last' });
  const V = model.config.vocabSize;
  return dot(logits, metricGradient(batch.batchSize, V));
}

/** Richardson-extrapolated central difference of f along a step parameter. */
function derivative(f: (step: number) => number, h = 1e-2): number {
  const central = (s: number) => (f(s) - f(-s)) / (2 * s);
  return (4 * central(h) - central(2 * h)) / 3;
}

function assertDerivative(label: string, fd: number, g: Float32Array, u: Float32Array, tol = 1e-3) {
  const an = dot(g, u);
  const scale = Math.sqrt((dot(g, g) * dot(u, u)) / g.length) + 1e-9;
  assert.ok(
    Math.abs(fd - an) <= tol * Math.max(scale, Math.abs(an)),
    `${label}: finite difference ${fd} vs backward ${an} (scale ${scale})`,
  );
}

const perturbHook =
  (u: Float32Array, step: number): SiteHook =>
  (act) => {
    const out = Float32Array.from(act);
    for (let i = 0; i < out.length; i++) out[i] += step * u[i];
    return out;
  };

function assertClose(a: ArrayLike<number>, b: ArrayLike<number>, tol: number, label: string) {
  assert.equal(a.length, b.length, `${label}: lengths differ`);
  let worst = 0;
  let at = -1;
  for (let i = 0; i < a.length; i++) {
    const e = Math.abs(a[i] - b[i]);
    if (!(e <= worst)) [worst, at] = [e, i];
  }
  assert.ok(worst <= tol, `${label}: index ${at}: ${a[at]} vs ${b[at]} (tolerance ${tol})`);
}

for (const parallel of [true, false]) {
  const mode = parallel ? 'parallel' : 'sequential';

  test(`${mode}: site gradients match finite differences through replace-hooks`, () => {
    const model = tinyModel(parallel);
    const batch = makeBatch(sequences);
    const V = model.config.vocabSize;
    const pass = model.forward(batch, { forBackward: true });
    const grads = pass.backward(metricGradient(batch.batchSize, V));
    assert.deepEqual([...grads.keys()], model.sites);
    const next = rng(2);
    for (const site of model.sites) {
      const g = grads.get(site)!;
      assert.equal(g.length, pass.activation(site).length);
      const u = randn(g.length, next);
      const fd = derivative((step) => metric(model, batch, { [site]: perturbHook(u, step) }));
      assertDerivative(`${mode} ${site}`, fd, g, u);
      // one coordinate at the second example's last real token
      const e = new Float32Array(g.length);
      e[(1 * batch.seqLen + 3) * model.config.hiddenSize + 5] = 1;
      const fdE = derivative((step) => metric(model, batch, { [site]: perturbHook(e, step) }));
      assertDerivative(`${mode} ${site} coordinate`, fdE, g, e);
    }
  });

  test(`${mode}: parameter gradients match finite differences and accumulate`, () => {
    const model = tinyModel(parallel, 3);
    const batch = makeBatch(sequences);
    const V = model.config.vocabSize;
    const pass = model.forward(batch, { forBackward: true });
    const pg = zeroWeights(model.config);
    pass.backward(metricGradient(batch.batchSize, V), { parameterGradients: pg });
    const next = rng(4);
    for (const p of parameterLayout(model.config)) {
      const t = p.get(model.weights);
      const g = p.get(pg);
      const base = Float32Array.from(t);
      const perturbed = (u: Float32Array) =>
        derivative((step) => {
          for (let i = 0; i < t.length; i++) t[i] = base[i] + step * u[i];
          const value = metric(model, batch);
          t.set(base);
          return value;
        });
      const u = randn(t.length, next);
      assertDerivative(`${mode} ${p.name}`, perturbed(u), g, u);
      // a sample of single entries
      for (let k = 0; k < 3; k++) {
        const e = new Float32Array(t.length);
        e[Math.floor(Math.abs(next()) * 7919) % t.length] = 1;
        assertDerivative(`${mode} ${p.name} entry`, perturbed(e), g, e);
      }
    }
    // A second backward adds the same gradients again.
    const once = parameterLayout(model.config).map((p) => Float32Array.from(p.get(pg)));
    pass.backward(metricGradient(batch.batchSize, V), { parameterGradients: pg });
    parameterLayout(model.config).forEach((p, i) =>
      assertClose(
        p.get(pg),
        once[i].map((v) => 2 * v),
        1e-5,
        `${p.name} accumulated twice`,
      ),
    );
  });

  test(`${mode}: hooks read and replace sites, and downstream uses the replacement`, () => {
    const model = tinyModel(parallel);
    const batch = makeBatch(sequences);
    const clean = model.forward(batch, { logits: 'all' });
    // Replacing every site by a copy of itself changes nothing.
    const seen: string[] = [];
    const copyHooks = Object.fromEntries(
      model.sites.map((site) => [
        site,
        ((act: Float32Array, name: string) => {
          seen.push(name);
          return Float32Array.from(act);
        }) as SiteHook,
      ]),
    );
    const copied = model.forward(batch, { hooks: copyHooks, logits: 'all' });
    assert.deepEqual(seen, model.sites);
    assert.deepEqual(copied.logits, clean.logits);
    // Zeroing attn_0: resid_0 = embed + mlp_0 with mlp_0 as run, and layer 1 sees the new resid_0.
    const zeroed = model.forward(batch, {
      hooks: { attn_0: (a) => new Float32Array(a.length) },
      logits: 'all',
    });
    assert.ok(zeroed.activation('attn_0').every((v) => v === 0));
    const embed = zeroed.activation('embed');
    const mlp0 = zeroed.activation('mlp_0');
    assertClose(
      zeroed.activation('resid_0'),
      embed.map((v, i) => v + mlp0[i]),
      1e-6,
      'resid_0 with attn_0 zeroed',
    );
    if (parallel) assertClose(mlp0, clean.activation('mlp_0'), 0, 'parallel mlp_0 ignores attn_0');
    else assert.notDeepEqual(mlp0, clean.activation('mlp_0'));
    assert.notDeepEqual(zeroed.activation('attn_1'), clean.activation('attn_1'));
    // Replacing resid_0 leaves layer 0 alone and changes layer 1 and the logits.
    const shifted = model.forward(batch, {
      hooks: { resid_0: (r) => r.map((v) => v + 0.5) },
      logits: 'all',
    });
    assert.deepEqual(shifted.activation('attn_0'), clean.activation('attn_0'));
    assert.notDeepEqual(shifted.activation('attn_1'), clean.activation('attn_1'));
    assert.notDeepEqual(shifted.logits, clean.logits);
    // A hook that returns nothing only reads.
    const read = model.forward(batch, { hooks: { mlp_1: () => undefined }, logits: 'all' });
    assert.deepEqual(read.logits, clean.logits);
    // Hook errors name the site.
    assert.throws(
      () => model.forward(batch, { hooks: { mlp_1: () => new Float32Array(3) } }),
      /site mlp_1 returned 3 values/,
    );
    assert.throws(() => model.forward(batch, { hooks: { attn_9: () => undefined } }), /attn_9/);
  });

  test(`${mode}: attn_z_L is the dense projection's input, read and replaced as any site`, () => {
    const model = tinyModel(parallel, 9);
    const batch = makeBatch(sequences);
    const d = model.config.hiddenSize;
    const N = batch.batchSize * batch.seqLen;
    assert.deepEqual(model.sites, transformerSiteNames(model.config.numLayers));
    assert.equal(model.siteWidth('attn_z_1'), d);
    assert.deepEqual(model.upstreamSites('attn_1'), [{ site: 'attn_z_1', path: 'local' }]);
    assert.deepEqual(model.upstreamSites('attn_z_1'), [{ site: 'resid_0', path: 'mixing' }]);
    const clean = model.forward(batch, { forBackward: true });
    const plain = model.forward(batch);
    for (let L = 0; L < model.config.numLayers; L++) {
      // attn_L = z W^T + b, by hand
      const { denseWeight: W, denseBias: bias } = model.weights.layers[L];
      const z = clean.activation(`attn_z_${L}`);
      const byHand = new Float32Array(N * d);
      for (let n = 0; n < N; n++)
        for (let j = 0; j < d; j++) {
          let sum = bias[j];
          for (let i = 0; i < d; i++) sum += z[n * d + i] * W[j * d + i];
          byHand[n * d + j] = sum;
        }
      assertClose(clean.activation(`attn_${L}`), byHand, 1e-5, `attn_${L} from attn_z_${L}`);
      // a pass without forBackward keeps every layer's z, not the last one's
      assert.deepEqual(plain.activation(`attn_z_${L}`), z, `attn_z_${L} without forBackward`);
    }
    // Zeroing attn_z_0 leaves attn_0 = the dense bias at every row, and layer 1 sees it.
    const zeroed = model.forward(batch, { hooks: { attn_z_0: (z) => new Float32Array(z.length) } });
    const bias = model.weights.layers[0].denseBias;
    assertClose(
      zeroed.activation('attn_0'),
      Float32Array.from({ length: N * d }, (_, i) => bias[i % d]),
      0,
      'attn_0 with attn_z_0 zeroed',
    );
    assert.notDeepEqual(zeroed.activation('attn_z_1'), clean.activation('attn_z_1'));
    // A replaced attn_z_0 acts as original + constant: the gradient at embed under the
    // replacement is the finite difference of the metric with the same replacement.
    const next = rng(11);
    const c = randn(N * d, next, 0.5);
    const shift = (z: Float32Array) => z.map((v, i) => v + c[i]);
    const shifted = model.forward(batch, { forBackward: true, hooks: { attn_z_0: shift } });
    assert.notDeepEqual(shifted.logits, clean.logits);
    const g = shifted.backward(metricGradient(batch.batchSize, model.config.vocabSize));
    for (const site of ['embed', 'attn_z_0']) {
      const u = randn(N * d, next);
      const hooks = (step: number): Record<string, SiteHook> =>
        site === 'embed'
          ? { embed: perturbHook(u, step), attn_z_0: shift }
          : { attn_z_0: (z) => perturbHook(u, step)(shift(z), site) };
      const fd = derivative((step) => metric(model, batch, hooks(step)));
      assertDerivative(`${mode} d/d${site} with attn_z_0 replaced`, fd, g.get(site)!, u);
    }
  });

  test(`${mode}: logits 'last' are the rows of 'all' at each example's last real token`, () => {
    const model = tinyModel(parallel);
    const batch = makeBatch(sequences);
    const V = model.config.vocabSize;
    const all = model.forward(batch, { logits: 'all' }).logits;
    const last = model.forward(batch, { logits: 'last' }).logits;
    assert.equal(all.length, batch.batchSize * batch.seqLen * V);
    batch.lengths.forEach((len, b) => {
      const row = b * batch.seqLen + len - 1;
      assertClose(last.subarray(b * V, b * V + V), all.subarray(row * V, row * V + V), 1e-6, 'row');
    });
    assert.equal(model.forward(batch, { logits: 'none' }).logits.length, 0);
    // The same metric through 'all' logits (zero rows elsewhere) gives the same gradients.
    const dLast = metricGradient(batch.batchSize, V);
    const dAll = new Float32Array(all.length);
    batch.lengths.forEach((len, b) =>
      dAll.set(dLast.subarray(b * V, b * V + V), (b * batch.seqLen + len - 1) * V),
    );
    const gLast = model.forward(batch, { forBackward: true }).backward(dLast);
    const gAll = model.forward(batch, { forBackward: true, logits: 'all' }).backward(dAll);
    for (const site of model.sites) assertClose(gAll.get(site)!, gLast.get(site)!, 1e-6, site);
  });

  test(`${mode}: topLayerRows 'last' gives the full forward's logits and every gradient`, () => {
    const model = tinyModel(parallel, 5);
    // three lengths, one of them the full T, so the last rows are at different positions
    const batch = makeBatch([...sequences, [4, 4, 19, 6, 2]]);
    const V = model.config.vocabSize;
    const top = model.config.numLayers - 1;
    const scale = (a: Float32Array) => 1e-5 * Math.max(1, ...a.map(Math.abs));
    const full = model.forward(batch, { forBackward: true });
    const cut = model.forward(batch, { forBackward: true, topLayerRows: 'last' });
    assertClose(cut.logits, full.logits, scale(full.logits), 'logits');
    const plain = model.forward(batch, { topLayerRows: 'last' }).logits;
    assertClose(plain, full.logits, scale(full.logits), 'logits without forBackward');
    // sites below the top layer are computed as before
    for (const site of model.sites.filter((s) => !s.endsWith(`_${top}`)))
      assertClose(cut.activation(site), full.activation(site), 0, site);
    // gradients: plain, with parameter gradients, with stops inside the top layer and below, with
    // a seed below the top layer
    const dLogits = metricGradient(batch.batchSize, V);
    const next = rng(6);
    const seed = randn(batch.batchSize * batch.seqLen * model.config.hiddenSize, next);
    const variants: {
      label: string;
      stopGradient?: string[];
      seeds?: Record<string, Float32Array>;
    }[] = [
      { label: 'plain' },
      { label: `stop attn_${top}`, stopGradient: [`attn_${top}`] },
      { label: `stop attn_z_${top}`, stopGradient: [`attn_z_${top}`] },
      { label: 'stop attn_z_0', stopGradient: ['attn_z_0'] },
      { label: 'seed at attn_z_0', seeds: { attn_z_0: seed } },
      { label: `stop mlp_${top}`, stopGradient: [`mlp_${top}`] },
      { label: 'stop resid_0', stopGradient: ['resid_0'] },
      { label: 'seed at mlp_0', seeds: { mlp_0: seed } },
    ];
    for (const { label, stopGradient, seeds } of variants) {
      const [pgFull, pgCut] = [zeroWeights(model.config), zeroWeights(model.config)];
      const gFull = full.backward(dLogits, { stopGradient, seeds, parameterGradients: pgFull });
      const gCut = cut.backward(dLogits, { stopGradient, seeds, parameterGradients: pgCut });
      for (const site of model.sites) {
        const g = gFull.get(site)!;
        assertClose(gCut.get(site)!, g, scale(g), `${label}: ${site}`);
      }
      for (const p of parameterLayout(model.config))
        assertClose(p.get(pgCut), p.get(pgFull), scale(p.get(pgFull)), `${label}: ${p.name}`);
    }
    // the top layer's sites exist at the last rows only: reading, hooking or seeding them throws
    for (const site of [`attn_z_${top}`, `attn_${top}`, `mlp_${top}`, `resid_${top}`]) {
      assert.throws(() => cut.activation(site), /last rows only/);
      assert.throws(
        () => model.forward(batch, { topLayerRows: 'last', hooks: { [site]: () => {} } }),
        /topLayerRows 'last'/,
      );
      assert.throws(() => cut.backward(null, { seeds: { [site]: seed } }), /topLayerRows 'last'/);
    }
    assert.throws(
      () => model.forward(batch, { topLayerRows: 'last', logits: 'all' }),
      /needs logits 'last'/,
    );
  });

  test(`${mode}: a past of P positions continues the sequences exactly as the full forward`, () => {
    const model = tinyModel(parallel, 7);
    const full = makeBatch([...sequences, [4, 4, 19, 6, 2]]);
    const { batchSize: B, seqLen: T } = full;
    const [V, d] = [model.config.vocabSize, model.config.hiddenSize];
    const scale = (a: Float32Array) => 1e-5 * Math.max(1, ...a.map(Math.abs));
    const whole = model.forward(full, { forBackward: true });
    const gWhole = whole.backward(metricGradient(B, V));
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
        const out = new Float32Array(B * (T - P) * d);
        for (let b = 0; b < B; b++)
          out.set(a.subarray((b * T + P) * d, (b + 1) * T * d), b * (T - P) * d);
        return out;
      };
      const past = whole.past(P);
      for (const topLayerRows of ['all', 'last'] as const) {
        const label = `P ${P}, topLayerRows ${topLayerRows}`;
        const pass = model.forward(rest, { past, forBackward: true, topLayerRows });
        assertClose(pass.logits, whole.logits, scale(whole.logits), `${label}: logits`);
        // A continued pass's past starts at the past's start: what generation chains step by step.
        for (const Q of [P - 1, T - 1, T]) {
          const [chained, direct] = [pass.past(Q), whole.past(Q)];
          assert.equal(chained.length, Q);
          chained.layers.forEach((l, L) => {
            assertClose(l.keys, direct.layers[L].keys, 1e-6, `${label}: past ${Q} keys ${L}`);
            assertClose(l.values, direct.layers[L].values, 1e-6, `${label}: values ${L}`);
          });
        }
        assert.throws(() => pass.past(T + 1), /past: length \d+ must be an integer in 0\.\.\d+/);
        const g = pass.backward(metricGradient(B, V));
        for (const site of model.sites) {
          const gw = suffix(gWhole.get(site)!);
          assertClose(g.get(site)!, gw, scale(gw), `${label}: gradient at ${site}`);
          if (topLayerRows === 'all' || site === 'embed' || site.endsWith('_0')) {
            const a = suffix(whole.activation(site));
            assertClose(pass.activation(site), a, scale(a), `${label}: ${site}`);
          }
        }
      }
    }
    assert.throws(() => whole.past(T + 1), /past: length/);
    assert.throws(() => model.forward(full).past(1), /forBackward/);
    const wrong = { length: 1, layers: whole.past(1).layers.slice(1) };
    assert.throws(() => model.forward(full, { past: wrong }), /layers/);
  });

  test(`${mode}: stopGradient blocks paths exactly as freezing the site's value does`, () => {
    const model = tinyModel(parallel);
    const batch = makeBatch(sequences);
    const V = model.config.vocabSize;
    const dLogits = metricGradient(batch.batchSize, V);
    const pass = model.forward(batch, { forBackward: true });
    const free = pass.backward(dLogits);
    // Stopping attn_0 and mlp_0 leaves only the identity path from embed to resid_0 (and, in
    // the sequential block, from the attention output to resid_0 through mid).
    const blocked = pass.backward(dLogits, { stopGradient: ['attn_0', 'mlp_0'] });
    assert.deepEqual(blocked.get('embed'), blocked.get('resid_0'));
    if (!parallel) assert.deepEqual(blocked.get('attn_0'), blocked.get('resid_0'));
    // The stopped sites and everything downstream of them report unchanged gradients (in the
    // sequential block attn_0 is upstream of mlp_0, so its gradient loses the MLP path).
    const downstream = ['mlp_0', 'resid_0', 'attn_1', 'mlp_1', 'resid_1'];
    for (const site of parallel ? ['attn_0', ...downstream] : downstream)
      assert.deepEqual(blocked.get(site), free.get(site), site);
    // Stopping resid_0: nothing reaches layer 0 or the embedding.
    const cut = pass.backward(dLogits, { stopGradient: ['resid_0'] });
    assert.deepEqual(cut.get('resid_0'), free.get('resid_0'));
    for (const site of ['embed', 'attn_0', 'mlp_0'])
      assert.ok(cut.get(site)!.every((v) => v === 0));
    // Independent truth: the gradient with S stopped equals the finite difference of the metric
    // when S's output is frozen at its clean value while an upstream site is perturbed.
    const next = rng(5);
    const cases: [string, string][] = [
      ['attn_1', 'embed'],
      ['mlp_1', 'resid_0'],
      ['attn_0', 'embed'],
      ['mlp_0', 'embed'],
      ['resid_0', 'embed'],
      ['attn_z_0', 'embed'],
      ['attn_z_1', 'resid_0'],
      ['attn_z_1', 'embed'],
    ];
    for (const [stopped, upstream] of cases) {
      const frozen = Float32Array.from(pass.activation(stopped));
      const g = pass.backward(dLogits, { stopGradient: [stopped] }).get(upstream)!;
      const u = randn(g.length, next);
      const fd = derivative((step) =>
        metric(model, batch, { [upstream]: perturbHook(u, step), [stopped]: () => frozen }),
      );
      assertDerivative(`${mode} d/d${upstream} with ${stopped} stopped`, fd, g, u);
    }
  });

  test(`${mode}: seeds give vector-Jacobian products and add to dLogits linearly`, () => {
    const model = tinyModel(parallel);
    const batch = makeBatch(sequences);
    const V = model.config.vocabSize;
    const pass = model.forward(batch, { forBackward: true });
    const next = rng(6);
    const Nd = batch.batchSize * batch.seqLen * model.config.hiddenSize;
    for (const [seeded, upstream] of [
      ['resid_1', 'embed'],
      ['mlp_1', 'attn_0'],
      ['attn_1', 'resid_0'],
      ['mlp_0', 'embed'],
      ['attn_1', 'attn_z_1'],
      ['attn_z_1', 'resid_0'],
      ['attn_z_0', 'embed'],
    ]) {
      const seed = randn(Nd, next);
      const grads = pass.backward(null, { seeds: { [seeded]: seed } });
      assert.deepEqual(grads.get(seeded), seed);
      // d/dU of sum(seed * X(U)) by finite differences
      const g = grads.get(upstream)!;
      const u = randn(Nd, next);
      const fd = derivative((step) => {
        let value = 0;
        model.forward(batch, {
          logits: 'none',
          hooks: {
            [upstream]: perturbHook(u, step),
            [seeded]: (x) => void (value = dot(seed, x)),
          },
        });
        return value;
      });
      assertDerivative(`${mode} seed at ${seeded}, d/d${upstream}`, fd, g, u);
    }
    const seed = randn(Nd, next);
    const both = pass.backward(metricGradient(batch.batchSize, V), { seeds: { attn_1: seed } });
    const logitsOnly = pass.backward(metricGradient(batch.batchSize, V));
    const seedOnly = pass.backward(null, { seeds: { attn_1: seed } });
    for (const site of model.sites) {
      const sum = logitsOnly.get(site)!.map((v, i) => v + seedOnly.get(site)![i]);
      assertClose(both.get(site)!, sum, 1e-5, `linearity at ${site}`);
    }
  });

  test(`${mode}: a padded example matches the same example run alone`, () => {
    const model = tinyModel(parallel);
    const V = model.config.vocabSize;
    const d = model.config.hiddenSize;
    const padded = makeBatch(sequences, 21);
    const alone = makeBatch([sequences[1]]);
    const T = padded.seqLen;
    const L1 = sequences[1].length;
    const pPass = model.forward(padded, { forBackward: true, logits: 'all' });
    const aPass = model.forward(alone, { forBackward: true, logits: 'all' });
    assertClose(pPass.logits.subarray(T * V, (T + L1) * V), aPass.logits, 2e-5, 'logits');
    // Gradient of a logit difference at the last real token of example 1 only.
    const dP = new Float32Array(pPass.logits.length);
    dP[(T + L1 - 1) * V + TOKEN_A] = 1;
    dP[(T + L1 - 1) * V + TOKEN_B] = -1;
    const dA = new Float32Array(aPass.logits.length);
    dA[(L1 - 1) * V + TOKEN_A] = 1;
    dA[(L1 - 1) * V + TOKEN_B] = -1;
    const gP = pPass.backward(dP);
    const gA = aPass.backward(dA);
    for (const site of model.sites) {
      const g = gP.get(site)!;
      assertClose(g.subarray(T * d, (T + L1) * d), gA.get(site)!, 2e-5, `${site} real tokens`);
      assert.ok(
        g.subarray((T + L1) * d).every((v) => v === 0),
        `${site}: padding gets no gradient`,
      );
      assert.ok(
        g.subarray(0, T * d).every((v) => v === 0),
        `${site}: example 0 gets no gradient`,
      );
    }
  });
}

test('passes are independent: a later forward does not disturb an earlier pass', () => {
  const model = tinyModel(true);
  const batch = makeBatch(sequences);
  const dLogits = metricGradient(batch.batchSize, model.config.vocabSize);
  const first = model.forward(batch, { forBackward: true });
  const before = first.backward(dLogits);
  const act = Float32Array.from(first.activation('resid_0'));
  model.forward(batch, { forBackward: true, hooks: { embed: (e) => e.map((v) => -v) } });
  model.forward(batch, { hooks: { embed: (e) => e.map((v) => 2 * v) } });
  assert.deepEqual(first.activation('resid_0'), act);
  const after = first.backward(dLogits);
  for (const site of model.sites) assert.deepEqual(after.get(site), before.get(site));
});

test('input errors are clear', () => {
  const model = tinyModel(true);
  assert.throws(
    () =>
      model.forward(
        makeBatch([
          [1, 2],
          [3, 23, 4],
        ]),
      ),
    /token id 23 at example 1, position 1 is outside the vocabulary \[0, 23\)/,
  );
  assert.throws(() => model.forward(makeBatch([[-1]])), /token id -1 at example 0, position 0/);
  assert.throws(
    () => model.forward(makeBatch([Array.from({ length: 13 }, () => 1)])),
    /sequence length 13 exceeds the model's max_position_embeddings 12/,
  );
  assert.throws(
    () => model.forward(makeBatch([[1]]), { logits: 'first' as 'last' }),
    /logits must be 'all', 'last' or 'none', got first/,
  );
  assert.throws(() => makeBatch([[1], []]), /sequence 1 is empty/);
  assert.throws(() => makeBatch([[1, 2.5]]), /not an integer token id/);
  const pass = model.forward(makeBatch([[1, 2]]));
  assert.throws(() => pass.backward(null), /without forBackward: true/);
  const ready = model.forward(makeBatch([[1, 2]]), { forBackward: true });
  assert.throws(() => ready.backward(new Float32Array(5)), /dLogits has 5 values, expected/);
  assert.throws(
    () => ready.backward(null, { stopGradient: ['resid_7'] }),
    /unknown site "resid_7"/,
  );
  assert.throws(
    () => ready.backward(null, { seeds: { embed: new Float32Array(2) } }),
    /seed for site embed/,
  );
  assert.throws(() => pass.activation('mlp_2'), /unknown site "mlp_2"/);
  const bad = zeroWeights(tinyConfig(true));
  bad.layers[1].fcInWeight = new Float32Array(10);
  assert.throws(
    () => new GptNeoX(tinyConfig(true), bad),
    /gpt_neox.layers.1.mlp.dense_h_to_4h.weight has 10 floats, expected \[64,16\]/,
  );
});

// ---- Independent reference: GPT-NeoX written in plain PyTorch (scripts/make-neox-reference.py).
// Format (ours): weights.bin = little-endian float32 tensors back to back in the order of
// weights.json's `tensors` list ({name, shape, offset} with offset in floats).

interface Reference {
  ids: number[][];
  lengths: number[];
  logits: number[]; // [B*T*V]
  metric: { token_a: number; token_b: number };
  site_gradients: Record<string, number[]>;
  parameter_gradients: Record<string, number[]>;
}

function loadReference(variant: string): { model: GptNeoX; ref: Reference } {
  const dir = new URL(`../fixtures/neox-reference/${variant}/`, import.meta.url);
  const config = parseConfig(
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
  const weights = zeroWeights(config);
  const byName = new Map(index.tensors.map((t) => [t.name, t]));
  for (const p of parameterLayout(config)) {
    const t = byName.get(p.name);
    assert.ok(t, `weights.json lacks ${p.name}`);
    assert.deepEqual(t.shape, p.shape, p.name);
    const size = p.shape.reduce((a, b) => a * b, 1);
    p.set(weights, floats.slice(t.offset, t.offset + size));
  }
  const ref = JSON.parse(readFileSync(new URL('expected.json', dir), 'utf8')) as Reference;
  return { model: new GptNeoX(config, weights), ref };
}

for (const variant of ['parallel', 'sequential']) {
  test(`matches the PyTorch reference (${variant}): logits, site and parameter gradients`, () => {
    const { model, ref } = loadReference(variant);
    const batch = makeBatch(ref.ids.map((seq, b) => seq.slice(0, ref.lengths[b])));
    assert.equal(batch.seqLen, ref.ids[0].length);
    const V = model.config.vocabSize;
    const pass = model.forward(batch, { forBackward: true, logits: 'all' });
    const relClose = (a: ArrayLike<number>, b: number[], label: string) => {
      const scale = Math.max(...b.map(Math.abs));
      assertClose(a, b, 1e-4 * scale, `${variant} ${label} (max |value| ${scale})`);
    };
    // Padding positions are ours to fill; compare the real tokens only.
    const T = batch.seqLen;
    batch.lengths.forEach((len, b) =>
      relClose(
        pass.logits.subarray(b * T * V, (b * T + len) * V),
        ref.logits.slice(b * T * V, (b * T + len) * V),
        `logits of example ${b}`,
      ),
    );
    const dLogits = new Float32Array(pass.logits.length);
    batch.lengths.forEach((len, b) => {
      dLogits[(b * T + len - 1) * V + ref.metric.token_a] = 1;
      dLogits[(b * T + len - 1) * V + ref.metric.token_b] = -1;
    });
    const pg = zeroWeights(model.config);
    const grads = pass.backward(dLogits, { parameterGradients: pg });
    // The fixtures predate attn_z_L (its gradient is checked by finite differences and against
    // the generic engine, whose own PyTorch fixtures have hook_z): every other site is compared.
    const compared = model.sites.filter((s) => !s.startsWith('attn_z_'));
    assert.deepEqual(Object.keys(ref.site_gradients).sort(), [...compared].sort());
    for (const site of compared) relClose(grads.get(site)!, ref.site_gradients[site], site);
    const layout = new Map(parameterLayout(model.config).map((p) => [p.name, p]));
    for (const [name, want] of Object.entries(ref.parameter_gradients))
      relClose(layout.get(name)!.get(pg), want, name);
  });
}
