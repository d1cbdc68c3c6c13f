// Edge weights on tiny random models (parallel and sequential residual) against finite
// differences along the direct path: perturb the upstream node by h·Δu in the plain model with the
// sites in between frozen at their clean values, read the downstream node's value off its real
// activation (feature: f_j(x_D); error: ε(x_D)), and weight the change by ∇_d m.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { discover, toCircuit } from '../../src/attribution/discover.ts';
import { directUpstream } from '../../src/attribution/edges.ts';
import { parseNodeId } from '../../src/circuit/circuit.ts';
import { makeBatch, type SiteHook } from '../../src/model/gptneox.ts';
import { parseTransformerSite as parseSite } from '../../src/model/sites.ts';
import { makeWorld, siteActivation, type World } from './world.ts';

const info = { model: 'm', saes: 's', data: 'd', tokens: [] };

/** Sites frozen at clean values for the direct path U -> D (the stop-gradients). */
function frozenBetween(U: string, D: string, numLayers: number): string[] {
  const d = parseSite(D, numLayers);
  if (d.kind !== 'resid' && d.kind !== 'mlp') return [];
  const u = parseSite(U, numLayers);
  const L = d.layer;
  if (d.kind === 'mlp') return u.kind === 'attn' ? [] : [`attn_${L}`];
  if (u.kind === 'mlp') return [];
  if (u.kind === 'attn') return [`mlp_${L}`];
  return [`attn_${L}`, `mlp_${L}`];
}

/**
 * The downstream node's value, ∇_d m-weighted, with upstream node (U, t', feature|ε) moved by h·Δu
 * and `frozen` sites held at their clean values.
 */
function weightedValue(
  w: World,
  ids: number[],
  up: { site: string; position: number; delta: Float32Array },
  down: { site: string; position: number; feature: number | null; grad: Float32Array },
  frozen: string[],
  h: number,
): number {
  const d = w.config.hiddenSize;
  const hooks: Record<string, SiteHook> = {
    [up.site]: (x) => {
      const y = x.slice();
      for (let j = 0; j < d; j++) y[up.position * d + j] += h * up.delta[j];
      return y;
    },
  };
  for (const f of frozen) {
    const clean = siteActivation(w, ids, f);
    hooks[f] = () => clean;
  }
  const x = w.model.forward(makeBatch([ids]), { hooks, logits: 'none' }).activation(down.site);
  const row = x.slice(down.position * d, (down.position + 1) * d);
  const sae = w.saes.get(down.site)!;
  const g = down.grad.subarray(down.position * d, (down.position + 1) * d);
  let value = 0;
  if (down.feature === null) {
    const { error } = sae.run(row, 1); // ε(x_D)
    for (let j = 0; j < d; j++) value += g[j] * error[j];
  } else {
    const f = sae.encode(row, 1)[down.feature];
    let gradF = 0; // ∇_{f_j} m = W_D[j]·ḡ
    for (let j = 0; j < d; j++) gradF += sae.decoderRow(down.feature)[j] * g[j];
    value = gradF * f;
  }
  return value;
}

for (const parallel of [true, false]) {
  const label = parallel ? 'parallel' : 'sequential';
  test(`edge weights equal finite differences along the direct path (${label})`, () => {
    const w = makeWorld({ parallel, examples: 1, T: 4, seed: 3 });
    const e = w.examples[0];
    const d = w.config.hiddenSize;
    const options = { method: 'ig' as const, steps: 10, nodeThreshold: 0, edgeThreshold: 0 };
    const dsc = discover(w.model, (s) => w.saes.get(s)!, w.examples, options);
    const circuit = toCircuit(dsc, info, options);
    const bn = dsc.batches[0];
    const pairs = new Map<string, typeof circuit.edges>();
    for (const edge of circuit.edges) {
      if (edge.target === 'y') continue;
      const key = `${parseNodeId(edge.source).site}>${parseNodeId(edge.target).site}`;
      pairs.set(key, [...(pairs.get(key) ?? []), edge]);
    }
    // Every direct pair of sites has edges, and only those.
    const expected = new Set<string>();
    for (const D of w.model.sites)
      for (const U of directUpstream(w.model, D, w.model.sites)) expected.add(`${U.site}>${D}`);
    assert.deepEqual([...pairs.keys()].sort(), [...expected].sort());
    assert.equal(expected.has('attn_0>mlp_0'), !parallel);

    let checked = 0;
    let [intoError, fromError] = [0, 0];
    for (const [pair, edges] of pairs) {
      const [U, D] = pair.split('>');
      const frozen = frozenBetween(U, D, w.config.numLayers);
      // The largest edges and a spread of others.
      const sorted = [...edges].sort((a, b) => Math.abs(b.weight) - Math.abs(a.weight));
      const sample = [...sorted.slice(0, 4), ...sorted.filter((_, i) => i % 23 === 5)];
      for (const edge of sample) {
        const src = parseNodeId(edge.source);
        const dst = parseNodeId(edge.target);
        const sn = bn.sites.get(U)!;
        const n = src.position!;
        // Δu as a move of x_U at position t': Δf_i·W_D[i] or Δε.
        const delta = new Float32Array(d);
        if (src.feature === null) delta.set(sn.errorDelta.subarray(n * d, (n + 1) * d));
        else {
          let df = 0;
          for (let k = sn.delta.rowStart[n]; k < sn.delta.rowStart[n + 1]; k++)
            if (sn.delta.index[k] === src.feature) df = sn.delta.value[k];
          const row = w.saes.get(U)!.decoderRow(src.feature);
          for (let j = 0; j < d; j++) delta[j] = df * row[j];
        }
        const up = { site: U, position: n, delta };
        const down = { ...dst, position: dst.position!, grad: bn.sites.get(D)!.grad };
        const value = (h: number) => weightedValue(w, e.clean, up, down, frozen, h);
        const h = 1e-3;
        const fd = (value(h) - value(-h)) / (2 * h);
        assert.ok(
          Math.abs(edge.weight - fd) <= 2e-4 + 5e-3 * Math.abs(fd),
          `${edge.source} -> ${edge.target}: weight ${edge.weight}, finite differences ${fd}`,
        );
        checked++;
        if (dst.feature === null) intoError++;
        if (src.feature === null) fromError++;
        // The stop-gradients matter: without freezing, prev -> resid (and prev -> mlp with a
        // sequential residual, where the MLP reads prev + attn) would differ.
        // (In a parallel block mlp_L does not read attn_L, so there only prev -> resid_L counts.)
        const matters = frozen.length > 0 && (!parallel || frozen.length === 2);
        if (matters && edge === sorted[0]) {
          const free = (value2: (h: number) => number) => (value2(h) - value2(-h)) / (2 * h);
          const total = free((hh) => weightedValue(w, e.clean, up, down, [], hh));
          assert.ok(
            Math.abs(total - fd) > 1e-4,
            `${pair}: freezing ${frozen.join(', ')} changed nothing (${total} vs ${fd})`,
          );
        }
      }
    }
    assert.ok(checked > 40 && intoError > 3 && fromError > 3, `checked ${checked} edges`);
    // resid_last -> y edges carry the node effects.
    const last = w.model.sites[w.model.sites.length - 1];
    const yEdges = circuit.edges.filter((x) => x.target === 'y');
    assert.ok(yEdges.length > 0);
    for (const edge of yEdges) {
      const node = circuit.nodes.find((x) => x.id === edge.source)!;
      assert.equal(node.site, last);
      assert.equal(edge.weight, node.effect);
    }
  });
}

