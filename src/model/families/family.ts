// What a model family is on the generic engine (transformer.ts): a config reader that turns a
// Hugging Face config.json into one TransformerConfig of flags (TransformerLens style), and a
// weight map from the checkpoint's tensor names to canonical roles (llama.cpp style). The block
// wiring is a flag of the config ('parallel', 'sequential', 'sandwich').
// Shapes: d hidden size, H query heads, KV key/value heads, Dh head dim, f MLP dim, V vocab.

import { z } from 'zod';
import { describeIssues } from '../../io/validation.ts';
import type { Llama3Scaling } from '../layers/rotary.ts';
import type { GroupedAttentionWeights } from '../layers/grouped-attention.ts';
import type { Activation, FeedForwardWeights } from '../layers/mlp.ts';

export type NormKind = 'layernorm' | 'rmsnorm' | 'rmsnorm_1p';

export interface TransformerConfig {
  /** The architectures entry of config.json, e.g. LlamaForCausalLM. */
  architecture: string;
  vocabSize: number;
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  intermediateSize: number;
  /** Longest sequence the model takes (max_position_embeddings / n_positions). */
  maxPositions: number;
  /** layernorm (with bias), rmsnorm (x̂·w), rmsnorm_1p (Gemma: x̂·(1 + w)). */
  norm: NormKind;
  normEps: number;
  /** Per-head RMSNorm of q and k over Dh before rotary (Qwen3). */
  qkNorm: boolean;
  /** Learned position embeddings added to the token embeddings (GPT-2). */
  learnedPositions: boolean;
  /** Rotary dims per head (0: no rotary), theta and optional llama3 scaling. */
  rotaryDims: number;
  ropeTheta: number;
  ropeScaling: Llama3Scaling | null;
  /** Multiplies the token embeddings (Gemma-2: float32 sqrt(d); else 1). */
  embedScale: number;
  /** Multiplies q·k: 1/sqrt(Dh), or query_pre_attn_scalar^-0.5. */
  attnScale: number;
  attnSoftcap: number | null;
  /** Sliding window per layer (null: global attention). */
  slidingWindows: (number | null)[];
  qkvBias: boolean;
  oBias: boolean;
  mlpBias: boolean;
  gatedMlp: boolean;
  activation: Activation;
  /** parallel: x + attn(n1 x) + mlp(n2 x); sequential: mid = x + attn(n1 x), mid + mlp(n2 mid);
   * sandwich (Gemma-2): mid = x + n1'(attn(n1 x)), mid + n2'(mlp(n2 mid)). */
  block: 'parallel' | 'sequential' | 'sandwich';
  finalSoftcap: number | null;
  tiedEmbeddings: boolean;
}

export interface NormWeights {
  weight: Float32Array; // [d]
  bias: Float32Array | null; // [d] for layernorm
}

export interface BlockWeights {
  attnNorm: NormWeights;
  attn: GroupedAttentionWeights;
  oWeight: Float32Array; // [d, H·Dh]
  oBias: Float32Array | null; // [d]
  postAttnNorm: NormWeights | null; // sandwich only
  mlpNorm: NormWeights;
  mlp: FeedForwardWeights;
  postMlpNorm: NormWeights | null; // sandwich only
}

export interface TransformerWeights {
  embed: Float32Array; // [V, d]
  positions: Float32Array | null; // [maxPositions, d]
  layers: BlockWeights[];
  finalNorm: NormWeights;
  /** [V, d]; the same array as embed when the head is tied. */
  unembed: Float32Array;
}

/** One checkpoint tensor: its name, its shape on disk, and where its values go. */
export interface TensorSource {
  name: string;
  shape: number[];
  assign: (w: TransformerWeights, data: Float32Array) => void;
}

export interface Family {
  architecture: string;
  /** Validates a parsed config.json (the architectures entry already matched). */
  readConfig(json: unknown, file: string): TransformerConfig;
  /** The tensors to read; `has` tells which names the checkpoint holds (for optional prefixes). */
  tensors(config: TransformerConfig, has: (name: string) => boolean): TensorSource[];
}

