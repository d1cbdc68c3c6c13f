// Discovery and evaluation read one metric (src/attribution/metric.ts) with one sign: on the same
// examples of the organism, circuit.json's metric (mean m on the clean inputs) and evaluation's
// F(M) are the same number, and both equal a hand computation from the model's full logits.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { defaultModelDir, loadModel } from '../../src/model/load.ts';
import { GptNeoX, makeBatch } from '../../src/model/gptneox.ts';
import { loadTask, taskBatches } from '../../src/data/tasks.ts';
import { openSaes } from '../../src/sae/library.ts';
import { discover, toCircuit } from '../../src/attribution/discover.ts';
import { AblatedModel } from '../../src/evaluation/ablation.ts';
import { evaluatedSites } from '../../src/cli/commands/evaluate.ts';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

test("a circuit's metric and the evaluation's F(M) agree in sign and value on the organism", () => {
  const dir = defaultModelDir();
  const { config, weights, tokenizer } = loadModel(dir, { tokenizer: true });
  assert.ok(tokenizer);
  const model = new GptNeoX(config, weights);
  const V = config.vocabSize;
  const examples = loadTask(path.join(repo, 'data', 'rc_test.jsonl'), tokenizer, {
    limit: 20,
  }).examples;

  // By hand: one example at a time, every logit, m = logit[patch answer] - logit[clean answer].
  let hand = 0;
  for (const e of examples) {
    const logits = model.forward(makeBatch([e.clean], 0), { logits: 'last' }).logits;
    assert.equal(logits.length, V);
    hand += logits[e.patchAnswerId!] - logits[e.cleanAnswerId];
  }
  hand /= examples.length;
  assert.ok(hand < -1, `the organism prefers the clean answer, so m is negative (got ${hand})`);

  const library = openSaes(path.join(dir, 'saes'), config.numLayers);
  // The organism's dictionary sites (attn_z_L has none and is passed through).
  const found = discover(model, (s) => library.get(s), examples, {
    method: 'attrib',
    nodesOnly: true,
    sites: library.sites(),
  });
  const circuit = toCircuit(
    found,
    { model: dir, saes: 'saes', data: 'rc_test.jsonl', tokens: [] },
    { method: 'attrib', nodesOnly: true },
  );
  const sites = evaluatedSites(library.sites(), config.numLayers, 1);
  const ablated = new AblatedModel(
    model,
    new Map(sites.map((s) => [s, library.get(s)])),
    taskBatches(examples, 7),
  );
  const fModel = ablated.metricModel();
  // float32 logits of a few units; batching and the metric-only head change the last bits.
  assert.ok(Math.abs(circuit.metric.clean - hand) < 1e-4, `${circuit.metric.clean} vs ${hand}`);
  assert.ok(Math.abs(fModel - hand) < 1e-4, `${fModel} vs ${hand}`);
  // And with everything kept the spliced model gives F(M) back up to the SAEs' error (exactly:
  // ε is recomputed), so F(C) and F(∅) are on the same scale and sign.
  assert.ok(Math.abs(ablated.metric(ablated.uniformMask(1)) - fModel) < 1e-3);
});
