// Named yes/no ground-truth labels of a word, for matching SAE features to what the grammar
// computes ("is a plural subject", "the next agreeing verb must be plural", "right after that").
// Each label is a predicate on the word's annotation (see grammar.ts's Word).

import type { Pos, Word } from './grammar.ts';

const POS: readonly Pos[] = [
  'det',
  'poss',
  'noun',
  'pron',
  'verb',
  'aux',
  'prep',
  'comp',
  'adj',
  'adv',
  'neg',
  'conj',
  'punct',
];

const subjectHead = (w: Word) => w.head && w.role === 'subject';

export const WORD_LABELS: Readonly<Record<string, (w: Word) => boolean>> = {
  // agreement state
  pending_sg: (w) => w.pending === 'sg',
  pending_pl: (w) => w.pending === 'pl',
  pending_none: (w) => w.pending === 'none',
  next_verb_sg: (w) => w.nextVerbNumber === 'sg',
  next_verb_pl: (w) => w.nextVerbNumber === 'pl',
  // nouns by role and number
  subject_sg: (w) => subjectHead(w) && w.number === 'sg',
  subject_pl: (w) => subjectHead(w) && w.number === 'pl',
  rc_subject_sg: (w) => w.head && w.role === 'rc_subject' && w.number === 'sg',
  rc_subject_pl: (w) => w.head && w.role === 'rc_subject' && w.number === 'pl',
  pp_object_sg: (w) => w.head && w.role === 'pp_object' && w.number === 'sg',
  pp_object_pl: (w) => w.head && w.role === 'pp_object' && w.number === 'pl',
  object_noun: (w) => w.head && w.role === 'object',
  noun_sg: (w) => w.pos === 'noun' && w.number === 'sg',
  noun_pl: (w) => w.pos === 'noun' && w.number === 'pl',
  animate_noun: (w) => w.pos === 'noun' && w.animate,
  thing_noun: (w) => w.pos === 'noun' && !w.animate,
  // verbs
  agreeing_verb_sg: (w) => w.agrees && w.number === 'sg',
  agreeing_verb_pl: (w) => w.agrees && w.number === 'pl',
  verb_base: (w) => w.verbForm === 'base',
  verb_ing: (w) => w.verbForm === 'ing',
  verb_participle: (w) => w.verbForm === 'participle',
  // structure
  main_clause: (w) => w.context === 'main',
  in_rc: (w) => w.rcType !== 'none',
  in_object_rc: (w) => w.rcType === 'object',
  in_subject_rc: (w) => w.rcType === 'subject',
  in_pp: (w) => w.context === 'pp',
  sentence_start: (w) => w.sentenceStart,
  after_that: (w) => w.afterThat,
  first_sentence: (w) => w.sentence === 0,
  // reference and gender
  pronoun: (w) => w.pos === 'pron',
  referent_m: (w) => w.referentGender === 'm',
  referent_f: (w) => w.referentGender === 'f',
  refers_back: (w) => w.antecedent >= 0,
  shown_m: (w) => w.genderShown === 'm',
  shown_f: (w) => w.genderShown === 'f',
  // parts of speech
  ...Object.fromEntries(POS.map((p) => [`pos_${p}`, (w: Word) => w.pos === p])),
};

/** The names of the labels that hold for a word, in WORD_LABELS order. */
export function wordLabels(w: Word): string[] {
  return Object.entries(WORD_LABELS)
    .filter(([, holds]) => holds(w))
    .map(([name]) => name);
}
