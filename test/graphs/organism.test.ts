// The attribution graph on the organism with its shipped transcoders (per-layer, and the CLT): the
// export validates against Neuronpedia's published graph schema (test/fixtures/graphs/) and reads
// back, and the grammar's ground truth shows: the verb's number is set by one noun (the main
// subject after a relative clause, the clause's own subject inside one), so that noun's token is
// the most influential node, the other noun is not near the top, the pruned graph keeps a path
// from it, through features at its position, to the correct verb logit, and the most influential
// of those features carry that noun's number in their ground-truth labels.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Ajv from 'ajv';
import { loadModel } from '../../src/model/load.ts';
import { GptNeoX } from '../../src/model/gptneox.ts';
import { loadTranscoders } from '../../src/transcoders/load.ts';
import { buildReplacement } from '../../src/graphs/replacement.ts';
import { buildGraph } from '../../src/graphs/graph.ts';
import { graphScores, pruneGraph } from '../../src/graphs/prune.ts';
import { toNeuronpedia } from '../../src/graphs/export.ts';
import { readNeuronpediaGraph } from '../../src/graphs/neuronpedia-file.ts';
import { readLabels } from '../../src/organism/feature-labels.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
const loaded = loadModel(path.join(root, 'models/organism'), { tokenizer: true });
const tokenizer = loaded.tokenizer!;
const model = new GptNeoX(loaded.config, loaded.weights);
const sets = ['transcoders', 'clt'].map((name) => {
  const dir = path.join(root, 'models/organism', name);
  return {
    name,
    transcoders: loadTranscoders(dir).transcoders,
    labels: new Map(
      readLabels(path.join(dir, 'labels.jsonl')).map((l) => [`${l.site}/${l.feature}`, l.label]),
    ),
  };
});

// Neuronpedia's published schema, checked by ajv (an independent validator).
const validateGraph = new Ajv({ allErrors: true }).compile(
  JSON.parse(
    fs.readFileSync(path.join(root, 'test/fixtures/graphs/neuronpedia-graph-schema.json'), 'utf8'),
  ) as object,
);
const schemaErrors = (value: unknown) =>
  validateGraph(value) ? [] : validateGraph.errors!.map((e) => `${e.dataPath} ${e.message}`);

/** Task prompts with the position of the noun the verb agrees with and of the other noun. */
function taskPrompts(
  file: string,
  count: number,
  decider: (T: number) => number,
  other: number,
  /** Which part of `case` (singular_plural...) is the deciding noun's number. */
  numberPart: number,
) {
  return fs
    .readFileSync(path.join(root, 'data', file), 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .slice(0, count)
    .map((l) => {
      const row = JSON.parse(l) as { clean_prefix: string; clean_answer: string; case: string };
      const T = tokenizer.encode(row.clean_prefix).length;
      const number = row.case.split('_')[numberPart] === 'singular' ? 'sg' : 'pl';
      return {
        prompt: row.clean_prefix,
        answer: row.clean_answer,
        decider: decider(T),
        other,
        number,
      };
    });
}
// "The friend that the skaters love" -> does: the main subject (1) decides, not "skaters" (4).
// "The chefs that the drivers" -> do: the clause's subject (last) decides, not "chefs" (1).
const prompts = [
  ...taskPrompts('rc_test.jsonl', 6, () => 1, 4, 0),
  ...taskPrompts('within_rc_test.jsonl', 4, (T) => T - 1, 1, 1),
];

for (const { name, transcoders, labels } of sets)
  for (const { prompt, answer, decider, other, number } of prompts) {
    test(`organism graph (${name}) "${prompt}" -> "${answer}": schema, ground truth`, () => {
      const ids = tokenizer.encode(prompt);
      const g = buildGraph(buildReplacement(model, transcoders, ids));
      const pruned = pruneGraph(g, 0.8, 0.98);
      const exported = toNeuronpedia(g, pruned, {
        slug: 'test',
        scan: 'organism',
        prompt,
        tokenString: (id) => tokenizer.tokenString(id),
        numLayers: model.config.numLayers,
        nodeThreshold: 0.8,
        edgeThreshold: 0.98,
      });
      assert.deepEqual(schemaErrors(exported), []);
      const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'sfc-graph-')), 'g.json');
      fs.writeFileSync(file, JSON.stringify(exported));
      assert.equal(readNeuronpediaGraph(file).links.length, exported.links.length);

      const scores = graphScores(g);
      assert.ok(
        scores.replacement > 0.5 && scores.replacement <= 1,
        `replacement ${scores.replacement}`,
      );
      assert.ok(
        scores.completeness > 0.7 && scores.completeness <= 1,
        `completeness ${scores.completeness}`,
      );

      // Ground truth: the deciding noun sets the verb's number.
      const answerId = tokenizer.encode(answer)[0];
      const logit = g.nodes.findIndex((n) => n.kind === 'logit' && n.token === answerId);
      assert.ok(logit >= 0, `"${answer}" is not among the logit nodes`);
      const subject = g.nodes.findIndex((n) => n.kind === 'token' && n.position === decider);
      const ranked = g.nodes
        .map((n, i) => i)
        .filter((i) => g.nodes[i].kind !== 'logit')
        .sort((a, b) => pruned.nodeInfluence[b] - pruned.nodeInfluence[a]);
      // The deciding noun leads; the other noun is not near the top.
      const attractor = g.nodes.findIndex((n) => n.kind === 'token' && n.position === other);
      assert.equal(ranked.indexOf(subject), 0, 'the deciding noun is the most influential node');
      assert.ok(
        ranked.indexOf(attractor) >= 10,
        `the attractor ranks ${ranked.indexOf(attractor)}`,
      );
      // A path subject -> feature at position 1 -> ... -> the answer logit, on kept edges only.
      const n = g.nodes.length;
      const reach = new Uint8Array(n);
      const via = new Uint8Array(n); // reached through a subject-position feature
      reach[subject] = 1;
      for (let changed = true; changed;) {
        changed = false;
        for (let t = 0; t < n; t++)
          for (let s = 0; s < n; s++) {
            if (!pruned.edgeMask[t * n + s] || !reach[s]) continue;
            const node = g.nodes[t];
            const through =
              via[s] || (node.kind === 'feature' && node.position === decider) ? 1 : 0;
            if (!reach[t] || (through && !via[t])) {
              reach[t] = 1;
              via[t] = Math.max(via[t], through);
              changed = true;
            }
          }
      }
      assert.ok(
        via[logit],
        'no kept path from the subject through a subject-position feature to the answer',
      );
      // The three most influential kept features at the deciding noun carry its number in their
      // ground-truth labels (noun_sg, subject_pl, rc_subject_pl, ...; sfc transcoder label).
      const top = g.nodes
        .map((node, i) => ({ node, i }))
        .filter(
          ({ node, i }) =>
            node.kind === 'feature' && pruned.nodeMask[i] && node.position === decider,
        )
        .sort((a, b) => pruned.nodeInfluence[b.i] - pruned.nodeInfluence[a.i])
        .slice(0, 3)
        .map(({ node }) =>
          node.kind === 'feature' ? labels.get(`mlp_${node.layer}/${node.feature}`) : '',
        );
      assert.equal(top.length, 3);
      for (const label of top)
        assert.match(label ?? 'none', new RegExp(`_${number}$`), `labels ${top.join(', ')}`);
    });
  }
