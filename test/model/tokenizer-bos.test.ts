// Whether a prompt starts with BOS: as the model's own tokenizer does (tokenizer.json's
// post_processor, overridden by tokenizer_config.json's add_bos_token as transformers does), or as
// asked. The truth for "as the tokenizer does" is @huggingface/tokenizers' own encoding with
// special tokens, which runs the post_processor.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { Tokenizer } from '../../src/model/tokenizer.ts';

const fixtures = fileURLToPath(new URL('../fixtures/tokenizers/', import.meta.url));
const read = (name: string) =>
  JSON.parse(fs.readFileSync(path.join(fixtures, name), 'utf8')) as Record<string, unknown>;
const withBos = read('chars-bos.tokenizer.json');
const noBos = read('chars-no-bos.tokenizer.json');
const text = 'the cat';
const bare = [22, 10, 7, 29, 5, 3, 22];

test('the fixtures: the post_processor adds <bos> with special tokens, and only then', () => {
  const hf = new HfTokenizer(withBos, {});
  assert.deepEqual(hf.encode(text, { add_special_tokens: false }).ids, bare);
  assert.deepEqual(hf.encode(text, { add_special_tokens: true }).ids, [1, ...bare]);
  const plain = new HfTokenizer(noBos, {});
  assert.deepEqual(plain.encode(text, { add_special_tokens: true }).ids, bare);
});

test("auto follows the tokenizer's post_processor, as its own encoding with special tokens", () => {
  for (const json of [withBos, noBos]) {
    const tokenizer = Tokenizer.fromJson(json);
    const truth = new HfTokenizer(json, {}).encode(text, { add_special_tokens: true }).ids;
    const prompt = tokenizer.encodePrompt(text);
    assert.deepEqual(prompt.ids, truth);
    assert.equal(prompt.bos, truth[0] === 1);
    assert.equal(tokenizer.addsBos, truth[0] === 1);
  }
  const tokenizer = Tokenizer.fromJson(withBos);
  assert.deepEqual(tokenizer.bos, { token: '<bos>', id: 1 });
  assert.match(tokenizer.bosReason, /post_processor adds <bos>/);
});

test('encode never adds BOS: task answers and corpora are scored as bare text', () => {
  const tokenizer = Tokenizer.fromJson(withBos);
  assert.equal(tokenizer.addsBos, true);
  assert.deepEqual(tokenizer.encode(text), bare);
  assert.deepEqual(tokenizer.encode(' cat'), [29, 5, 3, 22]);
});

test('always and never override the tokenizer', () => {
  const tokenizer = Tokenizer.fromJson(withBos);
  assert.deepEqual(tokenizer.encodePrompt(text, 'never'), { ids: bare, bos: false });
  assert.deepEqual(tokenizer.encodePrompt(text, 'always'), { ids: [1, ...bare], bos: true });
  // no BOS token named anywhere: always cannot be honoured
  assert.throws(
    () => Tokenizer.fromJson(noBos).encodePrompt(text, 'always'),
    /a beginning-of-sequence token was asked for, but the tokenizer names none/,
  );
  assert.deepEqual(Tokenizer.fromJson(noBos).encodePrompt(text, 'never').ids, bare);
});

test('a prompt that already starts with the BOS token gets no second one', () => {
  const tokenizer = Tokenizer.fromJson(withBos);
  assert.deepEqual(tokenizer.encodePrompt(`<bos>${text}`).ids, [1, ...bare]);
  assert.deepEqual(tokenizer.encodePrompt(`<bos>${text}`, 'never').ids, [1, ...bare]);
});

test("tokenizer_config.json's add_bos_token decides over the post_processor; bos_token names it", () => {
  const off = Tokenizer.fromJson(withBos, { add_bos_token: false });
  assert.equal(off.addsBos, false);
  assert.match(off.bosReason, /add_bos_token false/);
  assert.deepEqual(off.encodePrompt(text).ids, bare);
  assert.deepEqual(off.encodePrompt(text, 'always').ids, [1, ...bare]);

  // GPT-2 style: a bos_token, added only when asked for
  const named = Tokenizer.fromJson(noBos, { bos_token: '<bos>' });
  assert.equal(named.addsBos, false);
  assert.deepEqual(named.bos, { token: '<bos>', id: 1 });
  assert.deepEqual(named.encodePrompt(text, 'always').ids, [1, ...bare]);

  // Llama 2 / Gemma style, with the token written as an AddedToken object
  const on = Tokenizer.fromJson(noBos, {
    add_bos_token: true,
    bos_token: { __type: 'AddedToken', content: '<bos>' },
  });
  assert.equal(on.addsBos, true);
  assert.deepEqual(on.encodePrompt(text).ids, [1, ...bare]);
});

test('a template inside a Sequence post_processor (Llama 3: ByteLevel, then the template)', () => {
  const json = {
    ...withBos,
    post_processor: {
      type: 'Sequence',
      processors: [
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false },
        withBos.post_processor,
      ],
    },
  };
  const tokenizer = Tokenizer.fromJson(json);
  assert.equal(tokenizer.addsBos, true);
  assert.deepEqual(tokenizer.encodePrompt(text).ids, [1, ...bare]);
});

test('bad tokenizer_config.json: errors name the file and what is wrong', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sfc-bos-'));
  try {
    const tokenizerFile = path.join(dir, 'tokenizer.json');
    const configFile = path.join(dir, 'tokenizer_config.json');
    fs.writeFileSync(tokenizerFile, JSON.stringify(noBos));
    fs.writeFileSync(configFile, JSON.stringify({ add_bos_token: true }));
    assert.throws(
      () => Tokenizer.fromFile(tokenizerFile, { configFile }),
      /tokenizer_config\.json: add_bos_token is true but no bos_token is named/,
    );
    fs.writeFileSync(configFile, JSON.stringify({ bos_token: '<s>' }));
    assert.throws(
      () => Tokenizer.fromFile(tokenizerFile, { configFile }),
      /tokenizer_config\.json: bos_token "<s>" is not in .*tokenizer\.json's vocabulary/,
    );
    fs.writeFileSync(configFile, JSON.stringify({ add_bos_token: 'yes' }));
    assert.throws(
      () => Tokenizer.fromFile(tokenizerFile, { configFile }),
      /tokenizer_config\.json: not a tokenizer_config\.json \(.*add_bos_token/,
    );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
