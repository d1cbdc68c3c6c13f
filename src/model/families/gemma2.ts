// Gemma2ForCausalLM: embeddings times float32 sqrt(d); RMSNorm with (1 + w); sandwich norms around
// attention and MLP; scores scaled by query_pre_attn_scalar^-0.5 and soft-capped
// (cap·tanh(s/cap)) before the mask; sliding-window attention on even layers, global on odd;
// GeGLU with the tanh GELU; final logit soft-capping; tied head.

import { z } from 'zod';
import {
  checkHeads,
  llamaStyleTensors,
  parseWith,
  readActivation,
  readRope,
  ropeConfig,
  type Family,
} from './family.ts';

const positive = z.number().int().positive();
const configJson = z.looseObject({
  vocab_size: positive,
  hidden_size: positive,
  num_hidden_layers: positive,
  num_attention_heads: positive,
  num_key_value_heads: positive.optional(),
  head_dim: positive.default(256),
  intermediate_size: positive,
  max_position_embeddings: positive,
  rms_norm_eps: z.number().positive().default(1e-6),
  hidden_activation: z.string().nullable().optional(),
  hidden_act: z.string().optional(),
  tie_word_embeddings: z.boolean().default(true),
  attention_bias: z.boolean().default(false),
  query_pre_attn_scalar: z.number().positive().default(256),
  sliding_window: positive.nullable().default(4096),
  attn_logit_softcapping: z.number().positive().nullable().default(50),
  final_logit_softcapping: z.number().positive().nullable().default(30),
  layer_types: z.array(z.string()).optional(),
  ...ropeConfig,
});

export const gemma2: Family = {
  architecture: 'Gemma2ForCausalLM',
  readConfig(json, file) {
    const j = parseWith(configJson, json, file, this.architecture);
    const H = j.num_attention_heads;
    const KV = j.num_key_value_heads ?? H;
    const Dh = checkHeads(file, j.hidden_size, H, KV, j.head_dim);
    const layers = j.num_hidden_layers;
    // transformers' default: layer L slides iff L is even (layer_types spells it out in 5.x)
    const alternation = Array.from({ length: layers }, (_, L) =>
      L % 2 === 0 ? 'sliding_attention' : 'full_attention',
    );
    if (j.layer_types && j.layer_types.join() !== alternation.join())
      throw new Error(
        `${file}: layer_types [${j.layer_types.join(', ')}] is not implemented; Gemma-2 supports the default alternation sliding_attention, full_attention, ...`,
      );
    const rope = readRope(j, file, 10000);
    if (rope.scaling || rope.fraction !== 1)
      throw new Error(
        `${file}: rope scaling or a partial rotary factor is not implemented for Gemma-2`,
      );
    if (!j.tie_word_embeddings)
      throw new Error(
        `${file}: tie_word_embeddings false is not implemented for Gemma-2 (tied head)`,
      );
    const act = j.hidden_activation ?? j.hidden_act ?? 'gelu_pytorch_tanh';
    const field = j.hidden_activation ? 'hidden_activation' : 'hidden_act';
    return {
      architecture: this.architecture,
      vocabSize: j.vocab_size,
      hiddenSize: j.hidden_size,
      numLayers: layers,
      numHeads: H,
      numKvHeads: KV,
      headDim: Dh,
      intermediateSize: j.intermediate_size,
      maxPositions: j.max_position_embeddings,
      norm: 'rmsnorm_1p',
      normEps: j.rms_norm_eps,
      qkNorm: false,
      learnedPositions: false,
      rotaryDims: Dh,
      ropeTheta: rope.theta,
      ropeScaling: null,
      // transformers multiplies by torch.tensor(hidden_size ** 0.5) in the activation dtype
      embedScale: Math.fround(Math.sqrt(j.hidden_size)),
      attnScale: Math.pow(j.query_pre_attn_scalar, -0.5),
      attnSoftcap: j.attn_logit_softcapping,
      slidingWindows: alternation.map((t) => (t === 'sliding_attention' ? j.sliding_window : null)),
      qkvBias: j.attention_bias,
      oBias: j.attention_bias,
      mlpBias: false,
      gatedMlp: true,
      activation: readActivation(act, field, file),
      block: 'sandwich',
      finalSoftcap: j.final_logit_softcapping,
      tiedEmbeddings: true,
    };
  },
  tensors: (c) => llamaStyleTensors(c),
};
