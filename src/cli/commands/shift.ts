// `sfc shift`: SHIFT on a classification task: the probe, its circuit, the judgement of spurious
// features (a person's file or the organism's ground truth), and the table of ablations.

import type { WeightDtype } from '../../sae/dictionary.ts';
import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { defaultModelDir } from '../../model/load.ts';
import { siteRef } from '../../model/language-model.ts';
import { loadClassificationTask } from '../../data/classification.ts';
import { NEURONS, openSaes } from '../../sae/library.ts';
import { nodeId, writeCircuit } from '../../circuit/circuit.ts';
import { renderSvg } from '../../evaluation/plots.ts';
import { DEFAULT_MIN_SHARE, judgeGender } from '../../organism/gender-judge.ts';
import { defaultProbeSite, runShift, type CircuitFeature } from '../../shift/shift.ts';
import { SHIFT_FILE } from '../../shift/file.ts';
import {
  SHIFT_PLOT,
  formatShiftTable,
  readFeatureList,
  shiftJson,
  shiftPlotSpec,
} from '../../shift/output.ts';
import { defaultDataDir } from './start.ts';
import { progressBar } from '../progress.ts';
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

interface ShiftCliOptions {
  task: string;
  model: string;
  saes?: string;
  saeWidth?: number;
  dtype: WeightDtype;
  saeL0?: number;
  features?: string;
  auto?: boolean;
  retrain?: boolean;
  json?: boolean;
  site?: string;
  steps: number;
  examples: number;
  nodeThreshold: number;
  l2: number;
  minShare: number;
  scoreOn: 'test' | 'val';
  seed: number;
  bos?: boolean;
  out: string;
}