/** Parses json with a zod schema, naming the file and family in the error. */
export function parseWith<T extends z.ZodType>(
  schema: T,
  json: unknown,
  file: string,
  architecture: string,
): z.infer<T> {
  const parsed = schema.safeParse(json);
  if (!parsed.success)
    throw new Error(
      `${file}: not a valid ${architecture} config (${describeIssues(parsed.error)})`,
    );
  return parsed.data;
}

const ropeFields = {
  rope_type: z.string().optional(),
  type: z.string().optional(),
  rope_theta: z.number().positive().optional(),
  factor: z.number().positive().optional(),
  low_freq_factor: z.number().positive().optional(),
  high_freq_factor: z.number().positive().optional(),
  original_max_position_embeddings: z.number().int().positive().optional(),
  partial_rotary_factor: z.number().gt(0).max(1).optional(),
};

/** The rope keys of transformers 4.x (rope_theta, rope_scaling) and 5.x (rope_parameters). */
export const ropeConfig = {
  rope_theta: z.number().positive().optional(),
  rope_scaling: z.looseObject(ropeFields).nullable().optional(),
  rope_parameters: z.looseObject(ropeFields).nullable().optional(),
  partial_rotary_factor: z.number().gt(0).max(1).optional(),
};

/**
 * theta, llama3 scaling and the rotary fraction from either layout; any rope type other than
 * default and llama3 is refused (it would change the computation).
 */
export function readRope(
  j: {
    rope_theta?: number;
    rope_scaling?: z.infer<z.ZodObject<typeof ropeFields>> | null;
    rope_parameters?: z.infer<z.ZodObject<typeof ropeFields>> | null;
    partial_rotary_factor?: number;
  },
  file: string,
  defaultTheta: number,
): { theta: number; scaling: Llama3Scaling | null; fraction: number } {
  const where = j.rope_parameters ? 'rope_parameters' : 'rope_scaling';
  const p = j.rope_parameters ?? j.rope_scaling ?? null;
  const theta = j.rope_parameters?.rope_theta ?? j.rope_theta ?? defaultTheta;
  const fraction = p?.partial_rotary_factor ?? j.partial_rotary_factor ?? 1;
  const type = p?.rope_type ?? p?.type ?? 'default';
  if (type === 'default') return { theta, scaling: null, fraction };
  if (type !== 'llama3')
    throw new Error(
      `${file}: ${where}.rope_type "${type}" is not implemented; supported: "default", "llama3"`,
    );
  const missing = (
    ['factor', 'low_freq_factor', 'high_freq_factor', 'original_max_position_embeddings'] as const
  ).filter((k) => p?.[k] === undefined);
  if (missing.length)
    throw new Error(`${file}: ${where} of rope_type "llama3" lacks ${missing.join(', ')}`);
  if (p!.high_freq_factor! <= p!.low_freq_factor!)
    throw new Error(
      `${file}: ${where}.high_freq_factor ${p!.high_freq_factor} must exceed low_freq_factor ${p!.low_freq_factor}`,
    );
  return {
    theta,
    fraction,
    scaling: {
      factor: p!.factor!,
      lowFreqFactor: p!.low_freq_factor!,
      highFreqFactor: p!.high_freq_factor!,
      originalContext: p!.original_max_position_embeddings!,
    },
  };
}

/** Hugging Face activation names -> ours; anything else is refused. */
export function readActivation(name: string, field: string, file: string): Activation {
  const known: Record<string, Activation> = {
    gelu: 'gelu',
    gelu_new: 'gelu_tanh',
    gelu_pytorch_tanh: 'gelu_tanh',
    silu: 'silu',
    swish: 'silu',
  };
  const act = known[name];
  if (!act)
    throw new Error(
      `${file}: ${field} "${name}" is not implemented; supported: ${Object.keys(known).join(', ')}`,
    );
  return act;
}

