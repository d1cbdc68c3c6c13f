import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { Rng } from '../../src/random.ts';
import { Tokenizer } from '../../src/model/tokenizer.ts';
import { tokens } from '../../src/organism/grammar.ts';
import { generateCorpus } from '../../src/organism/grammar-sampler.ts';
import { tokenForms } from '../../src/organism/lexicon.ts';
import {
  buildOrganismTokenizer,
  buildTokenizer,
  END_OF_TEXT,
} from '../../src/organism/tokenizer-builder.ts';

const built = buildOrganismTokenizer();
const tokenizer = Tokenizer.fromJson(built.json);

test('every word form of the grammar is one token (checked with @huggingface/tokenizers itself)', () => {
  const hf = new HfTokenizer(built.json, {});
  for (const form of tokenForms()) {
    const ids = hf.encode(form, { add_special_tokens: false }).ids;
    assert.equal(ids.length, 1, `"${form}" encodes to ${ids.length} tokens`);
    assert.equal(ids[0], built.ids.get(form));
    assert.equal(tokenizer.tokenId(form), ids[0]);
  }
  for (const form of [
    ' are',
    ' teachers',
    ' .',
    'The',
    ' The',
    ' that',
    ' she',
    ' their',
    ' nurse',
  ])
    assert.equal(tokenizer.encode(form).length, 1, form);
});

test('corpus texts encode word by word and decode back', () => {
  for (const t of generateCorpus(new Rng(3), 500)) {
    const ids = tokenizer.encode(t.text);
    assert.deepEqual(
      ids,
      tokens(t).map((s) => tokenizer.tokenId(s)),
      t.text,
    );
    assert.equal(tokenizer.decode(ids), t.text);
  }
});

test('any text round-trips (all 256 bytes are tokens)', () => {
  for (const text of [
    'Hello, World!\n\tzebra 42',
    'naïve café ☕ 😀',
    'The teacherss are',
    '  x  ',
    '\u0000\u00ff',
  ])
    assert.equal(tokenizer.decode(tokenizer.encode(text)), text);
});

test('layout: <|endoftext|> is id 0 and special, bytes 1..256, a small vocabulary', () => {
  const json = built.json as {
    added_tokens: { id: number; content: string; special: boolean }[];
    model: { type: string; vocab: Record<string, number>; merges: string[] };
    pre_tokenizer: { type: string; add_prefix_space: boolean };
    decoder: { type: string };
  };
  assert.deepEqual(
    json.added_tokens.map((t) => [t.id, t.content, t.special]),
    [[0, END_OF_TEXT, true]],
  );
  assert.equal(tokenizer.encode(`${END_OF_TEXT}The teacher`)[0], 0);
  assert.equal(json.model.type, 'BPE');
  assert.equal(json.pre_tokenizer.type, 'ByteLevel');
  assert.equal(json.pre_tokenizer.add_prefix_space, false);
  assert.equal(json.decoder.type, 'ByteLevel');
  const ids = Object.values(json.model.vocab).sort((a, b) => a - b);
  assert.deepEqual(
    ids,
    Array.from({ length: ids.length }, (_, i) => i),
  ); // dense
  assert.equal(tokenizer.vocabSize, built.vocabSize);
  assert.ok(built.vocabSize > 300 && built.vocabSize <= 1000, `vocab ${built.vocabSize}`);
  assert.equal(tokenizer.tokenId('A'), 1 + 'A'.charCodeAt(0));
  assert.equal(tokenizer.tokenId(' '), 1 + 32);
  // every merge joins two tokens into a token of the vocabulary
  for (const m of json.model.merges) {
    const [a, b] = m.split(' ');
    assert.ok(a in json.model.vocab && b in json.model.vocab && a + b in json.model.vocab, m);
  }
});

test('words that share pieces in awkward orders still come out whole', () => {
  // "The" inside " The", "he" inside " the" and "she", a word that is a prefix of another
  const words = [
    'The',
    ' The',
    'He',
    ' he',
    ' the',
    ' she',
    ' shed',
    ' she',
    ' ..',
    ' .',
    'hehe',
    ' a',
    ' aa',
    ' aaa',
  ];
  const b = buildTokenizer(words);
  const t = Tokenizer.fromJson(b.json);
  for (const w of new Set(words)) assert.equal(t.encode(w).length, 1, w);
  assert.deepEqual(buildTokenizer([...words].reverse()).json, b.json); // depends on the set only
  assert.throws(() => buildTokenizer(['two words']), /not one pre-token/);
});
