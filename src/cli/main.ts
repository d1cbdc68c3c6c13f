// `sfc`: the command line. Each command group registers itself; this file only wires them
// together and turns errors into one clear line instead of a stack trace.

import { Command, CommanderError } from 'commander';
import * as discoverCommands from './commands/discover.ts';
import * as evaluateCommands from './commands/evaluate.ts';
import * as modelCommands from './commands/model.ts';
import * as organismCommands from './commands/organism.ts';
import * as reportCommands from './commands/report.ts';
import * as saeCommands from './commands/sae.ts';
import * as shiftCommand from './commands/shift.ts';
import * as startCommand from './commands/start.ts';
import * as taskCommands from './commands/tasks.ts';

const program = new Command()
  .name('sfc')
  .description(
    'Sparse feature circuits: find, measure, show and edit circuits of sparse-autoencoder\n' +
      'features in GPT-NeoX language models. Every --model defaults to the shipped model organism.',
  )
  .showHelpAfterError('(run with --help for usage)')
  .exitOverride();

for (const group of [
  startCommand,
  modelCommands,
  saeCommands,
  taskCommands,
  organismCommands,
  discoverCommands,
  evaluateCommands,
  reportCommands,
  shiftCommand,
])
  group.register(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) process.exit(err.exitCode);
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(`sfc: ${message}\n`);
  if (process.env.SFC_DEBUG && err instanceof Error) process.stderr.write(`${err.stack}\n`);
  process.exit(1);
}
