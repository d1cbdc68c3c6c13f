import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GptNeoX } from '../../src/model/gptneox.ts';
import { exampleFromIds, taskBatches, type TaskExample } from '../../src/data/tasks.ts';
import { AblatedModel } from '../../src/evaluation/ablation.ts';
import {
  countNodes,
  evaluate,
  keepMask,
  logspace,
  normalizedScore,
  randomFeatures,
  selectNodes,
  type EvalNode,
} from '../../src/evaluation/faithfulness.ts';
import { IdentityDictionary, type Dictionary } from '../../src/sae/dictionary.ts';
import { Rng } from '../../src/random.ts';
import { randomWeights, tinyConfig } from '../helpers/random-model.ts';
import { randomSaes } from '../helpers/random-saes.ts';

// T tokens, F SAE width, V vocabulary, d model width.
const config = tinyConfig();
const model = new GptNeoX(config, randomWeights(config, 21));
const F = 20;
const T = 4;
const V = config.vocabSize;
const d = config.hiddenSize;
const saes = randomSaes(config, F, 22);
// The sites with SAEs (the organism's; attn_z_L has none and runs as it is).
const saeSites = [...saes.keys()];

function makeExamples(seed: number, count: number): TaskExample[] {
  const rng = new Rng(seed);
  return Array.from({ length: count }, (_, k) => {
    const cleanAnswerId = rng.int(V);
    return exampleFromIds({
      line: k + 1,
      clean: Array.from({ length: T }, () => rng.int(V)),
      patch: Array.from({ length: T }, () => rng.int(V)),
      cleanAnswerId,
      patchAnswerId: (cleanAnswerId + 1 + rng.int(V - 1)) % V,
    });
  });
}

const batches = taskBatches(makeExamples(23, 6), 3);
const layer1 = ['attn_1', 'mlp_1', 'resid_1'];
const runner = (sites: string[], dicts: Map<string, Dictionary> = saes) =>
  new AblatedModel(model, new Map(sites.map((s) => [s, dicts.get(s)!])), batches);

// Every feature and error node of the sites at every position, with made-up effects.
function everyNode(sites: string[], width = F, seed = 1): EvalNode[] {
  const rng = new Rng(seed);
  const nodes: EvalNode[] = [];
  for (const site of sites)
    for (let t = 0; t < T; t++) {
      for (let i = 0; i < width; i++)
        nodes.push({ site, kind: 'feature', feature: i, position: t, effect: rng.normal() * 0.1 });
      nodes.push({ site, kind: 'error', feature: null, position: t, effect: rng.normal() * 0.1 });
    }
  return nodes;
}

const close = (a: number, b: number, tol: number) => Math.abs(a - b) <= tol;

test('the full circuit is faithful (1) and the empty one is not (0); completeness the reverse', () => {
  const r = runner(saeSites);
  const all = everyNode(saeSites);
  const full = evaluate(
    { model: r, circuit: { nodes: all, nodeThreshold: 0 } },
    { thresholds: [] },
  );
  assert.ok(close(full.circuit.faithfulness, 1, 1e-4), `${full.circuit.faithfulness}`);
  assert.ok(close(full.circuit.completeness, 0, 1e-4), `${full.circuit.completeness}`);
  assert.equal(full.circuit.nodes, all.length);
  assert.ok(Math.abs(full.fModel - full.fEmpty) > 0.1, 'the ablation must matter for this test');
  const empty = evaluate(
    { model: r, circuit: { nodes: [], nodeThreshold: 0 } },
    { thresholds: [] },
  );
  assert.ok(empty.circuit.faithfulness === 0, `${empty.circuit.faithfulness}`); // exactly, as -0 or 0
  assert.ok(close(empty.circuit.completeness, 1, 1e-4));
  assert.equal(empty.fModel, full.fModel);
});

test('normalised scores and log-spaced thresholds by hand', () => {
  assert.equal(normalizedScore(3, 1, 5), 0.5);
  assert.equal(normalizedScore(-1, 1, 5), -0.5);
  assert.ok(Number.isNaN(normalizedScore(2, 1, 1)));
  const th = logspace(-4, 0, 15);
  assert.equal(th.length, 15);
  assert.ok(th[0] === 1e-4 && th[7] === 1e-2 && th[14] === 1);
  assert.ok(close(th[1], 10 ** (-4 + 4 / 14), 1e-15));
});

