import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../src/random.ts';
import {
  tokens,
  type AnnotatedText,
  type TextSpec,
  type Word,
} from '../../src/organism/grammar.ts';
import { realise } from '../../src/organism/grammar-realiser.ts';
import { generateCorpus } from '../../src/organism/grammar-sampler.ts';
import {
  AGREEING_AUX,
  ALL_NOUNS,
  INTRANSITIVE_VERBS,
  OBJECT_ADJECTIVES,
  PERSON_ADJECTIVES,
  TRANSITIVE_VERBS,
} from '../../src/organism/lexicon.ts';
import { wordLabels } from '../../src/organism/labels.ts';

/** token|pos|number|pending|nextVerbNumber|context|role, one string per word. */
function table(t: AnnotatedText): string[] {
  return t.words.map((w) =>
    [w.token, w.pos, w.number, w.pending, w.nextVerbNumber, w.context, w.role].join('|'),
  );
}

test('object relative clause: hand-checked annotation of every word', () => {
  const t = realise([
    {
      clause: {
        subject: {
          kind: 'np',
          np: {
            noun: 'teacher',
            number: 'sg',
            rc: {
              kind: 'object',
              subject: { noun: 'guard', number: 'pl' },
              gap: { kind: 'transitive', verb: 'like' },
            },
          },
        },
        predicate: { kind: 'adjective', adj: 'happy' },
      },
    },
  ]);
  assert.equal(t.text, 'The teacher that the guards like is happy .');
  assert.deepEqual(table(t), [
    'The|det|none|none|pl|main|subject',
    ' teacher|noun|sg|sg|pl|main|subject',
    ' that|comp|none|sg|pl|rc|none',
    ' the|det|none|sg|pl|rc|rc_subject',
    ' guards|noun|pl|pl|pl|rc|rc_subject',
    ' like|verb|pl|sg|sg|rc|none',
    ' is|aux|sg|none|none|main|none',
    ' happy|adj|none|none|none|main|none',
    ' .|punct|none|none|none|main|none',
  ]);
  const w = t.words;
  assert.equal(w[5].controller, 4); // like <- guards
  assert.equal(w[6].controller, 1); // is <- teacher
  assert.deepEqual(
    w.map((x) => x.agrees),
    [false, false, false, false, false, true, true, false, false],
  );
  assert.deepEqual(
    w.map((x) => x.rcType),
    ['none', 'none', 'object', 'object', 'object', 'object', 'none', 'none', 'none'],
  );
  assert.deepEqual(
    w.map((x) => x.depth),
    [0, 0, 1, 1, 1, 1, 0, 0, 0],
  );
  assert.equal(w[3].afterThat, true);
  assert.equal(w[0].sentenceStart, true);
  assert.equal(w.filter((x) => x.head).length, 2);
});

test('PP, progressive and an object: hand-checked annotation', () => {
  const t = realise([
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
        predicate: {
          kind: 'progressive',
          verb: 'watch',
          object: { noun: 'dog', number: 'sg', det: 'a', adj: 'old' },
        },
      },
    },
  ]);
  assert.equal(t.text, 'The teachers near the desk are watching an old dog .');
  assert.deepEqual(table(t), [
    'The|det|none|none|pl|main|subject',
    ' teachers|noun|pl|pl|pl|main|subject',
    ' near|prep|none|pl|pl|pp|none',
    ' the|det|none|pl|pl|pp|pp_object',
    ' desk|noun|sg|pl|pl|pp|pp_object',
    ' are|aux|pl|none|none|main|none',
    ' watching|verb|none|none|none|main|none',
    ' an|det|sg|none|none|main|object',
    ' old|adj|none|none|none|main|object',
    ' dog|noun|sg|none|none|main|object',
    ' .|punct|none|none|none|main|none',
  ]);
  assert.equal(t.words[6].verbForm, 'ing');
  assert.equal(t.words[7].lemma, 'a');
  assert.equal(t.words[9].animate, false);
  assert.equal(t.words[1].animate, true);
});

