// Short biographies for SHIFT, the organism's analogue of Bias in Bios: each names its subject's
// occupation once (the label: professor or nurse) and shows the subject's gender several times
// (he/she, his/her, man/woman, ...: the spurious cue). Every text is a TextSpec of the grammar the
// organism was trained on, so the words and constructions are ones the model knows.
//
// Splits: `ambiguous` pairs professor with male and nurse with female only (label and gender
// perfectly correlated, as in the paper's ambiguous training set); `balanced_train`,
// `balanced_val` and `balanced_test` hold the four combinations in equal numbers. `balanced_val`
// is a training-side draw (its own seed, like balanced_train's) on which SHIFT's settings are
// chosen, so that balanced_test, which the reported rows are scored on, chooses nothing.

import { Rng } from '../random.ts';
import type { AnnotatedText, Predicate, Sentence } from './grammar.ts';
import { realise } from './grammar-realiser.ts';
import {
  INTRANSITIVE_VERBS,
  OBJECT_NOUNS,
  PERSON_ADJECTIVES,
  PERSON_NOUNS,
  TRANSITIVE_VERBS,
} from './lexicon.ts';

export const BIO_LABELS = ['professor', 'nurse'] as const;
export type BioLabel = (typeof BIO_LABELS)[number];
export const BIO_GENDERS = ['male', 'female'] as const;
export type BioGender = (typeof BIO_GENDERS)[number];
/** In the ambiguous split each label comes with one gender only. */
export const AMBIGUOUS_GENDER: Readonly<Record<BioLabel, BioGender>> = {
  professor: 'male',
  nurse: 'female',
};

export interface Biography {
  text: string;
  label: BioLabel;
  gender: BioGender;
}

// Gendered person nouns in m/f pairs: a biography's subject may be introduced by one.
const GENDERED_PAIRS: readonly [string, string][] = [
  ['man', 'woman'],
  ['father', 'mother'],
  ['uncle', 'aunt'],
  ['boy', 'girl'],
];
// Other people and things a biography's subject acts on; no lexical gender, so that the subject's
// gender is the only gender in the text.
const NEUTRAL_PEOPLE = PERSON_NOUNS.filter((n) => n.gender === 'none').map((n) => n.sg);
const THINGS = OBJECT_NOUNS.map((n) => n.sg);

/** A predicate that says something of the subject without naming an occupation. */
function plainPredicate(rng: Rng): Predicate {
  const object = (people = false) => ({
    noun: people || rng.next() < 0.6 ? rng.pick(NEUTRAL_PEOPLE) : rng.pick(THINGS),
    number: rng.next() < 0.75 ? ('sg' as const) : ('pl' as const),
    det: rng.next() < 0.6 ? ('poss' as const) : ('the' as const),
  });
  const u = rng.next();
  if (u < 0.35) {
    const verb = rng.pick(TRANSITIVE_VERBS);
    return { kind: 'transitive', verb: verb.lemma, object: object(verb.objects === 'person') };
  }
  if (u < 0.55)
    return { kind: 'possess', object: { noun: rng.pick(THINGS), number: 'sg', det: 'poss' } };
  if (u < 0.7) return { kind: 'adjective', adj: rng.pick(PERSON_ADJECTIVES) };
  if (u < 0.85) return { kind: 'go', destination: { prep: 'with', object: object() } };
  return { kind: 'intransitive', verb: rng.pick(INTRANSITIVE_VERBS).lemma };
}

