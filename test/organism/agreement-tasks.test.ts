import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Rng } from '../../src/random.ts';
import { Tokenizer } from '../../src/model/tokenizer.ts';
import { makePairs, organismTaskFiles, TEMPLATES } from '../../src/organism/agreement-tasks.ts';
import { buildOrganismTokenizer } from '../../src/organism/tokenizer-builder.ts';
import { ALL_NOUNS, AGREEING_AUX } from '../../src/organism/lexicon.ts';

const tokenizer = Tokenizer.fromJson(buildOrganismTokenizer().json);
const SG = new Set(ALL_NOUNS.map((n) => n.sg));
const PL = new Set(ALL_NOUNS.map((n) => n.pl));
const VERB_PAIRS = new Map(AGREEING_AUX.map((v) => [` ${v.sg}`, ` ${v.pl}`]));
const LEMMA = new Map(
  AGREEING_AUX.flatMap((v) => [
    [` ${v.sg}`, v.lemma],
    [` ${v.pl}`, v.lemma],
  ]),
);

const SHAPES: Record<string, RegExp> = {
  simple: /^The [a-z]+$/,
  nounpp: /^The [a-z]+ (near|behind|beside) the [a-z]+$/,
  rc: /^The [a-z]+ that the [a-z]+ [a-z]+$/,
  within_rc: /^The [a-z]+ that the [a-z]+$/,
};

for (const template of TEMPLATES)
  test(`${template}: prefixes differ only in the deciding noun's number; answers agree with it`, () => {
    const pairs = makePairs(template, new Rng(7), 192);
    assert.equal(pairs.length, 192);
    for (const p of pairs) {
      assert.match(p.clean_prefix, SHAPES[template]);
      const clean = p.clean_prefix.split(' ');
      const patch = p.patch_prefix.split(' ');
      assert.equal(clean.length, patch.length);
      const differ = clean.flatMap((w, i) => (w === patch[i] ? [] : [i]));
      assert.equal(differ.length, 1, JSON.stringify(p));
      const at = differ[0];
      // simple, nounpp, rc: the main subject (word 1); within_rc: the RC subject (word 4)
      assert.equal(at, template === 'within_rc' ? 4 : 1);
      const cleanSg = SG.has(clean[at]);
      assert.ok(cleanSg ? PL.has(patch[at]) : SG.has(patch[at]) && PL.has(clean[at]));
      // the answers: an agreeing verb pair, in the form of the clean noun
      const sgVerb = VERB_PAIRS.has(p.clean_answer) ? p.clean_answer : p.patch_answer;
      assert.equal(
        VERB_PAIRS.get(sgVerb),
        sgVerb === p.clean_answer ? p.patch_answer : p.clean_answer,
      );
      assert.equal(p.clean_answer === sgVerb, cleanSg, JSON.stringify(p));
      // case: the numbers of the nouns, main subject first
      const nouns = clean.filter((w) => SG.has(w) || PL.has(w));
      assert.equal(p.case, nouns.map((w) => (SG.has(w) ? 'singular' : 'plural')).join('_'));
      // one token per word, and both prefixes equally long
      assert.equal(tokenizer.encode(p.clean_prefix).length, clean.length);
      assert.equal(tokenizer.encode(p.patch_prefix).length, clean.length);
      assert.equal(tokenizer.encode(p.clean_answer).length, 1);
      assert.equal(tokenizer.encode(p.patch_answer).length, 1);
    }
    // all four verb pairs and all cases occur, equally often
    const tally = (key: (p: (typeof pairs)[number]) => string) => {
      const counts = new Map<string, number>();
      for (const p of pairs) counts.set(key(p), (counts.get(key(p)) ?? 0) + 1);
      return [...counts.values()];
    };
    assert.deepEqual(
      tally((p) => p.case),
      template === 'simple' ? [96, 96] : [48, 48, 48, 48],
    );
    assert.deepEqual(
      tally((p) => LEMMA.get(p.clean_answer)!),
      [48, 48, 48, 48],
    );
    assert.equal(new Set(pairs.map((p) => p.clean_answer)).size, 8);
    assert.equal(new Set(pairs.map((p) => p.clean_prefix + p.clean_answer)).size, 192);
  });

test('pairs are deterministic per seed', () => {
  assert.deepEqual(makePairs('rc', new Rng(1), 50), makePairs('rc', new Rng(1), 50));
  assert.notDeepEqual(makePairs('rc', new Rng(1), 50), makePairs('rc', new Rng(2), 50));
});

test('the committed data/*.jsonl files are what the generator makes', () => {
  const dir = fileURLToPath(new URL('../../data/', import.meta.url));
  for (const [name, text] of organismTaskFiles()) {
    assert.equal(
      fs.readFileSync(dir + name, 'utf8'),
      text,
      `${name} is stale: run npx tsx scripts/make-organism-data.ts`,
    );
  }
});