test('subject RC, coordinated subject and coordinated predicates: hand-checked', () => {
  const spec: TextSpec = [
    {
      clause: {
        subject: {
          kind: 'np',
          np: {
            noun: 'teacher',
            number: 'sg',
            rc: {
              kind: 'subject',
              predicate: {
                kind: 'transitive',
                verb: 'like',
                object: { noun: 'guard', number: 'pl' },
              },
            },
          },
        },
        predicate: { kind: 'doNot', verb: 'smile' },
      },
    },
    {
      clause: {
        subject: {
          kind: 'coord',
          left: { noun: 'man', number: 'sg' },
          right: { noun: 'girl', number: 'sg' },
        },
        predicate: {
          kind: 'coord',
          left: { kind: 'possess', object: { noun: 'car', number: 'sg', det: 'poss' } },
          right: { kind: 'go', destination: 'home' },
        },
      },
    },
  ];
  const t = realise(spec);
  assert.equal(
    t.text,
    'The teacher that likes the guards does not smile . The man and the girl have their car and go home .',
  );
  assert.deepEqual(table(t), [
    'The|det|none|none|sg|main|subject',
    ' teacher|noun|sg|sg|sg|main|subject',
    ' that|comp|none|sg|sg|rc|none',
    ' likes|verb|sg|sg|sg|rc|none',
    ' the|det|none|sg|sg|rc|rc_object',
    ' guards|noun|pl|sg|sg|rc|rc_object',
    ' does|aux|sg|none|none|main|none',
    ' not|neg|none|none|none|main|none',
    ' smile|verb|none|none|none|main|none',
    ' .|punct|none|none|none|main|none',
    ' The|det|none|none|pl|main|subject',
    ' man|noun|sg|sg|pl|main|subject',
    ' and|conj|none|pl|pl|main|subject',
    ' the|det|none|pl|pl|main|subject',
    ' girl|noun|sg|pl|pl|main|subject',
    ' have|verb|pl|none|pl|main|none',
    ' their|poss|none|none|pl|main|object',
    ' car|noun|sg|none|pl|main|object',
    ' and|conj|none|pl|pl|main|none',
    ' go|verb|pl|none|none|main|none',
    ' home|adv|none|none|none|main|none',
    ' .|punct|none|none|none|main|none',
  ]);
  const w = t.words;
  assert.equal(w[3].controller, 1); // likes <- teacher (through "that")
  assert.equal(w[6].controller, 1);
  assert.equal(w[8].verbForm, 'base');
  assert.equal(w[15].controller, 11); // have <- first conjunct
  assert.equal(w[19].controller, 11);
  assert.equal(w[16].antecedent, 11);
  assert.equal(w[10].sentence, 1);
  assert.equal(w[10].sentenceStart, true);
  assert.equal(w[10].indexInSentence, 0);
});

test('pronouns and possessives follow the subject they refer to', () => {
  const t = realise([
    {
      clause: {
        subject: { kind: 'np', np: { noun: 'nurse', number: 'sg', gender: 'f' } },
        predicate: {
          kind: 'transitive',
          verb: 'like',
          object: { noun: 'dog', number: 'sg', det: 'poss' },
        },
      },
      coordinated: {
        conj: 'but',
        clause: { subject: { kind: 'pronoun' }, predicate: { kind: 'adjective', adj: 'tired' } },
      },
    },
    { clause: { subject: { kind: 'pronoun' }, predicate: { kind: 'nominal', noun: 'surgeon' } } },
    {
      clause: {
        subject: { kind: 'np', np: { noun: 'uncle', number: 'pl' } },
        predicate: { kind: 'intransitive', verb: 'laugh' },
      },
    },
    { clause: { subject: { kind: 'pronoun' }, predicate: { kind: 'nominal', noun: 'pilot' } } },
  ]);
  assert.equal(
    t.text,
    'The nurse likes her dog but she is tired . She is a surgeon . The uncles laugh . They are pilots .',
  );
  const byToken = (tok: string, nth = 0) => t.words.filter((w) => w.token === tok)[nth];
  assert.equal(byToken(' her').antecedent, 1);
  assert.equal(byToken(' her').gender, 'f');
  assert.equal(byToken(' she').antecedent, 1);
  assert.equal(byToken(' she').number, 'sg');
  assert.equal(byToken(' she').pending, 'sg');
  assert.equal(byToken(' She').antecedent, byToken(' she').index);
  assert.equal(byToken(' They').number, 'pl');
  assert.equal(byToken(' They').antecedent, byToken(' uncles').index);
  assert.equal(byToken(' nurse').referentGender, 'f');
  assert.equal(byToken(' nurse').gender, 'none');
  assert.equal(byToken(' uncles').gender, 'm');
  assert.equal(byToken(' pilots').role, 'predicate');
  assert.equal(byToken(' pilots').number, 'pl');
  // a text may start with a pronoun that refers to nothing before it
  const first = realise([
    {
      clause: {
        subject: { kind: 'pronoun', person: 'm' },
        predicate: { kind: 'adjective', adj: 'busy' },
      },
    },
  ]);
  assert.equal(first.text, 'He is busy .');
  assert.equal(first.words[0].antecedent, -1);
  // and a gender must be known before a pronoun can be chosen
  assert.throws(
    () =>
      realise([
        {
          clause: {
            subject: { kind: 'np', np: { noun: 'nurse', number: 'sg' } },
            predicate: { kind: 'intransitive', verb: 'sing' },
          },
        },
        {
          clause: {
            subject: { kind: 'pronoun' },
            predicate: { kind: 'intransitive', verb: 'sing' },
          },
        },
      ]),
    /needs its gender/,
  );
});

