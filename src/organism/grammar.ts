// The model organism's grammar: English-like texts with subject-verb number agreement, annotated
// word by word with the ground truth of what a model must track to predict them.
//
// Two halves: a sampler draws a text's structure (a `TextSpec`: sentences, clauses, noun phrases,
// relative clauses, predicates) from a seeded Rng, and a realiser turns any TextSpec into words
// with annotations. Agreement is by construction: the realiser keeps a stack of subjects still
// waiting for their verb, and every agreeing verb takes its form from the top of that stack.
// Tests and task builders write specs by hand; the corpus comes from the sampler.

import type { Rng } from '../random.ts';
import {
  ANIMATE_NOUNS,
  BE,
  capitalise,
  DESTINATION_ADVERBS,
  DO,
  FINAL_ADVERBS,
  GO,
  HAVE,
  INTRANSITIVE_VERBS,
  noun,
  OBJECT_ADJECTIVES,
  OBJECT_NOUNS,
  OCCUPATION_NOUNS,
  PERSON_ADJECTIVES,
  PERSON_NOUNS,
  POSSESSIVES,
  PP_PREPOSITIONS,
  PREVERBAL_ADVERBS,
  SENTENCE_INITIAL,
  SUBJECT_PRONOUNS,
  TRANSITIVE_VERBS,
  verb,
  type Gender,
  type GramNumber,
  type VerbEntry,
} from './lexicon.ts';

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

// ---------------------------------------------------------------------------------------------
// Realiser: TextSpec -> annotated words

interface OpenSubject {
  number: Number2;
  /** Index of the subject's head word (first conjunct of a coordination). */
  index: number;
}

interface Referent {
  index: number;
  number: Number2;
  gender: Gender;
}

interface Frame {
  context: Context;
  rcType: 'subject' | 'object' | 'none';
}

type WordFields = Pick<Word, 'text' | 'lemma' | 'pos'> &
  Partial<Omit<Word, 'text' | 'lemma' | 'pos' | 'index' | 'token'>>;

class Realiser {
  readonly words: Word[] = [];
  /** Subjects seen whose agreeing verb has not come yet, innermost last. */
  private open: OpenSubject[] = [];
  private frames: Frame[] = [{ context: 'main', rcType: 'none' }];
  private sentence = -1;
  private sentenceFirst = 0;
  /** The latest main-clause subject, for pronouns and possessives. */
  private referent: Referent | null = null;

  text(spec: TextSpec): AnnotatedText {
    for (const s of spec) this.sentenceOf(s);
    return { text: this.words.map((w) => w.token).join(''), words: this.words, spec };
  }

  /** Appends a word; `effect` changes the open-subject stack before `pending` is read. */
  private emit(fields: WordFields, effect?: (index: number) => void): Word {
    const index = this.words.length;
    const sentenceStart = index === this.sentenceFirst;
    let text = fields.text;
    if (sentenceStart) {
      if (!SENTENCE_INITIAL.includes(text))
        throw new Error(`grammar: a sentence cannot start with "${text}"`);
      text = capitalise(text);
    }
    const frame = this.frames[this.frames.length - 1];
    const rc = [...this.frames].reverse().find((f) => f.context === 'rc');
    const previous = this.words[index - 1];
    const word: Word = {
      number: 'none',
      gender: 'none',
      referentGender: 'none',
      genderShown: previous?.genderShown ?? 'none',
      verbForm: 'none',
      agrees: false,
      controller: -1,
      pending: 'none',
      nextVerbNumber: 'none',
      role: 'none',
      head: false,
      animate: false,
      antecedent: -1,
      context: frame.context,
      rcType: rc ? rc.rcType : 'none',
      depth: this.frames.length - 1,
      ...fields,
      index,
      text,
      token: index === 0 ? text : ` ${text}`,
      sentence: this.sentence,
      indexInSentence: index - this.sentenceFirst,
      sentenceStart,
      afterThat: previous !== undefined && previous.lemma === 'that',
    };
    if (word.gender !== 'none') word.genderShown = word.gender;
    else if (word.lemma === SUBJECT_PRONOUNS.pl || word.lemma === POSSESSIVES.pl)
      word.genderShown = 'none'; // they / their: no one gender
    this.words.push(word);
    effect?.(index);
    const top = this.open[this.open.length - 1];
    word.pending = top ? top.number : 'none';
    return word;
  }

