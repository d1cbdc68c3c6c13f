// Qwen3ForCausalLM: Llama with a per-head RMSNorm of q and k over head_dim (q_norm, k_norm, before
// rotary), head_dim from the config (often != d/H), biases on q, k, v, o when attention_bias.

import { z } from 'zod';
import { llamaStyleTensors, parseWith, type Family } from './family.ts';
import { llamaStyleConfig, llamaStyleJson } from './llama.ts';

export const qwen3: Family = {
  architecture: 'Qwen3ForCausalLM',
  readConfig(json, file) {
    const j = parseWith(z.looseObject(llamaStyleJson), json, file, this.architecture);
    // transformers' Qwen3Config defaults head_dim to 128, not hidden_size / heads
    const c = llamaStyleConfig(
      { ...j, head_dim: j.head_dim ?? 128, mlp_bias: false },
      file,
      this.architecture,
    );
    return { ...c, qkNorm: true };
  },
  tensors: (c) => llamaStyleTensors(c),
};
