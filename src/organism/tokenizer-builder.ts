// A byte-level BPE tokenizer.json (Hugging Face format, the structure of GPT-NeoX's) in which
// every given pre-token (' teachers', 'The', ' .') is exactly one token.
//
// Merges are derived from the word list, not learned. Words are taken shortest first; each is
// encoded with the merges so far, and while it comes out as several tokens t1 t2 ... tk, the
// merge (t1,t2) is appended and the word encoded again. Appended merges rank below all earlier ones, so they
// never change how an earlier word encodes (its encoding only ever used earlier merges, and a
// single token has no pairs left). Mostly this builds each word left to right, sharing prefixes:
// ('Ġ','t'), ('Ġt','e'), ..., ('Ġteacher','s'). All 256 bytes are tokens, so any text encodes.

import { tokenForms } from './lexicon.ts';

export const END_OF_TEXT = '<|endoftext|>';

/** GPT-2's byte -> printable character map (space -> 'Ġ', newline -> 'Ċ'). */
function byteToChar(): string[] {
  const printable = (b: number) =>
    (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  const chars: string[] = [];
  let next = 256;
  for (let b = 0; b < 256; b++) chars[b] = String.fromCodePoint(printable(b) ? b : next++);
  return chars;
}

/** A pre-token in byte-level characters, one string per byte. */
function byteLevel(text: string, chars: string[]): string[] {
  return [...new TextEncoder().encode(text)].map((b) => chars[b]);
}

/** BPE on one pre-token: repeatedly merge the leftmost pair of lowest rank. */
function encodeWord(symbols: string[], ranks: Map<string, number>): string[] {
  const pieces = [...symbols];
  for (;;) {
    let best = -1;
    let bestRank = Infinity;
    for (let i = 0; i + 1 < pieces.length; i++) {
      const rank = ranks.get(`${pieces[i]} ${pieces[i + 1]}`);
      if (rank !== undefined && rank < bestRank) {
        bestRank = rank;
        best = i;
      }
    }
    if (best < 0) return pieces;
    pieces.splice(best, 2, pieces[best] + pieces[best + 1]);
  }
}

export interface BuiltTokenizer {
  /** The tokenizer.json object; JSON.stringify it to write the file. */
  json: object;
  vocabSize: number;
  /** Token id of each requested pre-token. */
  ids: Map<string, number>;
}

/**
 * A tokenizer.json where each of `pretokens` is one token. Ids: 0 is <|endoftext|>, 1..256 the
 * bytes in byte order, then the merge results in rank order; the result depends only on the set
 * of pre-tokens.
 *
 * A pre-token is what the ByteLevel pre-tokenizer's regex yields: a word with at most one leading
 * space (' teachers', 'The'), or a run of punctuation with at most one leading space (' .').
 * Throws for strings that it would split further (which could then never be one token).
 */
export function buildTokenizer(pretokens: Iterable<string>): BuiltTokenizer {
  const chars = byteToChar();
  const words = [...new Set(pretokens)];
  for (const w of words)
    if (!/^ ?(\p{L}+|\p{N}+|[^\s\p{L}\p{N}]+)$/u.test(w))
      throw new Error(
        `tokenizer builder: "${w}" is not one pre-token (expected a word or punctuation run, with at most one leading space)`,
      );
  const symbolsOf = words
    .map((w) => ({ w, symbols: byteLevel(w, chars) }))
    .sort((a, b) =>
      a.symbols.length !== b.symbols.length
        ? a.symbols.length - b.symbols.length
        : a.w < b.w
          ? -1
          : a.w > b.w
            ? 1
            : 0,
    );

  const ranks = new Map<string, number>(); // 'left right' -> rank
  const merged: string[] = []; // merge results, in rank order
  const pairs: string[] = [];
  for (const { symbols } of symbolsOf) {
    // re-encode after each new merge: it may also apply elsewhere in the word ("hehe")
    for (
      let pieces = encodeWord(symbols, ranks);
      pieces.length > 1;
      pieces = encodeWord(symbols, ranks)
    ) {
      const key = `${pieces[0]} ${pieces[1]}`;
      ranks.set(key, pairs.length);
      pairs.push(key);
      merged.push(pieces[0] + pieces[1]);
    }
  }

  const vocab: Record<string, number> = { [END_OF_TEXT]: 0 };
  for (let b = 0; b < 256; b++) vocab[chars[b]] = 1 + b;
  let nextId = 257;
  for (const token of merged) vocab[token] = nextId++;

  const ids = new Map<string, number>();
  for (const w of words) ids.set(w, vocab[byteLevel(w, chars).join('')]);

  const byteLevelStep = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true };
  const json = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [
      {
        id: 0,
        content: END_OF_TEXT,
        single_word: false,
        lstrip: false,
        rstrip: false,
        normalized: false,
        special: true,
      },
    ],
    normalizer: { type: 'NFC' },
    pre_tokenizer: { ...byteLevelStep, use_regex: true },
    post_processor: byteLevelStep,
    decoder: byteLevelStep,
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      vocab,
      merges: pairs,
    },
  };
  return { json, vocabSize: nextId, ids };
}

/** The model organism's tokenizer: every word of the grammar (and its capitalised forms) one token. */
export function buildOrganismTokenizer(): BuiltTokenizer {
  return buildTokenizer(tokenForms());
}
