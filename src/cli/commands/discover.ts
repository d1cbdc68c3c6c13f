// `sfc discover`: find the sparse feature circuit of a task and write circuit.json.

import type { WeightDtype } from '../../sae/dictionary.ts';
import path from 'node:path';
import type { Command } from 'commander';
import { defaultModelDir } from '../../model/load.ts';
import { parseSiteList } from '../../model/language-model.ts';
import { describeTask, loadTask } from '../../data/tasks.ts';
import { openSaes } from '../../sae/library.ts';
import { discover, toCircuit, type DiscoverOptions } from '../../attribution/discover.ts';
import {
  writeCircuit,
  type Aggregation,
  type Circuit,
  type Method,
} from '../../circuit/circuit.ts';
import { progressBar } from '../progress.ts';
import { parseShard, type Shard } from '../../shards/shard.ts';
import { runDiscoverShard } from '../../shards/discover.ts';
import {
  bosMode,
  bosNote,
  bosOptions,
  positiveInt,
  positiveNumber,
  saeL0Option,
  saeWidthOption,
  saeDtypeOption,
} from '../options.ts';
import { openModelWithTokenizer } from '../open.ts';
import { nodeSites, printSaeChoices } from '../sae-choices.ts';

interface DiscoverCliOptions {
  data: string;
  model: string;
  saes?: string;
  saeWidth?: number;
  dtype: WeightDtype;
  sites?: string;
  saeL0?: number;
  method: Method;
  steps: number;
  examples: number;
  batchSize: number;
  aggregation: Aggregation;
  nodeThreshold: number;
  edgeThreshold: number;
  nodesOnly?: boolean;
  bos?: boolean;
  shard?: Shard;
  nodes?: string;
  residentDictionaries?: number | 'all';
  out: string;
}

/** `--resident-dictionaries n|all`: a positive integer, or every dictionary of the run. */
function residentDictionaries(v: string): number | 'all' {
  return v === 'all' ? 'all' : positiveInt('--resident-dictionaries', v);
}

function choice<T extends string>(name: string, allowed: readonly T[]) {
  return (v: string): T => {
    if (!(allowed as readonly string[]).includes(v))
      throw new Error(`${name}: expected one of ${allowed.join(', ')}, got "${v}"`);
    return v as T;
  };
}

/** Nodes (features + errors) and incoming edges per site, with the stage times. */
export function summaryTable(circuit: Circuit, times: { nodes: number; edges: number }): string {
  const lines = ['site        features  errors  edges in'];
  for (const site of circuit.sites) {
    const nodes = circuit.nodes.filter((n) => n.site === site);
    const errors = nodes.filter((n) => n.kind === 'error').length;
    const edgesIn = circuit.edges.filter((e) => e.target.startsWith(`${site}/`)).length;
    lines.push(
      `${site.padEnd(10)} ${String(nodes.length - errors).padStart(9)} ${String(errors).padStart(7)} ${String(edgesIn).padStart(9)}`,
    );
  }
  const toY = circuit.edges.filter((e) => e.target === 'y').length;
  lines.push(
    `${'y'.padEnd(10)} ${''.padStart(9)} ${''.padStart(7)} ${String(toY).padStart(9)}`,
    `total: ${circuit.nodes.length} nodes, ${circuit.edges.length} edges; metric clean ${circuit.metric.clean.toFixed(3)}` +
      (circuit.metric.patch === null
        ? ' (zero ablation)'
        : `, patch ${circuit.metric.patch.toFixed(3)}`),
    `time: nodes ${times.nodes.toFixed(1)} s, edges ${times.edges.toFixed(1)} s`,
  );
  return lines.join('\n');
}

