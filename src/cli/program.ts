// The `sfc` command tree: each command group registers itself here. main.ts parses the command
// line with it; tests read it (every command's options and help).

import { Command } from 'commander';
import * as discoverCommands from './commands/discover.ts';
import * as evaluateCommands from './commands/evaluate.ts';
import * as modelCommands from './commands/model.ts';
import * as organismCommands from './commands/organism.ts';
import * as reportCommands from './commands/report.ts';
import * as saeCommands from './commands/sae.ts';
import * as shiftCommand from './commands/shift.ts';
import * as startCommand from './commands/start.ts';
import * as taskCommands from './commands/tasks.ts';

export function buildProgram(): Command {
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
  return program;
}
