// Which file serves which site: printed by every command that opens an SAE folder, since a folder
// may hold several sizes and L0 variants per site and mix layouts.

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
