// `sfc eval-task`: how well a model does a contrastive task (e.g. subject-verb agreement).

import type { Command } from 'commander';
import { defaultModelDir } from '../../model/load.ts';
import { describeTask, loadTask, scoreTask } from '../../data/tasks.ts';
import { progressBar } from '../progress.ts';
import { bosMode, bosNote, positiveInt, bosOptions } from '../options.ts';
import { openModelWithTokenizer } from '../open.ts';

interface EvalTaskOptions {
  data: string;
  model: string;
  batchSize: number;
  limit?: number;
  addAnswerSpace?: boolean;
  bos?: boolean;
  json?: boolean;
}

export function register(program: Command): void {
  program
    .command('eval-task')
    .summary('Score a model on a contrastive task file: accuracy, logit difference, n.')
    .description(
      [
        'Score a model on a contrastive task file: after each clean prefix, is the clean answer ' +
          "more likely than the patch answer? Prints the accuracy (clean answer's logit above the " +
          "patch answer's), the mean logit difference (clean - patch) and the number of examples " +
          'scored, and per case.',
        '',
        "A task file holds one JSON object per line (.jsonl, or the paper's *.json):",
        '  {"clean_prefix": "The teacher", "patch_prefix": "The teachers", "clean_answer": " ' +
          'is", "patch_answer": " are", "case": "singular"}',
        'Examples whose answers are not one token each, or whose clean and patch prefixes differ ' +
          'in token length, are dropped (counts on stderr).',
        '',
        'Example:',
        '  sfc eval-task --data data/rc_test.jsonl',
      ].join('\n'),
    )
    .requiredOption('--data <file>', 'task file (.jsonl or .json, one example per line)')
    .option('--model <dir>', 'model folder, with tokenizer.json', defaultModelDir())
    .option(
      '--batch-size <n>',
      'examples per forward pass',
      (v) => positiveInt('--batch-size', v),
      32,
    )
    .option('--limit <n>', 'score only the first n usable examples', (v) =>
      positiveInt('--limit', v),
    )
    .option('--add-answer-space', 'put a space before answers that lack one ("is" -> " is")')
    .option('--json', 'print {"accuracy", "logit_diff", "n"} as JSON')
    .addOption(bosOptions()[0])
    .addOption(bosOptions()[1])
    .action((opts: EvalTaskOptions) => {
      const { model, tokenizer } = openModelWithTokenizer(opts.model, 'needed to read task text');
      const task = loadTask(opts.data, tokenizer, {
        limit: opts.limit,
        maxLength: model.shape.maxPositions,
        addAnswerSpace: opts.addAnswerSpace,
        bos: bosMode(opts.bos),
      });
      process.stderr.write(`${describeTask(task)}\n${bosNote(tokenizer, opts.bos, task.bos)}\n`);
      if (task.examples.length === 0) throw new Error(`${opts.data}: no usable examples`);
      const bar = progressBar('scoring');
      const score = scoreTask(model, task.examples, {
        batchSize: opts.batchSize,
        onProgress: bar.update,
      });
      bar.stop();
      if (opts.json) {
        console.log(
          JSON.stringify({ accuracy: score.accuracy, logit_diff: score.logitDiff, n: score.n }),
        );
        return;
      }
      console.log(`accuracy    ${score.accuracy.toFixed(4)}`);
      console.log(`logit diff  ${score.logitDiff.toFixed(4)}`);
      console.log(`n           ${score.n}`);
      const cases = Object.entries(score.byCase);
      if (cases.length > 1)
        for (const [name, c] of cases)
          console.log(
            `  ${name.padEnd(20)} accuracy ${c.accuracy.toFixed(4)}  logit diff ${c.logitDiff.toFixed(4)}  n ${c.n}`,
          );
    });
}
