// `sfc evaluate`: how faithful and how complete a discovered circuit is, with the curves over
// node thresholds and the baselines (no error nodes, neurons, random features).

import type { WeightDtype } from '../../sae/dictionary.ts';
import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { defaultModelDir } from '../../model/load.ts';
import { parseTransformerSite } from '../../model/sites.ts';
import type { LanguageModel } from '../../model/language-model.ts';
import { describeTask, loadTask, taskBatches, type TaskExample } from '../../data/tasks.ts';
import type { Tokenizer } from '../../model/tokenizer.ts';
import { NEURONS, openSaes } from '../../sae/library.ts';
import type { Dictionary } from '../../sae/dictionary.ts';
import { ABLATION_KINDS, AblatedModel, type AblationKind } from '../../evaluation/ablation.ts';
import {
  readCircuitForEvaluation,
  type CircuitForEvaluation,
} from '../../evaluation/circuit-input.ts';
import { discover, toCircuit } from '../../attribution/discover.ts';
import { logitDiffMetric, type Metric } from '../../attribution/metric.ts';
import { writeCircuit } from '../../circuit/circuit.ts';
import {
  ERROR_MODES,
  SERIES,
  evaluate,
  logspace,
  type ErrorMode,
  type SeriesName,
} from '../../evaluation/faithfulness.ts';
import { formatEvaluation, writeEvaluationFiles } from '../../evaluation/output.ts';
import { progressBar } from '../progress.ts';
import {
  bosMode,
  bosNote,
  bosOptions,
  positiveInt,
  saeL0Option,
  saeWidthOption,
  saeDtypeOption,
} from '../options.ts';
import { openModelWithTokenizer } from '../open.ts';
import { parseShard, type Shard } from '../../shards/shard.ts';
import { evaluateIdentity, runEvaluateShard } from '../../shards/evaluate.ts';
import { printSaeChoices } from '../sae-choices.ts';

interface EvaluateFlags {
  circuit: string;
  data?: string;
  model?: string;
  saes?: string;
  saeWidth?: number;
  dtype: WeightDtype;
  saeL0?: number;
  neuronsCircuit?: string;
  ablation: string;
  startLayer?: string;
  errors: string;
  thresholds: string;
  series?: string;
  examples: number;
  batchSize: number;
  seed: string;
  out?: string;
  bos?: boolean;
  json?: boolean;
  shard?: Shard;
  means?: string;
}

/** "1e-4,0.01,0.1" or "lo:hi:n" (n log-spaced values from 10^lo to 10^hi). */
export function parseThresholds(text: string): number[] {
  const range = /^\s*(-?[\d.]+)\s*:\s*(-?[\d.]+)\s*:\s*(\d+)\s*$/.exec(text);
  if (range) {
    const [lo, hi, n] = [Number(range[1]), Number(range[2]), Number(range[3])];
    if (!Number.isFinite(lo) || !Number.isFinite(hi) || n < 1)
      throw new Error(`--thresholds: "${text}" is not lo:hi:n with n >= 1`);
    return logspace(lo, hi, n);
  }
  const values = text.split(',').map((s) => s.trim());
  return values.map((s) => {
    const v = Number(s);
    if (s === '' || !Number.isFinite(v) || v < 0)
      throw new Error(
        `--thresholds: "${s}" is not a non-negative number (give a comma list like 0.001,0.01,0.1 or lo:hi:n like -4:0:15)`,
      );
    return v;
  });
}

function choice<T extends string>(flag: string, value: string, allowed: readonly T[]): T {
  if (!allowed.includes(value as T))
    throw new Error(`${flag}: expected one of ${allowed.join(', ')}, got "${value}"`);
  return value as T;
}

/** A path written in a circuit file: as given (relative to here), else relative to the circuit. */
function resolveFrom(circuitFile: string, p: string): string | null {
  if (fs.existsSync(p)) return p;
  const beside = path.resolve(path.dirname(circuitFile), p);
  return fs.existsSync(beside) ? beside : null;
}

/** The held-out file of a discovery file: rc_train.jsonl -> rc_test.jsonl. */
export function testDataFor(trainFile: string): string | null {
  const m = /_train(\.jsonl?|\.json)$/.exec(trainFile);
  return m ? trainFile.slice(0, m.index) + '_test' + m[1] : null;
}

