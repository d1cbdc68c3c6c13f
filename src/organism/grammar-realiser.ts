// The grammar's realiser: TextSpec -> annotated words. Agreement is by construction: the
// realiser keeps a stack of subjects still waiting for their verb, and every agreeing verb takes
// its form from the top of that stack.

import {
  BE,
  capitalise,
  DO,
  GO,
  HAVE,
  noun,
  POSSESSIVES,
  SENTENCE_INITIAL,
  SUBJECT_PRONOUNS,
  verb,
  type Gender,
  type GramNumber,
  type VerbEntry,
} from './lexicon.ts';
import type {
  AnnotatedText,
  Clause,
  Context,
  GapVerb,
  NounPhrase,
  Number2,
  Predicate,
  RelativeClause,
  Role,
  Sentence,
  Subject,
  TextSpec,
  Word,
} from './grammar.ts';

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