export function register(program: Command): void {
  program
    .command('discover')
    .summary('Find the sparse feature circuit of a task; writes <out>/circuit.json.')
    .description(
      [
        'Find the sparse feature circuit of a contrastive task (Marks et al. 2024):',
        'the SAE features and error terms, at every site and position, whose indirect effect on ' +
          'm = logit(patch answer) - logit(clean answer) exceeds a threshold, and the ' +
          'direct-effect edges between them. Data without patch prefixes uses m = -logit(clean ' +
          'answer) and zero ablation (features and errors patched to 0). Writes <out>/circuit.json ' +
          'and prints nodes and edges per site.',
        '',
        'Methods for node effects:',
        '  ig      integrated gradients: each site interpolated from clean to patch',
        '  attrib  attribution patching: (u_patch - u_clean) times dm/du, one pass',
        '  exact   activation patching of every node separately (slow; a check)',
        'Edges weight each downstream node by its IG gradient (attrib: the clean gradient), ' +
          'along the direct path between adjacent sites.',
        '',
        'Examples:',
        '  sfc discover --data data/rc_train.jsonl --out out',
        '  sfc discover --data data/simple_train.jsonl --method attrib --nodes-only',
      ].join('\n'),
    )
    .requiredOption(
      '--data <file>',
      "task file (.jsonl or the paper's .json, one example per line)",
    )
    .option('--model <dir>', 'model folder, with tokenizer.json', defaultModelDir())
    .option('--saes <dir>', 'SAE folder with one dictionary per site (default: <model>/saes)')
    .addOption(saeWidthOption())
    .addOption(saeDtypeOption())
    .addOption(saeL0Option())
    .option(
      '--sites <list>',
      'sites with dictionaries, comma-separated: sites (resid_3) or kinds at every layer ' +
        '(embed,attn_z,mlp,resid); default: every site with a dictionary. The other sites are ' +
        'passed through: edges join node sites along direct paths through them',
    )
    .option(
      '--method <name>',
      'ig | attrib | exact',
      choice('--method', ['ig', 'attrib', 'exact'] as const),
      'ig',
    )
    .option('--steps <n>', 'IG interpolation steps', (v) => positiveInt('--steps', v), 10)
    .option(
      '--examples <n>',
      'use the first n usable examples',
      (v) => positiveInt('--examples', v),
      100,
    )
    .option('--batch-size <n>', 'examples per batch', (v) => positiveInt('--batch-size', v), 10)
    .option(
      '--aggregation <how>',
      'none: per position (all examples must have one length); sum: over positions',
      choice('--aggregation', ['none', 'sum'] as const),
      'none',
    )
    .option(
      '--node-threshold <x>',
      'keep nodes with |mean effect| above x (0: every non-zero node)',
      (v) => positiveNumber('--node-threshold', v, true),
      0.1,
    )
    .option(
      '--edge-threshold <x>',
      'keep edges with |mean weight| above x',
      (v) => positiveNumber('--edge-threshold', v, true),
      0.01,
    )
    .option('--nodes-only', 'skip the edges')
    .addOption(bosOptions()[0])
    .addOption(bosOptions()[1])
    .option(
      '--shard <i/n>',
      'run shard i of n (from 0) of the batches; writes <out>/discover-*.part.json for sfc merge',
      (v) => parseShard(v),
    )
    .option('--nodes <file>', 'with --shard: the edges pass, for the node set sfc merge wrote')
    .option(
      '--resident-dictionaries <n|all>',
      'dictionaries kept in memory at once (default: the fewest discovery needs, the largest ' +
        'group of sites whose nodes are found together and, for edges, the direct upstream ' +
        'sites of one site: 3 with a dictionary at every site; each dictionary is then read at ' +
        'least twice, once per stage). all: every dictionary stays once read (each read once; ' +
        'needs memory for all of them). The circuit is the same',
      residentDictionaries,
    )
    .option('--out <dir>', 'output folder for circuit.json', 'out')
    .action((opts: DiscoverCliOptions) => {
      const { model, tokenizer } = openModelWithTokenizer(opts.model, 'needed to read task text');
      const given =
        opts.sites === undefined ? undefined : parseSiteList(model, opts.sites, '--sites');
      const saesDir = opts.saes ?? path.join(opts.model, 'saes');
      const library = openSaes(saesDir, model.shape.numLayers, {
        model,
        width: opts.saeWidth,
        dtype: opts.dtype,
        l0: opts.saeL0,
      });
      printSaeChoices(library);
      const sites = nodeSites(model, library, given);
      const task = loadTask(opts.data, tokenizer, {
        limit: opts.examples,
        maxLength: model.shape.maxPositions,
        bos: bosMode(opts.bos),
      });
      process.stderr.write(`${describeTask(task)}\n${bosNote(tokenizer, opts.bos, task.bos)}\n`);
      if (opts.nodes !== undefined && opts.shard === undefined)
        throw new Error('--nodes: only with --shard (the edges pass of a sharded run)');
      const nodesBar = progressBar('nodes');
      const edgesBar = progressBar('edges');
      const options: DiscoverOptions = {
        method: opts.method,
        steps: opts.steps,
        aggregation: opts.aggregation,
        nodeThreshold: opts.nodeThreshold,
        edgeThreshold: opts.edgeThreshold,
        nodesOnly: opts.nodesOnly,
        batchSize: opts.batchSize,
        sites,
        resident: opts.residentDictionaries === 'all' ? sites.length : opts.residentDictionaries,
        onNodes: nodesBar.update,
        onEdges: edgesBar.update,
      };
      if (opts.shard !== undefined) {
        const file = runDiscoverShard({
          model,
          dictionaries: library,
          examples: task.examples,
          tokens: task.examples[0].clean.map((id) => tokenizer.tokenString(id)),
          bos: task.bos,
          options: { ...options, onNodes: undefined, onEdges: undefined },
          paths: { model: opts.model, saes: saesDir, data: opts.data },
          limit: opts.examples,
          saeWidth: opts.saeWidth ?? null,
          shard: opts.shard,
          nodesFile: opts.nodes,
          out: opts.out,
        });
        nodesBar.stop();
        edgesBar.stop();
        console.log(`wrote ${file}`);
        return;
      }
      let result;
      try {
        result = discover(model, library, task.examples, options);
      } finally {
        nodesBar.stop();
        edgesBar.stop();
      }
      const circuit = toCircuit(
        result,
        {
          model: opts.model,
          saes: saesDir,
          data: opts.data,
          tokens: task.examples[0].clean.map((id) => tokenizer.tokenString(id)),
          bos: task.bos,
        },
        options,
      );
      const file = writeCircuit(opts.out, circuit);
      const held = result.dictionaries!;
      process.stderr.write(
        `dictionaries in memory: at most ${held.peak} at once; ${held.loads} loads for ${sites.length} sites\n`,
      );
      console.log(summaryTable(circuit, result.times));
      console.log(`wrote ${file}`);
    });
}