function dataFile(flags: EvaluateFlags, circuit: CircuitForEvaluation): string {
  if (flags.data) return flags.data;
  const test = testDataFor(circuit.data);
  const found = test && resolveFrom(circuit.file, test);
  if (!found)
    throw new Error(
      `${circuit.file}: was found on ${circuit.data}; evaluation uses held-out data, ${
        test ? `but ${test} does not exist` : 'but that name has no _train part to turn into _test'
      }: pass --data FILE`,
    );
  return found;
}

function modelDir(flags: EvaluateFlags, circuit: CircuitForEvaluation): string {
  if (flags.model) return flags.model;
  return resolveFrom(circuit.file, circuit.model) ?? defaultModelDir();
}

function saesDir(given: string | undefined, circuit: CircuitForEvaluation, model: string): string {
  if (given) return given;
  if (circuit.saes === NEURONS) return NEURONS;
  return resolveFrom(circuit.file, circuit.saes) ?? path.join(model, 'saes');
}

/** Discovery's metric over the evaluation examples; mixed data is refused naming the file. */
function metricOf(data: string, examples: TaskExample[]): Metric {
  try {
    return logitDiffMetric(examples);
  } catch (e) {
    throw new Error(`${data}: ${(e as Error).message}`, { cause: e });
  }
}

/** The sites evaluated from a start layer on (the embedding only when start < 0). */
export function evaluatedSites(sites: string[], numLayers: number, startLayer: number): string[] {
  return sites.filter((s) => parseTransformerSite(s, numLayers).layer >= startLayer);
}

export function dictionariesAt(
  dir: string,
  sites: string[],
  model: LanguageModel,
  saeWidth?: number,
  saeL0?: number,
  print = true,
  dtype?: WeightDtype,
): Map<string, Dictionary> {
  const library = openSaes(dir, model.shape.numLayers, {
    model,
    width: saeWidth,
    l0: saeL0,
    dtype,
  });
  if (print) printSaeChoices(library);
  return new Map(sites.map((s) => [s, library.get(s)]));
}