test('within an object RC the clause subject decides: are/is, have/has, do/does, go/goes', () => {
  const gaps = [
    [{ kind: 'progressive', verb: 'watch' }, ' are watching', ' is watching'],
    [{ kind: 'perfect', verb: 'see' }, ' have seen', ' has seen'],
    [{ kind: 'doNot', verb: 'like' }, ' do not like', ' does not like'],
    [{ kind: 'goPrep', prep: 'to' }, ' go to', ' goes to'],
  ] as const;
  for (const [gap, plural, singular] of gaps)
    for (const number of ['sg', 'pl'] as const) {
      const t = realise([
        {
          clause: {
            subject: {
              kind: 'np',
              np: {
                noun: 'teacher',
                number: 'sg',
                rc: { kind: 'object', subject: { noun: 'guard', number }, gap },
              },
            },
            predicate: { kind: 'adjective', adj: 'happy' },
          },
        },
      ]);
      const guards = number === 'pl' ? 'guards' : 'guard';
      const verbGroup = number === 'pl' ? plural : singular;
      assert.equal(t.text, `The teacher that the ${guards}${verbGroup} is happy .`);
    }
});

// ---------------------------------------------------------------------------------------------
// Properties of the random corpus, checked against the lexicon and the surface text

const SG_VERBS = new Set(
  [...AGREEING_AUX, ...TRANSITIVE_VERBS, ...INTRANSITIVE_VERBS].map((v) => v.sg),
);
const PL_VERBS = new Set(
  [...AGREEING_AUX, ...TRANSITIVE_VERBS, ...INTRANSITIVE_VERBS].map((v) => v.pl),
);
const SG_NOUNS = new Set(ALL_NOUNS.map((n) => n.sg));
const PL_NOUNS = new Set(ALL_NOUNS.map((n) => n.pl));
const corpus = generateCorpus(new Rng(12345), 3000);

/** A surface word's number from the lexicon alone. */
function surfaceNumber(word: string): 'sg' | 'pl' | undefined {
  const w = word.toLowerCase();
  if (SG_NOUNS.has(w) || w === 'he' || w === 'she') return 'sg';
  if (PL_NOUNS.has(w) || w === 'they') return 'pl';
  return undefined;
}

test('every agreeing verb has the number of its subject (read from the surface words)', () => {
  let checked = 0;
  for (const t of corpus)
    for (const w of t.words) {
      if (!w.agrees) continue;
      const subject = t.words[w.controller];
      const coordinated =
        t.words[w.controller + 1]?.text === 'and' && t.words[w.controller + 1].role === 'subject';
      const expected = coordinated ? 'pl' : surfaceNumber(subject.text);
      assert.ok(
        expected,
        `${t.text}: controller "${subject.text}" of "${w.text}" is not a noun or pronoun`,
      );
      assert.ok(
        (expected === 'sg' ? SG_VERBS : PL_VERBS).has(w.text),
        `${t.text}: "${w.text}" does not agree with "${subject.text}"`,
      );
      assert.equal(w.number, expected);
      checked++;
    }
  assert.ok(checked > 10000);
});

