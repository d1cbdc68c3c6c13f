// Qwen2ForCausalLM (Qwen2, Qwen2.5): Llama with biases on q, k and v (never on o_proj).

import { z } from 'zod';
import { llamaStyleTensors, parseWith, type Family } from './family.ts';
import { llamaStyleConfig, llamaStyleJson } from './llama.ts';

export const qwen2: Family = {
  architecture: 'Qwen2ForCausalLM',
  readConfig(json, file) {
    const j = parseWith(z.looseObject(llamaStyleJson), json, file, this.architecture);
    const c = llamaStyleConfig(
      { ...j, attention_bias: false, mlp_bias: false },
      file,
      this.architecture,
    );
    return { ...c, qkvBias: true, oBias: false };
  },
  tensors: (c) => llamaStyleTensors(c),
};
