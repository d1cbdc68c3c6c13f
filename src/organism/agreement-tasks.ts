// Contrastive subject-verb agreement pairs from the organism's grammar, in the paper's JSONL
// format. Each pair is realised by the grammar itself: a sentence structure is built, the noun
// that decides agreement is flipped in number, and both prefixes are cut just before the verb
// that agrees with that noun. So prefixes differ in that one noun only, and the answers are what
// the grammar would produce next.

import { Rng } from '../random.ts';
import type { GapVerb, NounPhrase, Number2, Predicate, Role, Sentence } from './grammar.ts';
import { realise } from './grammar-realiser.ts';
import {
  ANIMATE_NOUNS,
  DESTINATION_ADVERBS,
  OBJECT_NOUNS,
  PERSON_ADJECTIVES,
  PP_PREPOSITIONS,
  TRANSITIVE_VERBS,
} from './lexicon.ts';

export const TEMPLATES = ['simple', 'nounpp', 'rc', 'within_rc'] as const;
export type Template = (typeof TEMPLATES)[number];

/** One line of a task file (the paper's field names). Answers carry their leading space. */
export interface ContrastivePair {
  clean_prefix: string;
  patch_prefix: string;
  clean_answer: string;
  patch_answer: string;
  case: string;
}

/** The agreeing verbs the answers are drawn from. */
const ANSWER_VERBS = ['be', 'have', 'do', 'go'] as const;
type AnswerVerb = (typeof ANSWER_VERBS)[number];

const TRANSITIVE_ING = TRANSITIVE_VERBS.filter((v) => v.ing);
const TRANSITIVE_PARTICIPLE = TRANSITIVE_VERBS.filter((v) => v.participle);

/** A main-clause predicate that starts with the given agreeing verb. */
function predicateStartingWith(v: AnswerVerb, rng: Rng): Predicate {
  switch (v) {
    case 'be':
      return { kind: 'adjective', adj: rng.pick(PERSON_ADJECTIVES) };
    case 'have':
      return {
        kind: 'possess',
        object: { noun: rng.pick(OBJECT_NOUNS).sg, number: 'sg', det: 'a' },
      };
    case 'do':
      return {
        kind: 'doNot',
        verb: rng.pick(TRANSITIVE_VERBS).lemma,
        object: { noun: rng.pick(OBJECT_NOUNS).sg, number: 'pl' },
      };
    case 'go':
      return { kind: 'go', destination: rng.pick(DESTINATION_ADVERBS) };
  }
}

/** An object relative clause's verb group that starts with the given agreeing verb. */
function gapStartingWith(v: AnswerVerb, rng: Rng): GapVerb {
  switch (v) {
    case 'be':
      return { kind: 'progressive', verb: rng.pick(TRANSITIVE_ING).lemma };
    case 'have':
      return { kind: 'perfect', verb: rng.pick(TRANSITIVE_PARTICIPLE).lemma };
    case 'do':
      return { kind: 'doNot', verb: rng.pick(TRANSITIVE_VERBS).lemma };
    case 'go':
      return { kind: 'goPrep', prep: rng.next() < 0.5 ? 'to' : 'with' };
  }
}

const flip = (n: Number2): Number2 => (n === 'sg' ? 'pl' : 'sg');
const caseName = (n: Number2) => (n === 'sg' ? 'singular' : 'plural');

/** A person noun phrase, with a noun other than `avoid`. */
function person(number: Number2, rng: Rng, avoid?: string): NounPhrase {
  const choices = ANIMATE_NOUNS.filter((n) => n.sg !== avoid);
  return { noun: rng.pick(choices).sg, number };
}

/**
 * One sentence of the template, and the noun phrase whose number decides the answer.
 * simple: "The teacher| is ..."; nounpp: "The teacher near the desks| is ...";
 * rc: "The teacher that the guards like| is ..."; within_rc: "The teacher that the guards| are watching ...".
 */
