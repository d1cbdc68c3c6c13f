// Node effects on tiny random models with random SAEs (parallel and sequential residual):
// exact = brute-force patching with SAEs spliced in; attrib = the derivative of m along Δu
// (finite differences); IG completeness (its effects over a site sum to the whole site's patch);
// zero ablation; sum aggregation; data errors.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { discover } from '../../src/attribution/discover.ts';
import type { Metric } from '../../src/attribution/metric.ts';
import { makeBatch } from '../../src/model/gptneox.ts';
import {
  allNodes,
  makeWorld,
  metricOf,
  pearson,
  siteActivation,
  splicedMetric,
  type World,
} from './world.ts';

const dictionaries = (w: World) => (site: string) => w.saes.get(site)!;

for (const parallel of [true, false]) {
  for (const single of [false, true]) {
    const label = `${parallel ? 'parallel' : 'sequential'}, ${single ? 'zero ablation' : 'clean/patch'}`;
    test(`exact effects equal brute-force patching with spliced SAEs (${label})`, () => {
      const w = makeWorld({ parallel, single, examples: 3 });
      const dsc = discover(w.model, dictionaries(w), w.examples, {
        method: 'exact',
        nodesOnly: true,
        batchSize: 2,
        steps: 2,
      });
      let checked = 0;
      let nonzero = 0;
      let maxErr = 0;
      const cleanM = w.examples.map((e) => splicedMetric(w, e, e.clean));
      for (const [k, site, t, feature, effect] of allNodes(dsc)) {
        const e = w.examples[k];
        const sae = w.saes.get(site)!;
        const T = e.clean.length;
        // The node's patch value: from the patch input's encoding, or 0 (zero ablation).
        const patched = e.patch
          ? sae.run(siteActivation(w, e.patch, site), T)
          : { features: new Float32Array(T * sae.width), error: new Float32Array(T * sae.dIn) };
        const m = splicedMetric(w, e, e.clean, (s, f, err) => {
          if (s !== site) return;
          if (feature === null)
            err.set(patched.error.subarray(t * sae.dIn, (t + 1) * sae.dIn), t * sae.dIn);
          else f[t * sae.width + feature] = patched.features[t * sae.width + feature];
        });
        const truth = m - cleanM[k];
        maxErr = Math.max(maxErr, Math.abs(effect - truth));
        assert.ok(
          Math.abs(effect - truth) <= 2e-4 + 2e-3 * Math.abs(truth),
          `${site}/${feature ?? 'ε'}@${t} example ${k}: exact ${effect}, brute force ${truth}`,
        );
        checked++;
        if (Math.abs(truth) > 1e-3) nonzero++;
      }
      assert.ok(checked > 200 && nonzero > 50, `checked ${checked}, non-zero ${nonzero}`);
      // The metric itself: clean m matches the plain model's logit difference.
      const e0 = w.examples[0];
      const plain = metricOf(w.model.forward(makeBatch([e0.clean])).logits, e0);
      assert.ok(Math.abs(dsc.batches[0].mClean[0] - plain) < 1e-4);
    });
  }

  test(`attrib effects equal the derivative of m along Δu (${parallel ? 'parallel' : 'sequential'})`, () => {
    const w = makeWorld({ parallel, examples: 2 });
    const dsc = discover(w.model, dictionaries(w), w.examples, {
      method: 'attrib',
      nodesOnly: true,
    });
    const d = w.config.hiddenSize;
    const nodes = allNodes(dsc).filter((_, i) => i % 7 === 0); // a spread-out sample
    for (const [k, site, t, feature, effect] of nodes) {
      const e = w.examples[k];
      const sae = w.saes.get(site)!;
      const T = e.clean.length;
      const clean = sae.run(siteActivation(w, e.clean, site), T);
      const patch = sae.run(siteActivation(w, e.patch!, site), T);
      // Δu moves x by δ at position t: Δf_i·W_D[i] for a feature, Δε for the error.
      const delta = new Float32Array(d);
      for (let j = 0; j < d; j++)
        delta[j] =
          feature === null
            ? patch.error[t * d + j] - clean.error[t * d + j]
            : (patch.features[t * sae.width + feature] - clean.features[t * sae.width + feature]) *
              sae.decoderRow(feature)[j];
      const mAt = (h: number) => {
        const logits = w.model.forward(makeBatch([e.clean]), {
          hooks: {
            [site]: (x) => {
              const y = x.slice();
              for (let j = 0; j < d; j++) y[t * d + j] += h * delta[j];
              return y;
            },
          },
        }).logits;
        return metricOf(logits, e);
      };
      const D = (h: number) => (mAt(h) - mAt(-h)) / (2 * h);
      const fd = (4 * D(0.025) - D(0.05)) / 3; // Richardson
      assert.ok(
        Math.abs(effect - fd) <= 3e-4 + 3e-3 * Math.abs(fd),
        `${site}/${feature ?? 'ε'}@${t}: attrib ${effect}, finite differences ${fd}`,
      );
    }
  });

  test(`IG effects over a site add up to patching the whole site (${parallel ? 'parallel' : 'sequential'})`, () => {
    // Completeness: the IG effects of a site sum to ḡ·Δx, a left Riemann sum of ∫ ∇m·Δx dα =
    // m(site patched) - m(clean) with error ~ c/steps; 2·S(2n) - S(n) cancels that term.
    const w = makeWorld({ parallel, examples: 2 });
    const sumsBy = (steps: number) => {
      const nodes = allNodes(
        discover(w.model, dictionaries(w), w.examples, { method: 'ig', steps, nodesOnly: true }),
      );
      const sums = new Map<string, number>();
      for (const [k, site, , , effect] of nodes)
        sums.set(`${site}:${k}`, (sums.get(`${site}:${k}`) ?? 0) + effect);
      return sums;
    };
    const [s100, s200] = [sumsBy(100), sumsBy(200)];
    for (const site of w.model.sites) {
      for (let k = 0; k < w.examples.length; k++) {
        const e = w.examples[k];
        const xPatch = siteActivation(w, e.patch!, site);
        const mPatched = metricOf(
          w.model.forward(makeBatch([e.clean]), { hooks: { [site]: () => xPatch } }).logits,
          e,
        );
        const truth = mPatched - metricOf(w.model.forward(makeBatch([e.clean])).logits, e);
        const [a, b] = [s100.get(`${site}:${k}`)!, s200.get(`${site}:${k}`)!];
        assert.ok(
          Math.abs(b - truth) <= Math.abs(a - truth) + 1e-5,
          `${site} example ${k}: IG sums ${a} (100 steps), ${b} (200 steps), whole-site patch ${truth}`,
        );
        assert.ok(
          Math.abs(2 * b - a - truth) <= 2e-3 * Math.abs(truth) + 2e-4,
          `${site} example ${k}: extrapolated IG sum ${2 * b - a}, whole-site patch ${truth}`,
        );
      }
    }
  });
}

