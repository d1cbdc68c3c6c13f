// The model organism's commands: `sfc organism train` (retrain everything from seeds, as
// `npm run organism` does) and `sfc label` (ground-truth labels of SAE features).

import type { WeightDtype } from '../../sae/dictionary.ts';
import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { defaultModelDir } from '../../model/load.ts';
import {
  CONFIDENT_F1,
  formatLabelSummary,
  LABELS_FILE,
  runLabels,
  runLabelStage,
  summariseLabels,
} from '../../organism/feature-labels.ts';
import { writeReport } from '../../organism/report.ts';
import { runModelStage } from '../../organism/train-model.ts';
import { runSaeStage } from '../../organism/train-saes.ts';
import {
  runTranscoderStage,
  TRANSCODER_STAGE_FILES,
  type TranscoderStage,
} from '../../organism/train-transcoders.ts';
import { progressBar, type OnProgress } from '../progress.ts';
import {
  DEFAULT_OUT,
  refuseOverwrite,
  saeL0Option,
  saeWidthOption,
  saeDtypeOption,
} from '../options.ts';

export const STAGES = ['model', 'saes', 'labels', 'transcoders', 'clt', 'report', 'all'] as const;

export interface OrganismRunOptions {
  stage: string;
  quick: boolean;
  out: string;
  dataDir: string;
  /** The saes stage retrains only these sites (default all), keeping the others' files. */
  sites?: string[];
  /** Replace a model, SAEs, labels or transcoders already in `out` (otherwise refused before any work). */
  force?: boolean;
  /** transcoders / clt stages: measure the folder already in `out` and rewrite its record, no training. */
  remeasure?: boolean;
}

const TRANSCODER_STAGES: TranscoderStage[] = ['transcoders', 'clt'];

const log = (line: string) => process.stderr.write(`${line}\n`);

function withBar<T>(label: string, run: (bar: ReturnType<typeof progressBar>) => T): T {
  const bar = progressBar(label);
  try {
    return run(bar);
  } finally {
    bar.stop();
  }
}

/** Runs one stage or all of them, writing into o.out. */
export function runOrganism(o: OrganismRunOptions): void {
  if (!(STAGES as readonly string[]).includes(o.stage))
    throw new Error(`--stage: expected one of ${STAGES.join(', ')}, got "${o.stage}"`);
  const all = o.stage === 'all';
  const force = !!o.force;
  const transcoderStages = TRANSCODER_STAGES.filter((s) => all || o.stage === s);
  if (o.remeasure && (all || transcoderStages.length === 0))
    throw new Error('--remeasure: only with --stage transcoders or --stage clt');
  if (all || o.stage === 'model')
    refuseOverwrite(path.join(o.out, 'model.safetensors'), 'a model', force);
  if (all || o.stage === 'saes') {
    const saes = path.join(o.out, 'saes');
    if (o.sites)
      for (const site of o.sites) refuseOverwrite(path.join(saes, site), `an SAE`, force);
    else if (fs.existsSync(saes) && fs.readdirSync(saes).some((f) => !f.startsWith('.')))
      refuseOverwrite(saes, 'SAEs', force);
  }
  if (all || o.stage === 'labels') refuseOverwrite(path.join(o.out, LABELS_FILE), 'labels', force);
  if (!o.remeasure)
    for (const s of transcoderStages)
      refuseOverwrite(
        path.join(o.out, TRANSCODER_STAGE_FILES[s].dir, 'config.yaml'),
        s === 'clt' ? 'a cross-layer transcoder' : 'transcoders',
        force,
      );
  fs.mkdirSync(o.out, { recursive: true });
  if (all || o.stage === 'model') {
    const record = withBar('model', (bar) =>
      runModelStage({
        out: o.out,
        dataDir: o.dataDir,
        ...(o.quick
          ? {
              config: {
                vocabSize: 832,
                hiddenSize: 32,
                numLayers: 2,
                numHeads: 2,
                intermediateSize: 64,
                rotaryPct: 0.25,
                rotaryEmbBase: 10000,
                maxPositionEmbeddings: 32,
                layerNormEps: 1e-5,
                useParallelResidual: true,
                attentionBias: true,
              },
              maxSteps: 20,
              evalEvery: 10,
              batchSize: 8,
              taskLimit: 16,
            }
          : {}),
        onProgress: bar.update,
        log,
      }),
    );
    log(
      `model: ${record.steps} steps in ${record.seconds.toFixed(0)} s; test accuracy ` +
        Object.entries(record.test)
          .map(([k, v]) => `${k} ${(100 * v.accuracy).toFixed(1)}%`)
          .join(', '),
    );
  }
  if (all || o.stage === 'saes') {
    const bars: ReturnType<typeof progressBar>[] = [];
    try {
      runSaeStage({
        out: o.out,
        sites: o.sites,
        ...(o.quick ? { tokens: 4096, steps: 30, batchSize: 128, evalTokens: 512 } : {}),
        onProgress: (label): OnProgress => {
          bars.at(-1)?.stop();
          const bar = progressBar(label);
          bars.push(bar);
          return bar.update;
        },
        log,
      });
    } finally {
      bars.at(-1)?.stop();
    }
  }
  if (all || o.stage === 'labels') {
    const result = withBar('labels', (bar) =>
      runLabelStage(o.out, o.quick ? 1024 : undefined, bar.update),
    );
    process.stdout.write(formatLabelSummary(result.summary) + '\n');
  }
  for (const stage of transcoderStages) {
    const r = withBar(stage, (bar) =>
      runTranscoderStage({
        stage,
        out: o.out,
        dataDir: o.dataDir,
        quick: o.quick,
        remeasure: o.remeasure,
        log,
        onProgress: bar.update,
      }),
    );
    log(
      `${stage}: FVE ${r.stats.layers.map((l) => l.fve.toFixed(4)).join(' ')}; next-token loss clean ` +
        `${r.stats.lossClean.toFixed(4)}, replaced ${r.stats.lossReplaced.toFixed(4)}; ` +
        `${r.labels.confident} confident labels of ${r.labels.alive} alive features`,
    );
  }
  if (all || o.stage === 'report') log(`wrote ${writeReport(o.out)}`);
}