/** Word-level regexes over a sentence's lower-cased text, independent of the annotations. */
function templateMatches(text: string): { template: string; noun: string; verb: string }[] {
  const alt = (words: Iterable<string>) => `(?:${[...words].join('|')})`;
  const noun = `(${alt([...SG_NOUNS, ...PL_NOUNS])})`;
  const otherNoun = alt([...SG_NOUNS, ...PL_NOUNS]);
  const verbForm = `(${alt([...SG_VERBS, ...PL_VERBS])})`;
  const transitiveForm = alt(TRANSITIVE_VERBS.flatMap((v) => [v.sg, v.pl]));
  const det = '(?:the|a|an|his|her|their)';
  const adj = `(?: ${alt([...PERSON_ADJECTIVES, ...OBJECT_ADJECTIVES])})?`;
  const patterns: [string, RegExp][] = [
    // simple: a sentence-initial subject directly followed by its verb
    ['simple', new RegExp(`(?:^| \\.) the${adj} ${noun} ${verbForm}\\b`, 'g')],
    // nounpp: noun, PP, then a verb, which can only be the noun's own (PPs on objects end the clause)
    [
      'nounpp',
      new RegExp(` ${noun} (?:near|behind|beside) ${det}${adj} ${otherNoun} ${verbForm}\\b`, 'g'),
    ],
    // rc: noun, object RC with a transitive verb, then the main verb
    [
      'rc',
      new RegExp(` ${noun} that ${det}${adj} ${otherNoun} ${transitiveForm} ${verbForm}\\b`, 'g'),
    ],
    // within_rc: the RC subject and its verb
    ['within_rc', new RegExp(` that ${det}${adj} ${noun} ${verbForm}\\b`, 'g')],
  ];
  const lower = ` ${text.toLowerCase()}`;
  const out: { template: string; noun: string; verb: string }[] = [];
  for (const [template, re] of patterns)
    for (const m of lower.matchAll(re)) out.push({ template, noun: m[1], verb: m[2] });
  return out;
}

test('the four templates, found in the corpus by surface patterns, agree', () => {
  const counts: Record<string, number> = { simple: 0, nounpp: 0, rc: 0, within_rc: 0 };
  for (const t of corpus)
    for (const m of templateMatches(t.text)) {
      const n = surfaceNumber(m.noun);
      assert.ok(
        (n === 'sg' ? SG_VERBS : PL_VERBS).has(m.verb),
        `${m.template}: "${m.noun} ... ${m.verb}" disagrees in: ${t.text}`,
      );
      counts[m.template]++;
    }
  for (const [template, n] of Object.entries(counts))
    assert.ok(n > 100, `${template}: only ${n} matches`);
});

test('pending: the word before each agreeing verb holds that verb\'s number; nothing is pending at " ."', () => {
  for (const t of corpus) {
    t.words.forEach((w: Word, i) => {
      if (w.agrees) {
        assert.equal(t.words[i - 1].pending, w.number, t.text);
        assert.equal(t.words[i - 1].nextVerbNumber, w.number, t.text);
      }
      if (w.pos === 'punct') assert.equal(w.pending, 'none', t.text);
    });
  }
});

test('texts: one line, " ." ends every sentence, lower case but sentence-initial words', () => {
  for (const t of corpus) {
    assert.equal(t.text, tokens(t).join(''));
    assert.ok(!t.text.includes('\n'));
    assert.ok(t.text.endsWith(' .'));
    assert.ok(!t.text.startsWith(' '));
    for (const w of t.words) {
      if (w.sentenceStart) assert.match(w.text, /^(The|He|She|They)$/, t.text);
      else assert.match(w.text, /^([a-z]+|\.)$/, t.text);
    }
  }
});

