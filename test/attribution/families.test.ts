// Discovery on the generic engine (transformer.ts): tiny random models of sequential families
// (GPT-2: LayerNorm, learned positions; Llama: RMSNorm, GQA, rotary with llama3 scaling; Qwen2:
// q/k/v biases; Qwen3: q/k norms) and the sandwich family (Gemma-2: post-norms, soft-capping, a
// sliding window), with random SAEs at every site, attn_z_L included (H·Dh = 24 wide for Llama
// and Gemma-2, d = 16), or at the paper's Gemma-2 subset (embed, attn_z, mlp, resid: attn_L has no
// dictionary and is passed through).
// The same independent truths as nodes.test.ts and edges.test.ts: exact = brute-force patching
// with the SAEs spliced in; attrib = the derivative of m along Δu; IG completeness and IG from a
// clean prefix (GQA keys and values) against whole-model runs; edges = finite differences along
// the direct path, every other dictionary site frozen at its clean value. And GPT-NeoX on the
// generic engine finds what the GptNeoX engine finds.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { discover, toCircuit } from '../../src/attribution/discover.ts';
import { parseNodeId } from '../../src/circuit/circuit.ts';
import { makeBatch, type SiteHook } from '../../src/model/gptneox.ts';
import { toConfigJson } from '../../src/model/config.ts';
import { parameterLayout } from '../../src/model/weights.ts';
import { Transformer } from '../../src/model/transformer.ts';
import { gptNeoX } from '../../src/model/families/gptneox.ts';
import { readTransformerWeights } from '../../src/model/families/family.ts';
import { probeMetric } from '../../src/shift/metric.ts';
import { Rng } from '../../src/random.ts';
import {
  allNodes,
  makeFamilyWorld,
  makeWorld,
  metricOf,
  siteActivation,
  splicedHooks,
  splicedMetric,
  type ModelWorld,
} from './world.ts';

const FAMILIES = ['gpt2', 'llama', 'gemma2'];
const info = { model: 'm', saes: 's', data: 'd', tokens: [] };

const dictionaries = (w: ModelWorld) => (site: string) => {
  const sae = w.saes.get(site);
  if (!sae) throw new Error(`test: no SAE at ${site}`);
  return sae;
};
const sitesOf = (w: ModelWorld) => [...w.saes.keys()];

