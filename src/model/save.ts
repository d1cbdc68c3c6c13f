// Writing a model folder that loadModel and Hugging Face transformers both read:
// config.json + model.safetensors (metadata format "pt", which transformers requires).

import fs from 'node:fs';
import path from 'node:path';
import { writeSafetensors } from '../io/safetensors.ts';
import { toConfigJson, type GptNeoXConfig } from './config.ts';
import { parameterLayout, type GptNeoXWeights } from './weights.ts';

const ATTENTION_BIAS = /\.attention\.(query_key_value|dense)\.bias$/;

/**
 * Writes dir/config.json and dir/model.safetensors (F32 unless options.dtype is 'F16'), creating dir.
 * options.tokenizer: a tokenizer.json to copy into the folder.
 * Without attention bias the bias tensors are left out, as transformers expects; they must be zero.
 */
export function saveModel(
  dir: string,
  config: GptNeoXConfig,
  weights: GptNeoXWeights,
  options: { dtype?: 'F32' | 'F16'; tokenizer?: string } = {},
): void {
  const dtype = options.dtype ?? 'F32';
  const tensors = [];
  for (const p of parameterLayout(config)) {
    const data = p.get(weights);
    if (!config.attentionBias && ATTENTION_BIAS.test(p.name)) {
      if (data.some((v) => v !== 0))
        throw new Error(
          `${dir}: config has attention_bias false but ${p.name} is nonzero; it would be lost on saving`,
        );
      continue;
    }
    tensors.push({ name: p.name, shape: p.shape, data, dtype });
  }
  fs.mkdirSync(dir, { recursive: true });
  const configJson = {
    ...toConfigJson(config),
    torch_dtype: dtype === 'F16' ? 'float16' : 'float32',
  };
  writeSafetensors(path.join(dir, 'model.safetensors'), tensors, { format: 'pt' });
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(configJson, null, 2) + '\n');
  if (options.tokenizer) fs.copyFileSync(options.tokenizer, path.join(dir, 'tokenizer.json'));
}
