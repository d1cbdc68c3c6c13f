// `sfc sae train` and `sfc sae stats`: train a sparse autoencoder at a site of a model, and measure
// how well a folder of dictionaries reconstructs each site (also its effect on the model's loss).

import type { WeightDtype } from '../../sae/dictionary.ts';
import path from 'node:path';
import { Option, type Command } from 'commander';
import { defaultModelDir } from '../../model/load.ts';
import { siteRef } from '../../model/language-model.ts';
import type { Tokenizer } from '../../model/tokenizer.ts';
import { progressBar } from '../progress.ts';
import { ModelActivationSource } from '../../sae/activations.ts';
import { saveDictionary } from '../../sae/formats.ts';
import { openSaes } from '../../sae/library.ts';
import { printSaeChoices } from '../sae-choices.ts';
import { evaluateSaes, type SiteStats } from '../../sae/metrics.ts';
import { trainSae, type TrainedKind } from '../../sae/train.ts';
import {
  DEFAULT_OUT,
  bosMode,
  bosNote,
  bosOptions,
  positiveInt,
  positiveNumber,
  refuseOverwrite,
  saeL0Option,
  saeWidthOption,
  saeDtypeOption,
} from '../options.ts';
import { readCorpus } from '../../data/corpus.ts';
import { openModelWithTokenizer } from '../open.ts';

const EOS = '<|endoftext|>';

/**
 * One document per non-empty line, tokenised, each starting with the BOS token when --bos /
 * --no-bos (`bosFlag`) and the tokenizer say so; prints which on stderr.
 */
function readTokenisedCorpus(
  file: string,
  tokenizer: Tokenizer,
  bosFlag: boolean | undefined,
): number[][] {
  let bos = false;
  const documents = readCorpus(file).map((line) => {
    const prompt = tokenizer.encodePrompt(line, bosMode(bosFlag));
    bos ||= prompt.bos;
    return prompt.ids;
  });
  process.stderr.write(`${bosNote(tokenizer, bosFlag, bos)}\n`);
  return documents;
}

