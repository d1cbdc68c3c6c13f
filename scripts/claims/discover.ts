// Circuit discovery on the organism's across-RC task, as `sfc discover` runs it with its defaults
// (100 examples of data/rc_train.jsonl, IG 10 steps, thresholds 0.1 / 0.01) and with attrib: node
// and edge counts, and where the nodes sit.

import path from 'node:path';
import { discover, toCircuit, type DiscoverOptions } from '../../src/attribution/discover.ts';
import type { Circuit } from '../../src/circuit/circuit.ts';
import { EXACT_COUNT, ORGANISM_DIR, organism, taskExamples } from './lib/organism.ts';
import type { ClaimGroup } from './types.ts';

const DATA = 'data/rc_train.jsonl';

/** The circuit `sfc discover --data data/rc_train.jsonl [--method M] [--examples N]` writes. */
export function rcCircuit(method: 'ig' | 'attrib', examples: number): Circuit {
  const { model, tokenizer, library } = organism();
  const task = taskExamples(DATA, examples);
  const options: DiscoverOptions = {
    method,
    steps: 10,
    aggregation: 'none',
    nodeThreshold: 0.1,
    edgeThreshold: 0.01,
    batchSize: 10,
    sites: library.sites(),
  };
  const result = discover(model, (site) => library.get(site), task, options);
  return toCircuit(
    result,
    {
      model: ORGANISM_DIR,
      saes: path.join(ORGANISM_DIR, 'saes'),
      data: DATA,
      tokens: task[0].clean.map((id) => tokenizer.tokenString(id)),
    },
    options,
  );
}

function counts(prefix: string, c: Circuit, out: Record<string, number>): void {
  out[`${prefix}.nodes`] = c.nodes.length;
  out[`${prefix}.edges`] = c.edges.length;
  for (const site of c.sites) {
    const at = c.nodes.filter((n) => n.site === site);
    out[`${prefix}.${site}.features`] = at.filter((n) => n.kind === 'feature').length;
    out[`${prefix}.${site}.nodes`] = at.length;
  }
  out[`${prefix}.resid_0.present`] = out[`${prefix}.resid_0.nodes`] > 0 ? 1 : 0;
  out[`${prefix}.resid_1.present`] = out[`${prefix}.resid_1.nodes`] > 0 ? 1 : 0;
  // Nodes at the sites before mlp_2 (embed .. attn_2, in the circuit's site order).
  const early = c.sites.slice(0, c.sites.indexOf('mlp_2'));
  out[`${prefix}.nodes_before_mlp_2`] = c.nodes.filter((n) => early.includes(n.site)).length;
}

async function measure(): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  counts('ig', rcCircuit('ig', 100), out);
  counts('attrib', rcCircuit('attrib', 100), out);
  organism().library.dropAll();
  return out;
}

const IG = 'IG finds 187 nodes and 980 edges';
const ATTRIB = 'attrib finds 58 nodes and 187 edges';
const EARLY =
  "IG's circuit has early nodes (49 embed features, 42 `mlp_0` features, `resid_0`, `resid_1`)";
const doc = 'docs/discover.md';

export const groups: ClaimGroup[] = [
  {
    name: 'discover',
    script: 'sfc discover --data data/rc_train.jsonl [--method attrib]',
    fast: true,
    measure,
    claims: [
      { key: 'ig.nodes', doc, text: IG, stated: 187, tolerance: 0, why: EXACT_COUNT },
      { key: 'ig.edges', doc, text: IG, stated: 980, tolerance: 0, why: EXACT_COUNT },
      { key: 'attrib.nodes', doc, text: ATTRIB, stated: 58, tolerance: 0, why: EXACT_COUNT },
      { key: 'attrib.edges', doc, text: ATTRIB, stated: 187, tolerance: 0, why: EXACT_COUNT },
      {
        key: 'attrib.nodes_before_mlp_2',
        doc,
        text: 'none before\n`mlp_2`',
        stated: 0,
        tolerance: 0,
        why: EXACT_COUNT,
      },
      { key: 'ig.embed.features', doc, text: EARLY, stated: 49, tolerance: 0, why: EXACT_COUNT },
      { key: 'ig.mlp_0.features', doc, text: EARLY, stated: 42, tolerance: 0, why: EXACT_COUNT },
      {
        key: 'ig.resid_0.present',
        doc,
        text: EARLY,
        stated: 1,
        tolerance: 0,
        why: '1 = the circuit has resid_0 nodes',
      },
      {
        key: 'ig.resid_1.present',
        doc,
        text: EARLY,
        stated: 1,
        tolerance: 0,
        why: '1 = the circuit has resid_1 nodes',
      },
    ],
  },
];
