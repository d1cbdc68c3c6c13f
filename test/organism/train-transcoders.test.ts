import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runOrganism } from '../../src/cli/commands/organism.ts';
import { readTranscoderRecord } from '../../src/organism/records-file.ts';
import { readLabels } from '../../src/organism/feature-labels.ts';
import { loadTranscoders } from '../../src/transcoders/load.ts';
import {
  TRANSCODER_STAGE_SETTINGS,
  transcoderCommand,
} from '../../src/organism/train-transcoders.ts';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const data = path.join(repo, 'data');

/** A folder holding the shipped organism's model and tokenizer only (no SAEs, no transcoders). */
function organismCopy(): string {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'sfc-transcoder-stage-'));
  for (const f of ['config.json', 'model.safetensors', 'tokenizer.json'])
    fs.copyFileSync(path.join(repo, 'models', 'organism', f), path.join(out, f));
  return out;
}

test('the stages write the command that README.md gives for the shipped sets', () => {
  // The shipped sets were made by these commands (README "Attribution graphs" and
  // "Cross-layer transcoders"); the stages must train with the same settings.
  const readme = fs.readFileSync(path.join(repo, 'README.md'), 'utf8');
  for (const stage of ['transcoders', 'clt'] as const) {
    const command = transcoderCommand(TRANSCODER_STAGE_SETTINGS[stage]).replace(/^sfc /, '');
    assert.ok(
      readme.includes(`npm run sfc -- ${command} --out models/organism/${stage} --force`),
      `README holds ${command}`,
    );
  }
});

test('transcoders and clt stages: train, label, record; remeasuring the folder gives the same record', () => {
  const out = organismCopy();
  try {
    for (const stage of ['transcoders', 'clt'] as const) {
      runOrganism({ stage, quick: true, out, dataDir: data });
      const dir = path.join(out, stage);
      const loaded = loadTranscoders(dir);
      assert.equal(loaded.kind, stage === 'clt' ? 'cross_layer_transcoder' : 'transcoder_set');
      const record = readTranscoderRecord(path.join(out, 'training', `${stage}.json`));
      assert.equal(record.settings.clt, stage === 'clt');
      assert.equal(record.stats.layers.length, 4);
      // The label counts are those of the labels file the stage wrote beside the weights.
      const labels = readLabels(path.join(dir, 'labels.jsonl'));
      assert.equal(labels.length, 4 * record.settings.width);
      assert.equal(record.labels.features, labels.length);
      assert.equal(record.labels.alive, labels.filter((l) => l.frequency > 0).length);
      assert.equal(
        record.labels.confident,
        labels.filter((l) => l.label !== null && l.f1 >= record.labels.minF1).length,
      );
      // The record is a function of the folder: remeasuring without training reproduces it
      // (what `npm run claims` relies on), keeping the recorded training time.
      runOrganism({ stage, quick: true, out, dataDir: data, remeasure: true });
      assert.deepEqual(readTranscoderRecord(path.join(out, 'training', `${stage}.json`)), record);
      // A set already there is replaced only with force.
      assert.throws(
        () => runOrganism({ stage, quick: true, out, dataDir: data }),
        new RegExp(`${stage}/config\\.yaml already holds`),
      );
    }
    runOrganism({ stage: 'report', quick: true, out, dataDir: data });
    const md = fs.readFileSync(path.join(out, 'TRAINING.md'), 'utf8');
    assert.match(md, /## Per-layer transcoders/);
    assert.match(md, /## Cross-layer transcoder/);
    assert.ok(md.includes('`npm run organism -- --stage clt`'));
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
});

test('--remeasure is refused outside the transcoders and clt stages, and without a set', () => {
  const out = organismCopy();
  try {
    assert.throws(
      () => runOrganism({ stage: 'all', quick: true, out, dataDir: data, remeasure: true }),
      /--remeasure: only with --stage transcoders or --stage clt/,
    );
    assert.throws(
      () => runOrganism({ stage: 'clt', quick: true, out, dataDir: data, remeasure: true }),
      /clt holds no transcoders \(config\.yaml\) to measure/,
    );
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
});
