import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Rng } from '../../src/random.ts';
import { realise } from '../../src/organism/grammar-realiser.ts';
import { GrammarSampler } from '../../src/organism/grammar-sampler.ts';
import { buildOrganismTokenizer, END_OF_TEXT } from '../../src/organism/tokenizer-builder.ts';
import { Tokenizer } from '../../src/model/tokenizer.ts';
import {
  learningRate,
  organismEosId,
  PackedRows,
  textTokenIds,
} from '../../src/organism/train-model.ts';
import { runOrganism } from '../../src/cli/commands/organism.ts';
import { SITE_SAE_OVERRIDES } from '../../src/organism/train-saes.ts';
import {
  readLabelRecord,
  readModelRecord,
  readSaeRecord,
  readTranscoderRecord,
} from '../../src/organism/records-file.ts';
import { loadModel } from '../../src/model/load.ts';
import { siteNames } from '../../src/model/sites.ts';
import { openSaes } from '../../src/sae/library.ts';
import { readLabels } from '../../src/organism/feature-labels.ts';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

test('word token ids agree with the tokenizer encoding the text', () => {
  const built = buildOrganismTokenizer();
  const tokenizer = Tokenizer.fromJson(built.json);
  const sampler = new GrammarSampler(new Rng(7));
  for (let i = 0; i < 20; i++) {
    const text = realise(sampler.text());
    assert.deepEqual(textTokenIds(text, built.ids), tokenizer.encode(text.text));
  }
});

test('packed rows start at a text start, separate texts by <|endoftext|>, targets are the next token', () => {
  const built = buildOrganismTokenizer();
  const eos = organismEosId(built.json);
  assert.equal(eos, Tokenizer.fromJson(built.json).tokenId(END_OF_TEXT));
  const B = 3;
  const T = 40;
  const ids = new Int32Array(B * T);
  const targets = new Int32Array(B * T);
  new PackedRows(new GrammarSampler(new Rng(3)), built.ids, eos).fill(ids, targets, B, T);
  // The same texts, drawn again from the same seed, laid out by hand.
  const again = new GrammarSampler(new Rng(3));
  for (let b = 0; b < B; b++) {
    const row: number[] = [];
    while (row.length < T + 1) row.push(...textTokenIds(realise(again.text()), built.ids), eos);
    assert.deepEqual([...ids.subarray(b * T, (b + 1) * T)], row.slice(0, T), `row ${b} ids`);
    assert.deepEqual(
      [...targets.subarray(b * T, (b + 1) * T)],
      row.slice(1, T + 1),
      `row ${b} targets`,
    );
    assert.notEqual(ids[b * T], eos);
  }
});

test('learning rate: linear warmup, cosine to the final fraction', () => {
  // lr 1, warmup 10, 110 steps, final 0.1
  assert.equal(learningRate(0, 1, 10, 110, 0.1), 0.1);
  assert.equal(learningRate(9, 1, 10, 110, 0.1), 1);
  assert.equal(learningRate(10, 1, 10, 110, 0.1), 1);
  assert.ok(Math.abs(learningRate(60, 1, 10, 110, 0.1) - 0.55) < 1e-12); // halfway: 0.1 + 0.9 / 2
  assert.ok(Math.abs(learningRate(110, 1, 10, 110, 0.1) - 0.1) < 1e-12);
});

test('the pipeline runs end to end in --quick mode', () => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'sfc-organism-'));
  try {
    runOrganism({ stage: 'all', quick: true, out, dataDir: path.join(repo, 'data') });
    for (const f of [
      'config.json',
      'model.safetensors',
      'tokenizer.json',
      'labels.jsonl',
      'TRAINING.md',
    ])
      assert.ok(fs.existsSync(path.join(out, f)), `${f} written`);
    const { config, tokenizer } = loadModel(out, { tokenizer: true });
    assert.ok(tokenizer);
    const sites = siteNames(config.numLayers);
    const library = openSaes(path.join(out, 'saes'), config.numLayers);
    assert.deepEqual(library.sites(), sites);
    const width = library.get('resid_0').width;
    const labels = readLabels(path.join(out, 'labels.jsonl'));
    assert.equal(labels.length, sites.length * width);
    assert.deepEqual([...new Set(labels.map((l) => l.site))], sites);
    const md = fs.readFileSync(path.join(out, 'TRAINING.md'), 'utf8');
    for (const svg of md.match(/training\/[\w-]+\.svg/g) ?? [])
      assert.ok(fs.readFileSync(path.join(out, svg), 'utf8').startsWith('<svg'), svg);
    assert.match(md, /\| within_rc \|/);
    assert.match(md, /\| resid_1 \|/);
    // TRAINING.md states the embedding's override as the stage used it.
    assert.ok(md.includes(`except embed: TopK with k = ${SITE_SAE_OVERRIDES.embed.k}`));
    // Each stage's record reads back through its reader as the stage wrote it.
    const records = path.join(out, 'training');
    assert.equal(
      readModelRecord(path.join(records, 'model.json')).config.numLayers,
      config.numLayers,
    );
    assert.equal(readLabelRecord(path.join(records, 'labels.json')).summary.length, sites.length);
    // all runs the transcoders and clt stages after the labels, before the report.
    for (const stage of ['transcoders', 'clt'])
      assert.equal(
        readTranscoderRecord(path.join(records, `${stage}.json`)).stats.layers.length,
        config.numLayers,
      );
    assert.match(md, /## Per-layer transcoders[^]*## Cross-layer transcoder/);

    // Retraining one site keeps every other site's files and record entries.
    const file = (site: string) => path.join(out, 'saes', site, 'sae_weights.safetensors');
    const record = () => readSaeRecord(path.join(records, 'saes.json'));
    const before = record();
    const resid0 = fs.readFileSync(file('resid_0'));
    // An SAE already there is replaced only with force (npm run organism passes it).
    assert.throws(
      () => runOrganism({ stage: 'saes', quick: true, out, dataDir: '', sites: ['embed'] }),
      /saes\/embed already holds an SAE; refusing to overwrite it\. Pass --force/,
    );
    runOrganism({ stage: 'saes', quick: true, out, dataDir: '', sites: ['embed'], force: true });
    assert.ok(fs.existsSync(file('embed')), 'embed retrained');
    assert.deepEqual(fs.readFileSync(file('resid_0')), resid0);
    const after = record();
    assert.deepEqual(
      after.sites.map((s) => s.site),
      sites,
    );
    assert.deepEqual(
      after.evaluation.map((s) => s.site),
      sites,
    );
    assert.deepEqual(after.sites[1], before.sites[1]);
    assert.deepEqual(after.sites[0].config, SITE_SAE_OVERRIDES.embed);
    assert.equal(openSaes(path.join(out, 'saes'), config.numLayers).get('embed').kind, 'topk');
    assert.throws(
      () =>
        runOrganism({
          stage: 'saes',
          quick: true,
          out,
          dataDir: '',
          sites: ['resid_9'],
          force: true,
        }),
      /resid_9 is not a site of the organism/,
    );
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
});
