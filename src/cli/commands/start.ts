// `sfc start` (what `npm start` runs): the main job on the shipped model organism.
// Until circuit discovery lands this shows that the organism does what it was trained for:
// agreement accuracy on each task's held-out test file and a few next-token predictions.

import type { Command } from 'commander';
import { fileURLToPath } from 'node:url';
import { defaultModelDir, loadModel } from '../../model/load.ts';
import { GptNeoX, makeBatch } from '../../model/gptneox.ts';
import { loadTask, scoreTask } from '../../data/tasks.ts';

const TASKS = ['simple', 'nounpp', 'rc', 'within_rc'];
const PROMPTS = [
  'The teachers near the desk',
  'The teacher that the guards like',
  'The teacher that the guards',
];

export function defaultDataDir(): string {
  return fileURLToPath(new URL('../../../data', import.meta.url));
}

export function register(program: Command): void {
  program
    .command('start')
    .description('The main job on the shipped model organism (what `npm start` runs).')
    .option('--model <dir>', 'model folder', defaultModelDir())
    .option('--data <dir>', 'folder with the {task}_test.jsonl files', defaultDataDir())
    .action((opts: { model: string; data: string }) => {
      const { config, weights, tokenizer } = loadModel(opts.model, { tokenizer: true });
      if (!tokenizer) throw new Error(`${opts.model}: no tokenizer.json`);
      const model = new GptNeoX(config, weights);
      console.log(
        `model organism: ${config.numLayers} layers, d_model ${config.hiddenSize}, vocabulary ${config.vocabSize}`,
      );
      console.log('\nagreement on held-out test sentences');
      console.log('task        accuracy   logit diff     n');
      for (const name of TASKS) {
        const task = loadTask(`${opts.data}/${name}_test.jsonl`, tokenizer);
        const score = scoreTask(model, task.examples);
        console.log(
          `${name.padEnd(10)} ${(100 * score.accuracy).toFixed(1).padStart(8)}%  ${score.logitDiff
            .toFixed(2)
            .padStart(10)}  ${String(score.n).padStart(4)}`,
        );
      }
      console.log('\nnext-token predictions');
      for (const prompt of PROMPTS) {
        const ids = tokenizer.encode(prompt);
        const logits = model.forward(makeBatch([ids]), { logits: 'last' }).logits;
        const ranked = Array.from(logits.keys()).sort((a, b) => logits[b] - logits[a]);
        const top = ranked.slice(0, 3).map((id) => JSON.stringify(tokenizer.tokenString(id)));
        console.log(`  ${JSON.stringify(prompt)} -> ${top.join(', ')}`);
      }
    });
}
