// Published dictionary formats through the whole CLI on the tiny random checkpoints of every
// family (test/fixtures/families/*): one --saes folder mixing a Gemma Scope release tree
// (JumpReLU params.npz, b_dec not subtracted, two L0 variants per resid site chosen by --sae-l0)
// and SAELens folders (standard, jumprelu, topk), written here from dictionaries held in memory.
// sfc discover (exact, attrib, IG), evaluate, dashboards, report and sae stats run on it; their
// files are read back through their validating readers and checked against independent truths
// computed here from the in-memory dictionaries: exact node effects against brute-force activation
// patching with every dictionary spliced in, attrib effects against finite differences, the full
// circuit's faithfulness against 1, dashboards' maxima and sae stats' L0 against plain encodings. sfc sae train --arch jumprelu / topk writes folders that
// load back as those kinds.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { register as registerDiscover } from '../../src/cli/commands/discover.ts';
import { register as registerEvaluate } from '../../src/cli/commands/evaluate.ts';
import { register as registerReport } from '../../src/cli/commands/report.ts';
import { register as registerSae } from '../../src/cli/commands/sae.ts';
import { readCircuit } from '../../src/circuit/circuit.ts';
import { readDashboards } from '../../src/dashboards/file.ts';
import { loadTask } from '../../src/data/tasks.ts';
import { readEvaluationFile } from '../../src/evaluation/file.ts';
import { openModel } from '../../src/model/load-family.ts';
import { SparseAutoencoder, type ActivationKind } from '../../src/sae/dictionary.ts';
import { loadDictionary, saveDictionary } from '../../src/sae/formats.ts';
import type { SiteStats } from '../../src/sae/metrics.ts';
import { writeNpz } from '../../src/sae/npy.ts';
import { transpose } from '../../src/sae/transpose.ts';
import { normalizeRows } from '../../src/sae/train-loss.ts';
import { Rng } from '../../src/random.ts';
import { runCommandOutput } from '../helpers/run-command.ts';
import {
  bruteForceNodeEffect,
  finiteDifferenceAttribution,
  siteActivation,
  splicedMetric,
  type ModelWorld,
} from '../attribution/world.ts';

const FAMILIES = ['gpt2', 'llama', 'qwen2', 'qwen3', 'gemma2'];
const fixture = (family: string) =>
  fileURLToPath(new URL(`../fixtures/families/${family}/`, import.meta.url));
const tokenizers = fileURLToPath(new URL('../fixtures/tokenizers/', import.meta.url));
const ADDS_BOS = new Set(['llama', 'gemma2']);

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sfc-published-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));

const TASK = [
  { clean_prefix: 'my cat', patch_prefix: 'my dog', clean_answer: 's', patch_answer: 'e' },
  { clean_prefix: 'my hat', patch_prefix: 'my pen', clean_answer: 'o', patch_answer: 'a' },
];
const CORPUS = ['the cat sat', 'a dog ran far', 'my hat is red'];
const F = 16;
const RELEASE = 'gemma-scope-tiny-pt';
// The L0 variant --sae-l0 picks, and the other one (its thresholds differ, so a wrong pick shows).
const L0_USED = 20;
const L0_OTHER = 90;

function cli(...args: string[]) {
  return runCommandOutput((program: Command) => {
    registerDiscover(program);
    registerEvaluate(program);
    registerReport(program);
    registerSae(program);
  }, args);
}

const close = (got: number, want: number, abs: number, rel: number) =>
  Math.abs(got - want) <= abs + rel * Math.abs(want);

