// The `sfc` command tree: each command group registers itself here. main.ts parses the command
// line with it; tests read it (every command's options and help).

import { Command } from 'commander';
import * as discoverCommands from './commands/discover.ts';
import * as evaluateCommands from './commands/evaluate.ts';
import * as interveneCommand from './commands/intervene.ts';
import * as mergeCommand from './commands/merge.ts';
import * as modelCommands from './commands/model.ts';
import * as organismCommands from './commands/organism.ts';
import * as reportCommands from './commands/report.ts';
import * as saeCommands from './commands/sae.ts';
import * as transcoderCommands from './commands/transcoder.ts';
import * as graphCommands from './commands/graph.ts';
import * as shiftCommand from './commands/shift.ts';
import * as startCommand from './commands/start.ts';
import * as taskCommands from './commands/tasks.ts';

/**
 * Help text wrapped to `width` as commander does (descriptions are single logical lines in the
 * source; commander wraps them to the terminal), except that an indented line (a numbered step,
 * a list item) continues under its own text instead of at the left margin.
 */
export function wrapHelp(text: string, width: number): string {
  if (width < 40) return text;
  return text
    .split('\n')
    .map((line) => {
      if (line.length <= width) return line.trimEnd();
      const hang = /^(\s*)((\d+\.|-)\s+)?/.exec(line)![0].length;
      // Chunks keep the spacing before each word (aligned columns stay aligned).
      const chunks = line.slice(hang).match(/\s*\S+/g) ?? [];
      const out: string[] = [];
      let current = line.slice(0, hang) + (chunks.shift() ?? '').trimStart();
      for (const chunk of chunks) {
        if (current.length + chunk.length <= width) current += chunk;
        else {
          out.push(current);
          current = ' '.repeat(hang) + chunk.trimStart();
        }
      }
      out.push(current);
      return out.join('\n');
    })
    .join('\n');
}

export function buildProgram(): Command {
  const program = new Command()
    .name('sfc')
    .description(
      'Sparse feature circuits: find, measure, show and edit circuits of sparse-autoencoder ' +
        'features in GPT-NeoX, GPT-2, Llama, Qwen and Gemma-2 language models. Every --model defaults to the shipped model ' +
        'organism.',
    )
    .configureHelp({ boxWrap: wrapHelp })
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  for (const group of [
    startCommand,
    modelCommands,
    saeCommands,
    transcoderCommands,
    graphCommands,
    taskCommands,
    organismCommands,
    discoverCommands,
    evaluateCommands,
    reportCommands,
    shiftCommand,
    interveneCommand,
    mergeCommand,
  ])
    group.register(program);
  return program;
}