function formatTable(rows: SiteStats[]): string {
  const header = [
    'site',
    'L0',
    'FVE',
    'MSE',
    'dead %',
    'loss clean',
    'loss SAE',
    'loss zero',
    'recovered %',
  ];
  const cells = rows.map((r) => [
    r.site,
    r.l0.toFixed(1),
    r.fve.toFixed(3),
    r.mse.toPrecision(3),
    (100 * r.deadFraction).toFixed(1),
    r.lossClean.toFixed(4),
    r.lossSae.toFixed(4),
    r.lossZero.toFixed(4),
    (100 * r.lossRecovered).toFixed(1),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
  const line = (c: string[]) =>
    c.map((v, i) => (i === 0 ? v.padEnd(widths[i]) : v.padStart(widths[i]))).join('  ');
  return [line(header), ...cells.map(line)].join('\n');
}

interface TrainFlags {
  model: string;
  site: string;
  corpus: string;
  width?: string;
  arch?: string;
  l1?: string;
  topk?: string;
  l0Penalty?: string;
  bandwidth?: string;
  lr: string;
  steps: string;
  batch: string;
  seed: string;
  ctx: string;
  out: string;
  force?: boolean;
  resume?: boolean;
  normalize: boolean;
  checkpointEvery?: string;
  bos?: boolean;
}

const TRAINED_KINDS: TrainedKind[] = ['relu', 'jumprelu', 'topk'];

/** --arch, or topk when only --topk is given; refuses a penalty flag of another architecture. */
function trainedKind(o: TrainFlags): TrainedKind {
  const kind = (o.arch ?? (o.topk !== undefined ? 'topk' : 'relu')) as TrainedKind;
  const owners: [string, string | undefined, TrainedKind][] = [
    ['--l1', o.l1, 'relu'],
    ['--l0-penalty', o.l0Penalty, 'jumprelu'],
    ['--bandwidth', o.bandwidth, 'jumprelu'],
    ['--topk', o.topk, 'topk'],
  ];
  for (const [flag, value, owner] of owners)
    if (value !== undefined && owner !== kind)
      throw new Error(`${flag} is for --arch ${owner}, not --arch ${kind}`);
  if (kind === 'topk' && o.topk === undefined)
    throw new Error('--arch topk needs --topk k, the number of active features per token');
  return kind;
}

interface StatsFlags {
  model: string;
  saes?: string;
  saeWidth?: number;
  dtype: WeightDtype;
  saeL0?: number;
  corpus: string;
  tokens: string;
  ctx: string;
  sites?: string;
  bos?: boolean;
  json?: boolean;
}

export function register(program: Command): void {
  const sae = program
    .command('sae')
    .description(
      'Train sparse autoencoders (dictionaries) and measure how well they reconstruct each site.',
    );

  sae
    .command('train')
    .summary("Train a sparse autoencoder on one site's activations.")
    .description(
      [
        'Train a sparse autoencoder on the activations of one site while the model reads a ' +
          'corpus. Writes <out>/<site>/cfg.json + sae_weights.safetensors (SAELens layout); ' +
          'checkpoints go to <out>/.checkpoints/<site>/ so that an interrupted run continues with ' +
          '--resume.',
        '',
        'An existing <out>/<site> (e.g. a shipped SAE) is never replaced without --force.',
        '',
        'Architectures (--arch): relu (L1 penalty --l1, the default), jumprelu (trained ' +
          'per-feature thresholds and an L0 penalty --l0-penalty, as Gemma Scope; the threshold ' +
          'learns through straight-through gradients of kernel width --bandwidth) and topk (k ' +
          'active features per token, --topk k, no penalty). Every one is saved as SAELens ' +
          'writes it, so every --saes command reads it back.',
        '',
        'Examples (train.txt: your training text; data/corpus.txt is the held-out text of sae stats):',
        '  sfc sae train --site resid_1 --corpus train.txt --width 2048 --steps 5000',
        '  sfc sae train --site mlp_0 --corpus train.txt --arch jumprelu --l0-penalty 2',
        '  sfc sae train --site embed --corpus train.txt --arch topk --topk 32',
      ].join('\n'),
    )
    .option(
      '--model <dir>',
      'model folder (config.json, model.safetensors, tokenizer.json)',
      defaultModelDir(),
    )
    .requiredOption('--site <site>', 'where to read activations: embed, attn_L, mlp_L or resid_L')
    .requiredOption('--corpus <file>', 'training text, one document per line')
    .option('--width <F>', 'number of features (default 16 x the model width)')
    .addOption(
      new Option(
        '--arch <kind>',
        'activation: relu, jumprelu or topk (default relu; topk with --topk)',
      ).choices(TRAINED_KINDS),
    )
    .option(
      '--l1 <lambda>',
      'L1 coefficient of a ReLU SAE (default 5, in units where inputs are scaled to E||x||^2 = d; see --no-normalize)',
    )
    .option(
      '--l0-penalty <lambda>',
      'L0 coefficient of a JumpReLU SAE: the squared error a feature must save to fire (default 1, same units as --l1)',
    )
    .option(
      '--bandwidth <eps>',
      "JumpReLU: width of the threshold's straight-through kernel, also the initial threshold (default 0.5, same units)",
    )
    .option('--topk <k>', 'k active features per token of a TopK SAE (implies --arch topk)')
    .option('--lr <rate>', 'Adam learning rate after a linear warmup', '1e-4')
    .option('--steps <n>', 'optimizer steps', '10000')
    .option('--batch <n>', 'activation vectors per step', '512')
    .option(
      '--seed <n>',
      'seed for initialisation, data order and resampling (same seed, same SAE)',
      '0',
    )
    .option('--ctx <tokens>', 'context window the model reads the corpus in', '64')
    .option('--out <dir>', 'folder of SAEs to write into', path.join(DEFAULT_OUT, 'saes'))
    .option('--force', 'replace <out>/<site> if it exists (e.g. --out <model>/saes)')
    .option(
      '--no-normalize',
      'train on raw activations (then --l1 is in raw units, like the 0.1 of Marks et al. on Pythia-70M)',
    )
    .option(
      '--resume',
      'continue from the checkpoint in <out>/.checkpoints/<site>/ if there is one',
    )
    .option('--checkpoint-every <n>', 'steps between checkpoints (default steps/10)')
    .addOption(bosOptions()[0])
    .addOption(bosOptions()[1])
    .action((o: TrainFlags) => {
      const kind = trainedKind(o);
      const { model, tokenizer } = openModelWithTokenizer(o.model, 'needed to read --corpus');
      siteRef(model, o.site);
      // Before training, so that a refusal costs nothing.
      refuseOverwrite(path.join(o.out, o.site), `an SAE for ${o.site}`, !!o.force);
      const documents = readTokenisedCorpus(o.corpus, tokenizer, o.bos);
      const steps = positiveInt('--steps', o.steps);
      const ctx = positiveInt('--ctx', o.ctx);
      const seed = Number(o.seed);
      if (!Number.isInteger(seed)) throw new Error(`--seed: expected an integer, got "${o.seed}"`);
      const width = o.width ? positiveInt('--width', o.width) : 16 * model.siteWidth(o.site);
      const out = o.out;
      const checkpointDir = path.join(out, '.checkpoints', o.site);
      const eosId = tokenizer.tokenId(EOS);
      const source = new ModelActivationSource({
        model,
        site: o.site,
        documents,
        ctx,
        eosId,
        seed,
      });
      const options = {
        site: o.site,
        width,
        kind,
        k: o.topk !== undefined ? positiveInt('--topk', o.topk) : undefined,
        l1: o.l1 !== undefined ? positiveNumber('--l1', o.l1, true) : undefined,
        l0Penalty:
          o.l0Penalty !== undefined ? positiveNumber('--l0-penalty', o.l0Penalty, true) : undefined,
        bandwidth:
          o.bandwidth !== undefined ? positiveNumber('--bandwidth', o.bandwidth) : undefined,
        lr: positiveNumber('--lr', o.lr),
        steps,
        batchSize: positiveInt('--batch', o.batch),
        seed,
        normalize: o.normalize,
        checkpointDir,
        checkpointEvery: o.checkpointEvery
          ? positiveInt('--checkpoint-every', o.checkpointEvery)
          : undefined,
        resume: !!o.resume,
      };
      const bar = progressBar(`training ${o.site}`);
      const result = trainSae(source, { ...options, onProgress: bar.update });
      bar.stop();
      const folder = saveDictionary(out, result.dictionary, {
        training: {
          corpus: path.resolve(o.corpus),
          ctx,
          steps: result.steps,
          width,
          kind,
          k: options.k,
          l1: kind === 'relu' ? (options.l1 ?? 5) : undefined,
          l0Penalty: kind === 'jumprelu' ? (options.l0Penalty ?? 1) : undefined,
          bandwidth: kind === 'jumprelu' ? (options.bandwidth ?? 0.5) : undefined,
          lr: options.lr,
          batchSize: options.batchSize,
          seed,
          normalize: o.normalize,
          inputScale: result.scale,
          resampled: result.resampled,
          metrics: result.metrics,
        },
      });
      if (result.resumedFrom > 0) process.stderr.write(`resumed from step ${result.resumedFrom}\n`);
      const m = result.metrics;
      console.log(
        `wrote ${folder}: ${width} features, L0 ${m.l0.toFixed(1)}, FVE ${m.fve.toFixed(3)}, ` +
          `dead ${(100 * m.deadFraction).toFixed(1)}%, ${result.resampled} features resampled (metrics over the last 1% of steps)`,
      );
    });

  sae
    .command('stats')
    .summary("Measure each site's dictionary: L0, FVE, MSE, dead features, loss recovered.")
    .description(
      [
        "Measure each site's dictionary on a corpus: L0 (active features per token), FVE " +
          '(fraction of variance explained), MSE per dimension, dead features, and the next-token ' +
          'loss with the site replaced by the reconstruction (SAE) or by zeros, as loss recovered ' +
          '= (loss zero - loss SAE) / (loss zero - loss clean).',
        'Example: sfc sae stats --corpus data/corpus.txt --tokens 4096',
      ].join('\n'),
    )
    .option('--model <dir>', 'model folder', defaultModelDir())
    .option(
      '--saes <dir>',
      'folder of SAEs (ours, SAELens or dictionary_learning layout), or "neurons" (default <model>/saes)',
    )
    .addOption(saeWidthOption())
    .addOption(saeDtypeOption())
    .addOption(saeL0Option())
    .requiredOption(
      '--corpus <file>',
      'evaluation text, one document per line (read in file order)',
    )
    .option('--tokens <n>', 'tokens to evaluate on', '4096')
    .option('--ctx <tokens>', 'context window', '64')
    .option('--sites <list>', 'comma-separated sites (default: every site the folder has)')
    .option('--json', 'print the rows as JSON')
    .addOption(bosOptions()[0])
    .addOption(bosOptions()[1])
    .action((o: StatsFlags) => {
      const { model, tokenizer } = openModelWithTokenizer(o.model, 'needed to read --corpus');
      const library = openSaes(o.saes ?? path.join(o.model, 'saes'), model.shape.numLayers, {
        model,
        width: o.saeWidth,
        dtype: o.dtype,
        l0: o.saeL0,
      });
      printSaeChoices(library);
      const sites = o.sites?.split(',').map((s) => s.trim());
      sites?.forEach((s) => siteRef(model, s));
      const bar = progressBar('evaluating');
      const rows = evaluateSaes(model, library, {
        sites,
        documents: readTokenisedCorpus(o.corpus, tokenizer, o.bos),
        tokens: positiveInt('--tokens', o.tokens),
        ctx: positiveInt('--ctx', o.ctx),
        eosId: tokenizer.tokenId(EOS),
        onProgress: bar.update,
      });
      bar.stop();
      console.log(o.json ? JSON.stringify(rows, null, 2) : formatTable(rows));
    });
}