test('the corpus covers the constructions', () => {
  const words = corpus.flatMap((t) => t.words);
  const has = (f: (w: Word) => boolean) => words.some(f);
  assert.ok(has((w) => w.rcType === 'object'));
  assert.ok(has((w) => w.rcType === 'subject'));
  assert.ok(has((w) => w.context === 'pp' && w.role === 'pp_object'));
  assert.ok(has((w) => w.lemma === 'and' && w.role === 'subject'));
  assert.ok(has((w) => w.pos === 'pron' && w.sentenceStart));
  assert.ok(has((w) => w.pos === 'poss'));
  assert.ok(has((w) => w.pos === 'adv'));
  assert.ok(has((w) => w.sentence >= 2));
  for (const lemma of ['be', 'have', 'do', 'go'])
    for (const rcType of ['object', 'subject', 'none'] as const)
      assert.ok(
        has((w) => w.agrees && w.lemma === lemma && w.rcType === rcType),
        `${lemma} in ${rcType} RC`,
      );
});

test('the same seed gives the same corpus; another seed another', () => {
  const a = generateCorpus(new Rng(99), 200).map((t) => t.text);
  const b = generateCorpus(new Rng(99), 200).map((t) => t.text);
  const c = generateCorpus(new Rng(100), 200).map((t) => t.text);
  assert.deepEqual(a, b);
  assert.notDeepEqual(a, c);
});

test('labels of "The teachers that the guard likes smile ." word by word', () => {
  const t = realise([
    {
      clause: {
        subject: {
          kind: 'np',
          np: {
            noun: 'teacher',
            number: 'pl',
            rc: {
              kind: 'object',
              subject: { noun: 'guard', number: 'sg' },
              gap: { kind: 'transitive', verb: 'like' },
            },
          },
        },
        predicate: { kind: 'intransitive', verb: 'smile' },
      },
    },
  ]);
  const structural = (w: Word) =>
    wordLabels(w).filter((l) => !l.startsWith('pos_') && l !== 'first_sentence');
  assert.deepEqual(t.words.map(structural), [
    ['pending_none', 'next_verb_sg', 'main_clause', 'sentence_start'],
    ['pending_pl', 'next_verb_sg', 'subject_pl', 'noun_pl', 'animate_noun', 'main_clause'],
    ['pending_pl', 'next_verb_sg', 'in_rc', 'in_object_rc'],
    ['pending_pl', 'next_verb_sg', 'in_rc', 'in_object_rc', 'after_that'],
    [
      'pending_sg',
      'next_verb_sg',
      'rc_subject_sg',
      'noun_sg',
      'animate_noun',
      'in_rc',
      'in_object_rc',
    ],
    ['pending_pl', 'next_verb_pl', 'agreeing_verb_sg', 'in_rc', 'in_object_rc'],
    ['pending_none', 'agreeing_verb_pl', 'main_clause'],
    ['pending_none', 'main_clause'],
  ]);
  assert.deepEqual(
    wordLabels(t.words[2]).filter((l) => l.startsWith('pos_')),
    ['pos_comp'],
  );
});

test('genderShown: the gender the text showed last, reset by they and their', () => {
  const t = realise([
    {
      clause: {
        subject: { kind: 'np', np: { noun: 'woman', number: 'sg' } },
        predicate: { kind: 'intransitive', verb: 'smile' },
      },
    },
    {
      clause: {
        subject: { kind: 'np', np: { noun: 'teacher', number: 'pl' } },
        predicate: {
          kind: 'transitive',
          verb: 'like',
          object: { noun: 'dog', number: 'sg', det: 'poss' },
        },
      },
    },
    {
      clause: {
        subject: { kind: 'np', np: { noun: 'man', number: 'sg' } },
        predicate: { kind: 'intransitive', verb: 'laugh' },
      },
    },
  ]);
  assert.equal(t.text, 'The woman smiles . The teachers like their dog . The man laughs .');
  assert.deepEqual(
    t.words.map((w) => `${w.text}:${w.genderShown}`),
    [
      'The:none',
      'woman:f',
      'smiles:f',
      '.:f',
      'The:f',
      'teachers:f',
      'like:f',
      'their:none',
      'dog:none',
      '.:none',
      'The:none',
      'man:m',
      'laughs:m',
      '.:m',
    ],
  );
});