function templateSentence(
  template: Template,
  rng: Rng,
  target: Target,
): { sentence: Sentence; decider: NounPhrase; deciderRole: Role; numbers: Number2[] } {
  const v = target.verb;
  const subject = person(target.subject, rng);
  const other = target.other;
  const sentenceOf = (predicate: Predicate): Sentence => ({
    clause: { subject: { kind: 'np', np: subject }, predicate },
  });
  switch (template) {
    case 'simple':
      return {
        sentence: sentenceOf(predicateStartingWith(v, rng)),
        decider: subject,
        deciderRole: 'subject',
        numbers: [subject.number],
      };
    case 'nounpp': {
      const object =
        rng.next() < 0.5
          ? { noun: rng.pick(OBJECT_NOUNS).sg, number: other }
          : person(other, rng, subject.noun);
      subject.pp = { prep: rng.pick(PP_PREPOSITIONS), object };
      return {
        sentence: sentenceOf(predicateStartingWith(v, rng)),
        decider: subject,
        deciderRole: 'subject',
        numbers: [subject.number, other],
      };
    }
    case 'rc':
      subject.rc = {
        kind: 'object',
        subject: person(other, rng, subject.noun),
        gap: { kind: 'transitive', verb: rng.pick(TRANSITIVE_VERBS).lemma },
      };
      return {
        sentence: sentenceOf(predicateStartingWith(v, rng)),
        decider: subject,
        deciderRole: 'subject',
        numbers: [subject.number, other],
      };
    case 'within_rc': {
      const rcSubject = person(other, rng, subject.noun);
      subject.rc = { kind: 'object', subject: rcSubject, gap: gapStartingWith(v, rng) };
      return {
        sentence: sentenceOf(predicateStartingWith(rng.pick(ANSWER_VERBS), rng)),
        decider: rcSubject,
        deciderRole: 'rc_subject',
        numbers: [subject.number, other],
      };
    }
  }
}

/** Prefix before, and token of, the first verb that agrees with the head of the `role` noun phrase. */
function cut(sentence: Sentence, role: Role): { prefix: string; answer: string } {
  const words = realise([sentence]).words;
  const head = words.find((w) => w.head && w.role === role);
  const verbIndex = words.findIndex((w) => w.agrees && head && w.controller === head.index);
  if (!head || verbIndex < 0) throw new Error('agreement tasks: no verb agrees with the decider');
  return {
    prefix: words
      .slice(0, verbIndex)
      .map((w) => w.token)
      .join(''),
    answer: words[verbIndex].token,
  };
}

/** What a pair must be: the verb of its answers and the numbers of its nouns (the clean side). */
interface Target {
  verb: AnswerVerb;
  /** The main subject's number. */
  subject: Number2;
  /** The number of the PP object / RC subject (unused by 'simple'). */
  other: Number2;
}

function randomTarget(rng: Rng): Target {
  return {
    verb: rng.pick(ANSWER_VERBS),
    subject: rng.next() < 0.5 ? 'sg' : 'pl',
    other: rng.next() < 0.5 ? 'sg' : 'pl',
  };
}

/** One contrastive pair of the template (random verb and numbers unless `target` says). */
function makePair(
  template: Template,
  rng: Rng,
  target: Target = randomTarget(rng),
): ContrastivePair {
  const { sentence, decider, deciderRole, numbers } = templateSentence(template, rng, target);
  const clean = cut(sentence, deciderRole);
  decider.number = flip(decider.number);
  const patch = cut(sentence, deciderRole);
  return {
    clean_prefix: clean.prefix,
    patch_prefix: patch.prefix,
    clean_answer: clean.answer,
    patch_answer: patch.answer,
    case: numbers.map(caseName).join('_'),
  };
}

/**
 * `count` pairs in random order, with cases and answer verbs as balanced as `count` allows, and
 * distinct (by clean prefix and answer) where the template has that many; else some repeat.
 */
export function makePairs(template: Template, rng: Rng, count: number): ContrastivePair[] {
  const numbers: [Number2, Number2][] =
    template === 'simple'
      ? [
          ['sg', 'sg'],
          ['pl', 'sg'],
        ]
      : [
          ['sg', 'sg'],
          ['sg', 'pl'],
          ['pl', 'sg'],
          ['pl', 'pl'],
        ];
  const pairs: ContrastivePair[] = [];
  const seen = new Set<string>();
  for (let i = 0, attempts = 0; pairs.length < count; attempts++) {
    const [subject, other] = numbers[i % numbers.length];
    const verb = ANSWER_VERBS[Math.floor(i / numbers.length) % ANSWER_VERBS.length];
    const pair = makePair(template, rng, { verb, subject, other });
    const key = `${pair.clean_prefix}|${pair.clean_answer}`;
    if (seen.has(key) && attempts < 100 * count) continue;
    seen.add(key);
    pairs.push(pair);
    i++;
  }
  return rng.shuffle(pairs);
}

/** Seeds of the committed task files; train and test differ, and so does each template. */
const TASK_SEEDS = { train: 1000, test: 2000 } as const;

/** The committed task files' contents, by file name ('rc_test.jsonl' -> its JSONL text). */
export function organismTaskFiles(count = 300): Map<string, string> {
  const files = new Map<string, string>();
  for (const [split, seed] of Object.entries(TASK_SEEDS))
    TEMPLATES.forEach((template, t) => {
      const pairs = makePairs(template, new Rng(seed + t), count);
      files.set(
        `${template}_${split}.jsonl`,
        pairs.map((p) => JSON.stringify(p)).join('\n') + '\n',
      );
    });
  return files;
}
