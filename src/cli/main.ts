// `sfc`: the command line. Checks the Node version before loading anything else, builds the
// command tree (./program.ts) and turns errors into one clear line instead of a stack trace.

import { CommanderError } from 'commander';
import { exitIfUnsupportedNode } from './node-version.mjs';

exitIfUnsupportedNode();
const { buildProgram } = await import('./program.ts');
try {
  await buildProgram().parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) process.exit(err.exitCode);
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(`sfc: ${message}\n`);
  if (process.env.SFC_DEBUG && err instanceof Error) process.stderr.write(`${err.stack}\n`);
  process.exit(1);
}
