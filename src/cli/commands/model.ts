// `sfc info` and `sfc forward`: look at a model and run it on a prompt.

import type { Command } from 'commander';
import { defaultModelDir } from '../../model/load.ts';
import { openModel } from '../../model/load-family.ts';
import { GptNeoX, makeBatch } from '../../model/gptneox.ts';
import { headSize, rotaryDims } from '../../model/config.ts';
import { parameterLayout } from '../../model/weights.ts';
import { namedParameters } from '../../model/families/family.ts';
import { modelShape, type LanguageModel } from '../../model/language-model.ts';
import type { Tokenizer } from '../../model/tokenizer.ts';
import type { Transformer } from '../../model/transformer.ts';
import { bosMode, bosNote, bosOptions, positiveInt } from '../options.ts';

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

/** What the tokenizer does about BOS, in one line for info and forward. */
function bosSummary(tokenizer: Tokenizer): string {
  const token = tokenizer.bos ? `${tokenizer.bos.token} (id ${tokenizer.bos.id})` : 'none';
  return `${tokenizer.addsBos ? 'adds' : 'does not add'} a BOS token; BOS token ${token}; ${tokenizer.bosReason}`;
}

/** `sfc info` of a model on the generic engine. */
function transformerInfo(
  dir: string,
  model: Transformer,
  tokenizer: Tokenizer | undefined,
  json: boolean,
): void {
  const c = model.config;
  const parameters = namedParameters(model.weights).reduce((n, [, a]) => n + a.length, 0);
  const summary = {
    model: dir,
    parameters,
    ...c,
    tokenizerVocab: tokenizer?.vocabSize,
    bos: tokenizer && {
      adds: tokenizer.addsBos,
      token: tokenizer.bos?.token,
      id: tokenizer.bos?.id,
      reason: tokenizer.bosReason,
    },
    sites: model.sites,
  };
  if (json) {
    console.log(JSON.stringify(summary, null, 2));
    return;
  }
  const windows = c.slidingWindows.filter((w) => w !== null);
  console.log(`model       ${dir}`);
  console.log(`family      ${c.architecture}`);
  console.log(`parameters  ${parameters.toLocaleString('en-US')}`);
  console.log(
    `shape       ${c.numLayers} layers, d_model ${c.hiddenSize}, ${c.numHeads} heads` +
      (c.numKvHeads !== c.numHeads ? ` (${c.numKvHeads} key/value heads)` : '') +
      `, head dim ${c.headDim}, ${c.rotaryDims ? `rotary ${c.rotaryDims} dims` : 'learned positions'}, ` +
      `${c.gatedMlp ? 'gated ' : ''}MLP ${c.intermediateSize}`,
  );
  console.log(
    `vocabulary  ${c.vocabSize} (tokenizer ${tokenizer?.vocabSize ?? 'none'}), context ${c.maxPositions}`,
  );
  console.log(
    `blocks      ${c.block}, ${c.norm}` +
      (windows.length
        ? `, sliding window ${windows[0]} on ${windows.length} of ${c.numLayers} layers`
        : '') +
      (c.attnSoftcap ? `, attention soft-cap ${c.attnSoftcap}` : '') +
      (c.finalSoftcap ? `, logit soft-cap ${c.finalSoftcap}` : '') +
      (c.tiedEmbeddings ? ', tied head' : ''),
  );
  if (tokenizer) console.log(`tokenizer   ${bosSummary(tokenizer)}`);
  console.log(`sites       ${model.sites.join(' ')}`);
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
      const opened = openModel(opts.model, { tokenizer: true });
      const { tokenizer } = opened;
      if (!(opened.model instanceof GptNeoX)) {
        transformerInfo(opts.model, opened.model, tokenizer, opts.json === true);
        return;
      }
      const { config } = opened.model;
      const parameters = parameterLayout(config).reduce(
        (n, p) => n + p.shape.reduce((a, b) => a * b, 1),
        0,
      );
      const sites = opened.model.sites;
      const summary = {
        model: opts.model,
        architecture: opened.architecture,
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
      if (tokenizer) console.log(`tokenizer   ${bosSummary(tokenizer)}`);
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
    .addOption(bosOptions()[0])
    .addOption(bosOptions()[1])
    .option(
      '--json',
      'print {"tokens": [ids], "bos": added?, "logits": [[...vocab...] per position]} (every position, full vocabulary)',
    )
    .action(
      (opts: {
        model: string;
        prompt?: string;
        ids?: string;
        top: string;
        bos?: boolean;
        json?: boolean;
      }) => {
        if ((opts.prompt === undefined) === (opts.ids === undefined)) {
          throw new Error('give exactly one of --prompt TEXT or --ids 1,2,3');
        }
        if (opts.ids !== undefined && opts.bos !== undefined)
          throw new Error(
            `--${opts.bos ? '' : 'no-'}bos applies to --prompt; --ids are run as given (put the BOS id first yourself)`,
          );
        const k = positiveInt('--top', opts.top);
        const opened = openModel(opts.model, { tokenizer: opts.prompt !== undefined });
        const { tokenizer } = opened;
        const model: LanguageModel = opened.model;
        const shape = modelShape(model);
        let ids: number[];
        let bos = false;
        if (opts.prompt !== undefined) {
          if (!tokenizer)
            throw new Error(
              `${opts.model}: no tokenizer.json; pass token ids with --ids 1,2,3 instead of --prompt`,
            );
          ({ ids, bos } = tokenizer.encodePrompt(opts.prompt, bosMode(opts.bos)));
        } else {
          ids = parseIds(opts.ids as string);
        }
        if (ids.length === 0) throw new Error('the prompt is empty: nothing to run');
        if (ids.length > shape.maxPositions)
          throw new Error(
            `${opts.model}: the prompt has ${ids.length} tokens${bos ? ' (BOS included)' : ''}, more than the model's context of ${shape.maxPositions} positions (config.json)`,
          );
        // stderr, so that stdout stays the result (and --json parseable)
        if (tokenizer && opts.prompt !== undefined)
          console.error(bosNote(tokenizer, opts.bos, bos));
        const V = shape.vocabSize;
        const pass = model.forward(makeBatch([ids]), { logits: 'all' });
        if (opts.json) {
          const rows: number[][] = [];
          for (let t = 0; t < ids.length; t++)
            rows.push(Array.from(pass.logits.subarray(t * V, (t + 1) * V)));
          process.stdout.write(
            `{"tokens":${JSON.stringify(ids)},"bos":${bos},"logits":${JSON.stringify(rows)}}\n`,
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