export function register(program: Command): void {
  program
    .command('shift')
    .summary("Repair a probe's spurious cue by ablating the circuit features judged spurious.")
    .description(
      [
        'SHIFT (Marks et al. 2024, §4) on a classification task whose ambiguous split correlates ' +
          'the label with gender perfectly:',
        '  1. train a logistic probe on the mean residual stream (default: the penultimate ' +
          'layer) over the ambiguous split;',
        "  2. find the circuit of the probe's logit, signed so that larger means wrong (IG, zero " +
          'ablation, summed over positions) and keep features above --node-threshold;',
        '  3. judge which of them are spurious: --features FILE (ids a person chose, e.g. with ' +
          "the report's SHIFT panel) or --auto (the organism's ground truth: a feature is " +
          'gender-related when its activation leans to one gender by at least --min-share);',
        '  4. zero-ablate them (error terms kept) and, with --retrain, retrain the head on the ' +
          "ablated model's ambiguous activations.",
        'Every row of the table is scored on the balanced test split: accuracy on the label, on ' +
          'gender (50% = chance, what we want) and the worst label/gender group. Rows: original, ' +
          'SHIFT, random features (same count), SHIFT at the embedding only, feature and neuron ' +
          'skylines (ranked by gender on balanced data), oracle.',
        '',
        'The task folder holds ambiguous.jsonl, balanced_train.jsonl and balanced_test.jsonl, ' +
          'one {"text", "label", "gender"} object per line. Writes <out>/shift.json, ' +
          '<out>/circuit.json and <out>/shift.svg; then `sfc report <out>` shows the circuit with ' +
          'a SHIFT panel to pick features.',
        '',
        'Examples:',
        '  sfc shift --auto --retrain',
        '  sfc shift --features my-judgement.json --retrain --json > shift.json',
      ].join('\n'),
    )
    .option('--task <dir>', 'classification task folder', path.join(defaultDataDir(), 'bios'))
    .option('--model <dir>', 'model folder, with tokenizer.json', defaultModelDir())
    .option('--saes <dir>', 'SAE folder with one dictionary per site (default: <model>/saes)')
    .addOption(saeWidthOption())
    .addOption(saeDtypeOption())
    .addOption(saeL0Option())
    .option(
      '--features <file>',
      'features judged spurious: ["resid_1/17", ...] or {"features": [...]}',
    )
    .option('--auto', "judge with the organism's ground truth (gender-related features)")
    .option('--retrain', 'also retrain the probe head after each ablation')
    .option('--json', 'print shift.json to stdout instead of the table')
    .option('--site <site>', 'residual site the probe reads (default: the penultimate resid)')
    .option('--steps <n>', 'IG interpolation steps', (v) => positiveInt('--steps', v), 10)
    .option(
      '--examples <n>',
      'examples the circuit and the skylines are found on',
      (v) => positiveInt('--examples', v),
      100,
    )
    .option(
      '--node-threshold <x>',
      'candidate features: |summed effect| above x',
      (v) => positiveNumber('--node-threshold', v, true),
      0.1,
    )
    .option(
      '--min-share <x>',
      '--auto: gender-related when this share of the activation is on one gender',
      (v) => {
        const x = Number(v);
        if (!(x > 0.5 && x <= 1))
          throw new Error(`--min-share: expected a share in (0.5, 1], e.g. 0.6; got "${v}"`);
        return x;
      },
      DEFAULT_MIN_SHARE,
    )
    .option(
      '--score-on <split>',
      'split the rows are scored on: test (balanced_test) or val (balanced_val, to choose settings without test)',
      (v) => {
        if (v !== 'test' && v !== 'val')
          throw new Error(`--score-on: expected test or val, got "${v}"`);
        return v;
      },
      'test',
    )
    .option('--l2 <x>', 'L2 penalty of the probe', (v) => positiveNumber('--l2', v, true), 1e-4)
    .option('--seed <n>', 'seed of the random-features row', (v) => positiveInt('--seed', v), 1)
    .option('--out <dir>', 'output folder', path.join('out', 'shift'))
    .addOption(bosOptions()[0])
    .addOption(bosOptions()[1])
    .action((opts: ShiftCliOptions) => {
      if (Boolean(opts.features) === Boolean(opts.auto))
        throw new Error(
          "choose how features are judged: --features FILE (a person's list) or --auto (the organism's ground truth)",
        );
      const { model, tokenizer } = openModelWithTokenizer(opts.model, 'needed to read the texts');
      const saesDir = opts.saes ?? path.join(opts.model, 'saes');
      const library = openSaes(saesDir, model.shape.numLayers, {
        model,
        width: opts.saeWidth,
        dtype: opts.dtype,
        l0: opts.saeL0,
      });
      printSaeChoices(library);
      const sites = nodeSites(model, library);
      const neurons = openSaes(NEURONS, model.shape.numLayers, { model });
      const site = opts.site ?? defaultProbeSite(model.shape.numLayers);
      const ref = siteRef(model, site);
      if (ref.kind !== 'resid' && ref.kind !== 'embed')
        throw new Error(`--site: the probe reads a residual site (embed or resid_L), got ${site}`);
      const task = loadClassificationTask(opts.task, tokenizer, {
        maxLength: model.shape.maxPositions,
        bos: bosMode(opts.bos),
      });
      process.stderr.write(`${bosNote(tokenizer, opts.bos, task.bos)}\n`);
      const chosen = opts.features ? readFeatureList(opts.features) : null;
      if (chosen) {
        const upTo = model.sites.indexOf(site);
        for (const f of chosen) {
          const i = model.sites.indexOf(f.site);
          if (i < 0)
            throw new Error(
              `${opts.features}: ${f.site} is not a site of this model (${model.sites.join(', ')})`,
            );
          if (i > upTo)
            throw new Error(
              `${opts.features}: ${f.site}/${f.feature} is above the probe's site ${site} and cannot change it`,
            );
        }
      }
      const notes = new Map<string, string>();
      const judge = (features: CircuitFeature[]): CircuitFeature[] => {
        if (chosen) {
          const byId = new Map(features.map((f) => [f.id, f]));
          return chosen.map((f) => {
            const id = nodeId(f.site, f.feature, null);
            return byId.get(id) ?? { id, site: f.site, feature: f.feature, effect: 0 };
          });
        }
        const bar = progressBar('judging');
        try {
          const verdicts = judgeGender(model, (s) => library.get(s), features, {
            tokenizer,
            modelDir: opts.model,
            minShare: opts.minShare,
            onProgress: bar.update,
          });
          verdicts.forEach((v, i) => {
            const share = v.femaleShare >= 0.5 ? v.femaleShare : 1 - v.femaleShare;
            notes.set(
              features[i].id,
              `${v.femaleShare >= 0.5 ? 'female' : 'male'} ${(100 * share).toFixed(0)}%`,
            );
          });
          return features.filter((_, i) => verdicts[i].genderRelated);
        } finally {
          bar.stop();
        }
      };
      const bar = progressBar('nodes');
      let result;
      try {
        result = runShift({
          model,
          dictionaries: (s) => library.get(s),
          neurons: (s) => neurons.get(s),
          sites,
          task,
          site,
          judge,
          retrain: opts.retrain,
          steps: opts.steps,
          nodeThreshold: opts.nodeThreshold,
          examples: opts.examples,
          l2: opts.l2,
          seed: opts.seed,
          scoreOn: opts.scoreOn === 'val' ? 'balanced_val' : 'balanced_test',
          circuitInfo: { model: opts.model, saes: saesDir, data: opts.task },
          onStage: (stage) => {
            if (!opts.json) process.stderr.write(`${stage}\n`);
          },
          onProgress: bar.update,
        });
      } finally {
        bar.stop();
      }
      const command = [
        'sfc shift --task',
        opts.task,
        opts.auto ? '--auto' : `--features ${opts.features}`,
      ];
      if (opts.retrain) command.push('--retrain');
      if (opts.scoreOn === 'val') command.push('--score-on val');
      const json = shiftJson(result, {
        task: opts.task,
        model: opts.model,
        saes: saesDir,
        judge: opts.auto ? `auto (min share ${opts.minShare})` : `file:${opts.features}`,
        command: command.join(' '),
        labels: task.labels,
        genders: task.genders,
        notes,
      });
      fs.mkdirSync(opts.out, { recursive: true });
      writeCircuit(opts.out, result.circuit);
      fs.writeFileSync(path.join(opts.out, SHIFT_FILE), JSON.stringify(json, null, 1) + '\n');
      return renderSvg(
        shiftPlotSpec(
          result,
          `${opts.task}, probe on ${site}, ${result.spurious.length} features judged spurious`,
        ),
      ).then((svg) => {
        fs.writeFileSync(path.join(opts.out, SHIFT_PLOT), svg);
        if (opts.json) {
          process.stdout.write(JSON.stringify(json, null, 1) + '\n');
          return;
        }
        console.log(
          `probe on ${site}; circuit: ${result.features.length} candidate features; ` +
            `${result.spurious.length} judged spurious (${opts.auto ? 'auto: gender-related' : opts.features})`,
        );
        console.log(formatShiftTable(result));
        console.log(
          `wrote ${path.join(opts.out, SHIFT_FILE)}, circuit.json and ${SHIFT_PLOT} in ${result.seconds.toFixed(0)} s`,
        );
      });
    });
}
