// GPTNeoXForCausalLM (Pythia) on the generic engine: LayerNorm, fused query_key_value viewed per
// token as [H, 3, S] and split into q, k, v, partial rotary (rotary_pct), exact GELU, parallel or
// sequential residual, untied embed_out. The dedicated engine (../gptneox.ts) stays the one in use;
// this description proves the generic engine can express it.

import { parseConfig, rotaryDims } from '../config.ts';
import type { BlockWeights, Family, TensorSource } from './family.ts';

export const gptNeoX: Family = {
  architecture: 'GPTNeoXForCausalLM',
  readConfig(json, file) {
    const n = parseConfig(json, file);
    const S = n.hiddenSize / n.numHeads;
    return {
      architecture: this.architecture,
      vocabSize: n.vocabSize,
      hiddenSize: n.hiddenSize,
      numLayers: n.numLayers,
      numHeads: n.numHeads,
      numKvHeads: n.numHeads,
      headDim: S,
      intermediateSize: n.intermediateSize,
      maxPositions: n.maxPositionEmbeddings,
      norm: 'layernorm',
      normEps: n.layerNormEps,
      qkNorm: false,
      learnedPositions: false,
      rotaryDims: rotaryDims(n),
      ropeTheta: n.rotaryEmbBase,
      ropeScaling: null,
      embedScale: 1,
      attnScale: 1 / Math.sqrt(S),
      attnSoftcap: null,
      slidingWindows: Array.from({ length: n.numLayers }, () => null),
      qkvBias: n.attentionBias,
      oBias: n.attentionBias,
      mlpBias: true,
      gatedMlp: false,
      activation: 'gelu',
      block: n.useParallelResidual ? 'parallel' : 'sequential',
      finalSoftcap: null,
      tiedEmbeddings: false,
    };
  },
  tensors(c) {
    const d = c.hiddenSize;
    const f = c.intermediateSize;
    const S = c.headDim;
    const H = c.numHeads;
    const t: TensorSource[] = [
      {
        name: 'gpt_neox.embed_in.weight',
        shape: [c.vocabSize, d],
        assign: (w, x) => w.embed.set(x),
      },
      {
        name: 'gpt_neox.final_layer_norm.weight',
        shape: [d],
        assign: (w, x) => w.finalNorm.weight.set(x),
      },
      {
        name: 'gpt_neox.final_layer_norm.bias',
        shape: [d],
        assign: (w, x) => w.finalNorm.bias!.set(x),
      },
      { name: 'embed_out.weight', shape: [c.vocabSize, d], assign: (w, x) => w.unembed.set(x) },
    ];
    // rows of query_key_value per head h: q (h·3 + 0)·S.., k (h·3 + 1)·S.., v (h·3 + 2)·S..
    const split = (x: Float32Array, width: number, part: number, out: Float32Array) => {
      for (let h = 0; h < H; h++)
        out.set(
          x.subarray((h * 3 + part) * S * width, (h * 3 + part + 1) * S * width),
          h * S * width,
        );
    };
    for (let L = 0; L < c.numLayers; L++) {
      const add = (
        name: string,
        shape: number[],
        put: (b: BlockWeights, x: Float32Array) => void,
      ) =>
        t.push({
          name: `gpt_neox.layers.${L}.${name}`,
          shape,
          assign: (w, x) => put(w.layers[L], x),
        });
      add('input_layernorm.weight', [d], (b, x) => b.attnNorm.weight.set(x));
      add('input_layernorm.bias', [d], (b, x) => b.attnNorm.bias!.set(x));
      add('attention.query_key_value.weight', [3 * d, d], (b, x) => {
        split(x, d, 0, b.attn.qWeight);
        split(x, d, 1, b.attn.kWeight);
        split(x, d, 2, b.attn.vWeight);
      });
      add('attention.dense.weight', [d, d], (b, x) => b.oWeight.set(x));
      if (c.qkvBias) {
        add('attention.query_key_value.bias', [3 * d], (b, x) => {
          split(x, 1, 0, b.attn.qBias!);
          split(x, 1, 1, b.attn.kBias!);
          split(x, 1, 2, b.attn.vBias!);
        });
        add('attention.dense.bias', [d], (b, x) => b.oBias!.set(x));
      }
      add('post_attention_layernorm.weight', [d], (b, x) => b.mlpNorm.weight.set(x));
      add('post_attention_layernorm.bias', [d], (b, x) => b.mlpNorm.bias!.set(x));
      add('mlp.dense_h_to_4h.weight', [f, d], (b, x) => b.mlp.upWeight.set(x));
      add('mlp.dense_h_to_4h.bias', [f], (b, x) => b.mlp.upBias!.set(x));
      add('mlp.dense_4h_to_h.weight', [d, f], (b, x) => b.mlp.downWeight.set(x));
      add('mlp.dense_4h_to_h.bias', [d], (b, x) => b.mlp.downBias!.set(x));
    }
    return t;
  },
};