export function checkHeads(
  file: string,
  d: number,
  H: number,
  KV: number,
  headDim: number | undefined,
): number {
  if (H % KV !== 0)
    throw new Error(
      `${file}: num_attention_heads ${H} is not a multiple of num_key_value_heads ${KV}`,
    );
  if (headDim === undefined && d % H !== 0)
    throw new Error(
      `${file}: hidden_size ${d} is not divisible by num_attention_heads ${H} (and no head_dim is given)`,
    );
  return headDim ?? d / H;
}

/** Zero-filled weights of the config's shapes: the layout of parameter gradients too. */
export function zeroTransformerWeights(c: TransformerConfig): TransformerWeights {
  const { hiddenSize: d, numHeads: H, numKvHeads: KV, headDim: Dh, intermediateSize: f } = c;
  const zeros = (n: number) => new Float32Array(n);
  const maybe = (on: boolean, n: number) => (on ? zeros(n) : null);
  const norm = (): NormWeights => ({ weight: zeros(d), bias: maybe(c.norm === 'layernorm', d) });
  const embed = zeros(c.vocabSize * d);
  return {
    embed,
    positions: c.learnedPositions ? zeros(c.maxPositions * d) : null,
    layers: Array.from({ length: c.numLayers }, () => ({
      attnNorm: norm(),
      attn: {
        qWeight: zeros(H * Dh * d),
        qBias: maybe(c.qkvBias, H * Dh),
        kWeight: zeros(KV * Dh * d),
        kBias: maybe(c.qkvBias, KV * Dh),
        vWeight: zeros(KV * Dh * d),
        vBias: maybe(c.qkvBias, KV * Dh),
        qNorm: maybe(c.qkNorm, Dh),
        kNorm: maybe(c.qkNorm, Dh),
      },
      oWeight: zeros(d * H * Dh),
      oBias: maybe(c.oBias, d),
      postAttnNorm: c.block === 'sandwich' ? norm() : null,
      mlpNorm: norm(),
      mlp: {
        upWeight: zeros(f * d),
        upBias: maybe(c.mlpBias, f),
        gateWeight: maybe(c.gatedMlp, f * d),
        gateBias: maybe(c.gatedMlp && c.mlpBias, f),
        downWeight: zeros(d * f),
        downBias: maybe(c.mlpBias, d),
      },
      postMlpNorm: c.block === 'sandwich' ? norm() : null,
    })),
    finalNorm: norm(),
    unembed: c.tiedEmbeddings ? embed : zeros(c.vocabSize * d),
  };
}

/** Every parameter array of w with a stable name (a tied head is listed once, as embed). */
export function namedParameters(w: TransformerWeights): [string, Float32Array][] {
  const out: [string, Float32Array][] = [['embed', w.embed]];
  if (w.positions) out.push(['positions', w.positions]);
  const add = (prefix: string, obj: object) => {
    for (const [k, v] of Object.entries(obj)) {
      if (v instanceof Float32Array) out.push([`${prefix}.${k}`, v]);
      else if (v && typeof v === 'object') add(`${prefix}.${k}`, v);
    }
  };
  w.layers.forEach((layer, L) => add(`layers.${L}`, layer));
  add('finalNorm', w.finalNorm);
  if (w.unembed !== w.embed) out.push(['unembed', w.unembed]);
  return out;
}

/** Copies a [rows, cols] matrix transposed into [cols, rows] (Conv1D [in, out] -> [out, in]). */
export function transposed(data: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++)
    for (let c = 0; c < cols; c++) out[c * rows + r] = data[r * cols + c];
  return out;
}

