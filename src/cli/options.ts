// Parsing of command-line options shared by several commands, with messages that name the
// option, and the guard that keeps commands from replacing a model, an SAE or a labels file without --force.

import fs from 'node:fs';
import { Option } from 'commander';

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
