// Loading any supported family from a Hugging Face folder onto the generic engine
// (transformer.ts): config.json's architectures entry picks the family (families/index.ts), the
// weights come from model.safetensors or the shards of its index (F32/F16/BF16, all read as
// float32), the tokenizer from tokenizer.json with tokenizer_config.json. openModel picks the
// engine: the dedicated GptNeoX for GPTNeoXForCausalLM (the shipped organism, unchanged), the
// generic Transformer for the others.

import { readJsonFile } from '../io/text-file.ts';
import { readFamilyConfig } from './families/index.ts';
import { readTransformerWeights, type Family, type TransformerConfig } from './families/family.ts';
import { GptNeoX } from './gptneox.ts';
import {
  loadFolderTokenizer,
  loadModel,
  modelConfigFile,
  nearbyNames,
  openCheckpoint,
} from './load.ts';
import type { Tokenizer } from './tokenizer.ts';
import { Transformer } from './transformer.ts';

export interface LoadedTransformer {
  dir: string;
  family: Family;
  config: TransformerConfig;
  model: Transformer;
  tokenizer?: Tokenizer; // only when asked for and the folder has tokenizer.json
}

/**
 * Reads a model folder of any supported family (GPT-NeoX included) onto the generic engine.
 * Tensors the family does not use (buffers, extra heads) are ignored.
 */
export function loadTransformer(
  dir: string,
  options: { tokenizer?: boolean } = {},
): LoadedTransformer {
  const configFile = modelConfigFile(dir);
  const { family, config } = readFamilyConfig(readJsonFile(configFile), configFile);
  const checkpoint = openCheckpoint(dir);
  const has = (name: string) => checkpoint.fileOf(name) !== undefined;
  for (const t of family.tensors(config, has))
    if (!has(t.name))
      throw new Error(
        `${checkpoint.source}: missing tensor ${t.name} (shape ${JSON.stringify(t.shape)}) for ${config.architecture}; ${nearbyNames(t.name, checkpoint.files)}`,
      );
  const weights = readTransformerWeights(
    family,
    config,
    (name) => {
      const file = checkpoint.fileOf(name);
      return file && { shape: file.shape(name), data: () => file.read(name).data };
    },
    checkpoint.source,
  );
  const loaded: LoadedTransformer = {
    dir,
    family,
    config,
    model: new Transformer(config, weights),
  };
  if (options.tokenizer) loaded.tokenizer = loadFolderTokenizer(dir, config.vocabSize, configFile);
  return loaded;
}

export interface OpenedModel {
  dir: string;
  /** config.json's architectures entry (GPTNeoXForCausalLM for a config without one). */
  architecture: string;
  model: GptNeoX | Transformer;
  tokenizer?: Tokenizer;
}

/**
 * The model of a folder on the engine for its architecture: GptNeoX for GPTNeoXForCausalLM (and
 * configs naming no architecture, as loadModel always took them), Transformer for the others.
 */
export function openModel(dir: string, options: { tokenizer?: boolean } = {}): OpenedModel {
  const configFile = modelConfigFile(dir);
  const json = readJsonFile(configFile) as { architectures?: unknown; model_type?: unknown };
  const arch = Array.isArray(json?.architectures) ? json.architectures[0] : undefined;
  const neox =
    arch === 'GPTNeoXForCausalLM' ||
    (arch === undefined && (json?.model_type ?? 'gpt_neox') === 'gpt_neox');
  if (neox) {
    const loaded = loadModel(dir, options);
    return {
      dir,
      architecture: 'GPTNeoXForCausalLM',
      model: new GptNeoX(loaded.config, loaded.weights),
      tokenizer: loaded.tokenizer,
    };
  }
  const loaded = loadTransformer(dir, options);
  return {
    dir,
    architecture: loaded.config.architecture,
    model: loaded.model,
    tokenizer: loaded.tokenizer,
  };
}
