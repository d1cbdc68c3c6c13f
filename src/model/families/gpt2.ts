// GPT2LMHeadModel: token plus learned position embeddings, pre-LN sequential blocks, Conv1D weights
// stored [in, out], fused c_attn split q|k|v, scores / sqrt(head_dim), gelu_new, tied head.
// Tensor names with or without the "transformer." prefix (the original checkpoints have none);
// the attn.bias / attn.masked_bias buffers are ignored.

import { z } from 'zod';
import {
  parseWith,
  readActivation,
  transposed,
  type BlockWeights,
  type Family,
  type TensorSource,
} from './family.ts';

const positive = z.number().int().positive();
const configJson = z.looseObject({
  vocab_size: positive,
  n_embd: positive,
  n_layer: positive,
  n_head: positive,
  n_inner: positive.nullable().optional(),
  n_positions: positive,
  layer_norm_epsilon: z.number().positive().default(1e-5),
  activation_function: z.string().default('gelu_new'),
  scale_attn_weights: z.boolean().default(true),
  scale_attn_by_inverse_layer_idx: z.boolean().default(false),
  tie_word_embeddings: z.boolean().default(true),
});

export const gpt2: Family = {
  architecture: 'GPT2LMHeadModel',
  readConfig(json, file) {
    const j = parseWith(configJson, json, file, this.architecture);
    if (j.n_embd % j.n_head !== 0)
      throw new Error(`${file}: n_embd ${j.n_embd} is not divisible by n_head ${j.n_head}`);
    if (!j.scale_attn_weights)
      throw new Error(`${file}: scale_attn_weights false is not implemented (GPT-2 scales scores)`);
    if (j.scale_attn_by_inverse_layer_idx)
      throw new Error(`${file}: scale_attn_by_inverse_layer_idx true is not implemented`);
    if (!j.tie_word_embeddings)
      throw new Error(
        `${file}: tie_word_embeddings false is not implemented for GPT-2 (tied head)`,
      );
    const Dh = j.n_embd / j.n_head;
    return {
      architecture: this.architecture,
      vocabSize: j.vocab_size,
      hiddenSize: j.n_embd,
      numLayers: j.n_layer,
      numHeads: j.n_head,
      numKvHeads: j.n_head,
      headDim: Dh,
      intermediateSize: j.n_inner ?? 4 * j.n_embd,
      maxPositions: j.n_positions,
      norm: 'layernorm',
      normEps: j.layer_norm_epsilon,
      qkNorm: false,
      learnedPositions: true,
      rotaryDims: 0,
      ropeTheta: 10000,
      ropeScaling: null,
      embedScale: 1,
      attnScale: 1 / Math.sqrt(Dh),
      attnSoftcap: null,
      slidingWindows: Array.from({ length: j.n_layer }, () => null),
      qkvBias: true,
      oBias: true,
      mlpBias: true,
      gatedMlp: false,
      activation: readActivation(j.activation_function, 'activation_function', file),
      block: 'sequential',
      finalSoftcap: null,
      tiedEmbeddings: true,
    };
  },
  tensors(c, has) {
    const d = c.hiddenSize;
    const f = c.intermediateSize;
    const p = has('transformer.wte.weight') ? 'transformer.' : '';
    const t: TensorSource[] = [
      { name: `${p}wte.weight`, shape: [c.vocabSize, d], assign: (w, x) => w.embed.set(x) },
      { name: `${p}wpe.weight`, shape: [c.maxPositions, d], assign: (w, x) => w.positions!.set(x) },
      { name: `${p}ln_f.weight`, shape: [d], assign: (w, x) => w.finalNorm.weight.set(x) },
      { name: `${p}ln_f.bias`, shape: [d], assign: (w, x) => w.finalNorm.bias!.set(x) },
    ];
    for (let L = 0; L < c.numLayers; L++) {
      const add = (
        name: string,
        shape: number[],
        put: (b: BlockWeights, x: Float32Array) => void,
      ) => t.push({ name: `${p}h.${L}.${name}`, shape, assign: (w, x) => put(w.layers[L], x) });
      add('ln_1.weight', [d], (b, x) => b.attnNorm.weight.set(x));
      add('ln_1.bias', [d], (b, x) => b.attnNorm.bias!.set(x));
      // Conv1D: y = x·W + b with W [in, out]; c_attn's output columns are q | k | v
      add('attn.c_attn.weight', [d, 3 * d], (b, x) => {
        const all = transposed(x, d, 3 * d); // [3d, d]
        b.attn.qWeight.set(all.subarray(0, d * d));
        b.attn.kWeight.set(all.subarray(d * d, 2 * d * d));
        b.attn.vWeight.set(all.subarray(2 * d * d));
      });
      add('attn.c_attn.bias', [3 * d], (b, x) => {
        b.attn.qBias!.set(x.subarray(0, d));
        b.attn.kBias!.set(x.subarray(d, 2 * d));
        b.attn.vBias!.set(x.subarray(2 * d));
      });
      add('attn.c_proj.weight', [d, d], (b, x) => b.oWeight.set(transposed(x, d, d)));
      add('attn.c_proj.bias', [d], (b, x) => b.oBias!.set(x));
      add('ln_2.weight', [d], (b, x) => b.mlpNorm.weight.set(x));
      add('ln_2.bias', [d], (b, x) => b.mlpNorm.bias!.set(x));
      add('mlp.c_fc.weight', [d, f], (b, x) => b.mlp.upWeight.set(transposed(x, d, f)));
      add('mlp.c_fc.bias', [f], (b, x) => b.mlp.upBias!.set(x));
      add('mlp.c_proj.weight', [f, d], (b, x) => b.mlp.downWeight.set(transposed(x, f, d)));
      add('mlp.c_proj.bias', [d], (b, x) => b.mlp.downBias!.set(x));
    }
    return t;
  },
};
