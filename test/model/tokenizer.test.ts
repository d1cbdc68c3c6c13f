import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Tokenizer } from '../../src/model/tokenizer.ts';

const file = fileURLToPath(
  new URL('../../../shared/data/gpt-neox-20b-tokenizer.json', import.meta.url),
);
const tok = Tokenizer.fromFile(file);

// Ids from the Hugging Face GPT-NeoX-20B tokenizer (as used by Pythia).
test('encodes known GPT-NeoX ids without special tokens', () => {
  assert.deepEqual(
    tok.encode('The carpenters beside the truck'),
    [510, 1113, 21601, 398, 12200, 253, 9988],
  );
  assert.deepEqual(tok.encode(' are'), [403]);
  assert.deepEqual(tok.encode(' is'), [310]);
  assert.deepEqual(tok.encode('Hello world'), [12092, 1533]);
  assert.deepEqual(tok.encode(''), []);
});

test('decode round-trips, spaces and punctuation untouched', () => {
  for (const text of [
    'The carpenters beside the truck',
    "a , b . c 's don't ?",
    '  x\n\n y ✓ 日本語 émigré',
    '<|endoftext|>The end',
  ])
    assert.equal(tok.decode(tok.encode(text)), text);
  assert.equal(tok.decode([510, 1113, 21601, 398]), 'The carpenters');
});

test('tokenString shows tokens readably', () => {
  assert.equal(tok.tokenString(403), ' are');
  assert.equal(tok.tokenString(510), 'The');
  assert.equal(tok.tokenString(0), '<|endoftext|>');
  assert.equal(tok.tokenString(535), '\n\n');
  assert.equal(tok.tokenString(163), '\\xe7'); // first byte of a multi-byte character alone
  assert.equal(tok.tokenString(50300), '<id 50300>'); // padding row of Pythia's 50304-row embedding
  assert.throws(() => tok.tokenString(-1), /token id -1/);
});

test('tokenId looks up single tokens', () => {
  assert.equal(tok.tokenId(' are'), 403);
  assert.equal(tok.tokenId(' is'), 310);
  assert.equal(tok.tokenId('The'), 510);
  assert.equal(tok.tokenId('<|endoftext|>'), 0);
  assert.equal(tok.tokenId(' carpenters'), undefined); // two tokens
  assert.equal(tok.tokenId('Ġare'), undefined); // the byte-level spelling is not the text
  for (const id of [403, 510, 12200, 535]) assert.equal(tok.tokenId(tok.tokenString(id)), id);
});

test('vocabSize counts added tokens', () => {
  assert.equal(tok.vocabSize, 50277);
  assert.throws(
    () => tok.decode([50277]),
    /token id 50277 is not in the vocabulary \(ids 0\.\.50276\)/,
  );
});

test('fromJson builds the same tokenizer', () => {
  const t = Tokenizer.fromJson(JSON.parse(fs.readFileSync(file, 'utf8')));
  assert.deepEqual(t.encode('Hello world'), [12092, 1533]);
});

test('errors name the file', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sfc-tokenizer-'));
  try {
    const missing = path.join(dir, 'tokenizer.json');
    assert.throws(() => Tokenizer.fromFile(missing), new RegExp(`${missing}: no such file`));
    const broken = path.join(dir, 'broken.json');
    fs.writeFileSync(broken, '{"model": ');
    assert.throws(() => Tokenizer.fromFile(broken), new RegExp(`${broken}: not valid JSON`));
    const notTokenizer = path.join(dir, 'config.json');
    fs.writeFileSync(notTokenizer, '{"vocab_size": 3}');
    assert.throws(
      () => Tokenizer.fromFile(notTokenizer),
      new RegExp(`${notTokenizer}: not a tokenizer.json \\(no "model" section\\)`),
    );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