for (const family of [...FAMILIES, 'qwen2', 'qwen3']) {
  // Qwen2 and Qwen3 with patch data only (zero ablation is the same code as for Llama).
  for (const single of FAMILIES.includes(family) ? [false, true] : [false]) {
    const label = `${family}, ${single ? 'zero ablation' : 'clean/patch'}`;
    test(`exact effects equal brute-force patching with spliced SAEs (${label})`, () => {
      const w = makeFamilyWorld(family, { single, examples: 3 });
      assert.ok(w.saes.has('attn_z_1'));
      const dsc = discover(w.model, dictionaries(w), w.examples, {
        method: 'exact',
        nodesOnly: true,
        batchSize: 2,
        steps: 2,
        sites: sitesOf(w),
      });
      let checked = 0;
      let nonzero = 0;
      const cleanM = w.examples.map((e) => splicedMetric(w, e, e.clean));
      const seenAt = new Set<string>();
      for (const [k, site, t, feature, effect] of allNodes(dsc)) {
        const e = w.examples[k];
        const sae = w.saes.get(site)!;
        const T = e.clean.length;
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
        assert.ok(
          Math.abs(effect - truth) <= 2e-4 + 2e-3 * Math.abs(truth),
          `${site}/${feature ?? 'ε'}@${t} example ${k}: exact ${effect}, brute force ${truth}`,
        );
        checked++;
        if (Math.abs(truth) > 1e-3) {
          nonzero++;
          seenAt.add(site.replace(/_\d+$/, ''));
        }
      }
      assert.ok(checked > 200 && nonzero > 50, `checked ${checked}, non-zero ${nonzero}`);
      // every kind of site carries real effects, attn_z included
      assert.deepEqual([...seenAt].sort(), ['attn', 'attn_z', 'embed', 'mlp', 'resid']);
      const e0 = w.examples[0];
      const plain = metricOf(w.model.forward(makeBatch([e0.clean])).logits, e0);
      assert.ok(Math.abs(dsc.batches[0].mClean[0] - plain) < 1e-4);
    });
  }

  test(`attrib effects equal the derivative of m along Δu (${family})`, () => {
    const w = makeFamilyWorld(family, { examples: 2 });
    const dsc = discover(w.model, dictionaries(w), w.examples, {
      method: 'attrib',
      nodesOnly: true,
      sites: sitesOf(w),
    });
    const nodes = allNodes(dsc).filter((_, i) => i % 7 === 0); // a spread-out sample
    let nonzero = 0;
    for (const [k, site, t, feature, effect] of nodes) {
      const e = w.examples[k];
      const sae = w.saes.get(site)!;
      const d = sae.dIn; // the site's width
      const T = e.clean.length;
      const clean = sae.run(siteActivation(w, e.clean, site), T);
      const patch = sae.run(siteActivation(w, e.patch!, site), T);
      const delta = new Float32Array(d);
      for (let j = 0; j < d; j++)
        delta[j] =
          feature === null
            ? patch.error[t * d + j] - clean.error[t * d + j]
            : (patch.features[t * sae.width + feature] - clean.features[t * sae.width + feature]) *
              sae.decoderRow(feature)[j];
      const mAt = (h: number) => {
        const hooks: Record<string, SiteHook> = {
          [site]: (x) => {
            const y = x.slice();
            for (let j = 0; j < d; j++) y[t * d + j] += h * delta[j];
            return y;
          },
        };
        return metricOf(w.model.forward(makeBatch([e.clean]), { hooks }).logits, e);
      };
      const D = (h: number) => (mAt(h) - mAt(-h)) / (2 * h);
      const fd = (4 * D(0.025) - D(0.05)) / 3; // Richardson
      assert.ok(
        Math.abs(effect - fd) <= 3e-4 + 3e-3 * Math.abs(fd),
        `${site}/${feature ?? 'ε'}@${t}: attrib ${effect}, finite differences ${fd}`,
      );
      if (Math.abs(fd) > 1e-3) nonzero++;
    }
    assert.ok(nonzero > 20, `non-zero ${nonzero} of ${nodes.length}`);
  });

  test(`IG effects over a site add up to patching the whole site (${family})`, () => {
    // As nodes.test.ts: the IG sum is a left Riemann sum of m(site patched) - m(clean) with error
    // ~ c/steps; 2·S(200) - S(100) cancels that term.
    const w = makeFamilyWorld(family, { examples: 2 });
    const sumsBy = (steps: number) => {
      const nodes = allNodes(
        discover(w.model, dictionaries(w), w.examples, {
          method: 'ig',
          steps,
          nodesOnly: true,
          sites: sitesOf(w),
        }),
      );
      const sums = new Map<string, number>();
      for (const [k, site, , , effect] of nodes)
        sums.set(`${site}:${k}`, (sums.get(`${site}:${k}`) ?? 0) + effect);
      return sums;
    };
    const [s100, s200] = [sumsBy(100), sumsBy(200)];
    let moved = 0;
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
        if (Math.abs(truth) > 1e-2) moved++;
      }
    }
    assert.ok(moved > 8, `sites whose patch moves m: ${moved}`);
  });
}

