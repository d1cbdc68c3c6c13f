import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { summariseLabels, type FeatureLabel } from '../../src/organism/feature-labels.ts';
import {
  readLabelRecord,
  readModelRecord,
  readSaeRecord,
  readTranscoderRecord,
} from '../../src/organism/records-file.ts';
import { writeReport } from '../../src/organism/report.ts';
import { MODEL_STAGE_DEFAULTS, type ModelRecord } from '../../src/organism/train-model.ts';
import { type SaeRecord } from '../../src/organism/train-saes.ts';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const shipped = path.join(repo, 'models', 'organism', 'training');

const readers = [
  { name: 'model.json', read: readModelRecord, what: 'a model training record' },
  { name: 'saes.json', read: readSaeRecord, what: 'an SAE training record' },
  { name: 'labels.json', read: readLabelRecord, what: 'a feature-label record' },
  { name: 'transcoders.json', read: readTranscoderRecord, what: 'a transcoder training record' },
  { name: 'clt.json', read: readTranscoderRecord, what: 'a transcoder training record' },
];

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'sfc-records-'));
const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

// Writes `value` as the stages do (JSON.stringify, so NaN becomes null).
const write = (dir: string, name: string, value: unknown) => {
  const file = path.join(dir, name);
  fs.writeFileSync(file, JSON.stringify(value, null, 1) + '\n');
  return file;
};

test('every shipped training record reads back unchanged through its reader', () => {
  for (const { name, read } of readers) {
    const file = path.join(shipped, name);
    assert.deepEqual(read(file), JSON.parse(fs.readFileSync(file, 'utf8')), name);
  }
});

