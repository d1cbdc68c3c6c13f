// Tiny random models of every family on the generic engine (transformer.ts), with configs read by
// the families' own readers, for tests that need a model of a family but not a trained one.

import { Transformer } from '../../src/model/transformer.ts';
import { readFamilyConfig } from '../../src/model/families/index.ts';
import {
  namedParameters,
  zeroTransformerWeights,
  type TransformerConfig,
} from '../../src/model/families/family.ts';
import { Rng } from '../../src/random.ts';

const common = { vocab_size: 23, max_position_embeddings: 12, intermediate_size: 24 };
const llamaShape = {
  ...common,
  hidden_size: 16,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
};

/** One tiny config.json per family, exercising each family's distinctive options. */
export const TINY_CONFIGS: Record<string, Record<string, unknown>> = {
  gpt2: {
    architectures: ['GPT2LMHeadModel'],
    vocab_size: 23,
    n_embd: 16,
    n_layer: 2,
    n_head: 2,
    n_positions: 12,
    n_inner: null,
  },
  llama: {
    architectures: ['LlamaForCausalLM'],
    ...llamaShape,
    head_dim: 6,
    attention_bias: true,
    rms_norm_eps: 1e-5,
    // theta 100, R 6: wavelengths 6.3, 29, 135 against 32/4 = 8 and 32/1 = 32: all three bands
    rope_theta: 100,
    rope_scaling: {
      rope_type: 'llama3',
      factor: 4,
      low_freq_factor: 1,
      high_freq_factor: 4,
      original_max_position_embeddings: 32,
    },
  },
  qwen2: {
    architectures: ['Qwen2ForCausalLM'],
    ...llamaShape,
    tie_word_embeddings: true,
    rope_theta: 1000,
  },
  qwen3: {
    architectures: ['Qwen3ForCausalLM'],
    ...llamaShape,
    head_dim: 6,
    // transformers 5.x layout
    rope_parameters: { rope_type: 'default', rope_theta: 1000 },
  },
  gemma2: {
    architectures: ['Gemma2ForCausalLM'],
    ...llamaShape,
    head_dim: 6,
    query_pre_attn_scalar: 5,
    sliding_window: 3,
    attn_logit_softcapping: 2,
    final_logit_softcapping: 5,
    hidden_activation: 'gelu_pytorch_tanh',
  },
};

/**
 * Normal weights: norm gains near their identity (1, or 0 for Gemma's 1 + w), biases N(0, 0.1²),
 * embeddings N(0, 1), every other matrix N(0, scale²).
 */
export function randomTransformerWeights(config: TransformerConfig, seed: number, scale = 0.3) {
  const w = zeroTransformerWeights(config);
  const generator = new Rng(seed);
  const next = () => generator.normal();
  for (const [name, t] of namedParameters(w)) {
    const isNorm = /Norm/.test(name) && !name.endsWith('bias');
    for (let i = 0; i < t.length; i++) {
      if (isNorm) t[i] = (config.norm === 'rmsnorm_1p' ? 0 : 1) + 0.2 * next();
      else if (/[Bb]ias$/.test(name)) t[i] = 0.1 * next();
      else if (name === 'embed' || name === 'positions') t[i] = next();
      else t[i] = scale * next();
    }
  }
  return w;
}

/** A tiny random model of `family` (a TINY_CONFIGS key), its config read by the family's reader. */
export function tinyTransformer(family: string, seed = 1, scale = 0.3): Transformer {
  const { config } = readFamilyConfig(TINY_CONFIGS[family], `${family}/config.json`);
  return new Transformer(config, randomTransformerWeights(config, seed, scale));
}
