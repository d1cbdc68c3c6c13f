// Hostile tokenizer.json files are refused before @huggingface/tokenizers sees them: the library
// trusts the vocabulary and allocates a table up to its largest id (found by test/fuzz).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { Tokenizer } from '../../src/model/tokenizer.ts';

const organism = JSON.parse(fs.readFileSync('models/organism/tokenizer.json', 'utf8')) as {
  model: { vocab: Record<string, unknown> };
  added_tokens: { id: unknown; content: string }[];
};

test('tokenizer.json: ids far beyond the listed tokens, and non-integer ids, are refused', () => {
  const refuses = (edit: (j: typeof organism) => void, pattern: RegExp) => {
    const j = structuredClone(organism);
    edit(j);
    assert.throws(() => Tokenizer.fromJson(j), pattern);
  };
  // One entry asking for a 2^31-slot table (took 12 s per 10^8 before the check).
  refuses(
    (j) => Object.assign(j.model.vocab, { constructor: 2 ** 31 }),
    /tokenizer JSON: token "constructor" has id 2147483648, far beyond the \d+ tokens the file lists/,
  );
  refuses(
    (j) => (j.added_tokens[0].id = 10 ** 9),
    /has id 1000000000, far beyond the \d+ tokens the file lists/,
  );
  refuses(
    (j) => (j.model.vocab['Ġdanc'] = null),
    /not a tokenizer\.json \(model\.vocab: expected \{"token": id\} with non-negative integer ids/,
  );
  refuses((j) => (j.model.vocab['Ġdanc'] = -3), /model\.vocab\.Ġdanc: Too small/);
  refuses((j) => (j.added_tokens[0].id = 'x'), /not a tokenizer\.json \(added_tokens\.0\.id: /);
  // The shipped file itself is fine.
  assert.ok(Tokenizer.fromJson(structuredClone(organism)).vocabSize > 800);
});
