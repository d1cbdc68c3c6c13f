// The families the generic engine runs, by their config.json architectures entry.

import { z } from 'zod';
import { describeIssues } from '../../io/validation.ts';
import type { Family, TransformerConfig } from './family.ts';
import { gemma2 } from './gemma2.ts';
import { gpt2 } from './gpt2.ts';
import { gptNeoX } from './gptneox.ts';
import { llama } from './llama.ts';
import { qwen2 } from './qwen2.ts';
import { qwen3 } from './qwen3.ts';

export const FAMILIES: readonly Family[] = [gpt2, llama, qwen2, qwen3, gemma2, gptNeoX];

// Only the first entry names the family; the family's readConfig checks the rest of the file.
const architecturesSchema = z.looseObject({ architectures: z.tuple([z.string()], z.unknown()) });

/** The family named by config.json's architectures, with its config; clear errors otherwise. */
export function readFamilyConfig(
  json: unknown,
  file: string,
): { family: Family; config: TransformerConfig } {
  const supported = FAMILIES.map((f) => f.architecture).join(', ');
  const parsed = architecturesSchema.safeParse(json);
  if (!parsed.success)
    throw new Error(
      `${file}: no "architectures" entry; supported: ${supported} (${describeIssues(parsed.error, { limit: 1 })})`,
    );
  const [arch] = parsed.data.architectures;
  const family = FAMILIES.find((f) => f.architecture === arch);
  if (!family)
    throw new Error(`${file}: architecture ${arch} is not supported; supported: ${supported}`);
  return { family, config: family.readConfig(json, file) };
}
