// Parsing of command-line options shared by several commands, with messages that name the option.

import { Option } from 'commander';

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
