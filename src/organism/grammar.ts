// The model organism's grammar: English-like texts with subject-verb number agreement, annotated
// word by word with the ground truth of what a model must track to predict them.
//
// Two halves: a sampler (grammar-sampler.ts) draws a text's structure (a `TextSpec`: sentences,
// clauses, noun phrases, relative clauses, predicates) from a seeded Rng, and a realiser
// (grammar-realiser.ts) turns any TextSpec into words with annotations. This file holds what they
// share: the structures and the annotations. Tests and task builders write specs by hand; the
// corpus comes from the sampler.

import type { Gender, GramNumber } from './lexicon.ts';

export type { Gender, GramNumber } from './lexicon.ts';

// ---------------------------------------------------------------------------------------------
// Structure (what the sampler draws and tests write by hand)

export type Number2 = 'sg' | 'pl';

export interface NounPhrase {
  /** The noun's singular form (its lemma), e.g. 'teacher', 'man'. */
  noun: string;
  number: Number2;
  /** 'the' (default); 'a' (singular only); 'poss' = his/her/their for the sentence's subject; 'bare' = none. */
  det?: 'the' | 'a' | 'poss' | 'bare';
  adj?: string;
  /** A PP modifier: "the teachers near the desk". */
  pp?: { prep: string; object: NounPhrase };
  rc?: RelativeClause;
  /** The referent's gender where a pronoun reveals it and the noun leaves it open. */
  gender?: 'm' | 'f';
}

/** "that the guards like" (object gap) or "that likes the guards" (subject gap). */
export type RelativeClause =
  { kind: 'object'; subject: NounPhrase; gap: GapVerb } | { kind: 'subject'; predicate: Predicate };

/** The verb group of an object relative clause; its object is the gap. */
export type GapVerb =
  | { kind: 'transitive'; verb: string; adverb?: string } // that the guards (often) like
  | { kind: 'progressive'; verb: string } // that the guards are watching
  | { kind: 'perfect'; verb: string } // that the guards have seen
  | { kind: 'doNot'; verb: string } // that the guards do not like
  | { kind: 'goPrep'; prep: 'to' | 'with' }; // that the guards go to

export type Predicate =
  | { kind: 'adjective'; adj: string; not?: boolean; very?: boolean } // is (not) (very) happy
  | { kind: 'location'; prep: string; object: NounPhrase } // is near the desk
  | { kind: 'nominal'; noun: string; adj?: string } // is a nurse / are nurses
  | { kind: 'progressive'; verb: string; object?: NounPhrase } // is watching the dog / is smiling
  | { kind: 'possess'; object: NounPhrase } // has a car
  | { kind: 'perfect'; verb: string; object?: NounPhrase } // has seen the dog / has smiled
  | { kind: 'doNot'; verb: string; object?: NounPhrase } // does not like the dog / does not smile
  | {
      kind: 'go';
      adverb?: string;
      destination: string | { prep: 'to' | 'with'; object: NounPhrase };
    } // (often) goes home / goes to the car
  | { kind: 'transitive'; verb: string; object: NounPhrase; adverb?: string } // (often) likes the dog
  | { kind: 'intransitive'; verb: string; adverb?: string } // (often) smiles
  | { kind: 'coord'; left: Predicate; right: Predicate }; // likes the dog and sees the cat

/**
 * A pronoun subject refers to the latest main-clause subject (he / she / they by its gender and
 * number); at the start of a text, where there is none, `person` says which pronoun it is.
 */
export type Subject =
  | { kind: 'np'; np: NounPhrase }
  | { kind: 'coord'; left: NounPhrase; right: NounPhrase }
  | { kind: 'pronoun'; person?: 'm' | 'f' | 'pl' };

export interface Clause {
  subject: Subject;
  predicate: Predicate;
  finalAdverb?: string;
}

/** One sentence: a clause, optionally "and"/"but" a second one, then " .". */
export interface Sentence {
  clause: Clause;
  coordinated?: { conj: 'and' | 'but'; clause: Clause };
}