  /** A finite verb that agrees with the innermost open subject, which it closes. */
  private agreeing(entry: VerbEntry, pos: 'verb' | 'aux'): Word {
    const subject = this.open.pop();
    if (!subject) throw new Error(`grammar: agreeing verb "${entry.lemma}" has no open subject`);
    return this.emit({
      text: entry[subject.number],
      lemma: entry.lemma,
      pos,
      number: subject.number,
      verbForm: 'finite',
      agrees: true,
      controller: subject.index,
    });
  }

  private withFrame<T>(frame: Frame, body: () => T): T {
    this.frames.push(frame);
    try {
      return body();
    } finally {
      this.frames.pop();
    }
  }

  private sentenceOf(s: Sentence): void {
    this.sentence++;
    this.sentenceFirst = this.words.length;
    this.clause(s.clause);
    if (s.coordinated) {
      this.emit({ text: s.coordinated.conj, lemma: s.coordinated.conj, pos: 'conj' });
      this.clause(s.coordinated.clause);
    }
    this.emit({ text: '.', lemma: '.', pos: 'punct' });
    // nextVerbNumber: scan the sentence backwards
    let next: GramNumber = 'none';
    for (let i = this.words.length - 1; i >= this.sentenceFirst; i--) {
      this.words[i].nextVerbNumber = next;
      if (this.words[i].agrees) next = this.words[i].number;
    }
  }

  private clause(c: Clause): void {
    const subject = this.subject(c.subject);
    this.predicate(c.predicate, subject, 'object');
    if (c.finalAdverb) this.emit({ text: c.finalAdverb, lemma: c.finalAdverb, pos: 'adv' });
    if (this.open.length > 0)
      throw new Error(`grammar: clause ended with ${this.open.length} subject(s) lacking a verb`);
  }

  private subject(s: Subject): OpenSubject {
    if (s.kind === 'np') {
      const head = this.nounPhrase(s.np, 'subject', true);
      return { number: s.np.number, index: head };
    }
    if (s.kind === 'coord') {
      const left = this.nounPhrase(s.left, 'subject', true);
      this.emit({ text: 'and', lemma: 'and', pos: 'conj', role: 'subject' }, () => {
        this.open[this.open.length - 1] = { number: 'pl', index: left };
      });
      this.nounPhrase(s.right, 'subject', false);
      this.referent = { index: left, number: 'pl', gender: 'none' }; // "they" for both
      return { number: 'pl', index: left };
    }
    const antecedent: Referent | null =
      this.referent ??
      (s.person
        ? {
            index: -1,
            number: s.person === 'pl' ? 'pl' : 'sg',
            gender: s.person === 'pl' ? 'none' : s.person,
          }
        : null);
    if (!antecedent)
      throw new Error('grammar: a pronoun subject needs an earlier subject or its person');
    const key = antecedent.number === 'pl' ? 'pl' : antecedent.gender;
    if (key === 'none')
      throw new Error(
        `grammar: pronoun for word ${antecedent.index} needs its gender (set NounPhrase.gender)`,
      );
    const text = SUBJECT_PRONOUNS[key];
    const w = this.emit(
      {
        text,
        lemma: text,
        pos: 'pron',
        number: antecedent.number,
        gender: key === 'pl' ? 'none' : key,
        referentGender: antecedent.gender,
        role: 'subject',
        head: true,
        animate: true,
        antecedent: antecedent.index,
      },
      (index) => this.open.push({ number: antecedent.number, index }),
    );
    this.referent = { index: w.index, number: antecedent.number, gender: antecedent.gender };
    return { number: antecedent.number, index: w.index };
  }

