// A Hugging Face tokenizer.json (e.g. GPT-NeoX's byte-level BPE), through @huggingface/tokenizers.
// encode adds no BOS/EOS or other special tokens; decode does no "clean up" of spaces, so
// decode(encode(text)) === text.

import { z } from 'zod';
import { readJsonFile } from '../io/text-file.ts';
import { describeIssues } from '../io/validation.ts';
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';

const tokenId = z.number().int().min(0);
// What we rely on before handing the file to @huggingface/tokenizers (which trusts it): the
// vocabulary maps tokens to ids (or lists Unigram pieces), added tokens have ids and contents.
const tokenizerFileSchema = z.looseObject({
  model: z.looseObject({
    type: z.string().nullish(),
    vocab: z
      .union([z.record(z.string(), tokenId), z.array(z.tuple([z.string(), z.number()]))], {
        error: 'expected {"token": id} with non-negative integer ids, or a list of [piece, score]',
      })
      .optional(),
  }),
  added_tokens: z.array(z.looseObject({ id: tokenId, content: z.string() })).nullish(),
  decoder: z.looseObject({ type: z.string().nullish() }).nullish(),
});

// The library allocates a table up to the largest id, so ids far beyond the number of tokens
// listed would let a few bytes of JSON ask for gigabytes; real vocabularies are dense.
const ID_SLACK = 1024;

/** Checks the parts of tokenizer.json the library trusts, and returns them; throws naming `source`. */
function checkTokenizerJson(json: unknown, source: string): z.infer<typeof tokenizerFileSchema> {
  const parsed = tokenizerFileSchema.safeParse(json);
  if (!parsed.success)
    throw new Error(
      `${source}: not a tokenizer.json (${describeIssues(parsed.error, { limit: 3 })})`,
    );
  const { model, added_tokens } = parsed.data;
  const vocab = model.vocab && !Array.isArray(model.vocab) ? Object.entries(model.vocab) : [];
  const listed =
    (Array.isArray(model.vocab) ? model.vocab.length : vocab.length) + (added_tokens?.length ?? 0);
  const limit = 2 * listed + ID_SLACK;
  for (const [token, id] of [
    ...vocab,
    ...(added_tokens ?? []).map((t) => [t.content, t.id] as const),
  ])
    if (id >= limit)
      throw new Error(
        `${source}: token ${JSON.stringify(token.slice(0, 40))} has id ${id}, far beyond the ${listed} tokens the file lists (ids should be dense)`,
      );
  return parsed.data;
}

/** GPT-2's byte-level alphabet: byte b is shown as a printable character (space -> 'Ġ', '\n' -> 'Ċ'). */
function byteLevelAlphabet(): { charToByte: Map<string, number>; byteToChar: string[] } {
  const printable = (b: number) =>
    (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  const byteToChar: string[] = [];
  let next = 256;
  for (let b = 0; b < 256; b++) byteToChar[b] = String.fromCodePoint(printable(b) ? b : next++);
  return { charToByte: new Map(byteToChar.map((c, b) => [c, b])), byteToChar };
}

/** Bytes as text; bytes that are not valid UTF-8 on their own (a piece of a character) shown as \xNN. */
function bytesToReadable(bytes: Uint8Array): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return [...bytes]
      .map((b) =>
        b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, '0')}`,
      )
      .join('');
  }
}

export class Tokenizer {
  /** One more than the largest token id (added tokens included); model vocabularies may be padded larger. */
  readonly vocabSize: number;
  private readonly hf: HfTokenizer;
  private readonly source: string;
  private readonly byteLevel: ReturnType<typeof byteLevelAlphabet> | undefined;
  private readonly addedTokens: Map<string, number>;

  private constructor(json: unknown, source: string) {
    this.source = source;
    if (typeof json !== 'object' || json === null || !('model' in json))
      throw new Error(`${source}: not a tokenizer.json (no "model" section)`);
    const checked = checkTokenizerJson(json, source);
    try {
      this.hf = new HfTokenizer(json, {});
    } catch (e) {
      throw new Error(`${source}: cannot build tokenizer (${(e as Error).message})`, { cause: e });
    }
    let maxId = -1;
    for (const id of this.hf.get_vocab(true).values()) maxId = Math.max(maxId, id);
    this.vocabSize = maxId + 1;
    this.byteLevel = checked.decoder?.type === 'ByteLevel' ? byteLevelAlphabet() : undefined;
    this.addedTokens = new Map(
      [...this.hf.get_added_tokens_decoder()].map(([id, token]) => [token.content, id]),
    );
  }

  /** Loads a tokenizer.json; errors name the file. */
  static fromFile(path: string): Tokenizer {
    return new Tokenizer(readJsonFile(path), path);
  }

  static fromJson(json: object): Tokenizer {
    return new Tokenizer(json, 'tokenizer JSON');
  }

  /** Token ids of text, with no special tokens added. */
  encode(text: string): number[] {
    return this.hf.encode(text, { add_special_tokens: false }).ids;
  }

  /** Text of token ids, special tokens kept and spaces untouched. */
  decode(ids: number[]): string {
    for (const id of ids) this.checkId(id);
    return this.hf.decode(ids, { skip_special_tokens: false, clean_up_tokenization_spaces: false });
  }

  /**
   * One token as readable text, e.g. 403 -> ' are' (byte-level 'Ġ' shown as the space it stands for).
   * A token holding part of a multi-byte character shows its bytes as \xNN; ids past the
   * tokenizer's vocabulary (padding rows of a model's embedding) show as <id N>.
   */
  tokenString(id: number): string {
    if (!Number.isInteger(id) || id < 0)
      throw new Error(`${this.source}: token id ${id} is not a non-negative integer`);
    const token = this.hf.id_to_token(id);
    if (token === undefined) return `<id ${id}>`;
    if (this.addedTokens.get(token) === id) return token;
    if (!this.byteLevel)
      return this.hf.decode([id], {
        skip_special_tokens: false,
        clean_up_tokenization_spaces: false,
      });
    const bytes: number[] = [];
    for (const ch of token) {
      const b = this.byteLevel.charToByte.get(ch);
      if (b === undefined) return token; // not byte-level encoded after all
      bytes.push(b);
    }
    return bytesToReadable(Uint8Array.from(bytes));
  }

  /** The id of text if it is exactly one token (e.g. ' are' -> 403), else undefined. */
  tokenId(text: string): number | undefined {
    const added = this.addedTokens.get(text);
    if (added !== undefined) return added;
    if (this.byteLevel) {
      const { byteToChar } = this.byteLevel;
      const token = [...new TextEncoder().encode(text)].map((b) => byteToChar[b]).join('');
      return this.hf.token_to_id(token);
    }
    const ids = this.encode(text);
    return ids.length === 1 ? ids[0] : undefined;
  }

  private checkId(id: number): void {
    if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize)
      throw new Error(
        `${this.source}: token id ${id} is not in the vocabulary (ids 0..${this.vocabSize - 1})`,
      );
  }
}
