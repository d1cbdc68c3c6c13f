import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TextSpec } from '../../src/organism/grammar.ts';
import { realise } from '../../src/organism/grammar-realiser.ts';
import { WORD_LABELS } from '../../src/organism/labels.ts';
import {
  LabelCounter,
  readLabels,
  summariseLabels,
  wordLabelMatrix,
  writeLabels,
  type FeatureLabel,
} from '../../src/organism/feature-labels.ts';

const close = (a: number, b: number, what: string) =>
  assert.ok(Math.abs(a - b) < 1e-12, `${what}: ${a} vs ${b}`);

test('a feature firing exactly on plural subjects gets subject_pl with F1 1', () => {
  // "The teachers near the desk are happy . The man likes the dogs . The guards smile ."
  const spec: TextSpec = [
    {
      clause: {
        subject: {
          kind: 'np',
          np: {
            noun: 'teacher',
            number: 'pl',
            pp: { prep: 'near', object: { noun: 'desk', number: 'sg' } },
          },
        },
        predicate: { kind: 'adjective', adj: 'happy' },
      },
    },
    {
      clause: {
        subject: { kind: 'np', np: { noun: 'man', number: 'sg' } },
        predicate: { kind: 'transitive', verb: 'like', object: { noun: 'dog', number: 'pl' } },
      },
    },
    {
      clause: {
        subject: { kind: 'np', np: { noun: 'guard', number: 'pl' } },
        predicate: { kind: 'intransitive', verb: 'smile' },
      },
    },
  ];
  const words = realise(spec).words;
  const names = Object.keys(WORD_LABELS);
  const K = names.length;
  const N = words.length;
  const plural = words.map((w) => w.text === 'teachers' || w.text === 'guards');
  assert.equal(plural.filter(Boolean).length, 2);

  // Feature 0 fires (with varying strength) exactly on the plural subjects; feature 1 never.
  const F = 2;
  const features = new Float32Array(N * F);
  plural.forEach((p, n) => {
    if (p) features[n * F] = 0.5 + n;
  });
  const counter = new LabelCounter(F, K);
  counter.add(features, wordLabelMatrix(words, names), N);
  const [f0, f1] = counter.best('resid_1', names);
  assert.equal(f0.label, 'subject_pl');
  assert.equal(f0.f1, 1);
  assert.equal(f0.precision, 1);
  assert.equal(f0.recall, 1);
  close(f0.frequency, 2 / N, 'frequency');
  assert.deepEqual(
    { label: f1.label, f1: f1.f1, frequency: f1.frequency },
    { label: null, f1: 0, frequency: 0 },
  );
});

test('precision, recall and F1 of a partial match, computed by hand', () => {
  // 10 tokens, labels A (tokens 0-3) and B (tokens 0-5); the feature is active on 2, 3, 4, 8;
  // token 9 is below the threshold 0.1.
  const N = 10;
  const K = 2;
  const labels = new Uint8Array(N * K);
  for (let n = 0; n < 4; n++) labels[n * K] = 1;
  for (let n = 0; n < 6; n++) labels[n * K + 1] = 1;
  const features = new Float32Array(N);
  for (const n of [2, 3, 4, 8]) features[n] = 1;
  features[9] = 0.05;
  const counter = new LabelCounter(1, K);
  // Two batches, to check accumulation across calls.
  counter.add(features.subarray(0, 5), labels.subarray(0, 5 * K), 5, 0.1);
  counter.add(features.subarray(5), labels.subarray(5 * K), 5, 0.1);
  // A: both 2, active 4, holds 4 -> P 1/2, R 1/2, F1 1/2.
  const a = counter.score(0, 0);
  close(a.precision, 0.5, 'A precision');
  close(a.recall, 0.5, 'A recall');
  close(a.f1, 0.5, 'A F1');
  // B: both 3, active 4, holds 6 -> P 3/4, R 1/2, F1 = 2PR/(P+R) = 0.6.
  const b = counter.score(0, 1);
  close(b.precision, 0.75, 'B precision');
  close(b.recall, 0.5, 'B recall');
  close(b.f1, 0.6, 'B F1');
  const [best] = counter.best('mlp_0', ['A', 'B']);
  assert.equal(best.label, 'B');
  close(best.frequency, 0.4, 'frequency');
});

test('tokens without a word (<|endoftext|>) hold no label', () => {
  const words = realise([
    {
      clause: {
        subject: { kind: 'np', np: { noun: 'teacher', number: 'sg' } },
        predicate: { kind: 'intransitive', verb: 'smile' },
      },
    },
  ]).words;
  const names = ['sentence_start', 'pos_noun'];
  const m = wordLabelMatrix([...words, null], names);
  assert.deepEqual([...m.subarray(0, 4)], [1, 0, 0, 1]); // The, teacher
  assert.deepEqual([...m.subarray(words.length * 2)], [0, 0]);
  assert.throws(
    () => wordLabelMatrix(words, ['no_such_label']),
    /unknown word label "no_such_label"/,
  );
});

test('labels round-trip through the JSONL file, and the summary counts confident ones', () => {
  const labels: FeatureLabel[] = [
    {
      site: 'embed',
      feature: 0,
      label: 'pos_noun',
      precision: 0.9,
      recall: 0.8,
      f1: 0.847,
      frequency: 0.2,
    },
    { site: 'embed', feature: 1, label: null, precision: 0, recall: 0, f1: 0, frequency: 0 },
    {
      site: 'resid_0',
      feature: 0,
      label: 'pending_pl',
      precision: 0.5,
      recall: 0.5,
      f1: 0.5,
      frequency: 0.1,
    },
    {
      site: 'resid_0',
      feature: 1,
      label: 'pending_pl',
      precision: 1,
      recall: 0.75,
      f1: 0.8571,
      frequency: 0.1,
    },
  ];
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sfc-labels-'));
  const file = path.join(dir, 'labels.jsonl');
  writeLabels(file, labels);
  assert.equal(fs.readFileSync(file, 'utf8').trim().split('\n').length, 4);
  assert.deepEqual(readLabels(file), labels);
  assert.deepEqual(summariseLabels(labels, 0.7), [
    { site: 'embed', features: 2, alive: 1, confident: 1, labels: [['pos_noun', 1]] },
    { site: 'resid_0', features: 2, alive: 2, confident: 1, labels: [['pending_pl', 1]] },
  ]);
  fs.writeFileSync(file, '{"site":"embed","feature":"x","label":null}\n');
  assert.throws(
    () => readLabels(file),
    /labels\.jsonl:1: not a feature label \(feature: Invalid input: expected number, received string; precision: /,
  );
  fs.rmSync(dir, { recursive: true });
});