  /** Emits a noun phrase; returns its head's index. A subject's head opens it (pushes it). */
  private nounPhrase(np: NounPhrase, role: Role, opensSubject: boolean): number {
    const entry = noun(np.noun);
    const animate = entry.kind !== 'object';
    const det = np.det ?? 'the';
    if (det === 'a' && np.number !== 'sg')
      throw new Error(`grammar: "a" with plural noun ${entry.pl}`);
    if (det === 'the') this.emit({ text: det, lemma: det, pos: 'det', role });
    else if (det === 'a') {
      const next = np.adj ?? entry.sg;
      const text = /^[aeiou]/.test(next) ? 'an' : 'a';
      this.emit({ text, lemma: 'a', pos: 'det', number: 'sg', role });
    } else if (det === 'poss') this.possessive(role);
    if (np.adj) this.emit({ text: np.adj, lemma: np.adj, pos: 'adj', role });
    const referentGender: Gender = entry.gender !== 'none' ? entry.gender : (np.gender ?? 'none');
    const head = this.emit(
      {
        text: entry[np.number],
        lemma: entry.sg,
        pos: 'noun',
        number: np.number,
        gender: entry.gender,
        referentGender,
        role,
        head: true,
        animate,
      },
      (index) => {
        if (opensSubject) this.open.push({ number: np.number, index });
      },
    ).index;
    if (role === 'subject')
      this.referent = { index: head, number: np.number, gender: referentGender };
    if (np.pp) this.prepositionalPhrase(np.pp.prep, np.pp.object);
    if (np.rc) this.relativeClause(np.rc, { number: np.number, index: head });
    return head;
  }

  private possessive(role: Role): void {
    const r = this.referent;
    if (!r) throw new Error('grammar: a possessive needs an earlier subject');
    const key = r.number === 'pl' ? 'pl' : r.gender;
    if (key === 'none') throw new Error(`grammar: possessive for word ${r.index} needs its gender`);
    const text = POSSESSIVES[key];
    this.emit({
      text,
      lemma: text,
      pos: 'poss',
      gender: key === 'pl' ? 'none' : key,
      referentGender: r.gender,
      role,
      antecedent: r.index,
    });
  }

  private prepositionalPhrase(prep: string, object: NounPhrase): void {
    this.withFrame({ context: 'pp', rcType: 'none' }, () => {
      this.emit({ text: prep, lemma: prep, pos: 'prep' });
      this.nounPhrase(object, 'pp_object', false);
    });
  }

  private relativeClause(rc: RelativeClause, head: OpenSubject): void {
    this.withFrame({ context: 'rc', rcType: rc.kind }, () => {
      if (rc.kind === 'subject') {
        // "that" stands for the head as the clause's subject: the clause's verb agrees with it
        this.emit({ text: 'that', lemma: 'that', pos: 'comp' }, () => this.open.push({ ...head }));
        this.predicate(rc.predicate, head, 'rc_object');
        return;
      }
      this.emit({ text: 'that', lemma: 'that', pos: 'comp' });
      this.nounPhrase(rc.subject, 'rc_subject', true);
      this.gapVerb(rc.gap);
    });
  }

  private gapVerb(g: GapVerb): void {
    switch (g.kind) {
      case 'transitive':
        if (g.adverb) this.emit({ text: g.adverb, lemma: g.adverb, pos: 'adv' });
        this.agreeing(verb(g.verb), 'verb');
        return;
      case 'progressive':
        this.agreeing(BE, 'aux');
        this.nonFinite(verb(g.verb), 'ing');
        return;
      case 'perfect':
        this.agreeing(HAVE, 'aux');
        this.nonFinite(verb(g.verb), 'participle');
        return;
      case 'doNot':
        this.agreeing(DO, 'aux');
        this.emit({ text: 'not', lemma: 'not', pos: 'neg' });
        this.nonFinite(verb(g.verb), 'base');
        return;
      case 'goPrep':
        this.agreeing(GO, 'verb');
        this.emit({ text: g.prep, lemma: g.prep, pos: 'prep' }); // stranded: its object is the gap
        return;
    }
  }

  private nonFinite(entry: VerbEntry, form: 'ing' | 'participle' | 'base'): void {
    const text = form === 'base' ? entry.pl : entry[form];
    if (!text) throw new Error(`grammar: verb "${entry.lemma}" has no ${form} form`);
    this.emit({ text, lemma: entry.lemma, pos: 'verb', verbForm: form });
  }

  private object(np: NounPhrase | undefined, role: Role): void {
    if (np) this.nounPhrase(np, role, false);
  }