function positiveInt(name: string, text: string): number {
  const v = Number(text);
  if (!Number.isInteger(v) || v <= 0)
    throw new Error(`${name}: expected a positive integer, got "${text}"`);
  return v;
}

interface LabelCliOptions {
  model: string;
  saes?: string;
  saeWidth?: number;
  dtype: WeightDtype;
  saeL0?: number;
  out: string;
  force?: boolean;
  tokens: string;
  threshold: string;
  sites?: string;
  minF1: string;
}

export function register(program: Command): void {
  program
    .command('organism')
    .description('The shipped model organism')
    .command('train')
    .summary(
      'Retrain the model organism from seeds: model, SAEs, labels, transcoders, TRAINING.md.',
    )
    .description(
      [
        'Retrain the model organism from seeds (as `npm run organism` does): the GPT-NeoX on the ' +
          'agreement grammar, SAEs at every site, feature labels, per-layer and cross-layer ' +
          'transcoders and TRAINING.md. Takes about an hour on 2 cores; --quick takes seconds. ' +
          'Stages: model (GPT-NeoX), saes (needs the model), labels (needs both), transcoders and ' +
          'clt (need the model and <data>/corpus.txt; each trains, labels and measures its set), ' +
          'report (TRAINING.md from the records in <out>/training/); all runs them in order. A ' +
          'model, SAEs, labels or transcoders already in --out are not replaced without --force.',
        '',
        'Examples:',
        '  sfc organism train --quick --out out/organism-quick',
        '  sfc organism train --stage saes --sites embed --out models/organism --force',
        '  sfc organism train --stage clt --remeasure --out models/organism   (rewrite training/clt.json)',
      ].join('\n'),
    )
    .option('--stage <stage>', `one of ${STAGES.join(', ')}`, 'all')
    .option('--quick', 'a tiny budget, to check the pipeline end to end', false)
    .option('--sites <list>', 'saes stage: retrain only these comma-separated sites (e.g. embed)')
    .option('--out <dir>', 'output folder', path.join(DEFAULT_OUT, 'organism'))
    .option(
      '--force',
      'replace the model, SAEs, labels or transcoders already in --out (e.g. the shipped organism)',
    )
    .option(
      '--remeasure',
      'transcoders / clt stage: measure the set already in --out and rewrite its record, no training',
    )
    .option(
      '--data <dir>',
      'folder of the agreement task files {simple,nounpp,rc,within_rc}_{train,test}.jsonl and corpus.txt',
      path.join(path.dirname(path.dirname(defaultModelDir())), 'data'),
    )
    .action(
      (opts: {
        stage: string;
        quick: boolean;
        out: string;
        data: string;
        sites?: string;
        force?: boolean;
        remeasure?: boolean;
      }) =>
        runOrganism({
          stage: opts.stage,
          quick: opts.quick,
          out: opts.out,
          dataDir: opts.data,
          sites: opts.sites?.split(',').map((s) => s.trim()),
          force: opts.force,
          remeasure: opts.remeasure,
        }),
    );

  program
    .command('label')
    .summary("Ground-truth labels for the model organism's SAE features.")
    .description(
      [
        'Ground-truth labels for SAE features of the model organism. Every token of the organism ' +
          'is one word of its grammar, annotated with ~45 yes/no properties (pending_pl: the next ' +
          'agreeing verb must be plural; subject_sg; in_object_rc; after_that; pos_noun; ...). For ' +
          'every feature of every site, this finds the property that best predicts where the ' +
          'feature is active (activation above --threshold) over a held-out annotated corpus, and ' +
          'writes one JSON line per feature:',
        '  {"site":"resid_1","feature":17,"label":"pending_pl","precision":0.97,"recall":0.91,' +
          '"f1":0.94,"frequency":0.12}',
        'precision = P(property | active), recall = P(active | property), frequency = share of ' +
          'tokens where the feature is active; a feature that never fires gets label null. Error ' +
          'nodes are not features and get no label. Prints per site how many features got a ' +
          'confident label (F1 >= --min-f1).',
        '',
        'Only the organism (or a model with its tokenizer) can be labelled this way.',
        '',
        'Example:',
        '  sfc label --tokens 32768                 (writes out/labels.jsonl)',
        '  sfc label --out models/organism/labels.jsonl --force   (replaces the shipped labels)',
      ].join('\n'),
    )
    .option(
      '--model <dir>',
      'model folder (default: the shipped model organism)',
      defaultModelDir(),
    )
    .option('--saes <dir>', 'SAE folder (default: <model>/saes)')
    .addOption(saeWidthOption())
    .addOption(saeDtypeOption())
    .addOption(saeL0Option())
    .option(
      '--out <file>',
      `output file (sfc report ${DEFAULT_OUT} finds it there)`,
      path.join(DEFAULT_OUT, LABELS_FILE),
    )
    .option('--force', 'replace --out if it exists')
    .option('--tokens <n>', 'tokens of held-out annotated text to score on', '65536')
    .option('--threshold <x>', 'a feature is active where its activation exceeds this', '0')
    .option('--sites <list>', 'comma-separated sites (default: every site with an SAE)')
    .option(
      '--min-f1 <x>',
      'F1 from which the summary counts a label as confident',
      String(CONFIDENT_F1),
    )
    .action((opts: LabelCliOptions) => {
      const threshold = Number(opts.threshold);
      if (!Number.isFinite(threshold) || threshold < 0)
        throw new Error(`--threshold: expected a non-negative number, got "${opts.threshold}"`);
      const minF1 = Number(opts.minF1);
      if (!(minF1 >= 0 && minF1 <= 1))
        throw new Error(`--min-f1: expected a number in [0, 1], got "${opts.minF1}"`);
      refuseOverwrite(opts.out, 'feature labels', !!opts.force);
      const bar = progressBar('labelling');
      let result;
      try {
        result = runLabels({
          model: opts.model,
          saes: opts.saes,
          saeWidth: opts.saeWidth,
          dtype: opts.dtype,
          saeL0: opts.saeL0,
          out: opts.out,
          tokens: positiveInt('--tokens', opts.tokens),
          threshold,
          sites: opts.sites?.split(',').map((s) => s.trim()),
          onProgress: bar.update,
        });
      } finally {
        bar.stop();
      }
      process.stderr.write(`wrote ${result.labels.length} feature labels to ${result.file}\n`);
      process.stdout.write(formatLabelSummary(summariseLabels(result.labels, minF1), minF1) + '\n');
    });
}
