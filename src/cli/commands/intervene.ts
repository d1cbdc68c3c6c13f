// `sfc intervene`: run a prompt with features zeroed, set, scaled or steered at chosen sites and
// positions, and show what the model does: the next-token distribution before and after, a task
// example's metric, and a continuation generated with and without the interventions.

import type { WeightDtype } from '../../sae/dictionary.ts';
import path from 'node:path';
import type { Command } from 'commander';
import { defaultModelDir } from '../../model/load.ts';
import { openModel } from '../../model/load-family.ts';
import type { LanguageModel } from '../../model/language-model.ts';
import { openSaes } from '../../sae/library.ts';
import { loadTask, type TaskExample } from '../../data/tasks.ts';
import {
  DO_SYNTAX,
  parseIntervention,
  resolveInterventions,
  type Intervention,
} from '../../steer/intervention.ts';
import { featureStatsFor } from '../live-engine.ts';
import { interveneOnPrompt, taskEffect, type SteerContext } from '../../steer/run.ts';
import { defaultDataDir } from './start.ts';
import { parseIds } from './model.ts';
import {
  DEFAULT_OUT,
  bosMode,
  bosOptions,
  positiveInt,
  saeL0Option,
  saeWidthOption,
  saeDtypeOption,
} from '../options.ts';

interface InterveneOptions {
  prompt?: string;
  ids?: string;
  data?: string;
  example: number;
  all?: boolean;
  model: string;
  saes?: string;
  saeWidth?: number;
  dtype: WeightDtype;
  saeL0?: number;
  do: string[];
  generate?: number;
  temperature: number;
  seed: number;
  top: number;
  corpus?: string;
  cache: string;
  bos?: boolean;
  json?: boolean;
}

/** Where `mean` and `steer=Amax` statistics are cached by default. */
export const FEATURE_STATS_DIR = path.join(DEFAULT_OUT, 'feature-stats');

const collect = (value: string, previous: string[]) => [...previous, value];

function nonNegative(name: string, text: string): number {
  const v = Number(text);
  if (!Number.isFinite(v) || v < 0)
    throw new Error(`${name}: expected a non-negative number, got "${text}"`);
  return v;
}

function integer(name: string, text: string): number {
  const v = Number(text);
  if (!Number.isInteger(v)) throw new Error(`${name}: expected an integer, got "${text}"`);
  return v;
}

export function register(program: Command): void {
  program
    .command('intervene')
    .summary(
      'Zero, set, scale or steer features and see the next token and the continuation change.',
    )
    .description(
      [
        'Run a prompt with interventions on features and show what the model does: the next-token ' +
          'distribution before and after (top tokens, probabilities, logit changes, KL divergence), ' +
          "a task example's metric with --data, and with --generate N the continuation with and " +
          'without the interventions (held at every generated position: the cached keys and values ' +
          'carry them, and all+generated positions intervene on each new token too).',
        '',
        `--do ${DO_SYNTAX}. Repeat --do for several; they apply together, in layer order, and ` +
          'everything downstream recomputes.',
        'At a site x = W_D f + b_D + ε: setting features i to v_i is x ← x + Σ (v_i − f_i)·d_i ' +
          '(d_i the decoder row; the error and the other features keep their values, nothing is ' +
          "re-encoded). zero sets 0, mean the feature's mean activation on --corpus, set=V sets V, " +
          "scale=K sets K·f_i; steer=A adds A·d_i, steer=Amax adds A times the feature's max " +
          'activation on --corpus. The error node (err) takes zero (x ← x̂), mean (ε ← its corpus ' +
          'mean) or scale=K. With --saes neurons FEATURE is a neuron (a dimension of the site).',
        `Corpus statistics (mean, max) are computed once per site and cached in ${FEATURE_STATS_DIR}/ ` +
          '(--cache), keyed by the model, dictionary and corpus files.',
        '',
        'Examples (the shipped organism; tokens are words, positions count from 0):',
        '  # steer the subject " teacher" (position 1) with a subject_pl feature: " are" now wins',
        '  sfc intervene --prompt "The teacher near the desk" --do resid_1:76@1=steer=8max --generate 6',
        "  # zero three pending_sg features at the last token of a singular task example: the singular verb's lead shrinks (zeroing all 18 flips it, see the README)",
        '  sfc intervene --data data/nounpp_test.jsonl --example 8 --do attn_3:457@last=zero --do mlp_3:405@last=zero --do resid_3:485@last=zero',
        '  # the mean metric and accuracy over a whole task file',
        '  sfc intervene --data data/rc_test.jsonl --all --do resid_1:76@1=steer=8max',
        '  # neurons instead of features, and JSON with the full logit vectors',
        '  sfc intervene --prompt "The teachers" --saes neurons --do mlp_2:17@all=scale=0 --json > out.json',
        '  # any family sfc loads, e.g. a local GPT-2 snapshot',
        '  sfc intervene --model ~/models/gpt2 --saes neurons --prompt "The keys to the cabinet" --do mlp_5:300@all+generated=zero --generate 8',
      ].join('\n'),
    )
    .option('--prompt <text>', 'the text to run')
    .option('--ids <ids>', 'token ids instead of a prompt, comma-separated: 1,2,3 (run as given)')
    .option('--data <file>', 'task file (.jsonl): run an example and show its metric')
    .option(
      '--example <n>',
      "--data: which example (1 = the file's first kept one)",
      (v) => positiveInt('--example', v),
      1,
    )
    .option('--all', '--data: every example; print the mean metric and accuracy before and after')
    .option('--model <dir>', 'model folder', defaultModelDir())
    .option(
      '--saes <dir>',
      'SAE folder with one dictionary per site, or "neurons" (default: <model>/saes)',
    )
    .addOption(saeWidthOption())
    .addOption(saeDtypeOption())
    .addOption(saeL0Option())
    .option('--do <intervention>', `an intervention: ${DO_SYNTAX}`, collect, [])
    .option('--generate <n>', 'also generate N tokens with and without', (v) =>
      positiveInt('--generate', v),
    )
    .option(
      '--temperature <t>',
      '--generate: 0 is greedy (default); otherwise sample at this temperature',
      (v) => nonNegative('--temperature', v),
      0,
    )
    .option(
      '--seed <n>',
      '--generate: sampling seed (same draws with and without)',
      (v) => integer('--seed', v),
      1,
    )
    .option('--top <k>', 'how many next tokens to list', (v) => positiveInt('--top', v), 10)
    .option('--corpus <file>', 'corpus for mean and steer=Amax (default: data/corpus.txt)')
    .option('--cache <dir>', 'where corpus statistics are cached', FEATURE_STATS_DIR)
    .addOption(bosOptions()[0])
    .addOption(bosOptions()[1])
    .option(
      '--json',
      'print JSON: tokens, interventions, top tokens before/after, kl, logits_before and logits_after (the last position, full vocabulary), metric, generated',
    )
    .action((opts: InterveneOptions) => runIntervene(opts));
}