export function register(program: Command): void {
  program
    .command('evaluate')
    .summary('Faithfulness and completeness of a circuit, with curves and baselines.')
    .description(
      [
        "Measure how much of the model's behaviour a circuit explains. The clean inputs run with " +
          'SAEs spliced in at every site from --start-layer on (x = decode(f) + error), and every ' +
          'node outside the circuit (features and error nodes) is replaced by its ablation value; ' +
          "nodes inside are recomputed from the already-ablated activations. F is the mean of discovery's " +
          'metric m = logit[patch answer] - logit[clean answer] at the last token (-logit[clean ' +
          'answer] without patch answers; data mixing both is refused):',
        '  faithfulness = (F(C) - F(empty)) / (F(model) - F(empty))',
        '  completeness = the same for the complement (all but C kept)',
        'The circuit as saved is also scored with every layer spliced (embedding included), and ' +
          'the nodes below --start-layer are counted.',
        '',
        'Besides the circuit as saved: curves over node thresholds (the nodes with |effect| ' +
          'above each) for features; features without error nodes; features without attn/mlp error ' +
          'nodes; random features, as many per site and position; and neurons. The neuron circuit ' +
          "is found here (nodes only, the circuit's data, method and aggregation, identity " +
          'dictionaries) and saved as <out>/neurons/circuit.json, unless --neurons-circuit gives ' +
          "one. Thresholds below the circuit file's own node threshold are skipped: discover with " +
          '--node-threshold 1e-4 to draw the whole curve.',
        '',
        'Writes evaluation.json, faithfulness.svg and completeness.svg to --out (default: beside ' +
          'the circuit) and prints a table.',
        '',
        'Examples:',
        '  sfc evaluate --circuit out/circuit.json',
        '  sfc evaluate --circuit out/circuit.json --data data/rc_test.jsonl \\',
        '      --ablation zero --series features,random_features --json',
        '',
        'Sharded (docs/shards.md): with --shard I/N a run takes the I-th of N slices of the ' +
          'batches and writes a part to --out for sfc merge. Mean ablation takes two passes: ' +
          '--shard I/N writes the sums for the means, sfc merge writes <out>/means.json, then ' +
          '--shard I/N --means <out>/means.json scores, and sfc merge writes evaluation.json. ' +
          'Zero and patch ablation need only the second pass (no --means). The neurons series ' +
          'needs --neurons-circuit when sharded.',
        '  sfc evaluate --circuit out/circuit.json --shard 0/2 --out parts   (and 1/2)',
        '  sfc merge parts/evaluate-means-*.part.json --out ev',
        '  sfc evaluate --circuit out/circuit.json --shard 0/2 --means ev/means.json --out parts',
        '  sfc merge parts/evaluate-metrics-*.part.json --out ev',
      ].join('\n'),
    )
    .requiredOption('--circuit <file>', 'circuit.json written by sfc discover')
    .option(
      '--data <file>',
      "evaluation data (default: the circuit's data file with _train replaced by _test)",
    )
    .option('--model <dir>', "model folder (default: the circuit's model, else the organism)")
    .option('--saes <dir>', "SAE folder (default: the circuit's, else <model>/saes)")
    .addOption(saeWidthOption())
    .addOption(saeDtypeOption())
    .addOption(saeL0Option())
    .option(
      '--neurons-circuit <file>',
      'a circuit of the same task found with --saes neurons, for the neurons series (default: find it here)',
    )
    .option(
      '--ablation <kind>',
      "value of ablated nodes: mean (per-position mean over the patch inputs of all evaluated examples), zero, or patch (each example's own patch value)",
      'mean',
    )
    .option(
      '--start-layer <L>',
      'first layer whose sites are spliced and ablated; earlier ones and the embedding stay untouched; -1 includes the embedding (default: a third of the layers, 2 for Pythia-70M)',
    )
    .option(
      '--errors <mode>',
      'error nodes: default (kept when in the circuit), remove (always ablated), keep (never ablated)',
      'default',
    )
    .option(
      '--thresholds <list>',
      'node thresholds of the curves: a comma list, or lo:hi:n for n log-spaced values from 10^lo to 10^hi',
      '-4:0:15',
    )
    .option('--series <list>', `comma list of series to draw (default all): ${SERIES.join(', ')}`)
    .option(
      '--examples <n>',
      'evaluate on the first n usable examples',
      (v) => positiveInt('--examples', v),
      100,
    )
    .option(
      '--batch-size <n>',
      'examples per forward pass',
      (v) => positiveInt('--batch-size', v),
      25,
    )
    .option('--seed <n>', 'seed of the random-features baseline', '0')
    .option(
      '--out <dir>',
      "where to write evaluation.json and the plots (default: the circuit's folder)",
    )
    .option('--json', 'print the evaluation object as JSON instead of the table')
    .option(
      '--shard <i/n>',
      'run shard i of n (from 0) of the batches; writes <out>/evaluate-*.part.json for sfc merge',
      (v) => parseShard(v),
    )
    .option(
      '--means <file>',
      'with --shard and mean ablation: the scoring pass, with the means sfc merge wrote',
    )
    .addOption(bosOptions("as circuit.json's bos says, else as the model's tokenizer does")[0])
    .addOption(bosOptions()[1])
    .action(async (flags: EvaluateFlags) => {
      const ablation = choice<AblationKind>('--ablation', flags.ablation, ABLATION_KINDS);
      const errors = choice<ErrorMode>('--errors', flags.errors, ERROR_MODES);
      const thresholds = parseThresholds(flags.thresholds);
      const series = flags.series
        ?.split(',')
        .map((s) => choice<SeriesName>('--series', s.trim(), SERIES));
      const seed = Number(flags.seed);
      if (!Number.isInteger(seed))
        throw new Error(`--seed: expected an integer, got "${flags.seed}"`);
      if (series?.includes('neurons') && !flags.neuronsCircuit)
        throw new Error(
          '--series neurons needs --neurons-circuit FILE (a circuit found with --saes neurons)',
        );

      if (flags.means !== undefined && flags.shard === undefined)
        throw new Error('--means: only with --shard (the scoring pass of a sharded evaluation)');
      if (
        flags.shard &&
        !flags.neuronsCircuit &&
        flags.series?.split(',').some((s) => s.trim() === 'neurons') !== false
      )
        throw new Error(
          '--shard: the neurons series needs --neurons-circuit FILE (sfc discover --saes neurons --nodes-only, which can itself be sharded), or leave neurons out of --series',
        );
      const circuit = readCircuitForEvaluation(flags.circuit);
      let neuronsCircuit = flags.neuronsCircuit
        ? readCircuitForEvaluation(flags.neuronsCircuit)
        : null;
      if (neuronsCircuit && neuronsCircuit.saes !== NEURONS)
        throw new Error(
          `${neuronsCircuit.file}: was found with SAEs ${neuronsCircuit.saes}, not with neurons (sfc discover --saes neurons)`,
        );
      const dir = modelDir(flags, circuit);
      const { model, tokenizer } = openModelWithTokenizer(dir, 'needed to read the task data');
      // Without --bos / --no-bos the prefixes start as discovery's did (circuit.json's bos).
      const bos: BosChoice =
        flags.bos === undefined && circuit.bos !== undefined
          ? { flag: circuit.bos, from: `${path.basename(circuit.file)}'s bos` }
          : { flag: flags.bos };
      const numLayers = model.shape.numLayers;
      let startLayer = Math.floor(numLayers / 3);
      if (flags.startLayer !== undefined) {
        startLayer = Number(flags.startLayer);
        if (!Number.isInteger(startLayer) || startLayer < -1 || startLayer >= numLayers)
          throw new Error(
            `--start-layer: expected an integer in -1..${numLayers - 1}, got "${flags.startLayer}"`,
          );
      }

      const out = flags.out ?? path.dirname(circuit.file);
      const data = dataFile(flags, circuit);
      if (!neuronsCircuit && (series ?? SERIES).includes('neurons'))
        neuronsCircuit = discoverNeurons(
          model,
          tokenizer,
          circuit,
          Math.min(...thresholds),
          out,
          bos,
        );
      if (path.resolve(data) === path.resolve(circuit.data))
        process.stderr.write(
          `warning: evaluating on the data the circuit was discovered on (${data})\n`,
        );
      const examples = loadExamples(
        data,
        tokenizer,
        circuit,
        neuronsCircuit,
        flags.examples,
        model.shape.maxPositions,
        bos,
      );
      const batches = taskBatches(examples, flags.batchSize);
      const metric = metricOf(
        data,
        batches.flatMap((b) => b.examples),
      );
      // The circuit's own sites: its node sites, those with dictionaries when it was discovered.
      const circuitSites = model.sites.filter((s) => circuit.sites.includes(s));
      const sites = evaluatedSites(circuitSites, numLayers, startLayer);
      const saes = saesDir(flags.saes, circuit, dir);
      if (flags.shard) {
        const bar = progressBar(
          flags.means || ablation !== 'mean' ? 'scoring shard' : 'means shard',
        );
        const saesAt = dictionariesAt(saes, circuitSites, model, flags.saeWidth, flags.saeL0);
        const wantsNeurons = neuronsCircuit !== null && (series ?? SERIES).includes('neurons');
        const file = runEvaluateShard({
          model,
          batches,
          metric,
          saes: saesAt,
          sites,
          neurons: wantsNeurons
            ? dictionariesAt(NEURONS, sites, model, undefined, undefined, false)
            : null,
          circuit,
          neuronsCircuit: wantsNeurons ? neuronsCircuit : null,
          ablation,
          errors,
          thresholds,
          series,
          seed,
          identity: evaluateIdentity(
            {
              circuit: circuit.file,
              neuronsCircuit: wantsNeurons ? neuronsCircuit!.file : null,
              data,
              model: dir,
              saes,
            },
            {
              ablation,
              start_layer: startLayer,
              errors,
              thresholds,
              series: series ?? null,
              examples: flags.examples,
              batch_size: flags.batchSize,
              seed,
              sae_width: flags.saeWidth ?? null,
              sae_l0: flags.saeL0 ?? null,
              bos: bos.flag ?? null,
            },
          ),
          settings: {
            circuit: circuit.file,
            neuronsCircuit: neuronsCircuit?.file ?? null,
            model: dir,
            saes,
            data,
          },
          shard: flags.shard,
          meansFile: flags.means,
          out,
          onProgress: bar.update,
        });
        bar.stop();
        console.log(`wrote ${file}`);
        return;
      }
      const bar = progressBar('evaluating');
      const ablated = new AblatedModel(
        model,
        dictionariesAt(saes, sites, model, flags.saeWidth, flags.saeL0, true, flags.dtype),
        batches,
        { ablation, metric },
      );
      // Every layer, the embedding included: what the start layer leaves out counts here.
      const allLayers =
        sites.length === circuitSites.length
          ? ablated
          : new AblatedModel(
              model,
              // The same folder and choices as printed above.
              dictionariesAt(
                saes,
                circuitSites,
                model,
                flags.saeWidth,
                flags.saeL0,
                false,
                flags.dtype,
              ),
              batches,
              { ablation, metric },
            );
      const neurons = neuronsCircuit
        ? {
            model: new AblatedModel(model, dictionariesAt(NEURONS, sites, model), batches, {
              ablation,
              metric,
            }),
            circuit: neuronsCircuit,
          }
        : undefined;
      const evaluation = evaluate(
        { model: ablated, circuit, neurons, allLayers },
        { thresholds, errors, series, seed, onProgress: bar.update },
      );
      bar.stop();

      const json = await writeEvaluationFiles(
        out,
        {
          circuit: circuit.file,
          neuronsCircuit: neuronsCircuit?.file ?? null,
          model: dir,
          saes,
          data,
          examples: examples.length,
          ablation,
          startLayer,
          errors,
          thresholds,
          seed,
        },
        evaluation,
        circuit.nodeThreshold,
      );
      if (flags.json) console.log(JSON.stringify(json, null, 2));
      else {
        console.log(formatEvaluation(evaluation, circuit.nodeThreshold, startLayer));
        console.log(
          `\nwrote ${path.join(out, 'evaluation.json')}, faithfulness.svg, completeness.svg`,
        );
      }
    });
}