test('edges with sum aggregation are the per-example sums over positions, averaged', () => {
  const w = makeWorld({ parallel: true, examples: 2, T: 3, seed: 4 });
  const base = { method: 'attrib' as const, nodeThreshold: 0, edgeThreshold: 0 };
  const none = toCircuit(
    discover(w.model, (s) => w.saes.get(s)!, w.examples, base),
    info,
    base,
  );
  const sumOptions = { ...base, aggregation: 'sum' as const };
  const sum = toCircuit(
    discover(w.model, (s) => w.saes.get(s)!, w.examples, sumOptions),
    info,
    sumOptions,
  );
  const expected = new Map<string, number>();
  const strip = (id: string) => id.replace(/@\d+$/, '');
  for (const edge of none.edges) {
    if (edge.target === 'y') continue;
    const key = `${strip(edge.source)}>${strip(edge.target)}`;
    expected.set(key, (expected.get(key) ?? 0) + edge.weight);
  }
  let compared = 0;
  for (const edge of sum.edges) {
    if (edge.target === 'y') continue;
    assert.equal(parseNodeId(edge.source).position, null);
    const want = expected.get(`${edge.source}>${edge.target}`);
    if (want === undefined) continue; // an endpoint below threshold under `none`
    assert.ok(Math.abs(edge.weight - want) < 1e-5 + 1e-4 * Math.abs(want), `${edge.source}`);
    compared++;
  }
  assert.ok(compared > 20, `compared ${compared}`);
});

test('a node threshold restricts edges to the circuit without changing their weights', () => {
  // One example: its own effects are the means, so the downstream nodes are the circuit's nodes.
  const w = makeWorld({ parallel: false, examples: 1, T: 4, seed: 6 });
  const run = (nodeThreshold: number) => {
    const options = { method: 'ig' as const, nodeThreshold, edgeThreshold: 0 };
    return toCircuit(
      discover(w.model, (s) => w.saes.get(s)!, w.examples, options),
      info,
      options,
    );
  };
  const all = run(0);
  const circuit = run(0.05);
  assert.ok(circuit.nodes.length > 10 && circuit.nodes.length < all.nodes.length / 2);
  const kept = new Set(circuit.nodes.map((n) => n.id));
  const expected = all.edges.filter(
    (e) => kept.has(e.source) && (e.target === 'y' || kept.has(e.target)),
  );
  assert.deepEqual(
    circuit.edges.map((e) => `${e.source}>${e.target}`).sort(),
    expected.map((e) => `${e.source}>${e.target}`).sort(),
  );
  const weight = new Map(all.edges.map((e) => [`${e.source}>${e.target}`, e.weight]));
  // Fewer downstream nodes batch their seeds differently, so float32 sums round differently: a
  // small weight (a sum of larger terms that cancel) moves by a few 1e-6 of itself.
  const scale = Math.max(...all.edges.map((e) => Math.abs(e.weight)));
  for (const e of circuit.edges) {
    const want = weight.get(`${e.source}>${e.target}`)!;
    assert.ok(
      Math.abs(e.weight - want) <= 1e-6 * (Math.abs(want) + scale),
      `${e.source}>${e.target}: ${e.weight} vs ${want}`,
    );
  }
});
