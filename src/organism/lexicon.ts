// The words of the model organism's grammar. Every word here is one token of the organism's
// tokenizer (in its leading-space form, and capitalised words also without the space), so that
// word-level ground truth is token-level ground truth.

export type GramNumber = 'sg' | 'pl' | 'none';
export type Gender = 'm' | 'f' | 'none';

export interface NounEntry {
  sg: string;
  pl: string;
  /** Lexical gender (man, aunt); 'none' for nouns that leave it open (teacher, nurse). */
  gender: Gender;
  kind: 'person' | 'occupation' | 'object';
}

function regular(sg: string, gender: Gender, kind: NounEntry['kind']): NounEntry {
  return { sg, pl: `${sg}s`, gender, kind };
}

/** The person nouns of the paper's agreement templates. */
export const PERSON_NOUNS: readonly NounEntry[] = [
  regular('athlete', 'none', 'person'),
  regular('architect', 'none', 'person'),
  regular('assistant', 'none', 'person'),
  regular('aunt', 'f', 'person'),
  regular('boy', 'm', 'person'),
  regular('carpenter', 'none', 'person'),
  regular('chef', 'none', 'person'),
  regular('dancer', 'none', 'person'),
  regular('doctor', 'none', 'person'),
  regular('driver', 'none', 'person'),
  regular('executive', 'none', 'person'),
  regular('farmer', 'none', 'person'),
  regular('father', 'm', 'person'),
  regular('friend', 'none', 'person'),
  regular('girl', 'f', 'person'),
  regular('guard', 'none', 'person'),
  regular('guy', 'm', 'person'),
  regular('kid', 'none', 'person'),
  regular('lawyer', 'none', 'person'),
  { sg: 'man', pl: 'men', gender: 'm', kind: 'person' },
  regular('minister', 'none', 'person'),
  regular('mother', 'f', 'person'),
  regular('parent', 'none', 'person'),
  regular('poet', 'none', 'person'),
  regular('singer', 'none', 'person'),
  regular('skater', 'none', 'person'),
  regular('teacher', 'none', 'person'),
  regular('uncle', 'm', 'person'),
  regular('victim', 'none', 'person'),
  { sg: 'woman', pl: 'women', gender: 'f', kind: 'person' },
];

/** Occupations, for a later biography / gendered-pronoun task. */
export const OCCUPATION_NOUNS: readonly NounEntry[] = [
  regular('nurse', 'none', 'occupation'),
  regular('engineer', 'none', 'occupation'),
  regular('professor', 'none', 'occupation'),
  regular('surgeon', 'none', 'occupation'),
  regular('pilot', 'none', 'occupation'),
  regular('painter', 'none', 'occupation'),
  regular('dentist', 'none', 'occupation'),
  regular('accountant', 'none', 'occupation'),
];

export const OBJECT_NOUNS: readonly NounEntry[] = [
  regular('bike', 'none', 'object'),
  regular('car', 'none', 'object'),
  regular('cat', 'none', 'object'),
  regular('chair', 'none', 'object'),
  regular('desk', 'none', 'object'),
  regular('dog', 'none', 'object'),
  regular('table', 'none', 'object'),
  regular('tree', 'none', 'object'),
  regular('truck', 'none', 'object'),
  regular('window', 'none', 'object'),
];

/** Every noun that can head a person NP (subjects are always people). */
export const ANIMATE_NOUNS: readonly NounEntry[] = [...PERSON_NOUNS, ...OCCUPATION_NOUNS];
export const ALL_NOUNS: readonly NounEntry[] = [...ANIMATE_NOUNS, ...OBJECT_NOUNS];

const NOUN_BY_LEMMA = new Map(ALL_NOUNS.map((n) => [n.sg, n]));

/** A noun by its singular form; throws for words outside the lexicon. */
export function noun(lemma: string): NounEntry {
  const entry = NOUN_BY_LEMMA.get(lemma);
  if (!entry) throw new Error(`grammar: "${lemma}" is not a noun of the lexicon`);
  return entry;
}

/** A verb's forms. `sg`/`pl` are the agreeing present forms; `pl` doubles as the base form. */
export interface VerbEntry {
  lemma: string;
  sg: string;
  pl: string;
  ing?: string;
  participle?: string;
  /** What it takes as object: people only, people or things. Intransitive verbs have none. */
  objects: 'person' | 'any' | 'none';
}

/** The four agreeing verbs of the templates. */
export const BE: VerbEntry = { lemma: 'be', sg: 'is', pl: 'are', objects: 'none' };
export const HAVE: VerbEntry = { lemma: 'have', sg: 'has', pl: 'have', objects: 'any' };
export const DO: VerbEntry = { lemma: 'do', sg: 'does', pl: 'do', objects: 'none' };
export const GO: VerbEntry = { lemma: 'go', sg: 'goes', pl: 'go', objects: 'none' };
export const AGREEING_AUX: readonly VerbEntry[] = [BE, HAVE, DO, GO];