/** A random dictionary with unit decoder rows (so loaders' renormalisation changes nothing). */
function randomDictionary(
  site: string,
  d: number,
  kind: ActivationKind,
  rng: Rng,
  threshold = 0.1,
  centerInput = true,
): SparseAutoencoder {
  const decoder = Float32Array.from({ length: F * d }, () => rng.normal());
  normalizeRows(decoder, d);
  return new SparseAutoencoder({
    site,
    kind,
    dIn: d,
    width: F,
    encoder: Float32Array.from(decoder, (v) => v * (0.8 + 0.4 * rng.next())),
    encoderBias: Float32Array.from({ length: F }, () => -0.1 * rng.next()),
    decoder,
    decoderBias: Float32Array.from({ length: d }, () => 0.1 * rng.normal()),
    threshold:
      kind === 'jumprelu'
        ? Float32Array.from({ length: F }, () => threshold * (0.5 + rng.next()))
        : undefined,
    k: kind === 'topk' ? 5 : undefined,
    centerInput,
  });
}

/** Gemma Scope's params.npz of a JumpReLU dictionary without input centring. */
function writeGemmaScope(file: string, sae: SparseAutoencoder): void {
  const { dIn: d, width: W } = sae;
  fs.mkdirSync(path.dirname(file), { recursive: true });
  writeNpz(file, [
    { name: 'W_enc', shape: [d, W], data: transpose(sae.encoder, W, d) },
    { name: 'W_dec', shape: [W, d], data: sae.decoder },
    { name: 'b_enc', shape: [W], data: sae.encoderBias },
    { name: 'b_dec', shape: [d], data: sae.decoderBias },
    { name: 'threshold', shape: [W], data: sae.threshold! },
  ]);
}

/**
 * The folder's layout per site: Gemma Scope at every resid (two L0 variants), mlp_0 and attn_z_0;
 * SAELens standard at embed, jumprelu at the other mlp sites, topk at the other attn_z sites.
 * Returns the dictionaries --sae-l0 L0_USED should choose, by site.
 */
function writeMixedFolder(
  dir: string,
  sites: string[],
  width: (s: string) => number,
): Map<string, SparseAutoencoder> {
  const rng = new Rng(17);
  const used = new Map<string, SparseAutoencoder>();
  const gemmaScope = (release: string, layer: string, l0: number) =>
    path.join(dir, `${RELEASE}-${release}`, `layer_${layer}`, `width_${F}`, `average_l0_${l0}`);
  for (const site of sites) {
    const d = width(site);
    const [, kind, layer] = /^(embed|attn_z|mlp|resid)(?:_(\d+))?$/.exec(site)!;
    if (kind === 'resid' || site === 'mlp_0' || site === 'attn_z_0') {
      const release = { resid: 'res', mlp: 'mlp', attn_z: 'att' }[kind as 'resid']!;
      const sae = randomDictionary(site, d, 'jumprelu', rng, 0.1, false);
      writeGemmaScope(path.join(gemmaScope(release, layer, L0_USED), 'params.npz'), sae);
      used.set(site, sae);
      if (kind === 'resid') {
        const other = new SparseAutoencoder({
          ...sae,
          encoder: sae.encoder,
          decoder: sae.decoder,
          threshold: sae.threshold!.map((t) => 3 * t),
        });
        writeGemmaScope(path.join(gemmaScope(release, layer, L0_OTHER), 'params.npz'), other);
      }
      continue;
    }
    const saeKind: ActivationKind =
      kind === 'embed' ? 'relu' : kind === 'mlp' ? 'jumprelu' : 'topk';
    const sae = randomDictionary(site, d, saeKind, rng);
    saveDictionary(dir, sae);
    used.set(site, sae);
  }
  return used;
}

