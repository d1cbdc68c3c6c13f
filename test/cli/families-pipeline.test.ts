// The whole pipeline through the CLI on the tiny random checkpoints of every family
// (test/fixtures/families/*): sfc forward, eval-task, discover (exact, attrib and IG, nodes and
// edges), evaluate, dashboards, report, sae stats / sae train and shift, on a copy of the folder
// with a hand-built character tokenizer (test/fixtures/tokenizers/: Llama and Gemma-2 get the one
// that adds <bos>, as their own do) and random SAEs saved in our SAELens layout at the paper's
// sites (embed, attn_z, mlp, resid). What the commands write is read back through the readers and
// checked against independent truths: exact node effects against brute-force patching with the
// SAEs spliced in, attrib effects against finite differences, dashboards' maxima against a plain
// forward, and the full circuit's faithfulness against 1. The SAE tools and SHIFT are checked for
// running and for their shapes only (test/sae/*, test/shift/* check their numbers).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { register as registerDiscover } from '../../src/cli/commands/discover.ts';
import { register as registerEvaluate } from '../../src/cli/commands/evaluate.ts';
import { register as registerModel } from '../../src/cli/commands/model.ts';
import { register as registerReport } from '../../src/cli/commands/report.ts';
import { register as registerSae } from '../../src/cli/commands/sae.ts';
import { register as registerShift } from '../../src/cli/commands/shift.ts';
import { register as registerTasks } from '../../src/cli/commands/tasks.ts';
import { readCircuit, type Circuit } from '../../src/circuit/circuit.ts';
import { readDashboards } from '../../src/dashboards/file.ts';
import { loadTask } from '../../src/data/tasks.ts';
import { readEvaluationFile } from '../../src/evaluation/file.ts';
import { makeBatch } from '../../src/model/gptneox.ts';
import { openModel } from '../../src/model/load-family.ts';
import { Transformer } from '../../src/model/transformer.ts';
import { loadDictionary, saveDictionary } from '../../src/sae/formats.ts';
import type { SiteStats } from '../../src/sae/metrics.ts';
import { randomModelSaes } from '../helpers/random-saes.ts';
import { runCommandOutput } from '../helpers/run-command.ts';
import {
  bruteForceNodeEffect,
  finiteDifferenceAttribution,
  siteActivation,
  splicedMetric,
  type ModelWorld,
} from '../attribution/world.ts';

const FAMILIES = ['gpt2', 'llama', 'qwen2', 'qwen3', 'gemma2'];
const ADDS_BOS = new Set(['llama', 'gemma2']);
const BOS_ID = 1; // <bos> in test/fixtures/tokenizers/*
const fixture = (family: string) =>
  fileURLToPath(new URL(`../fixtures/families/${family}/`, import.meta.url));
const tokenizers = fileURLToPath(new URL('../fixtures/tokenizers/', import.meta.url));

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sfc-families-pipeline-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));

// Equal token lengths (discovery per position); one-character answers are single tokens.
const TASK = [
  { clean_prefix: 'my cat', patch_prefix: 'my dog', clean_answer: 's', patch_answer: 'e' },
  { clean_prefix: 'my hat', patch_prefix: 'my pen', clean_answer: 'o', patch_answer: 'a' },
  { clean_prefix: 'my cup', patch_prefix: 'my box', clean_answer: 's', patch_answer: 'e' },
];
const CORPUS = ['the cat sat', 'a dog ran far', 'my hat is red', 'we go'];
const SAE_WIDTH = 24;

/** A SHIFT task folder: label a pairs with gender f in the ambiguous split, b with m. */
function writeBios(dir: string): void {
  fs.mkdirSync(dir, { recursive: true });
  const line = (text: string, label: string, gender: string) =>
    JSON.stringify({ text, label, gender });
  const verbs = ['cooks', 'runs', 'sings', 'reads'];
  const pronoun = (g: string) => (g === 'f' ? 'she' : 'he');
  const ambiguous = verbs.flatMap((v) => [
    line(`${pronoun('f')} ${v}`, 'a', 'f'),
    line(`${pronoun('m')} ${v} far`, 'b', 'm'),
  ]);
  const balanced = verbs.flatMap((v) =>
    ['f', 'm'].flatMap((g) => [
      line(`${pronoun(g)} ${v}`, 'a', g),
      line(`${pronoun(g)} ${v} far`, 'b', g),
    ]),
  );
  fs.writeFileSync(path.join(dir, 'ambiguous.jsonl'), ambiguous.join('\n') + '\n');
  for (const split of ['balanced_train', 'balanced_test'])
    fs.writeFileSync(path.join(dir, `${split}.jsonl`), balanced.join('\n') + '\n');
}