function runIntervene(opts: InterveneOptions): void {
  if (opts.do.length === 0)
    throw new Error(`no interventions: give at least one --do ${DO_SYNTAX.split(',')[0]}`);
  const inputs = [opts.prompt, opts.ids, opts.data].filter((x) => x !== undefined).length;
  if (inputs !== 1)
    throw new Error('give exactly one of --prompt TEXT, --ids 1,2,3 or --data FILE');
  if (opts.all && opts.data === undefined) throw new Error('--all needs --data FILE');
  if (opts.all && opts.generate)
    throw new Error('--all scores a task; --generate needs one prompt');
  const specs = opts.do.map(parseIntervention);
  const opened = openModel(opts.model, { tokenizer: true });
  const found = opened.tokenizer;
  // --ids runs without a tokenizer (token ids are then shown as numbers).
  const tokenizer = {
    get: () => {
      if (!found)
        throw new Error(
          `${opts.model}: no tokenizer.json, needed to read text; pass token ids with --ids 1,2,3`,
        );
      return found;
    },
    show: (id: number) => (found ? found.tokenString(id) : String(id)),
    decode: (ids: number[]) => (found ? found.decode(ids) : ids.join(',')),
  };
  const model: LanguageModel = opened.model;
  const saesDir = opts.saes ?? path.join(opts.model, 'saes');
  const library = openSaes(saesDir, model.shape.numLayers, {
    model,
    width: opts.saeWidth,
    dtype: opts.dtype,
    l0: opts.saeL0,
  });
  const dictionary = (site: string) => library.get(site);
  const corpus = opts.corpus ?? path.join(defaultDataDir(), 'corpus.txt');
  const stats = featureStatsFor({
    model,
    modelDir: opts.model,
    saesDir,
    location: (site) => library.entry(site).location,
    dictionary,
    corpus,
    cache: opts.cache,
    encode: (text) => tokenizer.get().encodePrompt(text, bosMode(opts.bos)).ids,
    onCompute: (site) =>
      console.error(`feature statistics for ${site} on ${corpus} (cached in ${opts.cache})`),
  });
  const interventions = resolveInterventions(specs, { model, dictionary, stats });
  const context: SteerContext = { model, dictionary };

  let example: TaskExample | null = null;
  let ids: number[];
  let bos = false;
  if (opts.data !== undefined) {
    const task = loadTask(opts.data, tokenizer.get(), {
      maxLength: model.shape.maxPositions,
      bos: bosMode(opts.bos),
    });
    if (opts.all) return printTaskEffect(context, task.examples, interventions, opts);
    example = task.examples[opts.example - 1];
    if (!example)
      throw new Error(
        `--example ${opts.example}: ${opts.data} has ${task.examples.length} usable examples`,
      );
    ids = example.clean;
  } else if (opts.ids !== undefined) {
    if (opts.bos !== undefined)
      throw new Error('--bos / --no-bos apply to --prompt; --ids are run as given');
    ids = parseIds(opts.ids);
  } else {
    ({ ids, bos } = tokenizer.get().encodePrompt(opts.prompt as string, bosMode(opts.bos)));
    if (ids.length === 0) throw new Error('the prompt is empty: nothing to run');
  }
  if (ids.length > model.shape.maxPositions)
    throw new Error(
      `the prompt has ${ids.length} tokens, more than the model's context of ${model.shape.maxPositions}`,
    );
  const outcome = interveneOnPrompt(context, ids, interventions, {
    top: opts.top,
    generate: opts.generate,
    temperature: opts.temperature,
    seed: opts.seed,
  });
  const { logitsBefore: before, logitsAfter: after, kl, generated } = outcome;
  const top = outcome.top.map((r) => ({ ...r, token: tokenizer.show(r.id) }));
  const metric =
    example && example.patchAnswerId !== null ? exampleMetric(example, before, after) : null;
  if (opts.json) {
    const json = {
      tokens: ids,
      bos,
      interventions: interventions.map((iv) => iv.spec.text),
      top,
      kl,
      metric: metric && { ...metric, line: example!.line },
      generated: generated && {
        without: { ids: generated.without, text: tokenizer.decode(generated.without) },
        with: { ids: generated.with, text: tokenizer.decode(generated.with) },
      },
      logits_before: Array.from(before),
      logits_after: Array.from(after),
    };
    process.stdout.write(JSON.stringify(json) + '\n');
    return;
  }
  const show = (id: number) => JSON.stringify(tokenizer.show(id));
  console.log(`tokens: ${ids.map((id, t) => `${t} ${show(id)}`).join(' | ')}`);
  for (const iv of interventions) console.log(`do: ${describeIntervention(iv)}`);
  console.log('next token        before     after   logit change');
  for (const r of top)
    console.log(
      `${show(r.id).padEnd(14)} ${r.before.toFixed(4).padStart(9)} ${r.after.toFixed(4).padStart(9)}   ${(r.logitChange >= 0 ? '+' : '') + r.logitChange.toFixed(3)}`,
    );
  console.log(`KL(before ‖ after) = ${kl.toFixed(4)} nats`);
  if (metric && example)
    console.log(
      `metric (${opts.data}:${example.line}): logit(${show(example.cleanAnswerId)}) − logit(${show(example.patchAnswerId!)}) ${metric.before.toFixed(3)} → ${metric.after.toFixed(3)}`,
    );
  if (generated) {
    const how =
      opts.temperature === 0 ? 'greedy' : `temperature ${opts.temperature}, seed ${opts.seed}`;
    console.log(`continuation (${generated.with.length} tokens, ${how}):`);
    console.log(`  without: ${JSON.stringify(tokenizer.decode(generated.without))}`);
    console.log(`  with:    ${JSON.stringify(tokenizer.decode(generated.with))}`);
  }
}

