// Opening a model folder for the commands that read text: the engine for its architecture
// (openModel: GptNeoX for GPT-NeoX, Transformer for the other families) and its tokenizer.

import type { LanguageModel } from '../model/language-model.ts';
import { openModel } from '../model/load-family.ts';
import type { Tokenizer } from '../model/tokenizer.ts';

/** `why` ends the error when the folder has no tokenizer.json ("needed to read ..."). */
export function openModelWithTokenizer(
  dir: string,
  why: string,
): { model: LanguageModel; tokenizer: Tokenizer } {
  const { model, tokenizer } = openModel(dir, { tokenizer: true });
  if (!tokenizer) throw new Error(`${dir}: no tokenizer.json, ${why}`);
  return { model, tokenizer };
}