for (const family of FAMILIES) {
  test(`Gemma Scope and SAELens (standard, jumprelu, topk) dictionaries through discover, evaluate, dashboards, report on ${family}`, async () => {
    const root = path.join(tmp, family);
    const dir = path.join(root, 'model');
    fs.cpSync(fixture(family), dir, { recursive: true });
    const tokenizerFile = ADDS_BOS.has(family) ? 'chars-bos' : 'chars-no-bos';
    fs.copyFileSync(
      path.join(tokenizers, `${tokenizerFile}.tokenizer.json`),
      path.join(dir, 'tokenizer.json'),
    );
    const { model, tokenizer } = openModel(dir, { tokenizer: true });
    const sites = model.sites.filter((s) => /^(embed|attn_z_\d+|mlp_\d+|resid_\d+)$/.test(s));
    const saesDir = path.join(root, 'saes');
    const saes = writeMixedFolder(saesDir, sites, (s) => model.siteWidth(s));
    const kinds = new Set([...saes.values()].map((s) => s.kind));
    assert.deepEqual([...kinds].sort(), ['jumprelu', 'relu', 'topk']);
    const data = path.join(root, 'task.jsonl');
    fs.writeFileSync(data, TASK.map((r) => JSON.stringify(r)).join('\n') + '\n');
    const corpus = path.join(root, 'corpus.txt');
    fs.writeFileSync(corpus, CORPUS.join('\n') + '\n');
    const { examples } = loadTask(data, tokenizer!, { bos: 'auto' });
    const world: ModelWorld = { model, saes, examples };
    const choose = ['--saes', saesDir, '--sae-l0', String(L0_USED)];

    // discover (exact): every site has a dictionary; the L0 variant used is printed per site
    const out = path.join(root, 'exact');
    const run = await cli(
      'discover',
      ...['--data', data, '--model', dir, ...choose, '--method', 'exact'],
      ...['--node-threshold', '0', '--edge-threshold', '0', '--out', out],
    );
    for (const site of sites.filter((s) => s.startsWith('resid_')))
      assert.match(run.stderr, new RegExp(`^ +${site} +gemma_scope .*average_l0_${L0_USED}`, 'm'));
    const circuit = readCircuit(out);
    assert.deepEqual(circuit.sites, sites);

    // exact = brute-force patching of single nodes, with every in-memory dictionary spliced in
    const cleanM = examples.map((e) => splicedMetric(world, e, e.clean));
    const strongest = (filter: (n: (typeof circuit.nodes)[number]) => boolean) =>
      [...circuit.nodes.filter(filter)].sort((a, b) => Math.abs(b.effect) - Math.abs(a.effect))[0];
    const feature = (kind: ActivationKind, gemma: boolean) => (n: (typeof circuit.nodes)[number]) =>
      n.kind === 'feature' &&
      saes.get(n.site)!.kind === kind &&
      saes.get(n.site)!.centerInput === !gemma;
    const picks = [
      strongest(feature('jumprelu', true)), // Gemma Scope
      strongest(feature('jumprelu', false)), // SAELens jumprelu
      strongest(feature('topk', false)),
      strongest(feature('relu', false)),
      strongest((n) => n.kind === 'error' && saes.get(n.site)!.kind === 'jumprelu'),
    ];
    for (const node of picks) {
      assert.ok(node, 'a node of every kind of dictionary');
      const sae = saes.get(node.site)!;
      const truth = bruteForceNodeEffect(world, node, cleanM);
      assert.ok(Math.abs(truth) > 1e-5, `${node.id}: brute force ${truth} is too small to check`);
      assert.ok(
        close(node.effect, truth, 2e-4, 2e-3),
        `${node.id} (${sae.kind}): exact ${node.effect}, brute force ${truth}`,
      );
    }

    // attrib and IG run on the same folder; attrib = the derivative of m along Δu (central
    // differences) for the Gemma Scope and TopK feature nodes
    for (const method of ['attrib', 'ig']) {
      const dirOf = path.join(root, method);
      await cli(
        'discover',
        ...['--data', data, '--model', dir, ...choose, '--method', method, '--steps', '4'],
        ...['--nodes-only', '--node-threshold', '0', '--out', dirOf],
      );
      const c = readCircuit(dirOf);
      assert.ok(close(c.metric.clean, circuit.metric.clean, 1e-5, 1e-5));
      assert.ok(close(c.metric.patch!, circuit.metric.patch!, 1e-5, 1e-5));
      if (method === 'ig') continue;
      for (const node of [picks[0], picks[2]]) {
        const found = c.nodes.find((n) => n.id === node.id);
        assert.ok(found, `attrib circuit lacks ${node.id}`);
        const fd = finiteDifferenceAttribution(world, node);
        assert.ok(
          close(found.effect, fd, 3e-4, 3e-3),
          `${node.id}: attrib ${found.effect}, finite differences ${fd}`,
        );
      }
    }

    // evaluate: the full circuit (threshold 0, embed included) is the model: faithfulness 1
    await cli(
      'evaluate',
      ...['--circuit', path.join(out, 'circuit.json'), '--data', data, '--model', dir, ...choose],
      ...['--ablation', 'patch', '--start-layer', '-1', '--thresholds', '0'],
      ...['--series', 'features', '--json'],
    );
    const full = readEvaluationFile(path.join(out, 'evaluation.json')).circuit_score;
    assert.equal(full.nodes, circuit.nodes.length);
    assert.ok(
      full.faithfulness !== null && Math.abs(full.faithfulness - 1) < 1e-3,
      `faithfulness of the full circuit ${full.faithfulness}`,
    );

    // dashboards: each feature's maximum over the corpus equals the in-memory dictionary's
    const dash = await cli(
      'dashboards',
      ...['--corpus', corpus, '--out', out, '--model', dir, ...choose, '--top', '3'],
    );
    assert.match(dash.stderr, new RegExp(`^ +resid_0 +gemma_scope .*average_l0_${L0_USED}`, 'm'));
    const dashboards = readDashboards(out);
    const documents = CORPUS.map((text) => tokenizer!.encodePrompt(text).ids);
    let firing = 0;
    for (const f of Object.values(dashboards.features)) {
      const sae = saes.get(f.site)!;
      let max = 0;
      for (const ids of documents) {
        const acts = sae.encode(siteActivation(world, ids, f.site), ids.length);
        for (let t = 0; t < ids.length; t++) max = Math.max(max, acts[t * F + f.feature]);
      }
      assert.ok(
        close(f.max_activation, max, 1e-5, 1e-3),
        `${f.site}/${f.feature}: ${f.max_activation} vs ${max}`,
      );
      if (max > 0) firing++;
    }
    assert.ok(firing > 0, 'no feature fires on the corpus');

    // report: one HTML file with the circuit and its dashboards
    const report = await cli('report', out);
    assert.equal(report.stdout, `wrote ${path.join(out, 'report.html')}`);
    const html = fs.readFileSync(path.join(out, 'report.html'), 'utf8');
    assert.ok(html.includes(JSON.stringify(circuit.nodes[0].id)), 'the report embeds the circuit');

    // sae stats: L0 per site equals the in-memory dictionaries' on the same tokens (one window of
    // the first document's length: that document)
    const first = documents[0];
    const stats = await cli(
      'sae',
      'stats',
      ...['--corpus', corpus, '--model', dir, ...choose, '--tokens', String(first.length)],
      ...['--ctx', String(first.length), '--json'],
    );
    const rows = JSON.parse(stats.stdout) as SiteStats[];
    assert.deepEqual(rows.map((r) => r.site).sort(), [...sites].sort());
    for (const r of rows) {
      const f = saes.get(r.site)!.encode(siteActivation(world, first, r.site), first.length);
      const l0 = f.filter((v) => v !== 0).length / first.length;
      assert.ok(close(r.l0, l0, 1e-9, 1e-9), `${r.site} L0 ${r.l0} vs ${l0}`);
    }

    // sae train --arch jumprelu / topk: the written folders load back as those kinds
    const trained = path.join(root, 'trained');
    for (const [arch, extra] of [
      ['jumprelu', ['--l0-penalty', '0.5']],
      ['topk', ['--topk', '3']],
    ] as const) {
      const site = arch === 'jumprelu' ? 'resid_0' : 'mlp_1';
      await cli(
        'sae',
        'train',
        ...['--site', site, '--corpus', corpus, '--model', dir, '--arch', arch, ...extra],
        ...['--width', '8', '--steps', '5', '--batch', '8', '--ctx', '8', '--out', trained],
      );
      const sae = loadDictionary(path.join(trained, site));
      assert.equal(sae.kind, arch);
      assert.equal(sae.dIn, model.siteWidth(site));
    }
  });
}
