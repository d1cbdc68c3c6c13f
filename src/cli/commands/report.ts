// `sfc report`, `sfc view` and `sfc dashboards`: seeing a circuit. The report and the server read
// files only (circuit.json, evaluation.json, dashboards.json, shift.json, labels); dashboards run
// the model.

import type { WeightDtype } from '../../sae/dictionary.ts';
import type { Command } from 'commander';
import path from 'node:path';
import { runDashboards } from '../../dashboards/run.ts';
import { printSaeChoices } from '../sae-choices.ts';
import { parseShard, type Shard } from '../../shards/shard.ts';
import { defaultModelDir } from '../../model/load.ts';
import { organismDocuments } from '../../organism/corpus.ts';
import type { ReportOptions } from '../../viewer/inputs.ts';
import { buildReport } from '../../viewer/report.ts';
import { isLoopbackHost, serveReport } from '../../viewer/server.ts';
import {
  bosMode,
  bosNote,
  bosOptions,
  positiveInt,
  saeL0Option,
  saeWidthOption,
  saeDtypeOption,
} from '../options.ts';
import { progressBar } from '../progress.ts';
import { openLiveEngine } from '../live-engine.ts';
import { FEATURE_STATS_DIR } from './intervene.ts';
import { defaultDataDir } from './start.ts';

interface ViewCliOptions {
  port: string;
  host: string;
  live?: boolean;
  model: string;
  saes?: string;
  saeWidth?: number;
  dtype: WeightDtype;
  saeL0?: number;
  corpus?: string;
  cache: string;
  bos?: boolean;
}

const collect = (value: string, previous: string[] = []) => [...previous, value];

function addReportOptions(cmd: Command): Command {
  return cmd
    .option(
      '--labels <file>',
      'ground-truth feature labels (labels.jsonl: {"site","feature","label",...} per line); repeatable (default: labels.jsonl in DIR or beside the circuit\'s SAEs/model)',
      collect,
    )
    .option(
      '--annotations <file>',
      'feature annotations as the paper ships them ({"Name":"resid_5/3036","Annotation":"..."} per line); repeatable, wins over --labels',
      collect,
    )
    .option('--dashboards <file>', 'feature dashboards (default: DIR/dashboards.json when present)')
    .option(
      '--evaluation <file>',
      'faithfulness/completeness curves (default: DIR/evaluation.json when present)',
    )
    .option(
      '--shift <file>',
      'SHIFT results and candidate features for the SHIFT panel (default: DIR/shift.json when present)',
    )
    .option(
      '--graph <file>',
      'an attribution graph JSON in the Neuronpedia / circuit-tracer format (from `sfc graph`, circuit-tracer or a Neuronpedia download) to show; repeatable (default: DIR/graphs/*.json, without *.graph.json)',
      collect,
    )
    .option('--title <text>', "page title (default: from the circuit's data and method)");
}