/** The shared names of Llama-style checkpoints (Llama, Qwen2, Qwen3, Gemma-2). */
export function llamaStyleTensors(c: TransformerConfig): TensorSource[] {
  const { hiddenSize: d, numHeads: H, numKvHeads: KV, headDim: Dh, intermediateSize: f } = c;
  const V = c.vocabSize;
  const t: TensorSource[] = [
    { name: 'model.embed_tokens.weight', shape: [V, d], assign: (w, x) => w.embed.set(x) },
    { name: 'model.norm.weight', shape: [d], assign: (w, x) => w.finalNorm.weight.set(x) },
  ];
  if (!c.tiedEmbeddings)
    t.push({ name: 'lm_head.weight', shape: [V, d], assign: (w, x) => w.unembed.set(x) });
  for (let L = 0; L < c.numLayers; L++) {
    const p = `model.layers.${L}.`;
    const add = (name: string, shape: number[], get: (b: BlockWeights) => Float32Array | null) =>
      t.push({ name: p + name, shape, assign: (w, x) => get(w.layers[L])!.set(x) });
    add('input_layernorm.weight', [d], (b) => b.attnNorm.weight);
    add('self_attn.q_proj.weight', [H * Dh, d], (b) => b.attn.qWeight);
    add('self_attn.k_proj.weight', [KV * Dh, d], (b) => b.attn.kWeight);
    add('self_attn.v_proj.weight', [KV * Dh, d], (b) => b.attn.vWeight);
    add('self_attn.o_proj.weight', [d, H * Dh], (b) => b.oWeight);
    if (c.qkvBias) {
      add('self_attn.q_proj.bias', [H * Dh], (b) => b.attn.qBias);
      add('self_attn.k_proj.bias', [KV * Dh], (b) => b.attn.kBias);
      add('self_attn.v_proj.bias', [KV * Dh], (b) => b.attn.vBias);
    }
    if (c.oBias) add('self_attn.o_proj.bias', [d], (b) => b.oBias);
    if (c.qkNorm) {
      add('self_attn.q_norm.weight', [Dh], (b) => b.attn.qNorm);
      add('self_attn.k_norm.weight', [Dh], (b) => b.attn.kNorm);
    }
    if (c.block === 'sandwich') {
      add('post_attention_layernorm.weight', [d], (b) => b.postAttnNorm!.weight);
      add('pre_feedforward_layernorm.weight', [d], (b) => b.mlpNorm.weight);
      add('post_feedforward_layernorm.weight', [d], (b) => b.postMlpNorm!.weight);
    } else add('post_attention_layernorm.weight', [d], (b) => b.mlpNorm.weight);
    add('mlp.gate_proj.weight', [f, d], (b) => b.mlp.gateWeight);
    add('mlp.up_proj.weight', [f, d], (b) => b.mlp.upWeight);
    add('mlp.down_proj.weight', [d, f], (b) => b.mlp.downWeight);
    if (c.mlpBias) {
      add('mlp.gate_proj.bias', [f], (b) => b.mlp.gateBias);
      add('mlp.up_proj.bias', [f], (b) => b.mlp.upBias);
      add('mlp.down_proj.bias', [d], (b) => b.mlp.downBias);
    }
  }
  return t;
}

/**
 * Fills canonical weights from a checkpoint: read(name) gives a tensor's shape and float32 values
 * (or undefined when absent); `source` names the checkpoint in errors.
 */
export function readTransformerWeights(
  family: Family,
  config: TransformerConfig,
  read: (name: string) => { shape: number[]; data: () => Float32Array } | undefined,
  source: string,
): TransformerWeights {
  const w = zeroTransformerWeights(config);
  for (const t of family.tensors(config, (n) => read(n) !== undefined)) {
    const tensor = read(t.name);
    if (!tensor)
      throw new Error(
        `${source}: missing tensor ${t.name} (shape ${JSON.stringify(t.shape)}) for ${config.architecture}`,
      );
    if (tensor.shape.length !== t.shape.length || tensor.shape.some((s, i) => s !== t.shape[i]))
      throw new Error(
        `${source}: tensor ${t.name} has shape ${JSON.stringify(tensor.shape)}, expected ${JSON.stringify(t.shape)} from the config`,
      );
    t.assign(w, tensor.data());
  }
  return w;
}
