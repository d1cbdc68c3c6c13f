// circuit.json: ids, write/read round trip, validation errors that name the file and field, and
// aggregation + thresholds in EffectSums/buildCircuit worked by hand.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  nodeId,
  parseNodeId,
  readCircuit,
  validateCircuit,
  writeCircuit,
  type Circuit,
} from '../../src/circuit/circuit.ts';
import { EffectSums, buildCircuit, type CircuitHeader } from '../../src/circuit/build.ts';

const header: CircuitHeader = {
  version: 1,
  model: 'models/organism',
  saes: 'models/organism/saes',
  data: 'data/rc_test.jsonl',
  method: 'ig',
  steps: 10,
  aggregation: 'none',
  examples: 2,
  node_threshold: 0.1,
  edge_threshold: 0.01,
  sites: ['embed', 'attn_0', 'mlp_0', 'resid_0'],
  tokens: ['The', ' teacher'],
  metric: { clean: -2.5, patch: 3.25 },
};

function sample(): Circuit {
  return {
    ...header,
    nodes: [
      {
        id: 'embed/3@1',
        site: 'embed',
        layer: -1,
        kind: 'feature',
        feature: 3,
        position: 1,
        effect: 0.5,
      },
      {
        id: 'resid_0/ε@1',
        site: 'resid_0',
        layer: 0,
        kind: 'error',
        feature: null,
        position: 1,
        effect: -0.25,
      },
    ],
    edges: [
      { source: 'embed/3@1', target: 'resid_0/ε@1', weight: 0.125 },
      { source: 'resid_0/ε@1', target: 'y', weight: -0.25 },
    ],
  };
}

function tmp(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'sfc-circuit-'));
}

test('node ids', () => {
  assert.equal(nodeId('resid_1', 17, 3), 'resid_1/17@3');
  assert.equal(nodeId('resid_1', null, 3), 'resid_1/ε@3');
  assert.equal(nodeId('embed', 0, null), 'embed/0');
  assert.deepEqual(parseNodeId('resid_1/ε@3'), { site: 'resid_1', feature: null, position: 3 });
  assert.deepEqual(parseNodeId('mlp_0/5'), { site: 'mlp_0', feature: 5, position: null });
  assert.throws(() => parseNodeId('resid_1:17'), /"resid_1:17" is not a node id/);
});

test('write then read gives the same circuit; a folder is read through its circuit.json', () => {
  const dir = tmp();
  const file = writeCircuit(dir, sample());
  assert.equal(file, path.join(dir, 'circuit.json'));
  assert.deepEqual(readCircuit(file), sample());
  assert.deepEqual(readCircuit(dir), sample());
  assert.deepEqual(JSON.parse(fs.readFileSync(file, 'utf8')), sample()); // plain JSON
  const empty = { ...sample(), nodes: [], edges: [] };
  writeCircuit(dir, empty);
  assert.deepEqual(readCircuit(dir), empty);
});

test("a circuit of the generic engine's sites (attn_z_L) reads back", () => {
  assert.deepEqual(parseNodeId('attn_z_1/4@2'), { site: 'attn_z_1', feature: 4, position: 2 });
  const c = sample();
  const z = { ...c.nodes[0], id: 'attn_z_0/7@1', site: 'attn_z_0', layer: 0, feature: 7 };
  const circuit: Circuit = {
    ...c,
    sites: ['embed', 'attn_z_0', 'mlp_0', 'resid_0'],
    nodes: [...c.nodes, z],
    edges: [...c.edges, { source: 'attn_z_0/7@1', target: 'resid_0/ε@1', weight: 0.5 }],
  };
  assert.deepEqual(validateCircuit(circuit, 'c.json'), circuit);
  assert.throws(
    () => validateCircuit({ ...circuit, nodes: [...c.nodes, { ...z, layer: 1 }] }, 'c.json'),
    /c\.json: nodes\.2 \(attn_z_0\/7@1\): layer 1 does not match site attn_z_0 \(0\)/,
  );
});

