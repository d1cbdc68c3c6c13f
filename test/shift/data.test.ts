// The biographies (splits as the issue defines them, words the organism knows), the
// classification loader's checks and the features file a person writes.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  biography,
  biographyFiles,
  biographySplit,
  AMBIGUOUS_GENDER,
} from '../../src/organism/biographies.ts';
import { loadClassificationTask } from '../../src/data/classification.ts';
import { buildOrganismTokenizer } from '../../src/organism/tokenizer-builder.ts';
import { readFeatureList } from '../../src/shift/output.ts';
import { Rng } from '../../src/random.ts';

test('biographies: ambiguous pairs each label with one gender, balanced has four equal groups', () => {
  const ambiguous = biographySplit('ambiguous', 40);
  for (const b of ambiguous) assert.equal(b.gender, AMBIGUOUS_GENDER[b.label]);
  assert.equal(ambiguous.filter((b) => b.label === 'nurse').length, 20);
  const balanced = biographySplit('balanced_test', 40);
  const groups = new Map<string, number>();
  for (const b of balanced)
    groups.set(`${b.label}/${b.gender}`, (groups.get(`${b.label}/${b.gender}`) ?? 0) + 1);
  assert.deepEqual([...groups.values()], [10, 10, 10, 10]);
  assert.throws(() => biographySplit('balanced_train', 6), /multiple of 4/);
});

test('biographies: the committed files are what the generator writes, and validation shares no test text', () => {
  const files = biographyFiles();
  for (const [name, text] of files)
    assert.equal(fs.readFileSync(path.join('data', 'bios', name), 'utf8'), text, name);
  const texts = (name: string) =>
    files
      .get(name)!
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as { text: string; label: string; gender: string });
  const test = new Set(texts('balanced_test.jsonl').map((b) => b.text));
  const val = texts('balanced_val.jsonl');
  assert.equal(val.filter((b) => test.has(b.text)).length, 0);
  const groups = new Map<string, number>();
  for (const b of val)
    groups.set(`${b.label}/${b.gender}`, (groups.get(`${b.label}/${b.gender}`) ?? 0) + 1);
  assert.deepEqual([...groups.values()], [100, 100, 100, 100]);
  // Without the exclusion the same seed does draw test texts: the exclusion is doing work.
  const drawn = biographySplit('balanced_val', 400).filter((b) => test.has(b.text)).length;
  assert.ok(drawn > 0, 'the plain draw overlaps the test split');
});

test('biographies: one occupation word, the gender shown at least twice and never the other', () => {
  const rng = new Rng(8);
  for (let i = 0; i < 200; i++) {
    const label = i % 2 ? 'nurse' : 'professor';
    const gender = i % 3 ? 'male' : 'female';
    const text = biography(rng, label, gender);
    const lemmas = text.words.map((w) => w.lemma);
    assert.equal(lemmas.filter((l) => l === 'nurse' || l === 'professor').length, 1, text.text);
    assert.ok(lemmas.includes(label), text.text);
    const g = gender === 'male' ? 'm' : 'f';
    const shown = text.words.filter((w) => w.gender !== 'none');
    assert.ok(shown.length >= 2, text.text);
    assert.ok(
      shown.every((w) => w.gender === g),
      text.text,
    );
  }
});

test('biographies: every word is one token of the organism tokenizer', () => {
  const tok = buildOrganismTokenizer();
  for (const b of biographySplit('balanced_train', 20)) {
    const words = b.text.split(' ');
    for (const [i, word] of words.entries())
      assert.ok(tok.ids.has(i === 0 ? word : ` ${word}`), `"${word}" of "${b.text}"`);
  }
});

function taskDir(files: Record<string, object[]>): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sfc-bios-'));
  for (const [name, rows] of Object.entries(files))
    fs.writeFileSync(
      path.join(dir, `${name}.jsonl`),
      rows.map((r) => JSON.stringify(r)).join('\n'),
    );
  return dir;
}