function exampleMetric(e: TaskExample, before: Float32Array, after: Float32Array) {
  const m = (l: Float32Array) => l[e.cleanAnswerId] - l[e.patchAnswerId!];
  return { before: m(before), after: m(after) };
}

function describeIntervention(iv: Intervention): string {
  const what = iv.target.kind === 'error' ? 'error node' : `feature ${iv.target.index}`;
  const where =
    iv.positions.kind === 'list'
      ? `position ${iv.positions.positions.join(',')}`
      : iv.positions.kind;
  const op = iv.op;
  const how =
    op.kind === 'steer'
      ? `add ${iv.amount.toFixed(4)}·d`
      : op.kind === 'scale'
        ? `scale by ${iv.amount}`
        : iv.target.kind === 'error'
          ? op.kind
          : `set to ${iv.amount.toFixed(4)}${op.kind === 'set' ? '' : ` (${op.kind})`}`;
  return `${iv.spec.text ?? ''}  (${what} of ${iv.site}, ${where}: ${how})`;
}

function printTaskEffect(
  context: SteerContext,
  examples: TaskExample[],
  interventions: Intervention[],
  opts: InterveneOptions,
): void {
  const effects = taskEffect(context, examples, interventions);
  const n = effects.length;
  const mean = (f: (e: (typeof effects)[number]) => number) =>
    effects.reduce((s, e) => s + f(e), 0) / n;
  const summary = {
    n,
    logit_diff_before: mean((e) => e.before),
    logit_diff_after: mean((e) => e.after),
    accuracy_before: effects.filter((e) => e.before > 0).length / n,
    accuracy_after: effects.filter((e) => e.after > 0).length / n,
  };
  if (opts.json) {
    process.stdout.write(
      JSON.stringify({ interventions: opts.do, ...summary, examples: effects }) + '\n',
    );
    return;
  }
  for (const iv of interventions) console.log(`do: ${describeIntervention(iv)}`);
  console.log(`${opts.data}: ${n} examples, logit(clean answer) − logit(patch answer)`);
  console.log(
    `mean logit diff  ${summary.logit_diff_before.toFixed(3)} → ${summary.logit_diff_after.toFixed(3)}`,
  );
  console.log(
    `accuracy         ${(100 * summary.accuracy_before).toFixed(1)}% → ${(100 * summary.accuracy_after).toFixed(1)}%`,
  );
}