export function register(program: Command): void {
  addReportOptions(
    program
      .command('report')
      .summary('Write DIR/report.html, the circuit in one self-contained page.')
      .description(
        [
          'Write DIR/report.html: the circuit graph (rows by site, columns by token), threshold ' +
            'sliders, search, feature dashboards, the evaluation curves, with shift.json the ' +
            'SHIFT panel, and with DIR/graphs/*.json (from `sfc graph --out DIR/graphs`) or --graph ' +
            'FILE the attribution graphs (hover, click, thresholds, supernodes), in one ' +
            'self-contained page that opens from disk (no server, no network).',
          'Example: sfc report out/ && xdg-open out/report.html',
        ].join('\n'),
      )
      .argument('<dir>', 'folder with circuit.json (from `sfc discover`)')
      .option('--out <file>', 'where to write the page (default: DIR/report.html)'),
  ).action((dir: string, opts: ReportOptions & { out?: string; graph?: string[] }) => {
    const file = buildReport(dir, {
      ...opts,
      graphs: opts.graph,
      onWarning: (w) => process.stderr.write(`warning: ${w}\n`),
    });
    console.log(`wrote ${file}`);
  });

  addReportOptions(
    program
      .command('view')
      .summary('Serve the report of DIR on localhost, reloading when its files change.')
      .description(
        [
          'Serve the report of DIR on localhost. Files are re-read on every request and an open ' +
            'page reloads its data when circuit.json, evaluation.json, dashboards.json, shift.json ' +
            'or the graph files change.',
          '',
          'With --live the model and its dictionaries are loaded once and the page gets an ' +
            'Intervene panel: click a node, zero/set/scale/steer it, and see the next token, the ' +
            "continuation and the circuit's other nodes change (the numbers of sfc intervene).",
          '',
          'Examples:',
          '  sfc view out/ --port 8642, then open http://127.0.0.1:8642/',
          '  sfc view out/ --live --model models/organism',
        ].join('\n'),
      )
      .argument('<dir>', 'folder with circuit.json (from `sfc discover`)')
      .option('--port <n>', 'port to listen on (0: any free port)', '8642')
      .option('--host <address>', 'address to listen on (default: this machine only)', '127.0.0.1')
      .option(
        '--live',
        'load the model and dictionaries once and add the live panel: zero, set or scale circuit nodes and see the next token, the continuation and the other nodes change (POST /api/intervene, /api/activations)',
      )
      .option('--model <dir>', '--live: model folder', defaultModelDir())
      .option('--saes <dir>', '--live: SAE folder, or "neurons" (default: <model>/saes)')
      .addOption(saeWidthOption())
      .addOption(saeDtypeOption())
      .addOption(saeL0Option())
      .option(
        '--corpus <file>',
        '--live: corpus for mean and steer=Amax (default: data/corpus.txt)',
      )
      .option('--cache <dir>', '--live: where corpus statistics are cached', FEATURE_STATS_DIR)
      .addOption(bosOptions()[0])
      .addOption(bosOptions()[1]),
  ).action(async (dir: string, opts: ReportOptions & ViewCliOptions & { graph?: string[] }) => {
    const port = Number(opts.port);
    if (!(Number.isInteger(port) && port >= 0 && port < 65536))
      throw new Error(`--port: expected an integer in 0..65535, got "${opts.port}"`);
    if (!isLoopbackHost(opts.host))
      process.stderr.write(
        `WARNING: --host ${opts.host} is not a loopback address: anyone who can reach this machine on that address can read the report (circuits, labels, file paths). Use --host 127.0.0.1 unless you mean to share it.\n`,
      );
    const engine = opts.live
      ? openLiveEngine({
          model: opts.model,
          saes: opts.saes ?? path.join(opts.model, 'saes'),
          saeWidth: opts.saeWidth,
          dtype: opts.dtype,
          saeL0: opts.saeL0,
          corpus: opts.corpus ?? path.join(defaultDataDir(), 'corpus.txt'),
          cache: opts.cache,
          bos: bosMode(opts.bos),
        })
      : undefined;
    const server = await serveReport(dir, {
      ...opts,
      graphs: opts.graph,
      port,
      host: opts.host,
      engine,
    });
    console.log(
      `serving the report of ${dir} at ${server.url}${engine ? ` with the live panel (model ${opts.model})` : ''} (Ctrl-C to stop)`,
    );
    await new Promise<void>((resolve) => {
      process.once('SIGINT', () => void server.close().then(resolve));
      process.once('SIGTERM', () => void server.close().then(resolve));
    });
  });

  program
    .command('dashboards')
    .summary('Precompute feature dashboards (contexts, histogram, logit effects).')
    .description(
      [
        'Precompute feature dashboards into OUT/dashboards.json: top-activating contexts from a ' +
          'corpus (activation per token), an activation histogram, and the tokens each decoder ' +
          'direction promotes and suppresses through the unembedding, W_U (γ ⊙ d) with γ the final ' +
          'layer norm gain. By default only the features of OUT/circuit.json.',
        'Example: sfc dashboards --corpus corpus.txt --out out/',
      ].join('\n'),
    )
    .requiredOption(
      '--corpus <file>',
      'text file, one document per line; "organism" generates 2000 texts of the model organism\'s grammar',
    )
    .requiredOption('--out <dir>', "folder that receives dashboards.json (usually the circuit's)")
    .option('--model <dir>', 'model folder', defaultModelDir())
    .option('--saes <dir>', 'SAE folder (default: <model>/saes)')
    .addOption(saeWidthOption())
    .addOption(saeL0Option())
    .addOption(saeDtypeOption())
    .option(
      '--features <which>',
      'a circuit.json (or its folder) whose features to describe, or "all" (default: OUT/circuit.json)',
    )
    .option('--top <n>', 'contexts kept per feature', '20')
    .option(
      '--ctx <n>',
      "tokens per context window (default: 64, or the model's context if shorter)",
    )
    .option('--max-documents <n>', 'read at most this many documents of the corpus')
    .addOption(bosOptions()[0])
    .addOption(bosOptions()[1])
    .option(
      '--shard <i/n>',
      'read shard i of n (from 0) of the corpus windows; writes OUT/dashboards-i-of-n.part.json for sfc merge',
      (v) => parseShard(v),
    )
    .action(
      (opts: {
        corpus: string;
        out: string;
        model: string;
        saes?: string;
        saeWidth?: number;
        saeL0?: number;
        dtype: WeightDtype;
        features?: string;
        top: string;
        ctx?: string;
        maxDocuments?: string;
        bos?: boolean;
        shard?: Shard;
      }) => {
        const bar = progressBar('dashboards');
        const started = Date.now();
        const maxDocuments =
          opts.maxDocuments === undefined
            ? undefined
            : positiveInt('--max-documents', opts.maxDocuments);
        const summary = runDashboards({
          model: opts.model,
          saes: opts.saes ?? path.join(opts.model, 'saes'),
          saeWidth: opts.saeWidth,
          saeL0: opts.saeL0,
          onSaes: printSaeChoices,
          dtype: opts.dtype,
          corpus: opts.corpus,
          documents: organismDocuments(opts.corpus, maxDocuments),
          out: opts.out,
          features: opts.features,
          top: positiveInt('--top', opts.top),
          ctx: opts.ctx === undefined ? undefined : positiveInt('--ctx', opts.ctx),
          maxDocuments,
          bos: bosMode(opts.bos),
          shard: opts.shard,
          onProgress: bar.update,
        });
        bar.stop();
        process.stderr.write(`${bosNote(summary.tokenizer, opts.bos, summary.bos)}\n`);
        console.log(
          `dashboards of ${summary.features} features over ${summary.tokens} tokens (${summary.windows} windows) in ${((Date.now() - started) / 1000).toFixed(1)} s\nwrote ${summary.file}`,
        );
      },
    );
}