const wordTokenizer = { encode: (text: string) => text.split(' ').map((w) => w.length) };
const row = (label: string, gender: string) => ({ text: 'a b c', label, gender });
const balanced = [row('x', 'f'), row('x', 'm'), row('y', 'f'), row('y', 'm')];

test('loadClassificationTask: labels, the gender each is paired with, and clear errors', () => {
  const dir = taskDir({
    ambiguous: [row('y', 'm'), row('x', 'f')],
    balanced_train: balanced,
    balanced_test: balanced,
  });
  const task = loadClassificationTask(dir, wordTokenizer);
  assert.equal(task.splits.balanced_val, undefined);
  assert.deepEqual(task.labels, ['x', 'y']);
  assert.deepEqual(task.genders, ['f', 'm']);
  const e = task.splits.balanced_test[1]; // x, m
  assert.deepEqual([e.y, e.genderClass, e.ids.length], [0, 1, 3]);

  const withVal = loadClassificationTask(
    taskDir({
      ambiguous: [row('y', 'm'), row('x', 'f')],
      balanced_train: balanced,
      balanced_val: [...balanced, row('x', 'f')],
      balanced_test: balanced,
    }),
    wordTokenizer,
  );
  assert.equal(withVal.splits.balanced_val!.length, 5);
  const badVal = taskDir({
    ambiguous: [row('y', 'm'), row('x', 'f')],
    balanced_train: balanced,
    balanced_val: balanced.slice(1),
    balanced_test: balanced,
  });
  assert.throws(
    () => loadClassificationTask(badVal, wordTokenizer),
    /balanced_val.jsonl: .* all four .* it has 3/,
  );
  const mixed = taskDir({
    ambiguous: [row('y', 'm'), row('x', 'f'), row('x', 'm')],
    balanced_train: balanced,
    balanced_test: balanced,
  });
  assert.throws(() => loadClassificationTask(mixed, wordTokenizer), /"x" comes with f, m/);
  const three = taskDir({
    ambiguous: [row('y', 'm'), row('x', 'f')],
    balanced_train: balanced.slice(1),
    balanced_test: balanced,
  });
  assert.throws(
    () => loadClassificationTask(three, wordTokenizer),
    /balanced_train.jsonl: .* all four .* it has 3/,
  );
  const bad = taskDir({
    ambiguous: [row('y', 'm'), { text: 'a', label: 'x' }],
    balanced_train: balanced,
    balanced_test: balanced,
  });
  assert.throws(
    () => loadClassificationTask(bad, wordTokenizer),
    /ambiguous.jsonl:2: not a classification example \(gender/,
  );
  assert.throws(
    () => loadClassificationTask('/nonexistent', wordTokenizer),
    /nonexistent\/ambiguous.jsonl: no such file/,
  );
});

test('readFeatureList: ids as an array or {"features"}, and what it refuses', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sfc-features-'));
  const write = (name: string, value: unknown) => {
    const file = path.join(dir, name);
    fs.writeFileSync(file, JSON.stringify(value));
    return file;
  };
  assert.deepEqual(readFeatureList(write('a.json', ['resid_1/17', 'embed/3', 'resid_1/17'])), [
    { site: 'resid_1', feature: 17 },
    { site: 'embed', feature: 3 },
  ]);
  assert.deepEqual(readFeatureList(write('b.json', { features: ['mlp_0/2'] })), [
    { site: 'mlp_0', feature: 2 },
  ]);
  assert.throws(
    () => readFeatureList(write('c.json', ['resid_1/ε'])),
    /error node; SHIFT ablates features only/,
  );
  assert.throws(() => readFeatureList(write('d.json', ['resid_1/4@2'])), /write resid_1\/4/);
  assert.throws(
    () => readFeatureList(write('e.json', { nodes: [] })),
    /expected a JSON array of feature ids/,
  );
  assert.throws(
    () => readFeatureList(write('f.json', ['seventeen'])),
    /f.json: "seventeen" is not a node id/,
  );
});
