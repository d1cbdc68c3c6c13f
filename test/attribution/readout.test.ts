// Metrics that read a residual site instead of the logits (a probe on mean-pooled activations):
// exact effects equal brute-force patching with SAEs spliced in, on examples of different lengths
// under zero ablation; only sites up to the readout get nodes; IG over a site adds up to zeroing
// the whole site; edges run within those sites.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { discover } from '../../src/attribution/discover.ts';
import { makeBatch } from '../../src/model/gptneox.ts';
import { probeMetric } from '../../src/shift/metric.ts';
import type { Probe } from '../../src/shift/probe.ts';
import { Rng } from '../../src/random.ts';
import { makeWorld, splicedHooks, type World } from './world.ts';

const READOUT = 'resid_0';

function world(parallel: boolean) {
  const w = makeWorld({ parallel, single: true, examples: 3, T: 5 });
  w.examples[1].clean = w.examples[1].clean.slice(0, 3); // lengths 5, 3, 5
  const rng = new Rng(9);
  const d = w.config.hiddenSize;
  const probe: Probe = {
    site: READOUT,
    weight: Float64Array.from({ length: d }, () => rng.normal()),
    bias: 0.3,
  };
  const signs = [1, -1, 1];
  const metric = probeMetric(
    probe,
    w.examples.map((e) => e.clean.length),
    signs,
  );
  return { w, probe, signs, metric };
}

/** The signed probe logit with SAEs spliced in at every site; `edit` changes one site's nodes. */
function splicedProbe(
  w: World,
  probe: Probe,
  sign: number,
  ids: number[],
  edit?: (site: string, f: Float32Array, err: Float32Array) => void,
): number {
  const T = ids.length;
  const d = w.config.hiddenSize;
  const hooks = splicedHooks(w, T, edit);
  const act = w.model.forward(makeBatch([ids]), { hooks, logits: 'none' }).activation(probe.site);
  let z = 0;
  for (let t = 0; t < T; t++) for (let j = 0; j < d; j++) z += probe.weight[j] * act[t * d + j];
  return sign * (z / T + probe.bias);
}

for (const parallel of [true, false]) {
  const label = parallel ? 'parallel' : 'sequential';
  test(`readout metric: exact effects equal brute-force zero patching (${label})`, () => {
    const { w, probe, signs, metric } = world(parallel);
    const dsc = discover(w.model, (s) => w.saes.get(s)!, w.examples, {
      method: 'exact',
      aggregation: 'sum',
      nodesOnly: true,
      batchSize: 3,
      steps: 2,
      metric,
    });
    assert.deepEqual(dsc.sites, ['embed', 'attn_z_0', 'attn_0', 'mlp_0', 'resid_0']);
    let checked = 0;
    let nonzero = 0;
    for (const bn of dsc.batches) {
      for (const [site, sn] of bn.sites) {
        const sae = w.saes.get(site)!;
        for (let n = 0; n < bn.B * bn.T; n++) {
          const [b, t] = [Math.floor(n / bn.T), n % bn.T];
          const k = bn.examples[b];
          const e = w.examples[k];
          if (t >= e.clean.length) continue;
          const clean = splicedProbe(w, probe, signs[k], e.clean);
          assert.ok(Math.abs(bn.mClean[b] - clean) < 1e-4, `m clean ${bn.mClean[b]} vs ${clean}`);
          const check = (feature: number | null, effect: number) => {
            const m = splicedProbe(w, probe, signs[k], e.clean, (s, f, err) => {
              if (s !== site) return;
              if (feature === null) err.fill(0, t * sae.dIn, (t + 1) * sae.dIn);
              else f[t * sae.width + feature] = 0;
            });
            const truth = m - clean;
            assert.ok(
              Math.abs(effect - truth) <= 2e-4 + 2e-3 * Math.abs(truth),
              `${site}/${feature ?? 'ε'}@${t} example ${k}: exact ${effect}, brute force ${truth}`,
            );
            checked++;
            if (Math.abs(truth) > 1e-3) nonzero++;
          };
          for (let i = sn.delta.rowStart[n]; i < sn.delta.rowStart[n + 1]; i++)
            check(sn.delta.index[i], sn.effect[i]);
          check(null, sn.errorEffect[n]);
        }
      }
    }
    assert.ok(checked > 100 && nonzero > 30, `checked ${checked}, non-zero ${nonzero}`);
  });

  test(`readout metric: IG effects over a site add up to zeroing the site (${label})`, () => {
    // As in nodes.test.ts: a left Riemann sum with error ~ c/steps, so 2·S(200) - S(100) ≈ truth.
    const { w, probe, signs, metric } = world(parallel);
    const siteSums = (steps: number) => {
      const dsc = discover(w.model, (s) => w.saes.get(s)!, w.examples, {
        method: 'ig',
        steps,
        aggregation: 'sum',
        nodesOnly: true,
        metric,
      });
      const sums = new Map<string, number>();
      for (const bn of dsc.batches)
        for (const [site, sn] of bn.sites)
          for (let n = 0; n < bn.B * bn.T; n++) {
            const key = `${site}:${bn.examples[Math.floor(n / bn.T)]}`;
            let total = sn.errorEffect[n];
            for (let i = sn.delta.rowStart[n]; i < sn.delta.rowStart[n + 1]; i++)
              total += sn.effect[i];
            sums.set(key, (sums.get(key) ?? 0) + total);
          }
      return sums;
    };
    const [s100, s200] = [siteSums(100), siteSums(200)];
    for (const [k, e] of w.examples.entries()) {
      const clean = splicedProbe(w, probe, signs[k], e.clean);
      for (const site of ['embed', 'attn_0', 'mlp_0', 'resid_0']) {
        const zeroed = splicedProbe(w, probe, signs[k], e.clean, (s, f, err) => {
          if (s !== site) return;
          f.fill(0);
          err.fill(0);
        });
        const truth = zeroed - clean;
        const [a, b] = [s100.get(`${site}:${k}`)!, s200.get(`${site}:${k}`)!];
        assert.ok(
          Math.abs(2 * b - a - truth) <= 2e-3 * Math.abs(truth) + 2e-4,
          `${site} example ${k}: IG sums ${a} (100 steps), ${b} (200), zeroing the site ${truth}`,
        );
      }
    }
  });
}

test('readout metric: edges are found between the sites up to the readout', () => {
  const { w, metric } = world(false);
  const dsc = discover(w.model, (s) => w.saes.get(s)!, w.examples, {
    aggregation: 'sum',
    steps: 4,
    nodeThreshold: 0,
    edgeThreshold: 0,
    metric,
  });
  assert.ok(dsc.sums.edgeCount() > 0);
});

test('readout metric: a readout that is not a residual site is refused', () => {
  const { w, metric } = world(true);
  assert.throws(
    () =>
      discover(w.model, (s) => w.saes.get(s)!, w.examples, {
        aggregation: 'sum',
        nodesOnly: true,
        metric: { ...metric, readout: 'mlp_0' },
      }),
    /metric readout: expected embed or a resid_L site, got mlp_0/,
  );
});