/**
 * The neuron circuit of the same task: discovery (nodes only) on the circuit's own data, method,
 * aggregation and sites with identity dictionaries, listing nodes above `threshold`. Saved beside the
 * evaluation as neurons/circuit.json so it can be reused with --neurons-circuit.
 */
function discoverNeurons(
  model: LanguageModel,
  tokenizer: Tokenizer,
  circuit: CircuitForEvaluation,
  threshold: number,
  out: string,
  bos: BosChoice,
): CircuitForEvaluation {
  const data = resolveFrom(circuit.file, circuit.data);
  if (!data)
    throw new Error(
      `${circuit.file}: the neurons series rediscovers the circuit with neurons on its data ${circuit.data}, which does not exist; pass --neurons-circuit FILE or leave neurons out of --series`,
    );
  const task = loadTask(data, tokenizer, {
    limit: circuit.examples,
    maxLength: model.shape.maxPositions,
    bos: bosMode(bos.flag),
  });
  const library = openSaes(NEURONS, model.shape.numLayers, { model });
  const options = {
    method: circuit.method,
    steps: circuit.steps,
    aggregation: circuit.aggregation,
    nodeThreshold: threshold,
    nodesOnly: true,
    // The SAE circuit's sites: neurons stand in for its dictionaries, site for site.
    sites: model.sites.filter((s) => circuit.sites.includes(s)),
  };
  const bar = progressBar('neuron circuit');
  const found = discover(model, (site) => library.get(site), task.examples, {
    ...options,
    onNodes: bar.update,
  });
  bar.stop();
  const file = writeCircuit(
    path.join(out, 'neurons'),
    toCircuit(
      found,
      {
        model: circuit.model,
        saes: NEURONS,
        data: circuit.data,
        tokens: task.examples[0].clean.map((id) => tokenizer.tokenString(id)),
        bos: task.bos,
      },
      options,
    ),
  );
  return readCircuitForEvaluation(file);
}