for (const family of ['llama', 'gemma2']) {
  test(`IG from a clean prefix equals brute-force IG on the whole model (${family}, GQA past)`, () => {
    // As nodes.test.ts: every example differs first at position 2 or 3, so the IG runs start at
    // position 2 and continue the clean keys and values ([B, KV, P, Dh]: KV = 2 of 4 heads).
    const w = makeFamilyWorld(family, { examples: 3, T: 5, seed: 4 });
    const V = w.model.shape.vocabSize;
    w.examples.forEach((e, k) => {
      e.patch = e.clean.slice();
      e.patch[2 + (k % 2)] = (e.clean[2 + (k % 2)] + 1) % V;
    });
    const steps = 4;
    const dsc = discover(w.model, dictionaries(w), w.examples, {
      method: 'ig',
      steps,
      nodesOnly: true,
      sites: sitesOf(w),
    });
    const [bn] = dsc.batches;
    for (const site of w.model.sites) {
      const sn = bn.sites.get(site)!;
      const sae = w.saes.get(site)!;
      const d = w.model.siteWidth(site);
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

/**
 * The downstream node's value, ∇_d m-weighted, with upstream node (U, t', feature|ε) moved by h·Δu
 * and `frozen` sites held at their clean values.
 */
function weightedValue(
  w: ModelWorld,
  ids: number[],
  up: { site: string; position: number; delta: Float32Array },
  down: { site: string; position: number; feature: number | null; grad: Float32Array },
  frozen: string[],
  h: number,
): number {
  const dU = w.model.siteWidth(up.site);
  const dD = w.model.siteWidth(down.site);
  const hooks: Record<string, SiteHook> = {
    [up.site]: (x) => {
      const y = x.slice();
      for (let j = 0; j < dU; j++) y[up.position * dU + j] += h * up.delta[j];
      return y;
    },
  };
  for (const f of frozen) {
    const clean = siteActivation(w, ids, f);
    hooks[f] = () => clean;
  }
  const x = w.model.forward(makeBatch([ids]), { hooks, logits: 'none' }).activation(down.site);
  const row = x.slice(down.position * dD, (down.position + 1) * dD);
  const sae = w.saes.get(down.site)!;
  const g = down.grad.subarray(down.position * dD, (down.position + 1) * dD);
  let value = 0;
  if (down.feature === null) {
    const { error } = sae.run(row, 1); // ε(x_D)
    for (let j = 0; j < dD; j++) value += g[j] * error[j];
  } else {
    const f = sae.encode(row, 1)[down.feature];
    let gradF = 0; // ∇_{f_j} m = W_D[j]·ḡ
    for (let j = 0; j < dD; j++) gradF += sae.decoderRow(down.feature)[j] * g[j];
    value = gradF * f;
  }
  return value;
}

type SiteSet = 'every' | 'paper' | 'residual';

/** Sites of each set: every site; the paper's embed/attn_z/mlp/resid; embed/mlp/resid only. */
function siteSet(set: SiteSet, numLayers: number): string[] | undefined {
  if (set === 'every') return undefined;
  const kinds = set === 'paper' ? ['attn_z', 'mlp', 'resid'] : ['mlp', 'resid'];
  return [
    'embed',
    ...Array.from({ length: numLayers }, (_, L) => kinds.map((k) => `${k}_${L}`)).flat(),
  ];
}

/**
 * The direct pairs of sites by hand, for a sequential or sandwich block: attn_z_L -> attn_L
 * (o_proj), and mlp_L reads mid = prev + attn_L. Without attn_L's dictionary (`paper`), attn_z_L
 * feeds mlp_L and resid_L through it; without attention dictionaries at all (`residual`), prev
 * feeds mlp_L and resid_L also through the attention. Also the pairs with an indirect path through
 * another dictionary site, where freezing must matter.
 */
function expectedPairs(numLayers: number, set: SiteSet) {
  const pairs: string[] = [];
  const indirect: string[] = [];
  for (let L = 0; L < numLayers; L++) {
    const prev = L === 0 ? 'embed' : `resid_${L - 1}`;
    pairs.push(`${prev}>mlp_${L}`, `mlp_${L}>resid_${L}`, `${prev}>resid_${L}`);
    indirect.push(`${prev}>resid_${L}`);
    if (set === 'residual') continue;
    const attn = set === 'paper' ? `attn_z_${L}` : `attn_${L}`;
    pairs.push(`${prev}>attn_z_${L}`, `${attn}>mlp_${L}`, `${attn}>resid_${L}`);
    if (set === 'every') pairs.push(`attn_z_${L}>attn_${L}`);
    indirect.push(`${prev}>mlp_${L}`, `${attn}>resid_${L}`);
  }
  return { pairs: pairs.sort(), indirect };
}

for (const [family, set] of [
  ['gpt2', 'every'],
  ['gemma2', 'every'],
  ['gemma2', 'paper'],
  ['llama', 'paper'],
  ['llama', 'residual'],
] as const) {
  const label = `${family}, ${{ every: 'every site', paper: 'the paper sites embed/attn_z/mlp/resid', residual: 'embed/mlp/resid only' }[set]}`;
  test(`edge weights equal finite differences along the direct path (${label})`, () => {
    const probe = makeFamilyWorld(family);
    const sites = siteSet(set, probe.model.shape.numLayers);
    const w = makeFamilyWorld(family, { examples: 1, T: 4, seed: 3, sites });
    const e = w.examples[0];
    // The patch differs at position 1: inside the last token's window on Gemma-2's sliding
    // layer 0 (3 positions), so that every pair of sites has nodes that the metric sees.
    e.patch = e.clean.slice();
    e.patch[1] = (e.clean[1] + 1) % w.model.shape.vocabSize;
    const options = {
      method: 'ig' as const,
      steps: 10,
      nodeThreshold: 0,
      edgeThreshold: 0,
      sites: sitesOf(w),
    };
    const dsc = discover(w.model, dictionaries(w), w.examples, options);
    const circuit = toCircuit(dsc, info, options);
    const bn = dsc.batches[0];
    const pairs = new Map<string, typeof circuit.edges>();
    for (const edge of circuit.edges) {
      if (edge.target === 'y') continue;
      const key = `${parseNodeId(edge.source).site}>${parseNodeId(edge.target).site}`;
      pairs.set(key, [...(pairs.get(key) ?? []), edge]);
    }
    const { pairs: expected, indirect } = expectedPairs(w.model.shape.numLayers, set);
    assert.deepEqual([...pairs.keys()].sort(), expected);
    // Edges between positions exactly where a direct path crosses attention.
    const across = [...pairs]
      .filter(([, list]) =>
        list.some((x) => parseNodeId(x.source).position! < parseNodeId(x.target).position!),
      )
      .map(([pair]) => pair)
      .sort();
    assert.deepEqual(
      across,
      expected.filter((p) => /attn_z_\d+$/.test(p) || (set === 'residual' && !p.startsWith('mlp'))),
    );

    let checked = 0;
    let [intoError, fromError, mattered] = [0, 0, 0];
    for (const [pair, edges] of pairs) {
      const [U, D] = pair.split('>');
      // The direct path: every other dictionary site held at its clean value.
      const frozen = sitesOf(w).filter((s) => s !== U && s !== D);
      const dU = w.model.siteWidth(U);
      const sorted = [...edges].sort((a, b) => Math.abs(b.weight) - Math.abs(a.weight));
      // the largest edges, a spread of others, and the largest between positions
      const crossing = sorted.find(
        (x) => parseNodeId(x.source).position! < parseNodeId(x.target).position!,
      );
      const sample = new Set([
        ...sorted.slice(0, 4),
        ...sorted.filter((_, i) => i % 23 === 5),
        ...(crossing ? [crossing] : []),
      ]);
      for (const edge of sample) {
        const src = parseNodeId(edge.source);
        const dst = parseNodeId(edge.target);
        const sn = bn.sites.get(U)!;
        const n = src.position!;
        const delta = new Float32Array(dU);
        if (src.feature === null) delta.set(sn.errorDelta.subarray(n * dU, (n + 1) * dU));
        else {
          let df = 0;
          for (let k = sn.delta.rowStart[n]; k < sn.delta.rowStart[n + 1]; k++)
            if (sn.delta.index[k] === src.feature) df = sn.delta.value[k];
          const row = w.saes.get(U)!.decoderRow(src.feature);
          for (let j = 0; j < dU; j++) delta[j] = df * row[j];
        }
        const up = { site: U, position: n, delta };
        const down = { ...dst, position: dst.position!, grad: bn.sites.get(D)!.grad };
        const value = (h: number) => weightedValue(w, e.clean, up, down, frozen, h);
        // A central difference at h = 4e-3: at 1e-3 and below float32 noise reaches a few % on
        // GPT-2 (attn_z_0 -> attn_0 error nodes); at 8e-3 a ReLU kink of the downstream SAE is
        // crossed now and then. Over these four worlds' 1100 sampled edges 4e-3 met every one.
        const h = 4e-3;
        const fd = (value(h) - value(-h)) / (2 * h);
        assert.ok(
          Math.abs(edge.weight - fd) <= 2e-4 + 5e-3 * Math.abs(fd),
          `${edge.source} -> ${edge.target}: weight ${edge.weight}, finite differences ${fd}`,
        );
        checked++;
        if (dst.feature === null) intoError++;
        if (src.feature === null) fromError++;
        if (indirect.includes(pair) && edge === sorted[0]) {
          // Not vacuous: the indirect paths carry something, which the edge leaves out.
          const free = (hh: number) => weightedValue(w, e.clean, up, down, [], hh);
          const total = (free(h) - free(-h)) / (2 * h);
          assert.ok(
            Math.abs(total - fd) > 1e-4,
            `${pair}: freezing the other sites changed nothing (${total} vs ${fd})`,
          );
          mattered++;
        }
      }
    }
    assert.ok(checked > 40 && intoError > 3 && fromError > 3, `checked ${checked} edges`);
    assert.equal(mattered, indirect.length);
    const last = sitesOf(w).at(-1)!;
    const yEdges = circuit.edges.filter((x) => x.target === 'y');
    assert.ok(yEdges.length > 0);
    for (const edge of yEdges) {
      const node = circuit.nodes.find((x) => x.id === edge.source)!;
      assert.equal(node.site, last);
      assert.equal(edge.weight, node.effect);
    }
  });
}

test('discover refuses a dictionary whose width is not its site width, naming both', () => {
  const w = makeFamilyWorld('gemma2');
  assert.throws(
    () =>
      discover(w.model, (s) => w.saes.get(s === 'attn_z_0' ? 'attn_0' : s)!, w.examples, {
        nodesOnly: true,
      }),
    /SAE for site attn_z_0 reads width 16, but the model's attn_z_0 is 24 wide/,
  );
  assert.throws(
    () => discover(w.model, dictionaries(w), w.examples, { sites: ['embed', 'attn_z_7'] }),
    /attn_z_7 is not a site of this model/,
  );
});

for (const parallel of [true, false]) {
  test(`GPT-NeoX on the generic engine discovers what GptNeoX does (${parallel ? 'parallel' : 'sequential'})`, () => {
    // The same weights through the gpt_neox family's config reader and weight map; SAEs at every
    // site (attn_z_L included), then at the organism's sites only (attn_z_L, with no dictionary,
    // passed through on both engines).
    const w = makeWorld({ parallel, examples: 3, T: 4, seed: 2 });
    const config = gptNeoX.readConfig(toConfigJson(w.config), 'config.json');
    const byName = new Map(parameterLayout(w.config).map((p) => [p.name, p]));
    const weights = readTransformerWeights(
      gptNeoX,
      config,
      (name) => {
        const p = byName.get(name);
        return p && { shape: p.shape, data: () => p.get(w.model.weights) };
      },
      'world',
    );
    const generic = new Transformer(config, weights);
    const organism = w.model.sites.filter((s) => !s.startsWith('attn_z_'));
    for (const [method, sites] of [
      ['exact', w.model.sites],
      ['ig', w.model.sites],
      ['exact', organism],
      ['ig', organism],
    ] as const) {
      const options = {
        method,
        steps: 4,
        nodeThreshold: 0,
        edgeThreshold: 0,
        batchSize: 2,
        sites: [...sites],
      };
      const circuit = (model: typeof w.model | Transformer) =>
        toCircuit(discover(model, dictionaries(w), w.examples, options), info, options);
      const [a, b] = [circuit(w.model), circuit(generic)];
      const scale = Math.max(...a.nodes.map((n) => Math.abs(n.effect)));
      const nodes = new Map(b.nodes.map((n) => [n.id, n.effect]));
      assert.ok(a.nodes.length > 100);
      assert.equal(
        a.nodes.some((n) => n.id.startsWith('attn_z_')),
        sites === w.model.sites,
      );
      for (const n of a.nodes) {
        const other = nodes.get(n.id) ?? 0;
        assert.ok(
          Math.abs(other - n.effect) <= 1e-4 * scale,
          `${method} ${n.id}: ${n.effect} vs ${other}`,
        );
      }
      const edges = new Map(b.edges.map((e) => [`${e.source}>${e.target}`, e.weight]));
      const edgeScale = Math.max(...a.edges.map((e) => Math.abs(e.weight)));
      assert.ok(a.edges.length > 200);
      for (const e of a.edges) {
        const other = edges.get(`${e.source}>${e.target}`) ?? 0;
        assert.ok(
          Math.abs(other - e.weight) <= 1e-4 * edgeScale,
          `${method} ${e.source} > ${e.target}: ${e.weight} vs ${other}`,
        );
      }
      // and nothing more on the generic engine than rounding-level edges
      for (const [key, weight] of edges)
        if (Math.abs(weight) > 1e-4 * edgeScale)
          assert.ok(
            a.edges.some((e) => `${e.source}>${e.target}` === key),
            key,
          );
    }
  });
}

test('a readout metric (probe on resid_0) on Gemma-2: exact effects equal brute-force zero patching', () => {
  // As readout.test.ts: examples of different lengths under zero ablation; only the sites up to
  // the readout (attn_z_0 included) get nodes, and the tails stop at layer 0.
  const w = makeFamilyWorld('gemma2', { single: true, examples: 3, T: 5 });
  w.examples[1].clean = w.examples[1].clean.slice(0, 3);
  const d = w.model.shape.hiddenSize;
  const rng = new Rng(9);
  const probe = {
    site: 'resid_0',
    weight: Float64Array.from({ length: d }, () => rng.normal()),
    bias: 0.3,
  };
  const signs = [1, -1, 1];
  const metric = probeMetric(
    probe,
    w.examples.map((e) => e.clean.length),
    signs,
  );
  const splicedProbe = (
    k: number,
    edit?: (site: string, f: Float32Array, err: Float32Array) => void,
  ) => {
    const ids = w.examples[k].clean;
    const T = ids.length;
    const act = w.model
      .forward(makeBatch([ids]), { hooks: splicedHooks(w, T, edit), logits: 'none' })
      .activation('resid_0');
    let z = 0;
    for (let t = 0; t < T; t++) for (let j = 0; j < d; j++) z += probe.weight[j] * act[t * d + j];
    return signs[k] * (z / T + probe.bias);
  };
  const dsc = discover(w.model, dictionaries(w), w.examples, {
    method: 'exact',
    aggregation: 'sum',
    nodesOnly: true,
    batchSize: 3,
    steps: 2,
    metric,
    sites: sitesOf(w),
  });
  assert.deepEqual(dsc.sites, ['embed', 'attn_z_0', 'attn_0', 'mlp_0', 'resid_0']);
  let [checked, nonzero] = [0, 0];
  for (const bn of dsc.batches)
    for (const [site, sn] of bn.sites) {
      const sae = w.saes.get(site)!;
      for (let n = 0; n < bn.B * bn.T; n++) {
        const [b, t] = [Math.floor(n / bn.T), n % bn.T];
        const k = bn.examples[b];
        if (t >= w.examples[k].clean.length) continue;
        const clean = splicedProbe(k);
        const check = (feature: number | null, effect: number) => {
          const m = splicedProbe(k, (s, f, err) => {
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
  assert.ok(checked > 100 && nonzero > 30, `checked ${checked}, non-zero ${nonzero}`);
});