  /** `subject` is the open subject the predicate's verb agrees with (re-opened for "and"). */
  private predicate(p: Predicate, subject: OpenSubject, objectRole: Role): void {
    switch (p.kind) {
      case 'adjective':
        this.agreeing(BE, 'aux');
        if (p.not) this.emit({ text: 'not', lemma: 'not', pos: 'neg' });
        if (p.very) this.emit({ text: 'very', lemma: 'very', pos: 'adv' });
        this.emit({ text: p.adj, lemma: p.adj, pos: 'adj' });
        return;
      case 'location':
        this.agreeing(BE, 'aux');
        this.prepositionalPhrase(p.prep, p.object);
        return;
      case 'nominal':
        this.agreeing(BE, 'aux');
        this.nounPhrase(
          {
            noun: p.noun,
            number: subject.number,
            adj: p.adj,
            det: subject.number === 'sg' ? 'a' : 'bare',
          },
          'predicate',
          false,
        );
        return;
      case 'progressive':
        this.agreeing(BE, 'aux');
        this.nonFinite(verb(p.verb), 'ing');
        this.object(p.object, objectRole);
        return;
      case 'possess':
        this.agreeing(HAVE, 'verb');
        this.object(p.object, objectRole);
        return;
      case 'perfect':
        this.agreeing(HAVE, 'aux');
        this.nonFinite(verb(p.verb), 'participle');
        this.object(p.object, objectRole);
        return;
      case 'doNot':
        this.agreeing(DO, 'aux');
        this.emit({ text: 'not', lemma: 'not', pos: 'neg' });
        this.nonFinite(verb(p.verb), 'base');
        this.object(p.object, objectRole);
        return;
      case 'go':
        if (p.adverb) this.emit({ text: p.adverb, lemma: p.adverb, pos: 'adv' });
        this.agreeing(GO, 'verb');
        if (typeof p.destination === 'string')
          this.emit({ text: p.destination, lemma: p.destination, pos: 'adv' });
        else this.prepositionalPhrase(p.destination.prep, p.destination.object);
        return;
      case 'transitive':
        if (p.adverb) this.emit({ text: p.adverb, lemma: p.adverb, pos: 'adv' });
        this.agreeing(verb(p.verb), 'verb');
        this.object(p.object, objectRole);
        return;
      case 'intransitive':
        if (p.adverb) this.emit({ text: p.adverb, lemma: p.adverb, pos: 'adv' });
        this.agreeing(verb(p.verb), 'verb');
        return;
      case 'coord':
        this.predicate(p.left, subject, objectRole);
        this.emit({ text: 'and', lemma: 'and', pos: 'conj' }, () => this.open.push({ ...subject }));
        this.predicate(p.right, subject, objectRole);
        return;
    }
  }
}

/** Words and annotations of a text structure. Throws on structures the grammar does not allow. */
export function realise(spec: TextSpec): AnnotatedText {
  return new Realiser().text(spec);
}

// ---------------------------------------------------------------------------------------------
// Sampler: Rng -> TextSpec

/** Relative weights of the choices the sampler makes; all optional, see DEFAULT_MIX. */
export interface GrammarMix {
  /** Weights of 1, 2, 3, 4 sentences per text. */
  sentencesPerText: number[];
  /** Subject kinds: bare NP, NP + PP, NP + object RC, NP + subject RC, "X and Y". */
  subjectSimple: number;
  subjectPp: number;
  subjectObjectRc: number;
  subjectSubjectRc: number;
  subjectCoord: number;
  /** Probability that a later clause's subject is a pronoun for the previous subject. */
  pronounSubject: number;
  /** Probability that a text starts with a pronoun subject ("She is a nurse ."). */
  pronounFirst: number;
  /** Probability that a person noun is an occupation (nurse, surgeon, ...). */
  occupation: number;
  /** Probability of a prenominal adjective. */
  adjective: number;
  /** Predicate kinds (weights). */
  predicateAdjective: number;
  predicateLocation: number;
  predicateNominal: number;
  predicateProgressive: number;
  predicatePossess: number;
  predicatePerfect: number;
  predicateDoNot: number;
  predicateGo: number;
  predicateTransitive: number;
  predicateIntransitive: number;
  /** Probabilities of: two coordinated predicates, two coordinated clauses, a clause-final adverb, a pre-verbal adverb. */
  predicateCoord: number;
  clauseCoord: number;
  finalAdverb: number;
  preverbalAdverb: number;
  /** Probabilities of a PP / an object RC on a main-clause object, and of his/her/their on it. */
  objectPp: number;
  objectRc: number;
  objectPossessive: number;
  /** Gap verbs of object RCs (weights). */
  gapTransitive: number;
  gapProgressive: number;
  gapPerfect: number;
  gapDoNot: number;
  gapGo: number;
}