for (const parallel of [true, false]) {
  test(`IG from a clean prefix equals brute-force IG on the whole model (${parallel ? 'parallel' : 'sequential'})`, () => {
    // Every example differs first at position 2 or 3, so the IG runs start at position 2 and
    // continue the clean keys and values; the truth runs the whole model at every α.
    const w = makeWorld({ parallel, examples: 3, T: 5, seed: 4 });
    w.examples.forEach((e, k) => {
      e.patch = e.clean.slice();
      e.patch[2 + (k % 2)] = (e.clean[2 + (k % 2)] + 1) % w.config.vocabSize;
    });
    const steps = 4;
    const dsc = discover(w.model, dictionaries(w), w.examples, {
      method: 'ig',
      steps,
      nodesOnly: true,
    });
    const d = w.config.hiddenSize;
    const V = w.config.vocabSize;
    const [bn] = dsc.batches;
    for (const site of w.model.sites) {
      const sn = bn.sites.get(site)!;
      const sae = w.saes.get(site)!;
      w.examples.forEach((e, b) => {
        const batch = makeBatch([e.clean]);
        const xc = siteActivation(w, e.clean, site);
        const xp = siteActivation(w, e.patch!, site);
        const dLogits = new Float32Array(V);
        dLogits[e.patchAnswerId!] += 1;
        dLogits[e.cleanAnswerId] -= 1;
        const mean = new Float32Array(5 * d);
        let clean: Float32Array = new Float32Array(0);
        for (let k = 0; k < steps; k++) {
          const x = xc.map((v, i) => v + (k / steps) * (xp[i] - v));
          const pass = w.model.forward(batch, { hooks: { [site]: () => x }, forBackward: true });
          const g = pass.backward(dLogits).get(site)!;
          if (k === 0) clean = g;
          for (let i = 0; i < g.length; i++) mean[i] += g[i] / steps;
        }
        const tol = 1e-4 * Math.max(1, ...mean.map(Math.abs));
        for (let t = 0; t < 5; t++) {
          const n = b * 5 + t;
          // from position 2 on: the IG mean; before it only the clean term, as documented
          const want = t >= 2 ? mean : clean.map((v) => v / steps);
          for (let j = 0; j < d; j++)
            assert.ok(
              Math.abs(sn.grad[n * d + j] - want[t * d + j]) <= tol,
              `${site} example ${b} position ${t}: grad ${sn.grad[n * d + j]} vs ${want[t * d + j]}`,
            );
          for (let i = sn.delta.rowStart[n]; i < sn.delta.rowStart[n + 1]; i++) {
            const row = sae.decoderRow(sn.delta.index[i]);
            let gf = 0;
            for (let j = 0; j < d; j++) gf += row[j] * mean[t * d + j];
            const effect = gf * sn.delta.value[i];
            assert.ok(
              Math.abs(sn.effect[i] - effect) <= 1e-4 * Math.max(1, Math.abs(effect)),
              `${site} example ${b} position ${t} feature ${sn.delta.index[i]}: ${sn.effect[i]} vs ${effect}`,
            );
          }
        }
      });
    }
  });
}

