// The families the generic engine runs, by their config.json architectures entry.

import type { Family, TransformerConfig } from './family.ts';
import { gemma2 } from './gemma2.ts';
import { gpt2 } from './gpt2.ts';
import { gptNeoX } from './gptneox.ts';
import { llama } from './llama.ts';
import { qwen2 } from './qwen2.ts';
import { qwen3 } from './qwen3.ts';

export const FAMILIES: readonly Family[] = [gpt2, llama, qwen2, qwen3, gemma2, gptNeoX];

/** The family named by config.json's architectures, with its config; clear errors otherwise. */
export function readFamilyConfig(
  json: unknown,
  file: string,
): { family: Family; config: TransformerConfig } {
  const supported = FAMILIES.map((f) => f.architecture).join(', ');
  const archs = (json as { architectures?: unknown })?.architectures;
  if (!Array.isArray(archs) || archs.length === 0 || typeof archs[0] !== 'string')
    throw new Error(`${file}: no "architectures" entry; supported: ${supported}`);
  const family = FAMILIES.find((f) => f.architecture === archs[0]);
  if (!family)
    throw new Error(`${file}: architecture ${archs[0]} is not supported; supported: ${supported}`);
  return { family, config: family.readConfig(json, file) };
}
