// `sfc info` and `sfc forward`: look at a model and run it on a prompt.

import type { Command } from 'commander';
import { defaultModelDir, loadModel } from '../../model/load.ts';
import { GptNeoX, makeBatch } from '../../model/gptneox.ts';
import { headSize, rotaryDims } from '../../model/config.ts';
import { parameterLayout } from '../../model/weights.ts';
import { siteNames } from '../../model/sites.ts';
import { positiveInt } from '../options.ts';

export function parseIds(text: string): number[] {
  const parts = text.split(',').map((s) => s.trim());
  const ids = parts.map(Number);
  const bad = parts.findIndex((p, i) => p === '' || !Number.isInteger(ids[i]) || ids[i] < 0);
  if (bad >= 0) {
    throw new Error(
      `--ids: "${parts[bad]}" is not a token id; expected comma-separated integers like 1,2,3`,
    );
  }
  return ids;
}

/** Indices of the k largest values, largest first. */
function topK(values: Float32Array, k: number): number[] {
  const order = Array.from(values.keys());
  order.sort((a, b) => values[b] - values[a]);
  return order.slice(0, k);
}

function softmax(logits: Float32Array): Float32Array {
  let max = -Infinity;
  for (const v of logits) max = Math.max(max, v);
  const p = new Float32Array(logits.length);
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += p[i] = Math.exp(logits[i] - max);
  for (let i = 0; i < p.length; i++) p[i] /= sum;
  return p;
}

export function register(program: Command): void {
  program
    .command('info')
    .description('Summarise a model: its config, parameter count and site names.')
    .option(
      '--model <dir>',
      'model folder (config.json, model.safetensors, tokenizer.json)',
      defaultModelDir(),
    )
    .option('--json', 'print the summary as JSON')
    .action((opts: { model: string; json?: boolean }) => {
      const { config, tokenizer } = loadModel(opts.model, { tokenizer: true });
      const parameters = parameterLayout(config).reduce(
        (n, p) => n + p.shape.reduce((a, b) => a * b, 1),
        0,
      );
      const sites = siteNames(config.numLayers);
      const summary = {
        model: opts.model,
        parameters,
        ...config,
        headSize: headSize(config),
        rotaryDims: rotaryDims(config),
        tokenizerVocab: tokenizer?.vocabSize,
        sites,
      };
      if (opts.json) {
        console.log(JSON.stringify(summary, null, 2));
        return;
      }
      console.log(`model       ${opts.model}`);
      console.log(`parameters  ${parameters.toLocaleString('en-US')}`);
      console.log(
        `shape       ${config.numLayers} layers, d_model ${config.hiddenSize}, ${config.numHeads} heads ` +
          `(head size ${headSize(config)}, rotary ${rotaryDims(config)} dims), MLP ${config.intermediateSize}`,
      );
      console.log(
        `vocabulary  ${config.vocabSize} (tokenizer ${tokenizer?.vocabSize ?? 'none'}), ` +
          `context ${config.maxPositionEmbeddings}`,
      );
      console.log(`residual    ${config.useParallelResidual ? 'parallel' : 'sequential'}`);
      console.log(`sites       ${sites.join(' ')}`);
    });

  program
    .command('forward')
    .summary('Run the model on a prompt and show the most likely next tokens.')
    .description(
      [
        'Run the model on a prompt and show the most likely next tokens.',
        'Example: sfc forward --prompt "The teachers near the desk" --top 5',
      ].join('\n'),
    )
    .option('--model <dir>', 'model folder', defaultModelDir())
    .option('--prompt <text>', "text to tokenise with the model folder's tokenizer.json")
    .option('--ids <ids>', 'token ids instead of a prompt, comma-separated: 1,2,3')
    .option('--top <k>', 'how many next tokens to list', '10')
    .option(
      '--json',
      'print {"tokens": [ids], "logits": [[...vocab...] per position]} (every position, full vocabulary)',
    )
    .action(
      (opts: { model: string; prompt?: string; ids?: string; top: string; json?: boolean }) => {
        if ((opts.prompt === undefined) === (opts.ids === undefined)) {
          throw new Error('give exactly one of --prompt TEXT or --ids 1,2,3');
        }
        const k = positiveInt('--top', opts.top);
        const loaded = loadModel(opts.model, { tokenizer: opts.prompt !== undefined });
        const { tokenizer } = loaded;
        let ids: number[];
        if (opts.prompt !== undefined) {
          if (!tokenizer)
            throw new Error(`${opts.model}: no tokenizer.json; use --ids instead of --prompt`);
          ids = tokenizer.encode(opts.prompt);
        } else {
          ids = parseIds(opts.ids as string);
        }
        if (ids.length === 0) throw new Error('the prompt is empty: nothing to run');
        const model = new GptNeoX(loaded.config, loaded.weights);
        const V = loaded.config.vocabSize;
        const pass = model.forward(makeBatch([ids]), { logits: 'all' });
        if (opts.json) {
          const rows: number[][] = [];
          for (let t = 0; t < ids.length; t++)
            rows.push(Array.from(pass.logits.subarray(t * V, (t + 1) * V)));
          process.stdout.write(
            `{"tokens":${JSON.stringify(ids)},"logits":${JSON.stringify(rows)}}\n`,
          );
          return;
        }
        const last = pass.logits.subarray((ids.length - 1) * V, ids.length * V);
        const probs = softmax(last);
        const show = (id: number) =>
          JSON.stringify(tokenizer ? tokenizer.tokenString(id) : String(id));
        console.log(
          `tokens: ${ids.map((id) => `${id}${tokenizer ? ` ${show(id)}` : ''}`).join(' | ')}`,
        );
        console.log('next token      id   probability   logit');
        for (const id of topK(last, Math.min(k, V))) {
          console.log(
            `${show(id).padEnd(14)} ${String(id).padStart(5)}   ${probs[id].toFixed(4).padStart(11)}   ${last[id].toFixed(3)}`,
          );
        }
      },
    );
}