test('curves: nested node sets, counts per series, skipped thresholds, random of the same count', () => {
  const r = runner(layer1);
  const nodes = everyNode(layer1);
  const thresholds = [0.3, 0.1, 0.05, 0.01, 0.001, 0.0001];
  const e = evaluate(
    { model: r, circuit: { nodes, nodeThreshold: 0.001 } },
    { thresholds, seed: 4 },
  );
  const byName = new Map(e.series.map((s) => [s.name, s]));
  assert.deepEqual(
    [...byName.keys()],
    ['features', 'features_without_errors', 'features_without_attn_mlp_errors', 'random_features'],
  );
  const features = byName.get('features')!;
  assert.deepEqual(features.skipped, [0.0001]);
  assert.deepEqual(
    features.points.map((p) => p.threshold),
    thresholds.slice(0, 5),
  );
  for (const p of features.points) {
    const inCircuit = nodes.filter((n) => Math.abs(n.effect) > p.threshold);
    assert.equal(p.featureNodes, inCircuit.filter((n) => n.kind === 'feature').length);
    assert.equal(p.errorNodes, inCircuit.filter((n) => n.kind === 'error').length);
  }
  for (let i = 1; i < features.points.length; i++)
    assert.ok(features.points[i].nodes >= features.points[i - 1].nodes);
  const noErrors = byName.get('features_without_errors')!;
  const noAttnMlp = byName.get('features_without_attn_mlp_errors')!;
  const random = byName.get('random_features')!;
  features.points.forEach((p, i) => {
    assert.equal(noErrors.points[i].errorNodes, 0);
    assert.equal(noErrors.points[i].featureNodes, p.featureNodes);
    const residErrors = nodes.filter(
      (n) => n.kind === 'error' && n.site === 'resid_1' && Math.abs(n.effect) > p.threshold,
    ).length;
    assert.equal(noAttnMlp.points[i].errorNodes, residErrors);
    assert.equal(random.points[i].nodes, p.nodes);
  });
  // Everything above 0.001 is nearly the whole circuit; compare with a direct evaluation.
  const last = features.points[4];
  const direct = evaluate(
    { model: r, circuit: { nodes: selectNodes(r, nodes, 0.001), nodeThreshold: 0 } },
    { thresholds: [] },
  );
  assert.equal(last.fCircuit, direct.circuit.fCircuit);
  assert.equal(last.fComplement, direct.circuit.fComplement);
  // Without errors F(∅) is the same (errors are ablated in the empty circuit either way).
  assert.equal(noErrors.fEmpty, features.fEmpty);
});

test('random features: same count per site and position, distinct, reproducible', () => {
  const r = runner(layer1);
  const selected = selectNodes(r, everyNode(layer1), 0.1);
  const a = randomFeatures(r, selected, new Rng(3));
  const b = randomFeatures(r, selected, new Rng(3));
  assert.deepEqual(a, b);
  const count = (ns: EvalNode[]) => {
    const m = new Map<string, number>();
    for (const n of ns)
      m.set(
        `${n.site}@${n.position}/${n.kind}`,
        (m.get(`${n.site}@${n.position}/${n.kind}`) ?? 0) + 1,
      );
    return m;
  };
  assert.deepEqual(count(a), count(selected));
  const keys = a
    .filter((n) => n.kind === 'feature')
    .map((n) => `${n.site}@${n.position}/${n.feature}`);
  assert.equal(new Set(keys).size, keys.length);
  assert.notDeepEqual(a, selected);
});

test('nodes before the start layer are ignored and not counted', () => {
  const r = runner(layer1);
  const early = everyNode(['attn_0', 'resid_0']);
  const e = evaluate({ model: r, circuit: { nodes: early, nodeThreshold: 0 } }, { thresholds: [] });
  assert.equal(e.circuit.nodes, 0);
  assert.equal(e.circuit.fCircuit, e.fEmpty);
  // And the untouched early sites are exactly the model's: a layer-1-only runner keeping
  // everything reproduces the model.
  const full = r.metric(r.uniformMask(1));
  assert.ok(close(full, e.fModel, 1e-4));
});

test('error modes: keep never ablates errors, remove always does', () => {
  const r = runner(layer1);
  const features = everyNode(layer1).filter((n) => n.kind === 'feature');
  const keep = evaluate(
    { model: r, circuit: { nodes: features, nodeThreshold: 0 } },
    { thresholds: [], errors: 'keep', series: ['features'] },
  );
  assert.ok(close(keep.circuit.fCircuit, keep.fModel, 1e-4));
  assert.equal(keep.circuit.errorNodes, 0);
  const errorsOnly = r.uniformMask(0);
  for (const m of errorsOnly.values()) m.errors.fill(1);
  assert.equal(keep.fEmpty, r.metric(errorsOnly));

  const all = everyNode(layer1);
  const remove = evaluate(
    { model: r, circuit: { nodes: all, nodeThreshold: 0 } },
    { thresholds: [], errors: 'remove' },
  );
  const featuresOnly = r.uniformMask(1);
  for (const m of featuresOnly.values()) m.errors.fill(0);
  assert.equal(remove.circuit.fCircuit, r.metric(featuresOnly));
  assert.ok(Math.abs(remove.circuit.fCircuit - remove.fModel) > 1e-3, 'errors matter here');
  assert.equal(remove.circuit.errorNodes, 0);
});

