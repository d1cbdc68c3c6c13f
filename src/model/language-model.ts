// What code that runs "a model" needs from either engine: the dedicated GptNeoX (gptneox.ts) or
// the generic Transformer (transformer.ts). Both already have these members; their configs name
// the sizes differently, so modelShape reads them.

import type { Batch, SiteHook } from './gptneox.ts';
import type { GptNeoXConfig } from './config.ts';
import type { TransformerConfig } from './families/family.ts';

export interface LanguageModelForwardOptions {
  hooks?: Record<string, SiteHook>;
  logits?: 'all' | 'last' | 'none';
  forBackward?: boolean;
  topLayerRows?: 'all' | 'last';
}

export interface LanguageModelBackwardOptions {
  stopGradient?: Iterable<string>;
  seeds?: Record<string, Float32Array>;
}

export interface LanguageModelPass {
  readonly batch: Batch;
  readonly logits: Float32Array;
  activation(site: string): Float32Array;
  backward(
    dLogits: Float32Array | null,
    options?: LanguageModelBackwardOptions,
  ): Map<string, Float32Array>;
}

export interface LanguageModel {
  readonly config: GptNeoXConfig | TransformerConfig;
  /** Every site in computation order. */
  readonly sites: string[];
  forward(batch: Batch, options?: LanguageModelForwardOptions): LanguageModelPass;
}

export interface ModelShape {
  architecture: string;
  numLayers: number;
  hiddenSize: number;
  vocabSize: number;
  /** Longest sequence the model takes (max_position_embeddings / n_positions). */
  maxPositions: number;
}

export function modelShape(model: LanguageModel): ModelShape {
  const c = model.config;
  if ('architecture' in c)
    return {
      architecture: c.architecture,
      numLayers: c.numLayers,
      hiddenSize: c.hiddenSize,
      vocabSize: c.vocabSize,
      maxPositions: c.maxPositions,
    };
  return {
    architecture: 'GPTNeoXForCausalLM',
    numLayers: c.numLayers,
    hiddenSize: c.hiddenSize,
    vocabSize: c.vocabSize,
    maxPositions: c.maxPositionEmbeddings,
  };
}