export const DEFAULT_MIX: GrammarMix = {
  sentencesPerText: [0.2, 0.35, 0.3, 0.15],
  subjectSimple: 0.3,
  subjectPp: 0.2,
  subjectObjectRc: 0.22,
  subjectSubjectRc: 0.13,
  subjectCoord: 0.07,
  pronounSubject: 0.3,
  pronounFirst: 0.04,
  occupation: 0.15,
  adjective: 0.15,
  predicateAdjective: 0.15,
  predicateLocation: 0.05,
  predicateNominal: 0.07,
  predicateProgressive: 0.1,
  predicatePossess: 0.1,
  predicatePerfect: 0.08,
  predicateDoNot: 0.1,
  predicateGo: 0.1,
  predicateTransitive: 0.17,
  predicateIntransitive: 0.08,
  predicateCoord: 0.08,
  clauseCoord: 0.12,
  finalAdverb: 0.08,
  preverbalAdverb: 0.12,
  objectPp: 0.1,
  objectRc: 0.07,
  objectPossessive: 0.12,
  gapTransitive: 0.4,
  gapProgressive: 0.15,
  gapPerfect: 0.15,
  gapDoNot: 0.15,
  gapGo: 0.15,
};

function weighted<T extends string>(rng: Rng, weights: Record<T, number>): T {
  const entries = Object.entries(weights) as [T, number][];
  const total = entries.reduce((s, [, w]) => s + w, 0);
  let u = rng.next() * total;
  for (const [key, w] of entries) {
    u -= w;
    if (u < 0) return key;
  }
  return entries[entries.length - 1][0];
}

/** What the sampler knows of the latest main subject, to choose pronouns and possessives. */
interface SampledReferent {
  number: Number2;
  /** The noun phrase, whose open gender the sampler fixes when a pronoun needs it. */
  np?: NounPhrase;
  gender: Gender;
}

const TRANSITIVE_ING = TRANSITIVE_VERBS.filter((v) => v.ing);
const TRANSITIVE_PARTICIPLE = TRANSITIVE_VERBS.filter((v) => v.participle);

export class GrammarSampler {
  private readonly mix: GrammarMix;
  private referent: SampledReferent | null = null;

  constructor(
    private readonly rng: Rng,
    mix: Partial<GrammarMix> = {},
  ) {
    this.mix = { ...DEFAULT_MIX, ...mix };
  }

  private chance(p: number): boolean {
    return this.rng.next() < p;
  }

  private number(): Number2 {
    return this.rng.next() < 0.5 ? 'sg' : 'pl';
  }

  text(): TextSpec {
    this.referent = null;
    const weights = this.mix.sentencesPerText;
    const count = 1 + Number(weighted(this.rng, Object.fromEntries(weights.map((w, i) => [i, w]))));
    const sentences: Sentence[] = [];
    for (let i = 0; i < count; i++) sentences.push(this.sentence());
    return sentences;
  }

  sentence(): Sentence {
    const clause = this.clause();
    if (!this.chance(this.mix.clauseCoord)) return { clause };
    return {
      clause,
      coordinated: { conj: this.chance(0.7) ? 'and' : 'but', clause: this.clause() },
    };
  }

  clause(): Clause {
    const subject = this.subject();
    const predicate = this.chance(this.mix.predicateCoord)
      ? { kind: 'coord' as const, left: this.predicate(true), right: this.predicate(true) }
      : this.predicate(true);
    const clause: Clause = { subject, predicate };
    if (this.chance(this.mix.finalAdverb)) clause.finalAdverb = this.rng.pick(FINAL_ADVERBS);
    return clause;
  }

