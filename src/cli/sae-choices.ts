// Which file serves which site: printed by every command that opens an SAE folder, since a folder
// may hold several sizes and L0 variants per site and mix layouts.

import type { LanguageModel } from '../model/language-model.ts';
import { describeSaeChoices, NEURONS, type SaeLibrary } from '../sae/library.ts';

/**
 * Writes the library's choice per site to stderr, and the files it could not use with why
 * (nothing for `neurons`).
 */
export function printSaeChoices(library: SaeLibrary): void {
  if (library.dir === NEURONS) return;
  const lines = describeSaeChoices(library);
  const skipped = library.skipped();
  process.stderr.write(
    `SAEs from ${library.dir}: ${lines.length} site${lines.length === 1 ? '' : 's'}\n` +
      lines.map((l) => `  ${l}\n`).join('') +
      (skipped.length
        ? `  not used: ${skipped.length} file${skipped.length === 1 ? '' : 's'}\n` +
          skipped.map((s) => `    ${s.location}: ${s.reason}\n`).join('')
        : ''),
  );
}

/**
 * The sites discovery finds nodes at: `given` (--sites), else every site the library has a
 * dictionary for, in model order. Writes them to stderr with the model's other sites, which are
 * passed through (part of the direct paths between node sites).
 */
export function nodeSites(model: LanguageModel, library: SaeLibrary, given?: string[]): string[] {
  const sites = given ?? library.sites();
  if (sites.length === 0)
    throw new Error(
      `${library.dir}: no dictionary for any site of this model (${model.sites.join(', ')}); pass --saes DIR`,
    );
  const without = model.sites.filter((s) => !library.has(s) && !sites.includes(s));
  const leftOut = model.sites.filter((s) => library.has(s) && !sites.includes(s));
  process.stderr.write(
    `node sites${given ? ' (--sites)' : ' (every site with a dictionary)'}: ${sites.join(', ')}\n` +
      (without.length ? `no dictionary, passed through: ${without.join(', ')}\n` : '') +
      (leftOut.length ? `left out by --sites, passed through: ${leftOut.join(', ')}\n` : ''),
  );
  return sites;
}