/** One biography's words, with the grammar's annotations. */
export function biography(rng: Rng, label: BioLabel, gender: BioGender): AnnotatedText {
  const g = gender === 'male' ? 'm' : 'f';
  const pair = rng.pick(GENDERED_PAIRS);
  const gendered = gender === 'male' ? pair[0] : pair[1];
  const nominal: Predicate = { kind: 'nominal', noun: label };
  const sentences: Sentence[] = [];
  const u = rng.next();
  if (u < 0.4)
    // "The woman is a nurse ."
    sentences.push({
      clause: { subject: { kind: 'np', np: { noun: gendered, number: 'sg' } }, predicate: nominal },
    });
  else if (u < 0.7)
    // "She is a nurse ."
    sentences.push({ clause: { subject: { kind: 'pronoun', person: g }, predicate: nominal } });
  else
    // "The nurse likes her friend ." (the gender shows in the possessive and later pronouns)
    sentences.push({
      clause: {
        subject: { kind: 'np', np: { noun: label, number: 'sg', gender: g } },
        predicate: possessivePredicate(rng),
      },
    });
  const more = 1 + Math.floor(rng.next() * 2);
  for (let i = 0; i < more; i++)
    sentences.push({ clause: { subject: { kind: 'pronoun' }, predicate: plainPredicate(rng) } });
  return realise(sentences);
}

/** A transitive predicate with his/her on its object, so a first sentence shows the gender. */
function possessivePredicate(rng: Rng): Predicate {
  return {
    kind: 'transitive',
    verb: rng.pick(TRANSITIVE_VERBS).lemma,
    object: { noun: rng.pick(NEUTRAL_PEOPLE), number: 'sg', det: 'poss' },
  };
}

export const BIO_SPLITS = ['ambiguous', 'balanced_train', 'balanced_val', 'balanced_test'] as const;
export type BioSplit = (typeof BIO_SPLITS)[number];
/** Seeds of the committed files, one per split. */
export const BIO_SEEDS: Readonly<Record<BioSplit, number>> = {
  ambiguous: 3000,
  balanced_train: 3001,
  balanced_test: 3002,
  balanced_val: 3003,
};

/**
 * `count` biographies of one split, the label/gender groups in equal numbers, shuffled. Texts in
 * `exclude` are drawn again (the grammar is small, so short texts repeat across splits).
 */
export function biographySplit(
  split: BioSplit,
  count: number,
  seed = BIO_SEEDS[split],
  exclude: ReadonlySet<string> = new Set(),
): Biography[] {
  const rng = new Rng(seed);
  const groups: [BioLabel, BioGender][] =
    split === 'ambiguous'
      ? BIO_LABELS.map((l) => [l, AMBIGUOUS_GENDER[l]])
      : BIO_LABELS.flatMap((l) => BIO_GENDERS.map((g): [BioLabel, BioGender] => [l, g]));
  if (count % groups.length !== 0)
    throw new Error(`biographies: ${split} needs a multiple of ${groups.length}, got ${count}`);
  const out: Biography[] = [];
  for (const [label, gender] of groups)
    for (let i = 0; i < count / groups.length; i++) {
      let text = biography(rng, label, gender).text;
      for (let tries = 1; exclude.has(text); tries++) {
        if (tries > 1000) throw new Error(`biographies: ${split} cannot avoid the excluded texts`);
        text = biography(rng, label, gender).text;
      }
      out.push({ text, label, gender });
    }
  return rng.shuffle(out);
}

/**
 * The committed files of the bios task ('ambiguous.jsonl' -> JSONL text). The validation split
 * holds no text of the test split, so that choosing on it cannot choose on test texts.
 */
export function biographyFiles(count = 400): Map<string, string> {
  const splits = new Map<BioSplit, Biography[]>();
  for (const split of BIO_SPLITS.filter((s) => s !== 'balanced_val'))
    splits.set(split, biographySplit(split, count));
  const test = new Set(splits.get('balanced_test')!.map((b) => b.text));
  splits.set('balanced_val', biographySplit('balanced_val', count, undefined, test));
  const files = new Map<string, string>();
  for (const split of BIO_SPLITS)
    files.set(
      `${split}.jsonl`,
      splits
        .get(split)!
        .map((b) => JSON.stringify(b))
        .join('\n') + '\n',
    );
  return files;
}