  /** The referent's gender for a pronoun or possessive, fixing it if the noun leaves it open. */
  private genderFor(r: SampledReferent): Gender {
    if (r.number === 'pl' || r.gender !== 'none') return r.gender;
    const g = this.rng.next() < 0.5 ? 'm' : 'f';
    r.gender = g;
    if (r.np) r.np.gender = g;
    return g;
  }

  private subject(): Subject {
    const m = this.mix;
    if (this.referent && this.chance(m.pronounSubject)) {
      this.genderFor(this.referent);
      return { kind: 'pronoun' };
    }
    if (!this.referent && this.chance(m.pronounFirst)) {
      const person = this.rng.pick(['m', 'f', 'pl'] as const);
      this.referent = {
        number: person === 'pl' ? 'pl' : 'sg',
        gender: person === 'pl' ? 'none' : person,
      };
      return { kind: 'pronoun', person };
    }
    const kind = weighted(this.rng, {
      simple: m.subjectSimple,
      pp: m.subjectPp,
      objectRc: m.subjectObjectRc,
      subjectRc: m.subjectSubjectRc,
      coord: m.subjectCoord,
    });
    if (kind === 'coord') {
      const left = this.personPhrase(this.number(), 'the');
      const right = this.personPhrase(this.number(), 'the');
      this.referent = { number: 'pl', gender: 'none' };
      return { kind: 'coord', left, right };
    }
    const np = this.personPhrase(this.number(), 'the');
    if (kind === 'pp') np.pp = { prep: this.rng.pick(PP_PREPOSITIONS), object: this.anyPhrase() };
    else if (kind === 'objectRc') np.rc = this.objectRc();
    else if (kind === 'subjectRc') np.rc = { kind: 'subject', predicate: this.predicate(false) };
    this.referent = { number: np.number, np, gender: noun(np.noun).gender };
    return { kind: 'np', np };
  }

  private personNoun(): string {
    const list = this.chance(this.mix.occupation) ? OCCUPATION_NOUNS : PERSON_NOUNS;
    return this.rng.pick(list).sg;
  }

  private personPhrase(number: Number2, det: NounPhrase['det']): NounPhrase {
    const np: NounPhrase = { noun: this.personNoun(), number, det };
    if (this.chance(this.mix.adjective)) np.adj = this.rng.pick(PERSON_ADJECTIVES);
    return np;
  }

  private objectPhrase(number: Number2, det: NounPhrase['det']): NounPhrase {
    const np: NounPhrase = { noun: this.rng.pick(OBJECT_NOUNS).sg, number, det };
    if (this.chance(this.mix.adjective)) np.adj = this.rng.pick(OBJECT_ADJECTIVES);
    return np;
  }

  /** A person or a thing, "the" or (singular) "a". */
  private anyPhrase(animate: 'person' | 'any' = 'any'): NounPhrase {
    const number = this.number();
    const det = number === 'sg' && this.chance(0.25) ? 'a' : 'the';
    return animate === 'person' || this.chance(0.5)
      ? this.personPhrase(number, det)
      : this.objectPhrase(number, det);
  }

  private objectRc(): RelativeClause {
    const m = this.mix;
    const subject = this.personPhrase(this.number(), 'the');
    const kind = weighted(this.rng, {
      transitive: m.gapTransitive,
      progressive: m.gapProgressive,
      perfect: m.gapPerfect,
      doNot: m.gapDoNot,
      go: m.gapGo,
    });
    let gap: GapVerb;
    if (kind === 'transitive') {
      gap = { kind, verb: this.rng.pick(TRANSITIVE_VERBS).lemma };
      if (this.chance(m.preverbalAdverb)) gap.adverb = this.rng.pick(PREVERBAL_ADVERBS);
    } else if (kind === 'progressive') gap = { kind, verb: this.rng.pick(TRANSITIVE_ING).lemma };
    else if (kind === 'perfect') gap = { kind, verb: this.rng.pick(TRANSITIVE_PARTICIPLE).lemma };
    else if (kind === 'doNot') gap = { kind, verb: this.rng.pick(TRANSITIVE_VERBS).lemma };
    else gap = { kind: 'goPrep', prep: this.chance(0.5) ? 'to' : 'with' };
    return { kind: 'object', subject, gap };
  }

