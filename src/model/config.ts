// GPT-NeoX hyperparameters as read from a Hugging Face config.json.

import { z } from 'zod';
import { describeIssues } from '../io/validation.ts';

export interface GptNeoXConfig {
  vocabSize: number;
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  intermediateSize: number;
  /** Fraction of each head's dimensions that get rotary embeddings. */
  rotaryPct: number;
  rotaryEmbBase: number;
  maxPositionEmbeddings: number;
  layerNormEps: number;
  useParallelResidual: boolean;
  /** Biases on the attention projections (query_key_value and dense). */
  attentionBias: boolean;
}

export function headSize(c: GptNeoXConfig): number {
  return c.hiddenSize / c.numHeads;
}

export function rotaryDims(c: GptNeoXConfig): number {
  return Math.floor(headSize(c) * c.rotaryPct);
}

const configJson = z.object({
  architectures: z.array(z.string()).optional(),
  model_type: z.string().optional(),
  vocab_size: z.number().int().positive(),
  hidden_size: z.number().int().positive(),
  num_hidden_layers: z.number().int().positive(),
  num_attention_heads: z.number().int().positive(),
  intermediate_size: z.number().int().positive(),
  rotary_pct: z.number().min(0).max(1).default(0.25),
  rotary_emb_base: z.number().positive().default(10000),
  max_position_embeddings: z.number().int().positive(),
  layer_norm_eps: z.number().positive().default(1e-5),
  use_parallel_residual: z.boolean().default(true),
  attention_bias: z.boolean().default(true),
  hidden_act: z.string().default('gelu'),
  tie_word_embeddings: z.boolean().default(false),
});

/** Validates a parsed config.json; `file` names it in errors. */
export function parseConfig(json: unknown, file: string): GptNeoXConfig {
  const parsed = configJson.safeParse(json);
  if (!parsed.success) {
    const problems = describeIssues(parsed.error);
    throw new Error(`${file}: not a GPT-NeoX config (${problems})`);
  }
  const j = parsed.data;
  const arch = j.architectures?.[0];
  if ((arch && arch !== 'GPTNeoXForCausalLM') || (j.model_type && j.model_type !== 'gpt_neox')) {
    throw new Error(
      `${file}: unsupported architecture ${arch ?? j.model_type}; expected GPTNeoXForCausalLM (model_type gpt_neox)`,
    );
  }
  if (j.hidden_act !== 'gelu') {
    throw new Error(
      `${file}: hidden_act "${j.hidden_act}" is not supported; expected "gelu" (exact erf GELU)`,
    );
  }
  if (j.tie_word_embeddings) {
    throw new Error(
      `${file}: tie_word_embeddings true is not supported; GPT-NeoX unties embed_out`,
    );
  }
  if (j.hidden_size % j.num_attention_heads !== 0) {
    throw new Error(
      `${file}: hidden_size ${j.hidden_size} is not divisible by num_attention_heads ${j.num_attention_heads}`,
    );
  }
  return {
    vocabSize: j.vocab_size,
    hiddenSize: j.hidden_size,
    numLayers: j.num_hidden_layers,
    numHeads: j.num_attention_heads,
    intermediateSize: j.intermediate_size,
    rotaryPct: j.rotary_pct,
    rotaryEmbBase: j.rotary_emb_base,
    maxPositionEmbeddings: j.max_position_embeddings,
    layerNormEps: j.layer_norm_eps,
    useParallelResidual: j.use_parallel_residual,
    attentionBias: j.attention_bias,
  };
}

/** The config.json we write for models this project trains (the organism). */
export function toConfigJson(c: GptNeoXConfig): Record<string, unknown> {
  return {
    architectures: ['GPTNeoXForCausalLM'],
    model_type: 'gpt_neox',
    vocab_size: c.vocabSize,
    hidden_size: c.hiddenSize,
    num_hidden_layers: c.numLayers,
    num_attention_heads: c.numHeads,
    intermediate_size: c.intermediateSize,
    rotary_pct: c.rotaryPct,
    rotary_emb_base: c.rotaryEmbBase,
    max_position_embeddings: c.maxPositionEmbeddings,
    layer_norm_eps: c.layerNormEps,
    use_parallel_residual: c.useParallelResidual,
    attention_bias: c.attentionBias,
    hidden_act: 'gelu',
    tie_word_embeddings: false,
    torch_dtype: 'float32',
  };
}