export type TextSpec = Sentence[];

// ---------------------------------------------------------------------------------------------
// Annotations

export type Pos =
  | 'det' // the, a
  | 'poss' // his, her, their
  | 'noun'
  | 'pron' // he, she, they
  | 'verb' // lexical verbs, possessive "has", "goes"
  | 'aux' // is/are (copula and progressive), does/do, perfect has/have
  | 'prep'
  | 'comp' // "that"
  | 'adj'
  | 'adv'
  | 'neg' // "not"
  | 'conj' // and, but
  | 'punct';

/** The innermost structure a word is in. */
export type Context = 'main' | 'rc' | 'pp';

/** The role of the noun phrase a word belongs to ('none' outside noun phrases). */
export type Role =
  | 'subject' // main-clause subject (each conjunct of a coordinated subject, pronoun subjects)
  | 'object' // main-clause object (of a verb, of possessive "has")
  | 'rc_subject' // subject of an object relative clause
  | 'rc_object' // object inside a subject relative clause
  | 'pp_object' // inside a PP
  | 'predicate' // predicate nominal: "is a nurse"
  | 'none';

export type VerbForm = 'finite' | 'base' | 'ing' | 'participle' | 'none';

export interface Word {
  /** Position in the text (= token position: every word is one token). */
  index: number;
  /** The word as printed, e.g. 'The', 'teachers', '.'. */
  text: string;
  /** The word's token: its text with the space before it (none for the text's first word). */
  token: string;
  /** Lower-case dictionary form: 'teacher' for 'teachers', 'be' for 'are', 'a' for 'a'. */
  lemma: string;
  pos: Pos;
  /** Grammatical number of nouns, pronouns, 'a' and agreeing verbs; 'none' for everything else. */
  number: GramNumber;
  /** Lexical gender of nouns (man, aunt) and pronouns/possessives; 'none' otherwise. */
  gender: Gender;
  /** For noun heads and pronouns: the referent's gender, also where only a later pronoun reveals it. */
  referentGender: Gender;
  /**
   * The gender the text has shown last, up to and including this word: the lexical gender of the
   * latest gendered noun, pronoun or possessive (woman, she, her); 'none' before any. What a
   * reader knows of "who is this about" at this point, on every token.
   */
  genderShown: Gender;
  verbForm: VerbForm;
  /** A finite verb whose form agrees with a subject (is/are, likes/like, ...). */
  agrees: boolean;
  /** For agreeing verbs: index of the subject head it agrees with (first conjunct for "X and Y"); -1 otherwise. */
  controller: number;
  /**
   * After this word: the number of the innermost subject already seen whose agreeing verb has not
   * come yet ('none' if no subject is waiting). This is what the next agreeing verb must agree
   * with, except right after "that" of an object relative clause, before the clause's own subject.
   * Where the prefix is ambiguous the structure decides: "and" joining two predicates re-opens
   * the subject ("likes the dog and" -> subject's number), "and" joining subjects makes it plural.
   */
  pending: GramNumber;
  /** The number of the next agreeing verb after this word in the same sentence ('none' if none). */
  nextVerbNumber: GramNumber;
  context: Context;
  /** Kind of the innermost relative clause the word is in. */
  rcType: 'subject' | 'object' | 'none';
  /** How many relative clauses / PPs the word is nested in (0 in the main clause). */
  depth: number;
  role: Role;
  /** Head noun of its noun phrase (or a pronoun subject). */
  head: boolean;
  animate: boolean;
  /** For pronouns and possessives: index of the word they refer to; -1 otherwise. */
  antecedent: number;
  sentence: number;
  indexInSentence: number;
  sentenceStart: boolean;
  afterThat: boolean;
}

export interface AnnotatedText {
  text: string;
  words: Word[];
  spec: TextSpec;
}

/** The words' tokens, in order; joined they give the text. */
export function tokens(t: AnnotatedText): string[] {
  return t.words.map((w) => w.token);
}
