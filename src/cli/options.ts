// Parsing of command-line options shared by several commands, with messages that name the
// option, and the guard that keeps commands from replacing a model, an SAE or a labels file without --force.

import fs from 'node:fs';
import { Option } from 'commander';
import type { BosMode, Tokenizer } from '../model/tokenizer.ts';

/** Where commands write by default (relative to the working directory), never a shipped model. */
export const DEFAULT_OUT = 'out';

/** Throws unless `target` is absent or `force` is set; `what` names what it holds. */
export function refuseOverwrite(target: string, what: string, force: boolean): void {
  if (force || !fs.existsSync(target)) return;
  throw new Error(
    `${target} already holds ${what}; refusing to overwrite it. Pass --force to replace it, or give another --out`,
  );
}

export function positiveInt(name: string, text: string): number {
  const v = Number(text);
  if (!Number.isInteger(v) || v <= 0)
    throw new Error(`${name}: expected a positive integer, got "${text}"`);
  return v;
}

export function positiveNumber(name: string, text: string, allowZero = false): number {
  const v = Number(text);
  if (!Number.isFinite(v) || v < 0 || (!allowZero && v === 0))
    throw new Error(
      `${name}: expected a ${allowZero ? 'non-negative' : 'positive'} number, got "${text}"`,
    );
  return v;
}

/**
 * `--sae-width N`, beside every `--saes`: which dictionary size to use when the SAE folder holds
 * several per site (dictionary_learning releases ship e.g. 4096 and 32768 for each submodule).
 */
export function saeWidthOption(): Option {
  return new Option(
    '--sae-width <n>',
    'number of features of the dictionaries to use when the SAE folder holds several sizes per site (e.g. 32768)',
  ).argParser((v) => positiveInt('--sae-width', v));
}

/**
 * `--dtype f32|bf16|f16`, beside every `--saes`: hold the SAEs' encoder and decoder in half
 * precision (half the memory, results within a stated tolerance of float32: docs/sae.md).
 */
export function saeDtypeOption(): Option {
  return new Option(
    '--dtype <type>',
    'how SAE weights are held in memory: f32, or bf16 / f16 (half the memory; each product converts ' +
      'a block of rows to float32; results within a stated tolerance of f32, see docs/sae.md)',
  )
    .choices(['f32', 'bf16', 'f16'])
    .default('f32');
}

/**
 * `--sae-l0 N`, beside `--sae-width`: among Gemma Scope's L0 variants of a site (average_l0_K
 * folders), use the one whose average L0 is closest to N (default 100, as the paper's Gemma-2
 * setup did).
 */
export function saeL0Option(): Option {
  return new Option(
    '--sae-l0 <n>',
    'among Gemma Scope L0 variants of a site (average_l0_K), use the closest average L0 (default 100)',
  ).argParser((v) => positiveNumber('--sae-l0', v, true));
}

/**
 * `--bos` / `--no-bos`: start prompts with the beginning-of-sequence token, or not; without
 * either, as the model's own tokenizer does (tokenizer.json's post_processor,
 * tokenizer_config.json's add_bos_token), or as `byDefault` says. Read the value with bosMode.
 */
export function bosOptions(byDefault = "as the model's tokenizer does"): Option[] {
  return [
    new Option(
      '--bos',
      `start the prompt with the tokenizer's beginning-of-sequence token (default: ${byDefault})`,
    ),
    new Option('--no-bos', 'do not start the prompt with a beginning-of-sequence token'),
  ];
}

/** The BOS mode of parsed --bos / --no-bos (commander leaves the value undefined without either). */
export function bosMode(value: boolean | undefined): BosMode {
  return value === undefined ? 'auto' : value ? 'always' : 'never';
}

/**
 * The line commands print (on stderr) saying whether their prompts got the BOS token and why:
 * `flag` is the parsed --bos / --no-bos (or a mode taken from elsewhere, which `from` names),
 * `added` whether any prompt got one.
 */
export function bosNote(
  tokenizer: Tokenizer,
  flag: boolean | undefined,
  added: boolean,
  from?: string,
): string {
  if (added)
    return `bos: added ${tokenizer.bos!.token} (id ${tokenizer.bos!.id})${flag ? ` (${from ?? '--bos'})` : `; ${tokenizer.bosReason}; --no-bos leaves it out`}`;
  return `bos: none added${flag === false ? ` (${from ?? '--no-bos'})` : `; ${tokenizer.bosReason}${tokenizer.bos ? `; --bos adds ${tokenizer.bos.token}` : ''}`}`;
}