  /** The object of a verb; in main clauses it may carry a PP, an object RC or a possessive. */
  private object(entry: VerbEntry | undefined, main: boolean): NounPhrase {
    const np = this.anyPhrase(entry?.objects === 'person' ? 'person' : 'any');
    if (!main) return np;
    const m = this.mix;
    if (this.referent && this.chance(m.objectPossessive)) {
      this.genderFor(this.referent);
      np.det = 'poss';
    }
    if (this.chance(m.objectPp))
      np.pp = { prep: this.rng.pick(PP_PREPOSITIONS), object: this.anyPhrase() };
    else if (this.chance(m.objectRc)) np.rc = this.objectRc();
    return np;
  }

  /** `main`: a main-clause predicate (objects may nest further structure). */
  private predicate(main: boolean): Predicate {
    const m = this.mix;
    const rng = this.rng;
    const adverb = () => (this.chance(m.preverbalAdverb) ? rng.pick(PREVERBAL_ADVERBS) : undefined);
    const kind = weighted(rng, {
      adjective: m.predicateAdjective,
      location: m.predicateLocation,
      nominal: m.predicateNominal,
      progressive: m.predicateProgressive,
      possess: m.predicatePossess,
      perfect: m.predicatePerfect,
      doNot: m.predicateDoNot,
      go: m.predicateGo,
      transitive: m.predicateTransitive,
      intransitive: m.predicateIntransitive,
    });
    switch (kind) {
      case 'adjective':
        return {
          kind,
          adj: rng.pick(PERSON_ADJECTIVES),
          not: this.chance(0.1) || undefined,
          very: this.chance(0.15) || undefined,
        };
      case 'location':
        return { kind, prep: rng.pick(PP_PREPOSITIONS), object: this.anyPhrase() };
      case 'nominal': {
        const p: Predicate = { kind, noun: rng.pick(ANIMATE_NOUNS).sg };
        if (this.chance(m.adjective)) p.adj = rng.pick(PERSON_ADJECTIVES);
        return p;
      }
      case 'progressive': {
        if (this.chance(0.5)) return { kind, verb: rng.pick(INTRANSITIVE_VERBS).lemma };
        const v = rng.pick(TRANSITIVE_ING);
        return { kind, verb: v.lemma, object: this.object(v, main) };
      }
      case 'possess':
        return { kind, object: this.object(HAVE, main) };
      case 'perfect': {
        if (this.chance(0.3)) return { kind, verb: rng.pick(INTRANSITIVE_VERBS).lemma };
        const v = rng.pick(TRANSITIVE_PARTICIPLE);
        return { kind, verb: v.lemma, object: this.object(v, main) };
      }
      case 'doNot': {
        if (this.chance(0.3)) return { kind, verb: rng.pick(INTRANSITIVE_VERBS).lemma };
        const v = rng.pick(TRANSITIVE_VERBS);
        return { kind, verb: v.lemma, object: this.object(v, main) };
      }
      case 'go': {
        const p: Predicate = {
          kind,
          adverb: adverb(),
          destination: this.chance(0.6)
            ? rng.pick(DESTINATION_ADVERBS)
            : this.chance(0.5)
              ? { prep: 'to', object: this.anyPhrase() }
              : { prep: 'with', object: this.anyPhrase('person') },
        };
        return p;
      }
      case 'transitive': {
        const v = rng.pick(TRANSITIVE_VERBS);
        return { kind, verb: v.lemma, object: this.object(v, main), adverb: adverb() };
      }
      case 'intransitive':
        return { kind, verb: rng.pick(INTRANSITIVE_VERBS).lemma, adverb: adverb() };
    }
  }
}

/** One random text (1-4 sentences) with its annotations. */
export function generateText(rng: Rng, mix?: Partial<GrammarMix>): AnnotatedText {
  return realise(new GrammarSampler(rng, mix).text());
}

/** `count` texts from one seed; the same seed gives the same corpus. */
export function generateCorpus(
  rng: Rng,
  count: number,
  mix?: Partial<GrammarMix>,
): AnnotatedText[] {
  const sampler = new GrammarSampler(rng, mix);
  const texts: AnnotatedText[] = [];
  for (let i = 0; i < count; i++) texts.push(realise(sampler.text()));
  return texts;
}
