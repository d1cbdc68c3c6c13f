// The page's supernode rules (src/viewer/page/supernodes.js) on hand-built graphs whose right
// grouping is known, run outside the browser: the page file evaluated with its `app` object.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import vm from 'node:vm';

interface Node {
  id: string;
  kind: string;
  layer: number;
  clerp: string;
}
type Link = [number, number, number];
interface Group {
  name: string;
  members: string[];
}
interface Supernodes {
  labelKey(clerp: string): string;
  groupByLabel(nodes: Node[]): Group[];
  groupBySharedEdges(
    nodes: Node[],
    links: Link[],
    o?: { threshold?: number; band?: number },
  ): Group[];
  collapse(
    nodes: Node[],
    links: Link[],
    groups: Group[],
    shown: boolean[],
  ): { items: { key: string }[]; edges: [string, string, number, number][] };
}

function loadSupernodes(): Supernodes {
  const app = {} as Supernodes;
  const code = fs.readFileSync('src/viewer/page/supernodes.js', 'utf8');
  vm.runInNewContext(`'use strict';{${code}}`, { app });
  // Results cross back as JSON, so that deepEqual compares values, not the context's prototypes.
  const plain = {} as Record<string, unknown>;
  for (const [name, fn] of Object.entries(
    app as unknown as Record<string, (...a: unknown[]) => unknown>,
  ))
    plain[name] = (...args: unknown[]) => JSON.parse(JSON.stringify(fn(...args)));
  return plain as unknown as Supernodes;
}
const sn = loadSupernodes();

const node = (id: string, kind: string, layer: number, clerp = ''): Node => ({
  id,
  kind,
  layer,
  clerp,
});

test("grouping by label strips sfc graph's F1 suffix and keeps groups of two or more", () => {
  assert.equal(sn.labelKey('pending_sg (F1 0.93)'), 'pending_sg');
  const nodes = [
    node('0_1_1', 'feature', 0, 'noun_pl (F1 0.90)'),
    node('1_7_1', 'feature', 1, 'noun_pl (F1 0.71)'),
    node('1_8_5', 'feature', 1, 'pending_sg (F1 0.88)'),
    node('2_3_5', 'feature', 2, ''),
    node('2_-1_5', 'mlp reconstruction error', 2, 'noun_pl'),
  ];
  assert.deepEqual(sn.groupByLabel(nodes), [{ name: 'noun_pl', members: ['0_1_1', '1_7_1'] }]);
});

// Token t (index 0) feeds features a, b (layer 1) with weights 2, 1 and both feed logit y
// (index 6) with weights 3, 1.5: a and b have proportional edge vectors (cosine 1). Feature c
// (layer 1) reads t too but writes against y: cosine with a and b is negative. Feature d (layer 4)
// has a's edges exactly but sits outside a 1-layer band. e has no edges at all.
const nodes = [
  node('E_5_0', 'token', -1),
  node('1_10_0', 'feature', 1, 'subject_pl'),
  node('1_11_0', 'feature', 1),
  node('1_12_0', 'feature', 1),
  node('4_13_0', 'feature', 4),
  node('2_14_0', 'feature', 2),
  node('7_99_0', 'logit', 7),
];
const links: Link[] = [
  [0, 1, 2],
  [0, 2, 1],
  [0, 3, 1],
  [0, 4, 2],
  [1, 6, 3],
  [2, 6, 1.5],
  [3, 6, -2],
  [4, 6, 3],
];

test('shared-edge grouping joins features with proportional edges within the layer band only', () => {
  const groups = sn.groupBySharedEdges(nodes, links, { threshold: 0.9, band: 1 });
  assert.deepEqual(
    groups.map((g) => g.members),
    [['1_10_0', '1_11_0']],
  );
  assert.match(groups[0].name, /^subject_pl \(2, shared edges\)$/);
  // A band wide enough for layer 4 takes d in as well (its edges are a's).
  const wide = sn.groupBySharedEdges(nodes, links, { threshold: 0.9, band: 3 });
  assert.deepEqual(
    wide.map((g) => g.members),
    [['1_10_0', '1_11_0', '4_13_0']],
  );
});

test('complete linkage: a feature close to one member but not the other stays out', () => {
  // p and q share source s1; q and r share source s2; p and r share nothing. Cosines: p·q = q·r
  // = 1/√2 ≈ 0.707, p·r = 0. At threshold 0.7 single linkage would chain all three.
  const chain = [
    node('E_1_0', 'token', -1),
    node('E_2_1', 'token', -1),
    node('0_1_1', 'feature', 0),
    node('0_2_1', 'feature', 0),
    node('0_3_1', 'feature', 0),
  ];
  const chainLinks: Link[] = [
    [0, 2, 1],
    [0, 3, 1],
    [1, 3, 1],
    [1, 4, 1],
  ];
  const groups = sn.groupBySharedEdges(chain, chainLinks, { threshold: 0.7, band: 0 });
  assert.equal(groups.length, 1);
  assert.equal(groups[0].members.length, 2);
  assert.ok(groups[0].members.includes('0_2_1'), 'q, close to both, is in the pair');
});

test("a supernode's edges are the sums of its members' edges; edges inside it are dropped", () => {
  const group = { name: 'ab', members: ['1_10_0', '1_11_0'] };
  const withInner: Link[] = [...links, [1, 2, 5]];
  const shown = nodes.map(() => true);
  const { items, edges } = sn.collapse(nodes, withInner, [group], shown);
  assert.equal(items.length, nodes.length - 1);
  const edge = (a: string, b: string) => edges.find((e) => e[0] === a && e[1] === b);
  assert.deepEqual(edge('n:0', 'g:0'), ['n:0', 'g:0', 3, 2]); // 2 + 1
  assert.deepEqual(edge('g:0', 'n:6'), ['g:0', 'n:6', 4.5, 2]); // 3 + 1.5
  assert.equal(
    edges.find((e) => e[0] === 'g:0' && e[1] === 'g:0'),
    undefined,
  );
  // A member hidden by the node threshold adds nothing.
  const partial = sn.collapse(
    nodes,
    withInner,
    [group],
    shown.map((_, i) => i !== 2),
  );
  assert.deepEqual(
    partial.edges.find((e) => e[0] === 'n:0' && e[1] === 'g:0'),
    ['n:0', 'g:0', 2, 1],
  );
});