test('attrib and IG correlate with exact on random models (printed)', () => {
  // A random model with random SAEs is far from linear (many features sit at their ReLU kink), so
  // one world's r spreads widely: over seeds 1-12, both residual modes (24 worlds), r ranged
  // 0.75-0.97 for attrib and 0.60-0.97 for IG (lowest: IG, seed 5, sequential). What is stable is
  // the median over a set of worlds: 0.90 (attrib) and 0.90 (IG) over seeds 1-6, 0.92 and 0.89
  // over seeds 7-12. So this asserts the median over seeds 1-6 at 0.85, under that spread, and
  // every world above 0.5 (a clear agreement); docs/discover.md has the organism's numbers.
  const rows: string[] = [];
  const rAttrib: number[] = [];
  const rIg: number[] = [];
  for (let seed = 1; seed <= 6; seed++)
    for (const parallel of [true, false]) {
      const w = makeWorld({ parallel, examples: 4, scale: 0.3, seed });
      const run = (method: 'ig' | 'attrib' | 'exact') =>
        allNodes(
          discover(w.model, dictionaries(w), w.examples, { method, steps: 10, nodesOnly: true }),
        ).map((n) => n[4]);
      const [exact, attrib, ig] = [run('exact'), run('attrib'), run('ig')];
      rAttrib.push(pearson(attrib, exact));
      rIg.push(pearson(ig, exact));
      rows.push(
        `seed ${seed} ${parallel ? 'parallel' : 'sequential'}: r(attrib, exact) ${rAttrib.at(-1)!.toFixed(3)}, r(ig, exact) ${rIg.at(-1)!.toFixed(3)}`,
      );
    }
  console.log(rows.join('\n'));
  const median = (v: number[]) => {
    const s = [...v].sort((a, b) => a - b);
    return (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  };
  assert.ok(median(rAttrib) > 0.85, `median r(attrib, exact) ${median(rAttrib)}`);
  assert.ok(median(rIg) > 0.85, `median r(ig, exact) ${median(rIg)}`);
  for (const r of [...rAttrib, ...rIg]) assert.ok(r > 0.5, rows.join('\n'));
});

test('sum aggregation: effects summed over positions, then averaged over examples', () => {
  const w = makeWorld({ parallel: true, examples: 3 });
  w.examples[1].clean = w.examples[1].clean.slice(0, 3); // lengths 4, 3, 4
  w.examples[1].patch = w.examples[1].patch!.slice(0, 3);
  assert.throws(
    () => discover(w.model, dictionaries(w), w.examples, { nodesOnly: true }),
    /aggregation none .* same length; got 3 tokens \(1\), 4 tokens \(2\)/,
  );
  const dsc = discover(w.model, dictionaries(w), w.examples, {
    method: 'attrib',
    aggregation: 'sum',
    nodesOnly: true,
    batchSize: 2,
  });
  const expected = new Map<string, number>();
  for (const [example, site, t, feature, effect] of allNodes(dsc)) {
    // The 3-token example has nothing at its padded position 3, at any site.
    if (example === 1 && t >= 3) assert.equal(effect, 0, `${site}/${feature}@${t}, example 1`);
    const key = `${site}/${feature}`;
    expected.set(key, (expected.get(key) ?? 0) + effect / 3);
  }
  // The padded position of the short example carries nothing.
  const short = dsc.batches[0].sites.get('resid_0')!;
  const padRow = 1 * dsc.batches[0].T + 3;
  assert.equal(short.delta.rowStart[padRow + 1] - short.delta.rowStart[padRow], 0);
  assert.equal(short.errorEffect[padRow], 0);
  for (const [key, value] of expected) {
    const [site, f] = key.split('/');
    const s = dsc.sums.index(site);
    const got = dsc.sums.nodeEffect(s, dsc.sums.node(s, 0, f === 'null' ? null : Number(f)));
    assert.ok(Math.abs(got - value) < 1e-6, `${key}: ${got} vs ${value}`);
  }
});

test('a user-supplied metric on the full logits gives what the built-in one does', () => {
  const w = makeWorld({ parallel: false, examples: 2 });
  const custom: Metric = {
    evaluate(logits, k, dLogits) {
      const e = w.examples[k];
      if (dLogits) {
        dLogits[e.patchAnswerId!] += 1;
        dLogits[e.cleanAnswerId] -= 1;
      }
      return metricOf(logits, e);
    },
  };
  const options = { method: 'ig' as const, steps: 4, nodesOnly: true };
  const builtIn = allNodes(discover(w.model, dictionaries(w), w.examples, options));
  const user = allNodes(
    discover(w.model, dictionaries(w), w.examples, { ...options, metric: custom }),
  );
  assert.equal(user.length, builtIn.length);
  user.forEach((n, i) => assert.ok(Math.abs(n[4] - builtIn[i][4]) < 1e-5, `${n} vs ${builtIn[i]}`));
});

test('identical clean and patch inputs: no node has an effect and nothing breaks', () => {
  const w = makeWorld({ parallel: true, examples: 2 });
  for (const e of w.examples) e.patch = e.clean.slice();
  const dsc = discover(w.model, dictionaries(w), w.examples, {
    nodeThreshold: 0,
    edgeThreshold: 0,
  });
  assert.equal(dsc.sums.nodes(0).length, 0);
  assert.equal(dsc.sums.edgeCount(), 0);
  assert.equal(dsc.metric.clean, dsc.metric.patch);
});

test('data errors: mixed single/contrastive examples, bad options', () => {
  const w = makeWorld({ parallel: true, examples: 2 });
  const mixed = [w.examples[0], { ...w.examples[1], patch: null, patchPrefix: null }];
  assert.throws(
    () => discover(w.model, dictionaries(w), mixed, { nodesOnly: true }),
    /1 of 2 examples have a patch_prefix; either all or none/,
  );
  assert.throws(() => discover(w.model, dictionaries(w), [], {}), /no examples/);
  assert.throws(
    () => discover(w.model, dictionaries(w), w.examples, { steps: 0 }),
    /steps must be a positive integer/,
  );
  assert.throws(
    () =>
      discover(
        w.model,
        (site) => {
          if (site === 'mlp_1') throw new Error(`saes: no SAE for site ${site}`);
          return w.saes.get(site)!;
        },
        w.examples,
      ),
    /no SAE for site mlp_1/,
  );
});
