// `npm run claims [-- --fast] [--only NAME[,NAME]] [--list] [--json]`: recompute every figure that
// README.md and docs/*.md state, from the group files in this folder (see types.ts, runner.ts).
// Exits 1 when a claim fails or a measurement throws, 2 on a bad option.

import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadGroups, parseArgs, runClaims, selectGroups, type RunOptions } from './runner.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..');

let options: RunOptions;
try {
  options = parseArgs(process.argv.slice(2));
} catch (e) {
  process.stderr.write(`claims: ${(e as Error).message}\n`);
  process.exit(2);
}
// Claims name docs and data relative to the project root, and so do the library's defaults.
process.chdir(root);
let groups;
try {
  groups = selectGroups(await loadGroups(here), options);
} catch (e) {
  process.stderr.write(`claims: ${(e as Error).message}\n`);
  process.exit(2);
}
const report = await runClaims(groups, options, {
  root,
  out: (line) => process.stdout.write(line + '\n'),
  err: (line) => process.stderr.write(line + '\n'),
});
process.exitCode = report.exitCode;
