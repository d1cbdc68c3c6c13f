// LlamaForCausalLM (Llama 2/3): RMSNorm, grouped-query attention with rotary over the whole head
// (rope_theta, llama3 scaling), optional attention/MLP biases, SwiGLU, tied or untied head.

import { z } from 'zod';
import {
  checkHeads,
  llamaStyleTensors,
  parseWith,
  readActivation,
  readRope,
  ropeConfig,
  type Family,
  type TransformerConfig,
} from './family.ts';

const positive = z.number().int().positive();

/** The keys Llama, Qwen2 and Qwen3 share. */
export const llamaStyleJson = {
  vocab_size: positive,
  hidden_size: positive,
  num_hidden_layers: positive,
  num_attention_heads: positive,
  num_key_value_heads: positive.optional(),
  head_dim: positive.nullable().optional(),
  intermediate_size: positive,
  max_position_embeddings: positive,
  rms_norm_eps: z.number().positive().default(1e-6),
  hidden_act: z.string().default('silu'),
  tie_word_embeddings: z.boolean().default(false),
  attention_bias: z.boolean().default(false),
  mlp_bias: z.boolean().default(false),
  use_sliding_window: z.boolean().default(false),
  ...ropeConfig,
};

type LlamaStyleJson = z.infer<z.ZodObject<typeof llamaStyleJson>>;

/** The config of a Llama-style model; the family then sets its own biases and norms. */
export function llamaStyleConfig(
  j: LlamaStyleJson,
  file: string,
  architecture: string,
): TransformerConfig {
  if (j.use_sliding_window)
    throw new Error(`${file}: use_sliding_window true is not implemented for ${architecture}`);
  const H = j.num_attention_heads;
  const KV = j.num_key_value_heads ?? H;
  const Dh = checkHeads(file, j.hidden_size, H, KV, j.head_dim ?? undefined);
  const rope = readRope(j, file, 10000);
  const R = Math.floor(Dh * rope.fraction);
  if (R % 2 !== 0) throw new Error(`${file}: rotary dims ${R} of head_dim ${Dh} must be even`);
  return {
    architecture,
    vocabSize: j.vocab_size,
    hiddenSize: j.hidden_size,
    numLayers: j.num_hidden_layers,
    numHeads: H,
    numKvHeads: KV,
    headDim: Dh,
    intermediateSize: j.intermediate_size,
    maxPositions: j.max_position_embeddings,
    norm: 'rmsnorm',
    normEps: j.rms_norm_eps,
    qkNorm: false,
    learnedPositions: false,
    rotaryDims: R,
    ropeTheta: rope.theta,
    ropeScaling: rope.scaling,
    embedScale: 1,
    attnScale: 1 / Math.sqrt(Dh),
    attnSoftcap: null,
    slidingWindows: Array.from({ length: j.num_hidden_layers }, () => null),
    qkvBias: j.attention_bias,
    oBias: j.attention_bias,
    mlpBias: j.mlp_bias,
    gatedMlp: true,
    activation: readActivation(j.hidden_act, 'hidden_act', file),
    block: 'sequential',
    finalSoftcap: null,
    tiedEmbeddings: j.tie_word_embeddings,
  };
}

export const llama: Family = {
  architecture: 'LlamaForCausalLM',
  readConfig(json, file) {
    const j = parseWith(z.looseObject(llamaStyleJson), json, file, this.architecture);
    return llamaStyleConfig(j, file, this.architecture);
  },
  tensors: (c) => llamaStyleTensors(c),
};
