// A Hugging Face tokenizer.json (e.g. GPT-NeoX's byte-level BPE), through @huggingface/tokenizers.
// encode adds no BOS/EOS or other special tokens (task answers and corpora are scored as bare
// text); encodePrompt adds the beginning-of-sequence token as the model's own tokenizer would
// (Llama 3 and Gemma add one, GPT-2, Pythia and Qwen do not) or as asked. decode does no
// "clean up" of spaces, so decode(encode(text)) === text.

import path from 'node:path';
import { z } from 'zod';
import { readJsonFile } from '../io/text-file.ts';
import { describeIssues } from '../io/validation.ts';
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';

const tokenId = z.number().int().min(0);

/** Whether a prompt starts with the beginning-of-sequence token: as the tokenizer does, or forced. */
export type BosMode = 'auto' | 'always' | 'never';

// The parts of a post_processor that can add a BOS: TemplateProcessing (Llama 3, Gemma, Llama 2),
// possibly inside a Sequence (Llama 3 puts it after ByteLevel).
interface PostProcessor {
  type?: string;
  single?: unknown;
  special_tokens?: Record<string, { ids?: number[] }>;
  processors?: PostProcessor[];
}

/** The special token a TemplateProcessing puts before a single sequence, if any. */
function templateBos(pp: PostProcessor | null | undefined): { token: string; id: number } | null {
  if (!pp || typeof pp !== 'object') return null;
  if (pp.type === 'Sequence' && Array.isArray(pp.processors)) {
    for (const inner of pp.processors) {
      const found = templateBos(inner);
      if (found) return found;
    }
    return null;
  }
  if (pp.type !== 'TemplateProcessing' || !Array.isArray(pp.single)) return null;
  const first = pp.single[0] as { SpecialToken?: { id?: unknown } } | undefined;
  const token = first?.SpecialToken?.id;
  if (typeof token !== 'string') return null;
  const id = pp.special_tokens?.[token]?.ids?.[0];
  return typeof id === 'number' ? { token, id } : null;
}

// tokenizer_config.json: transformers rebuilds the template from add_bos_token when it is given,
// so it decides over tokenizer.json's post_processor.
const tokenizerConfigSchema = z.looseObject({
  add_bos_token: z.boolean().optional(),
  bos_token: z
    .union([z.string(), z.looseObject({ content: z.string() })])
    .nullable()
    .optional(),
});

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
  /** The beginning-of-sequence token, when the tokenizer names one. */
  readonly bos: { token: string; id: number } | undefined;
  /** Whether the model's own tokenizer starts every sequence with `bos`. */
  readonly addsBos: boolean;
  /** Where addsBos comes from, for messages (file names without their folder). */
  readonly bosReason: string;

  private constructor(json: unknown, source: string, config?: { json: unknown; source: string }) {
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

    const template = templateBos((json as { post_processor?: PostProcessor }).post_processor);
    let settings: z.infer<typeof tokenizerConfigSchema> = {};
    if (config) {
      const parsed = tokenizerConfigSchema.safeParse(config.json);
      if (!parsed.success)
        throw new Error(
          `${config.source}: not a tokenizer_config.json (${describeIssues(parsed.error, { limit: 3 })})`,
        );
      settings = parsed.data;
    }
    const named = settings.bos_token;
    const namedToken = typeof named === 'string' ? named : named?.content;
    if (template) this.bos = template;
    else if (namedToken !== undefined) {
      const id = this.hf.token_to_id(namedToken);
      if (id === undefined)
        throw new Error(
          `${config!.source}: bos_token ${JSON.stringify(namedToken)} is not in ${source}'s vocabulary`,
        );
      this.bos = { token: namedToken, id };
    }
    if (settings.add_bos_token !== undefined) {
      this.addsBos = settings.add_bos_token;
      this.bosReason = `${path.basename(config!.source)} says add_bos_token ${settings.add_bos_token}`;
      if (this.addsBos && !this.bos)
        throw new Error(
          `${config!.source}: add_bos_token is true but no bos_token is named (here or in ${source}'s post_processor)`,
        );
    } else {
      this.addsBos = template !== null;
      this.bosReason = template
        ? `${path.basename(source)}'s post_processor adds ${template.token}`
        : `${path.basename(source)}'s post_processor adds no BOS`;
    }
  }

  /**
   * Loads a tokenizer.json, with the tokenizer_config.json beside it when `configFile` is given
   * (it says whether to add a BOS); errors name the files.
   */
  static fromFile(file: string, options: { configFile?: string } = {}): Tokenizer {
    const json = readJsonFile(file);
    const config = options.configFile
      ? { json: readJsonFile(options.configFile), source: options.configFile }
      : undefined;
    return new Tokenizer(json, file, config);
  }

  /** `config` is a parsed tokenizer_config.json. */
  static fromJson(json: object, config?: object): Tokenizer {
    return new Tokenizer(
      json,
      'tokenizer JSON',
      config && { json: config, source: 'tokenizer config JSON' },
    );
  }

  /**
   * Token ids of a prompt the model reads from its first position: with the BOS token first when
   * `mode` is 'always', or 'auto' and the model's own tokenizer adds one. A text that already
   * starts with the BOS token gets no second one. Throws when a BOS is wanted and there is none.
   */
  encodePrompt(text: string, mode: BosMode = 'auto'): { ids: number[]; bos: boolean } {
    const ids = this.encode(text);
    if (mode === 'never' || (mode === 'auto' && !this.addsBos)) return { ids, bos: false };
    if (!this.bos)
      throw new Error(
        `${this.source}: a beginning-of-sequence token was asked for, but the tokenizer names none (no TemplateProcessing post_processor, no bos_token in tokenizer_config.json)`,
      );
    if (ids[0] === this.bos.id) return { ids, bos: true };
    return { ids: [this.bos.id, ...ids], bos: true };
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