test('validation errors name the file and the field', () => {
  const dir = tmp();
  const file = path.join(dir, 'circuit.json');
  const bad = (edit: (c: Record<string, unknown> & Circuit) => void, pattern: RegExp) => {
    const c = structuredClone(sample()) as Record<string, unknown> & Circuit;
    edit(c);
    fs.writeFileSync(file, JSON.stringify(c));
    assert.throws(
      () => readCircuit(file),
      (e: Error) => {
        assert.ok(e.message.startsWith(file), e.message);
        assert.match(e.message, pattern);
        return true;
      },
    );
  };
  bad((c) => (c.version = 2 as 1), /version/);
  bad((c) => (c.method = 'magic' as 'ig'), /method/);
  bad((c) => delete (c as Partial<Circuit>).nodes, /nodes/);
  bad((c) => (c.nodes[0].effect = 'big' as unknown as number), /nodes\.0\.effect/);
  bad((c) => (c.nodes[0].id = 'embed/4@1'), /nodes\.0 .*id should be embed\/3@1/);
  bad((c) => (c.nodes[0].layer = 2), /nodes\.0 .*layer 2 does not match site embed/);
  bad((c) => (c.nodes[1].feature = 2), /nodes\.1 .*kind error needs feature null/);
  bad((c) => (c.nodes[0].position = null), /position must be a number with aggregation none/);
  bad((c) => (c.nodes[1].site = 'resid_7'), /site resid_7 is not in "sites"/);
  bad((c) => (c.sites[1] = 'attention_0'), /sites\.1: unknown site "attention_0"/);
  bad((c) => (c.edges[0].target = 'mlp_0/1@1'), /edges\.0 .*target mlp_0\/1@1 is not a node/);
  bad((c) => (c.edges[1].source = 'y'), /edges\.1 .*source y is not a node/);
  bad((c) => c.nodes.push(c.nodes[0]), /nodes\.2 .*duplicate node id/);
  fs.writeFileSync(file, '{"version": 1,');
  assert.throws(() => readCircuit(file), /circuit\.json: not valid JSON/);
  assert.throws(() => readCircuit(path.join(dir, 'none.json')), /none\.json: no such file/);
  assert.throws(() => validateCircuit([], 'x.json'), /^Error: x\.json: not a circuit file/);
});

test('EffectSums: means over examples, thresholds, edges between listed nodes, y edges', () => {
  const sites = [
    { site: 'embed', width: 4 },
    { site: 'resid_0', width: 4 },
  ];
  const sums = new EffectSums(sites, 'none', 2);
  const [e, r] = [sums.index('embed'), sums.index('resid_0')];
  // Two examples.
  sums.addNode(e, sums.node(e, 1, 3), 0.3);
  sums.addNode(e, sums.node(e, 1, 3), 0.1); // mean 0.2
  sums.addNode(e, sums.node(e, 0, 2), 0.15); // mean 0.075: below 0.1
  sums.addNode(r, sums.node(r, 1, null), -0.5); // mean -0.25
  sums.addEdge(e, sums.node(e, 1, 3), r, sums.node(r, 1, null), 0.04); // mean 0.02
  sums.addEdge(e, sums.node(e, 0, 2), r, sums.node(r, 1, null), 0.5); // source not listed
  sums.addEdge(e, sums.node(e, 1, 3), r, sums.node(r, 1, 0), 0.5); // target not listed
  sums.examples = 2;
  const c = buildCircuit({ ...header, sites: ['embed', 'resid_0'] }, sums, {
    lastSite: 'resid_0',
    withEdges: true,
  });
  assert.deepEqual(
    c.nodes.map((n) => [n.id, n.effect]),
    [
      ['embed/3@1', 0.2],
      ['resid_0/ε@1', -0.25],
    ],
  );
  assert.deepEqual(
    c.edges.map((x) => [x.source, x.target, x.weight]),
    [
      ['embed/3@1', 'resid_0/ε@1', 0.02],
      ['resid_0/ε@1', 'y', -0.25],
    ],
  );
  validateCircuit(c, 'built');
  // Sum aggregation folds positions together.
  const total = new EffectSums(sites, 'sum', 0);
  total.addNode(e, total.node(e, 0, 1), 0.25);
  total.addNode(e, total.node(e, 3, 1), 0.5);
  total.examples = 1;
  const nodes = total.nodes(0);
  assert.deepEqual(
    nodes.map((n) => [n.id, n.position, n.effect]),
    [['embed/1', null, 0.75]],
  );
  assert.throws(() => sums.node(e, 2, 0), /position 2 outside 0\.\.1/);
  assert.throws(() => sums.index('mlp_9'), /no site mlp_9/);
});