function cli(...args: string[]) {
  return runCommandOutput((program: Command) => {
    registerModel(program);
    registerTasks(program);
    registerDiscover(program);
    registerEvaluate(program);
    registerReport(program);
    registerSae(program);
    registerShift(program);
  }, args);
}

const close = (got: number, want: number, abs: number, rel: number) =>
  Math.abs(got - want) <= abs + rel * Math.abs(want);

for (const family of FAMILIES) {
  test(`forward, discover, evaluate, dashboards and report through the CLI on ${family}`, async () => {
    const root = path.join(tmp, family);
    const dir = path.join(root, 'model');
    fs.cpSync(fixture(family), dir, { recursive: true });
    const tokenizerFile = ADDS_BOS.has(family) ? 'chars-bos' : 'chars-no-bos';
    fs.copyFileSync(
      path.join(tokenizers, `${tokenizerFile}.tokenizer.json`),
      path.join(dir, 'tokenizer.json'),
    );
    const { model, tokenizer } = openModel(dir, { tokenizer: true });
    assert.ok(model instanceof Transformer, `${family} runs on the generic engine`);
    const L = model.shape.numLayers;
    const sites = model.sites.filter((s) => /^(embed|attn_z_\d+|mlp_\d+|resid_\d+)$/.test(s));
    assert.equal(sites.length, 1 + 3 * L);
    const saes = randomModelSaes(model, SAE_WIDTH, 7, sites);
    const saesDir = path.join(root, 'saes');
    for (const sae of saes.values()) saveDictionary(saesDir, sae);
    const data = path.join(root, 'task.jsonl');
    fs.writeFileSync(data, TASK.map((r) => JSON.stringify(r)).join('\n') + '\n');
    const corpus = path.join(root, 'corpus.txt');
    fs.writeFileSync(corpus, CORPUS.join('\n') + '\n');
    const bosLine = ADDS_BOS.has(family) ? /^bos: added <bos> \(id 1\)/m : /^bos: none added/m;

    // forward: the prompt gets <bos> exactly when the family's tokenizer adds one
    const fwd = await cli('forward', '--model', dir, '--prompt', 'my cat', '--json');
    const got = JSON.parse(fwd.stdout) as { tokens: number[]; bos: boolean; logits: number[][] };
    const bare = tokenizer!.encode('my cat');
    assert.deepEqual(got.tokens, ADDS_BOS.has(family) ? [BOS_ID, ...bare] : bare);
    assert.match(fwd.stderr, bosLine);
    const direct = model.forward(makeBatch([got.tokens]), { logits: 'all' }).logits;
    assert.deepEqual(Float32Array.from(got.logits.flat()), direct);

    // the examples as discovery reads them: BOS as the tokenizer does
    const { examples, bos } = loadTask(data, tokenizer!, { bos: 'auto' });
    assert.equal(examples.length, TASK.length);
    assert.equal(bos, ADDS_BOS.has(family));
    const T = examples[0].clean.length;
    const world: ModelWorld = { model, saes, examples };

    const score = await cli('eval-task', '--data', data, '--model', dir, '--json');
    assert.match(score.stderr, bosLine);
    const scored = JSON.parse(score.stdout) as { accuracy: number; logit_diff: number; n: number };
    assert.equal(scored.n, TASK.length);
    const diffs = examples.map((e) => {
      const logits = model.forward(makeBatch([e.clean]), { logits: 'last' }).logits;
      return logits[e.cleanAnswerId] - logits[e.patchAnswerId!];
    });
    assert.ok(close(scored.logit_diff, diffs.reduce((a, b) => a + b) / diffs.length, 1e-5, 1e-5));

    const circuits: Record<string, Circuit> = {};
    for (const method of ['exact', 'attrib', 'ig']) {
      const out = path.join(root, method);
      const run = await cli(
        'discover',
        ...['--data', data, '--model', dir, '--saes', saesDir, '--method', method],
        ...['--sites', 'embed,attn_z,mlp,resid', '--steps', '4', '--batch-size', '2'],
        ...['--node-threshold', '0', '--edge-threshold', '0', '--out', out],
      );
      assert.match(run.stderr, bosLine);
      const c = readCircuit(out);
      circuits[method] = c;
      assert.deepEqual(c.sites, sites);
      assert.equal(c.examples, TASK.length);
      assert.deepEqual(
        c.tokens,
        examples[0].clean.map((id) => tokenizer!.tokenString(id)),
      );
      assert.equal(c.tokens[0] === '<bos>', ADDS_BOS.has(family));
      assert.equal(c.bos, ADDS_BOS.has(family));
      const features = c.nodes.filter((n) => n.kind === 'feature');
      assert.ok(features.length > 20, `${method}: ${features.length} feature nodes`);
      // edges between dictionary sites, not only to the metric
      const between = c.edges.filter((e) => e.target !== 'y');
      assert.ok(between.length > 20, `${method}: ${between.length} edges between nodes`);
      for (const s of sites)
        assert.ok(
          c.nodes.some((n) => n.site === s),
          `${method}: no node at ${s}`,
        );
    }
    // the same clean and patch runs under every method
    for (const method of ['attrib', 'ig']) {
      assert.ok(close(circuits[method].metric.clean, circuits.exact.metric.clean, 1e-5, 1e-5));
      assert.ok(close(circuits[method].metric.patch!, circuits.exact.metric.patch!, 1e-5, 1e-5));
    }

    // exact = brute-force patching of one node, SAEs spliced in everywhere, mean over examples
    const cleanM = examples.map((e) => splicedMetric(world, e, e.clean));
    const strongest = (nodes: Circuit['nodes']) =>
      [...nodes].sort((a, b) => Math.abs(b.effect) - Math.abs(a.effect))[0];
    const picks = [
      strongest(circuits.exact.nodes.filter((n) => n.kind === 'feature')),
      strongest(circuits.exact.nodes.filter((n) => n.kind === 'error')),
      strongest(circuits.exact.nodes.filter((n) => n.site.startsWith('attn_z_'))),
      strongest(circuits.exact.nodes.filter((n) => n.site === 'embed')),
    ];
    for (const node of picks) {
      const truth = bruteForceNodeEffect(world, node, cleanM);
      assert.ok(Math.abs(truth) > 1e-4, `${node.id}: brute force ${truth} is too small to check`);
      assert.ok(
        close(node.effect, truth, 2e-4, 2e-3),
        `${node.id}: exact ${node.effect}, brute force ${truth}`,
      );
    }

    // attrib = the derivative of m along Δu (central differences), mean over examples
    for (const node of picks.slice(0, 2)) {
      const id = node.id;
      const found = circuits.attrib.nodes.find((n) => n.id === id);
      assert.ok(found, `attrib circuit lacks ${id}`);
      const fd = finiteDifferenceAttribution(world, node);
      assert.ok(
        close(found.effect, fd, 3e-4, 3e-3),
        `${id}: attrib ${found.effect}, finite differences ${fd}`,
      );
    }

    // evaluate: every node kept (threshold 0), patch ablation, embed included: the full circuit
    // is the model, so faithfulness is 1
    const exactDir = path.join(root, 'exact');
    const ev = await cli(
      'evaluate',
      ...['--circuit', path.join(exactDir, 'circuit.json'), '--data', data],
      ...['--model', dir, '--saes', saesDir, '--ablation', 'patch', '--start-layer', '-1'],
      ...['--thresholds', '0', '--series', 'features', '--json'],
    );
    assert.match(ev.stderr, bosLine);
    const evaluation = readEvaluationFile(path.join(exactDir, 'evaluation.json'));
    const full = evaluation.circuit_score;
    assert.equal(full.nodes, circuits.exact.nodes.length);
    assert.ok(
      full.faithfulness !== null && Math.abs(full.faithfulness - 1) < 1e-3,
      `faithfulness of the full circuit ${full.faithfulness}`,
    );
    const { model: mModel, empty: mEmpty } = evaluation.metric;
    assert.ok(mModel !== null && mEmpty !== null && Math.abs(mModel - mEmpty) > 1e-3);

    // evaluate takes discovery's BOS mode from circuit.json: a circuit found with --no-bos is
    // evaluated on prefixes without it (with it, no example would have the circuit's length)
    if (ADDS_BOS.has(family)) {
      const noBos = path.join(root, 'no-bos');
      await cli(
        'discover',
        ...['--data', data, '--model', dir, '--saes', saesDir, '--method', 'attrib'],
        ...['--sites', 'embed,attn_z,mlp,resid', '--nodes-only', '--node-threshold', '0'],
        ...['--no-bos', '--out', noBos],
      );
      const c = readCircuit(noBos);
      assert.equal(c.bos, false);
      assert.equal(c.tokens.length, T - 1);
      const again = await cli(
        'evaluate',
        ...['--circuit', path.join(noBos, 'circuit.json'), '--data', data, '--model', dir],
        ...['--saes', saesDir, '--thresholds', '0', '--series', 'features', '--json'],
      );
      assert.match(again.stderr, /^bos: none added \(circuit\.json's bos\)$/m);
      assert.equal(readEvaluationFile(path.join(noBos, 'evaluation.json')).examples, TASK.length);
    }

    // dashboards of the circuit's features: each maximum is the largest activation of the
    // feature over the corpus (each document one window, BOS as the tokenizer does)
    const dash = await cli(
      'dashboards',
      ...['--corpus', corpus, '--out', exactDir, '--model', dir, '--saes', saesDir, '--top', '3'],
    );
    assert.match(dash.stderr, bosLine);
    const dashboards = readDashboards(exactDir);
    const documents = CORPUS.map((text) => tokenizer!.encodePrompt(text).ids);
    assert.equal(
      dashboards.tokens,
      documents.reduce((n, ids) => n + ids.length, 0),
    );
    const keys = Object.keys(dashboards.features);
    const circuitFeatures = new Set(
      circuits.exact.nodes.filter((n) => n.kind === 'feature').map((n) => `${n.site}/${n.feature}`),
    );
    assert.deepEqual(new Set(keys), circuitFeatures);
    let firing = 0;
    for (const key of keys.filter((_, i) => i % 5 === 0)) {
      const f = dashboards.features[key];
      const sae = saes.get(f.site)!;
      let max = 0;
      for (const ids of documents) {
        const acts = sae.run(siteActivation(world, ids, f.site), ids.length).features;
        for (let t = 0; t < ids.length; t++) max = Math.max(max, acts[t * sae.width + f.feature]);
      }
      assert.ok(close(f.max_activation, max, 1e-5, 1e-3), `${key}: ${f.max_activation} vs ${max}`);
      if (max > 0) firing++;
    }
    assert.ok(firing > 0, 'no sampled feature fires on the corpus');

    // sae stats and sae train run (no truth here beyond shapes: test/sae/* checks the numbers)
    const stats = await cli(
      'sae',
      'stats',
      ...['--corpus', corpus, '--model', dir, '--saes', saesDir, '--tokens', '32', '--ctx', '8'],
      '--json',
    );
    assert.match(stats.stderr, bosLine);
    const rows = JSON.parse(stats.stdout) as SiteStats[];
    assert.deepEqual(rows.map((r) => r.site).sort(), [...sites].sort());
    for (const r of rows) {
      assert.ok(r.l0 >= 0 && r.l0 <= SAE_WIDTH && Number.isFinite(r.fve), JSON.stringify(r));
      assert.ok([r.lossClean, r.lossSae, r.lossZero].every((v) => Number.isFinite(v) && v > 0));
    }
    const zSite = sites.find((s) => s.startsWith('attn_z_'))!;
    const trained = path.join(root, 'trained');
    const train = await cli(
      'sae',
      'train',
      ...['--site', zSite, '--corpus', corpus, '--model', dir, '--steps', '5', '--batch', '8'],
      ...['--ctx', '8', '--out', trained],
    );
    assert.match(train.stderr, bosLine);
    const sae = loadDictionary(path.join(trained, zSite));
    assert.equal(sae.dIn, model.siteWidth(zSite));
    assert.equal(sae.width, 16 * model.siteWidth(zSite));

    // shift with a person's features: the two listed are ablated. SHIFT's circuit takes every
    // site of the model (attn_L too), so it gets a dictionary at each.
    const everySite = path.join(root, 'saes-every-site');
    for (const sae of randomModelSaes(model, SAE_WIDTH, 8).values()) saveDictionary(everySite, sae);
    const bios = path.join(root, 'bios');
    writeBios(bios);
    const list = path.join(root, 'features.json');
    fs.writeFileSync(list, JSON.stringify({ features: ['embed/0', 'resid_0/1'] }));
    const shift = await cli(
      'shift',
      ...['--task', bios, '--features', list, '--model', dir, '--saes', everySite],
      ...['--examples', '4', '--steps', '2', '--out', path.join(root, 'shift'), '--json'],
    );
    assert.match(shift.stderr, bosLine);
    const shifted = JSON.parse(shift.stdout) as { rows: { name: string; ablated: number }[] };
    assert.equal(shifted.rows.find((r) => r.name === 'SHIFT')!.ablated, 2);
    readCircuit(path.join(root, 'shift'));

    const report = await cli('report', exactDir);
    assert.equal(report.stdout, `wrote ${path.join(exactDir, 'report.html')}`);
    const html = fs.readFileSync(path.join(exactDir, 'report.html'), 'utf8');
    assert.ok(html.includes(JSON.stringify(keys[0])), 'the report embeds the dashboards');
    assert.ok(html.includes(JSON.stringify(circuits.exact.nodes[0].id)), 'and the circuit');
  });
}