export const TRANSITIVE_VERBS: readonly VerbEntry[] = [
  { lemma: 'like', sg: 'likes', pl: 'like', participle: 'liked', objects: 'any' },
  { lemma: 'see', sg: 'sees', pl: 'see', participle: 'seen', objects: 'any' },
  { lemma: 'know', sg: 'knows', pl: 'know', participle: 'known', objects: 'person' },
  {
    lemma: 'help',
    sg: 'helps',
    pl: 'help',
    ing: 'helping',
    participle: 'helped',
    objects: 'person',
  },
  {
    lemma: 'watch',
    sg: 'watches',
    pl: 'watch',
    ing: 'watching',
    participle: 'watched',
    objects: 'any',
  },
  {
    lemma: 'follow',
    sg: 'follows',
    pl: 'follow',
    ing: 'following',
    participle: 'followed',
    objects: 'any',
  },
  {
    lemma: 'call',
    sg: 'calls',
    pl: 'call',
    ing: 'calling',
    participle: 'called',
    objects: 'person',
  },
  {
    lemma: 'visit',
    sg: 'visits',
    pl: 'visit',
    ing: 'visiting',
    participle: 'visited',
    objects: 'person',
  },
  { lemma: 'admire', sg: 'admires', pl: 'admire', participle: 'admired', objects: 'any' },
  { lemma: 'hate', sg: 'hates', pl: 'hate', participle: 'hated', objects: 'any' },
  { lemma: 'love', sg: 'loves', pl: 'love', participle: 'loved', objects: 'any' },
];

export const INTRANSITIVE_VERBS: readonly VerbEntry[] = [
  {
    lemma: 'smile',
    sg: 'smiles',
    pl: 'smile',
    ing: 'smiling',
    participle: 'smiled',
    objects: 'none',
  },
  {
    lemma: 'laugh',
    sg: 'laughs',
    pl: 'laugh',
    ing: 'laughing',
    participle: 'laughed',
    objects: 'none',
  },
  {
    lemma: 'sleep',
    sg: 'sleeps',
    pl: 'sleep',
    ing: 'sleeping',
    participle: 'slept',
    objects: 'none',
  },
  { lemma: 'wait', sg: 'waits', pl: 'wait', ing: 'waiting', participle: 'waited', objects: 'none' },
  { lemma: 'work', sg: 'works', pl: 'work', ing: 'working', participle: 'worked', objects: 'none' },
  { lemma: 'sing', sg: 'sings', pl: 'sing', ing: 'singing', participle: 'sung', objects: 'none' },
  {
    lemma: 'dance',
    sg: 'dances',
    pl: 'dance',
    ing: 'dancing',
    participle: 'danced',
    objects: 'none',
  },
];

const VERB_BY_LEMMA = new Map(
  [...AGREEING_AUX, ...TRANSITIVE_VERBS, ...INTRANSITIVE_VERBS].map((v) => [v.lemma, v]),
);

/** A verb by its lemma; throws for words outside the lexicon. */
export function verb(lemma: string): VerbEntry {
  const entry = VERB_BY_LEMMA.get(lemma);
  if (!entry) throw new Error(`grammar: "${lemma}" is not a verb of the lexicon`);
  return entry;
}

/** Adjectives for people, for things, and for both. */
export const PERSON_ADJECTIVES: readonly string[] = [
  'happy',
  'tall',
  'young',
  'busy',
  'tired',
  'kind',
  'famous',
  'angry',
  'old',
  'small',
];
export const OBJECT_ADJECTIVES: readonly string[] = ['old', 'new', 'red', 'big', 'small', 'broken'];

/** Prepositions of noun-modifying PPs (the nounpp template) and of copula PPs. */
export const PP_PREPOSITIONS: readonly string[] = ['near', 'behind', 'beside'];
/** Before a finite lexical verb: "the teacher often likes ...". */
export const PREVERBAL_ADVERBS: readonly string[] = ['often', 'always', 'never', 'also'];
/** At the end of a clause: "... goes home today". */
export const FINAL_ADVERBS: readonly string[] = ['today', 'again'];
/** Where one goes without a PP: "goes home". */
export const DESTINATION_ADVERBS: readonly string[] = ['home', 'away', 'outside'];

export const SUBJECT_PRONOUNS = { m: 'he', f: 'she', pl: 'they' } as const;
export const POSSESSIVES = { m: 'his', f: 'her', pl: 'their' } as const;

/** Words that start a sentence, and so also occur capitalised. */
export const SENTENCE_INITIAL: readonly string[] = ['the', 'he', 'she', 'they'];

/**
 * Every word the grammar can produce, lower-case (capitalisation of sentence-initial words is
 * separate), in a fixed order.
 */
export function lexiconWords(): string[] {
  const words = new Set<string>();
  const add = (...ws: (string | undefined)[]) => {
    for (const w of ws) if (w) words.add(w);
  };
  for (const n of ALL_NOUNS) add(n.sg, n.pl);
  for (const v of [...AGREEING_AUX, ...TRANSITIVE_VERBS, ...INTRANSITIVE_VERBS])
    add(v.sg, v.pl, v.ing, v.participle);
  add(...PERSON_ADJECTIVES, ...OBJECT_ADJECTIVES);
  add(...PP_PREPOSITIONS, 'to', 'with');
  add(...PREVERBAL_ADVERBS, ...FINAL_ADVERBS, ...DESTINATION_ADVERBS, 'very', 'not');
  add(...Object.values(SUBJECT_PRONOUNS), ...Object.values(POSSESSIVES));
  add('the', 'a', 'an', 'that', 'and', 'but', '.');
  return [...words];
}

export function capitalise(word: string): string {
  return word.charAt(0).toUpperCase() + word.slice(1);
}

/**
 * The pre-tokens (as the byte-level pre-tokenizer splits text) that must each be one token:
 * ' word' for every word, plus 'Word' and ' Word' for sentence-initial ones (the first word of a
 * text has no space before it) and '.' on its own.
 */
export function tokenForms(): string[] {
  const forms = lexiconWords().map((w) => ` ${w}`);
  for (const w of SENTENCE_INITIAL) forms.push(capitalise(w), ` ${capitalise(w)}`);
  forms.push('.');
  return forms;
}