test('a position-free node (sum aggregation) stands for the node at every position', () => {
  const r = runner(layer1);
  const free: EvalNode[] = [
    { site: 'mlp_1', kind: 'feature', feature: 3, position: null, effect: 1 },
    { site: 'resid_1', kind: 'error', feature: null, position: null, effect: 1 },
  ];
  const expanded = free.flatMap((n) =>
    Array.from({ length: T }, (_, t) => ({ ...n, position: t })),
  );
  const errs = () => 'default' as const;
  assert.deepEqual(keepMask(r, free, errs, 'circuit'), keepMask(r, expanded, errs, 'circuit'));
  assert.deepEqual(
    keepMask(r, free, errs, 'complement'),
    keepMask(r, expanded, errs, 'complement'),
  );
  assert.deepEqual(countNodes(r, free, errs), { nodes: 2, featureNodes: 1, errorNodes: 1 });
});

test('neurons: identity dictionaries, the full neuron circuit is faithful', () => {
  const neurons = new Map<string, Dictionary>(
    model.sites.map((s) => [s, new IdentityDictionary(s, d)]),
  );
  const nr = runner(layer1, neurons);
  const all = everyNode(layer1, d).filter((n) => n.kind === 'feature');
  const e = evaluate(
    {
      model: runner(layer1),
      circuit: { nodes: [], nodeThreshold: 0 },
      neurons: { model: nr, circuit: { nodes: all, nodeThreshold: 0 } },
    },
    { thresholds: [0], series: ['neurons'] },
  );
  assert.equal(e.series[0].name, 'neurons');
  const p = e.series[0].points[0];
  assert.equal(p.featureNodes, all.filter((n) => n.effect !== 0).length);
  assert.ok(close(p.faithfulness, 1, 1e-4));
  // Ablating every neuron to its mean is ablating every SAE node: the same F(∅).
  assert.ok(close(e.series[0].fEmpty, e.fEmpty, 1e-4));
});

test('bad circuits and options are refused with a clear message', () => {
  const r = runner(layer1);
  const node = (over: Partial<EvalNode>): EvalNode[] => [
    { site: 'mlp_1', kind: 'feature', feature: 1, position: 0, effect: 1, ...over },
  ];
  const run = (nodes: EvalNode[], thresholds: number[] = []) =>
    evaluate({ model: r, circuit: { nodes, nodeThreshold: 0 } }, { thresholds });
  assert.throws(() => run(node({ position: 9 })), /mlp_1\/1@9: position 9 is outside .* 4 tokens/);
  assert.throws(() => run(node({ feature: 20 })), /feature 20 is outside the dictionary's 0..19/);
  assert.throws(() => run([], [-1]), /thresholds: expected non-negative numbers, got -1/);
  assert.throws(
    () =>
      evaluate(
        { model: r, circuit: { nodes: [], nodeThreshold: 0 } },
        { thresholds: [], series: ['neurons'] },
      ),
    /"neurons" needs a circuit found with neurons/,
  );
  assert.throws(
    () =>
      evaluate(
        { model: r, circuit: { nodes: [], nodeThreshold: 0 } },
        { thresholds: [], errors: 'some' as 'keep' },
      ),
    /errors: expected one of default, remove, keep, got "some"/,
  );
});

test('the circuit as saved is also scored with every layer; nodes below the start layer are counted', () => {
  const start = runner(layer1);
  const every = runner(saeSites);
  // Nodes at every site: those of layer 0 and the embedding are below start layer 1.
  const nodes = everyNode(saeSites).filter((n) => Math.abs(n.effect) > 0.1);
  const below = nodes.filter((n) => !layer1.includes(n.site)).length;
  assert.ok(below > 0 && below < nodes.length);
  const e = evaluate(
    { model: start, circuit: { nodes, nodeThreshold: 0.1 }, allLayers: every },
    { thresholds: [] },
  );
  assert.equal(e.nodesBelowStartLayer, below);
  assert.equal(e.circuit.nodes, nodes.length - below);
  assert.ok(e.allLayers);
  assert.equal(e.allLayers.circuit.nodes, nodes.length);
  // Independent: the all-layers score is the default score of a run that starts at the embedding.
  const direct = evaluate(
    { model: every, circuit: { nodes, nodeThreshold: 0.1 } },
    { thresholds: [] },
  );
  assert.equal(direct.nodesBelowStartLayer, 0);
  assert.equal(e.allLayers.circuit.faithfulness, direct.circuit.faithfulness);
  assert.equal(e.allLayers.circuit.completeness, direct.circuit.completeness);
  assert.equal(e.allLayers.fEmpty, direct.fEmpty);
  // They differ from the start-layer score: the layer-0 nodes matter on this model.
  assert.ok(Math.abs(e.allLayers.circuit.faithfulness - e.circuit.faithfulness) > 1e-3);
  // allLayers must have every site and the same data.
  assert.throws(
    () =>
      evaluate(
        { model: start, circuit: { nodes, nodeThreshold: 0.1 }, allLayers: start },
        { thresholds: [] },
      ),
    /allLayers: no dictionary at embed/,
  );
});
