// The grammar's sampler: Rng -> TextSpec, with the relative weights of its choices (GrammarMix).

import type { Rng } from '../random.ts';
import {
  ANIMATE_NOUNS,
  DESTINATION_ADVERBS,
  FINAL_ADVERBS,
  HAVE,
  INTRANSITIVE_VERBS,
  noun,
  OBJECT_ADJECTIVES,
  OBJECT_NOUNS,
  OCCUPATION_NOUNS,
  PERSON_ADJECTIVES,
  PERSON_NOUNS,
  PP_PREPOSITIONS,
  PREVERBAL_ADVERBS,
  TRANSITIVE_VERBS,
  type Gender,
  type VerbEntry,
} from './lexicon.ts';
import type {
  AnnotatedText,
  Clause,
  GapVerb,
  NounPhrase,
  Number2,
  Predicate,
  RelativeClause,
  Sentence,
  Subject,
  TextSpec,
} from './grammar.ts';
import { realise } from './grammar-realiser.ts';

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