test('a record missing a field, with a field of the wrong type, or not JSON is refused naming the file and field', () => {
  const dir = tmp();
  try {
    for (const { name, read, what } of readers) {
      const good = JSON.parse(fs.readFileSync(path.join(shipped, name), 'utf8')) as Record<
        string,
        unknown
      >;
      const file = path.join(dir, name);
      const refused = (value: unknown, field: string) => {
        write(dir, name, value);
        assert.throws(
          () => read(file),
          new RegExp(`^Error: ${escape(file)}: not ${what} \\(${escape(field)}: `),
          `${name}: ${field}`,
        );
      };
      // Missing: a top-level field each record must have.
      const missing = {
        'model.json': 'steps',
        'saes.json': 'evaluation',
        'labels.json': 'tokens',
        'transcoders.json': 'stats',
        'clt.json': 'settings',
      }[name]!;
      const { [missing]: _dropped, ...rest } = good;
      refused(rest, missing);
      // Wrong type, deep inside.
      const bad = structuredClone(good);
      if (name === 'model.json') {
        (bad.config as Record<string, unknown>).hiddenSize = '128';
        refused(bad, 'config.hiddenSize');
      } else if (name === 'saes.json') {
        (bad.sites as { train: Record<string, unknown> }[])[3].train.fve = 'high';
        refused(bad, 'sites.3.train.fve');
      } else if (name === 'labels.json') {
        (bad.summary as { labels: unknown[] }[])[1].labels[0] = ['pos_neg', -3];
        refused(bad, 'summary.1.labels.0.1');
      } else {
        (bad.stats as { layers: Record<string, unknown>[] }).layers[2].dead = '70%';
        refused(bad, 'stats.layers.2.dead');
      }
      // Not an object at all.
      refused([good], '(root)');
      fs.writeFileSync(file, '{"tokens": 1,');
      assert.throws(() => read(file), new RegExp(`^Error: ${escape(file)}: not valid JSON`));
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('records as the stages type and write them read back, a NaN measurement as null', () => {
  const dir = tmp();
  try {
    const model: ModelRecord = {
      schedule: MODEL_STAGE_DEFAULTS,
      config: {
        vocabSize: 832,
        hiddenSize: 16,
        numLayers: 1,
        numHeads: 2,
        intermediateSize: 64,
        rotaryPct: 0.25,
        rotaryEmbBase: 10000,
        maxPositionEmbeddings: 8,
        layerNormEps: 1e-5,
        useParallelResidual: true,
        attentionBias: true,
      },
      parameters: 1234,
      seed: 1,
      batchSize: 4,
      ctx: 8,
      maxSteps: 10,
      steps: 10,
      tokensSeen: 320,
      seconds: 0.5,
      reachedTarget: false,
      losses: [
        [5, 6.1],
        [10, NaN],
      ],
      evals: [{ step: 10, accuracy: { simple: 0.5, nounpp: NaN } }],
      test: { simple: { accuracy: 0.5, logitDiff: 0.25, n: 4 } },
      mix: { subjectPp: 0.5, sentencesPerText: [1, 1] },
    };
    const readModel = readModelRecord(write(dir, 'model.json', model));
    assert.deepEqual(readModel.losses, [
      [5, 6.1],
      [10, null],
    ]);
    assert.equal(readModel.evals[0].accuracy.nounpp, null);
    assert.deepEqual(readModel.schedule, MODEL_STAGE_DEFAULTS);
    assert.deepEqual(readModel.mix, model.mix);

    const sae: SaeRecord = {
      width: 32,
      l1: 1,
      steps: 30,
      batchSize: 128,
      lr: 3e-4,
      tokens: 4096,
      collectSeconds: 1,
      sites: [
        {
          site: 'embed',
          config: { kind: 'topk', k: 2, steps: 30, lr: 2e-3 },
          seconds: 2,
          train: { loss: NaN, mse: NaN, l0: NaN, fve: NaN, deadFraction: NaN },
          curve: [[15, 0.5, 2]],
        },
      ],
      evaluation: [
        {
          site: 'embed',
          tokens: 512,
          l0: 2,
          fve: 0.9,
          mse: 0.01,
          deadFraction: 0.5,
          lossClean: 2,
          lossSae: 2,
          lossZero: 2,
          lossRecovered: NaN,
        },
      ],
      evalSeconds: 1,
    };
    const readSae = readSaeRecord(write(dir, 'saes.json', sae));
    assert.deepEqual(readSae.sites[0].train, {
      loss: null,
      mse: null,
      l0: null,
      fve: null,
      deadFraction: null,
    });
    assert.deepEqual(readSae.sites[0].config, sae.sites[0].config);
    assert.equal(readSae.evaluation[0].lossRecovered, null);

    // As runLabelStage writes it, from summariseLabels' rows.
    const labels: FeatureLabel[] = [
      { site: 'embed', feature: 0, label: 'pos_det', precision: 1, recall: 1, f1: 1, frequency: 1 },
      { site: 'embed', feature: 1, label: null, precision: 0, recall: 0, f1: 0, frequency: 0 },
    ];
    const summary = summariseLabels(labels);
    const label = { tokens: 64, seconds: 0.1, minF1: 0.7, summary };
    assert.deepEqual(readLabelRecord(write(dir, 'labels.json', label)), label);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('the report shows a null measurement as a dash and refuses a malformed record by name', () => {
  const out = tmp();
  try {
    const training = path.join(out, 'training');
    fs.mkdirSync(training);
    const saes = JSON.parse(fs.readFileSync(path.join(shipped, 'saes.json'), 'utf8')) as Record<
      string,
      unknown
    >;
    const evaluation = saes.evaluation as Record<string, unknown>[];
    evaluation[0] = { ...evaluation[0], lossRecovered: null, fve: null };
    write(training, 'saes.json', saes);
    const md = fs.readFileSync(writeReport(out), 'utf8');
    assert.match(md, /\| embed \| [\d.]+ \| — \| [\d.]+% \| [\d.]+ \| [\d.]+ \| [\d.]+ \| — \|/);
    write(training, 'labels.json', { tokens: 64, seconds: 1, summary: [{ site: 'embed' }] });
    assert.throws(
      () => writeReport(out),
      new RegExp(
        `${escape(path.join(training, 'labels.json'))}: not a feature-label record \\(summary\\.0\\.features: `,
      ),
    );
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
});
