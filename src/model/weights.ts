// Parameters of a GPT-NeoX model as flat row-major Float32Arrays, PyTorch layouts:
// a Linear weight is [out, in]. Shapes use d = hiddenSize, f = intermediateSize, V = vocabSize.

import type { GptNeoXConfig } from './config.ts';

export interface LayerWeights {
  ln1Weight: Float32Array; // input_layernorm [d]
  ln1Bias: Float32Array; // [d]
  qkvWeight: Float32Array; // attention.query_key_value [3d, d], rows per head: q, k, v
  qkvBias: Float32Array; // [3d] (zeros when attention_bias is false)
  denseWeight: Float32Array; // attention.dense [d, d]
  denseBias: Float32Array; // [d]
  ln2Weight: Float32Array; // post_attention_layernorm [d]
  ln2Bias: Float32Array; // [d]
  fcInWeight: Float32Array; // mlp.dense_h_to_4h [f, d]
  fcInBias: Float32Array; // [f]
  fcOutWeight: Float32Array; // mlp.dense_4h_to_h [d, f]
  fcOutBias: Float32Array; // [d]
}

export interface GptNeoXWeights {
  embedIn: Float32Array; // gpt_neox.embed_in [V, d]
  layers: LayerWeights[];
  lnFinalWeight: Float32Array; // gpt_neox.final_layer_norm [d]
  lnFinalBias: Float32Array; // [d]
  embedOut: Float32Array; // embed_out [V, d]
}

type Shape = number[];

/** Hugging Face tensor name and shape of every parameter, in one place for loading and saving. */
export function parameterLayout(c: GptNeoXConfig): {
  name: string;
  shape: Shape;
  get: (w: GptNeoXWeights) => Float32Array;
  set: (w: GptNeoXWeights, value: Float32Array) => void;
}[] {
  const d = c.hiddenSize;
  const f = c.intermediateSize;
  const V = c.vocabSize;
  const entries: ReturnType<typeof parameterLayout> = [
    {
      name: 'gpt_neox.embed_in.weight',
      shape: [V, d],
      get: (w) => w.embedIn,
      set: (w, v) => (w.embedIn = v),
    },
  ];
  const layerFields: [keyof LayerWeights, string, Shape][] = [
    ['ln1Weight', 'input_layernorm.weight', [d]],
    ['ln1Bias', 'input_layernorm.bias', [d]],
    ['qkvWeight', 'attention.query_key_value.weight', [3 * d, d]],
    ['qkvBias', 'attention.query_key_value.bias', [3 * d]],
    ['denseWeight', 'attention.dense.weight', [d, d]],
    ['denseBias', 'attention.dense.bias', [d]],
    ['ln2Weight', 'post_attention_layernorm.weight', [d]],
    ['ln2Bias', 'post_attention_layernorm.bias', [d]],
    ['fcInWeight', 'mlp.dense_h_to_4h.weight', [f, d]],
    ['fcInBias', 'mlp.dense_h_to_4h.bias', [f]],
    ['fcOutWeight', 'mlp.dense_4h_to_h.weight', [d, f]],
    ['fcOutBias', 'mlp.dense_4h_to_h.bias', [d]],
  ];
  for (let L = 0; L < c.numLayers; L++) {
    for (const [field, suffix, shape] of layerFields) {
      entries.push({
        name: `gpt_neox.layers.${L}.${suffix}`,
        shape,
        get: (w) => w.layers[L][field],
        set: (w, v) => (w.layers[L][field] = v),
      });
    }
  }
  entries.push(
    {
      name: 'gpt_neox.final_layer_norm.weight',
      shape: [d],
      get: (w) => w.lnFinalWeight,
      set: (w, v) => (w.lnFinalWeight = v),
    },
    {
      name: 'gpt_neox.final_layer_norm.bias',
      shape: [d],
      get: (w) => w.lnFinalBias,
      set: (w, v) => (w.lnFinalBias = v),
    },
    {
      name: 'embed_out.weight',
      shape: [V, d],
      get: (w) => w.embedOut,
      set: (w, v) => (w.embedOut = v),
    },
  );
  return entries;
}

/** Zero-filled weights of the right shapes (also the layout of parameter gradients). */
export function zeroWeights(c: GptNeoXConfig): GptNeoXWeights {
  const w = {
    layers: Array.from({ length: c.numLayers }, () => ({})),
  } as unknown as GptNeoXWeights;
  for (const p of parameterLayout(c))
    p.set(w, new Float32Array(p.shape.reduce((a, b) => a * b, 1)));
  return w;
}