/** --bos / --no-bos, or the mode circuit.json recorded (`from` names it for the message). */
export interface BosChoice {
  flag: boolean | undefined;
  from?: string;
}

/**
 * The task's usable examples; per-position circuits need examples of their own length. `bos`:
 * with or without the BOS token (flag undefined: as the tokenizer does, discovery's default).
 */
export function loadExamples(
  data: string,
  tokenizer: Tokenizer,
  circuit: CircuitForEvaluation,
  neuronsCircuit: CircuitForEvaluation | null,
  limit: number,
  maxLength: number,
  bos: BosChoice = { flag: undefined },
): TaskExample[] {
  const task = loadTask(data, tokenizer, { maxLength, bos: bosMode(bos.flag) });
  process.stderr.write(
    `${describeTask(task)}\n${bosNote(tokenizer, bos.flag, task.bos, bos.from)}\n`,
  );
  let examples = task.examples;
  const perPosition = [circuit, neuronsCircuit].filter(
    (c): c is CircuitForEvaluation => c !== null && c.aggregation === 'none',
  );
  const lengths = new Set(perPosition.map((c) => c.tokens.length));
  if (lengths.size > 1)
    throw new Error(
      `${circuit.file} and ${neuronsCircuit!.file} are per-position circuits of different lengths (${[...lengths].join(' and ')} tokens)`,
    );
  if (lengths.size === 1) {
    const T = [...lengths][0];
    const kept = examples.filter((e) => e.clean.length === T);
    if (kept.length < examples.length)
      process.stderr.write(
        `${data}: using the ${kept.length} examples of ${T} tokens (the circuit's positions); ${examples.length - kept.length} of other lengths left out\n`,
      );
    examples = kept;
  }
  if (examples.length === 0) throw new Error(`${data}: no usable examples to evaluate on`);
  return examples.slice(0, limit);
}
