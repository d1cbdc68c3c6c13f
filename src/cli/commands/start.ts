// `sfc start` (what `npm start` runs): the whole path on the shipped model organism. It runs the
// same commands a user would type, in order, so that the main job and the documented commands
// cannot drift apart: eval-task for the four tasks, discover on across-RC, evaluate on its
// held-out test file, dashboards for the circuit's features, graph (the attribution graph of the
// first held-out across-RC prompt, through the shipped transcoders), report.

import type { Command } from 'commander';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { defaultModelDir } from '../../model/load.ts';
import { readEvaluation } from '../../viewer/inputs.ts';
import { GRAPHS_DIR } from '../../viewer/graph-input.ts';
import { jsonRecords } from '../../data/tasks.ts';
import { readTextFile } from '../../io/text-file.ts';

const TASKS = ['simple', 'nounpp', 'rc', 'within_rc'];

export function defaultDataDir(): string {
  return fileURLToPath(new URL('../../../data', import.meta.url));
}

/** The clean prefix of a task file's first example: the prompt `start` draws a graph of. */
export function firstPrompt(file: string): string {
  const first = jsonRecords(readTextFile(file), file)[0];
  const prefix = (first?.value as { clean_prefix?: unknown } | undefined)?.clean_prefix;
  if (typeof prefix !== 'string' || prefix === '')
    throw new Error(`${file}:${first?.line ?? 1}: expected an example with a clean_prefix string`);
  return prefix;
}

function heading(text: string): void {
  process.stdout.write(`\n== ${text}\n`);
}

export function register(program: Command): void {
  program
    .command('start')
    .summary(
      'The main job on the shipped model organism: accuracy, circuit, evaluation, dashboards, attribution graph, report.',
    )
    .description(
      'The main job on the shipped model organism (what `npm start` runs): agreement accuracy ' +
        'on the four tasks, then discover the across-RC circuit, evaluate it on held-out ' +
        'sentences, compute its feature dashboards, draw the attribution graph of the first ' +
        'held-out across-RC prompt through the shipped transcoders (into OUT/graphs/) and write ' +
        'the report, which shows both.',
    )
    .option('--model <dir>', 'model folder', defaultModelDir())
    .option(
      '--data <dir>',
      'folder with the {task}_{train,test}.jsonl files and corpus.txt',
      defaultDataDir(),
    )
    .option(
      '--out <dir>',
      'folder for circuit.json, evaluation.json, dashboards.json, graphs/, report.html',
      'out',
    )
    .action(async (opts: { model: string; data: string; out: string }) => {
      const started = Date.now();
      const run = (...args: string[]) => program.parseAsync(args, { from: 'user' });
      const data = (name: string) => path.join(opts.data, name);

      for (const task of TASKS) {
        heading(`agreement: ${task}_test`);
        await run('eval-task', '--model', opts.model, '--data', data(`${task}_test.jsonl`));
      }
      heading('discover: the across-RC circuit (integrated gradients, 100 examples)');
      await run(
        'discover',
        '--model',
        opts.model,
        '--data',
        data('rc_train.jsonl'),
        '--out',
        opts.out,
      );
      const circuit = path.join(opts.out, 'circuit.json');
      heading('evaluate: faithfulness and completeness on rc_test');
      await run('evaluate', '--circuit', circuit, '--data', data('rc_test.jsonl'));
      const scores = readEvaluation(path.join(opts.out, 'evaluation.json'));
      const fmt = (v: number | null, digits: number) => (v === null ? 'n/a' : v.toFixed(digits));
      if (scores.circuitScore && scores.allLayers)
        process.stdout.write(
          `\ncircuit as saved: ${scores.circuitScore.nodes} nodes at layers >= ${scores.startLayer} have ` +
            `faithfulness ${fmt(scores.circuitScore.faithfulness, 3)}, completeness ${fmt(scores.circuitScore.completeness, 2)} ` +
            `(${scores.nodesBelowStart} nodes below layer ${scores.startLayer} left out); with every layer ` +
            `(${scores.allLayers.nodes} nodes, embed included): faithfulness ${fmt(scores.allLayers.faithfulness, 3)}, ` +
            `completeness ${fmt(scores.allLayers.completeness, 2)}\n`,
        );
      heading('dashboards for the circuit features');
      await run(
        'dashboards',
        '--model',
        opts.model,
        '--corpus',
        data('corpus.txt'),
        '--features',
        circuit,
        '--out',
        opts.out,
      );
      const prompt = firstPrompt(data('rc_test.jsonl'));
      heading(`graph: the attribution graph of "${prompt}" (transcoders)`);
      await run(
        'graph',
        '--model',
        opts.model,
        '--prompt',
        prompt,
        '--out',
        path.join(opts.out, GRAPHS_DIR),
      );
      heading('report');
      await run('report', opts.out);
      const seconds = ((Date.now() - started) / 1000).toFixed(0);
      process.stdout.write(
        `\ndone in ${seconds} s. Open ${path.resolve(opts.out, 'report.html')} in a browser ` +
          `(or: npm run sfc -- view ${opts.out}).\n`,
      );
    });
}
