// sfc transcoder train: per-layer transcoders (MLP input -> MLP output) in circuit-tracer's layout.

import path from 'node:path';
import type { Command } from 'commander';
import { defaultModelDir, loadModel } from '../../model/load.ts';
import { GptNeoX } from '../../model/gptneox.ts';
import { readCorpus } from '../../data/corpus.ts';
import { collectMlpPairs, evaluateTranscoders } from '../../transcoders/train.ts';
import { trainTranscoderSet } from '../../transcoders/train-set.ts';
import { saveTranscoderSet } from '../../transcoders/file.ts';
import { saveClt } from '../../transcoders/clt-file.ts';
import { runTranscoderLabels } from '../../organism/transcoder-labels.ts';
import { formatLabelSummary } from '../../organism/feature-labels.ts';
import { DEFAULT_OUT, positiveInt, refuseOverwrite } from '../options.ts';

interface TrainFlags {
  model: string;
  corpus: string;
  heldOut: string;
  width: string;
  topk?: string;
  l1?: string;
  skip?: boolean;
  clt?: boolean;
  steps: string;
  batch: string;
  lr: string;
  seed: string;
  out: string;
  force?: boolean;
  json?: boolean;
}

export function register(program: Command): void {
  const tc = program
    .command('transcoder')
    .description('Per-layer transcoders: sparse replacements of the MLPs, for attribution graphs.');
  tc.command('train')
    .summary(
      'Train one transcoder per layer on a corpus and report how well they replace the MLPs.',
    )
    .description(
      [
        "Trains, for every layer, a transcoder that reads the MLP's normalised input and predicts " +
          "the MLP's output; writes <out>/config.yaml and <out>/layer_<i>.safetensors (circuit-tracer's " +
          'transcoder_set layout). Reports, on the last --held-out documents of the corpus (not ' +
          'trained on): FVE of the MLP outputs, L0, dead features, next-token loss with every MLP ' +
          'replaced.',
        '',
        "With --clt, trains one cross-layer transcoder instead: layer l's features read layer " +
          "l's MLP input and write to the MLP outputs of every layer l' >= l; all layers are trained " +
          'together (loss: the sum over layers of the MSE of each MLP output, plus the L1 term with ' +
          "--l1), and written as circuit-tracer's cross_layer_transcoder layout (W_enc_i / W_dec_i).",
        '',
        'Example: sfc transcoder train --corpus data/corpus.txt --topk 8 --steps 2000',
        '         sfc transcoder train --corpus data/corpus.txt --clt --width 512 --topk 4 --out out/clt',
      ].join('\n'),
    )
    .option('--model <dir>', 'model folder', defaultModelDir())
    .requiredOption('--corpus <file>', 'text, one document per line')
    .option('--held-out <n>', 'last documents kept out of training, for the report', '200')
    .option('--width <F>', 'features per layer', '1024')
    .option('--topk <k>', 'TopK transcoders with k features per token (default 8 unless --l1)')
    .option('--l1 <lambda>', 'ReLU transcoders with this L1 coefficient instead')
    .option('--skip', 'learn a linear skip W_skip·x as well (per-layer transcoders only)')
    .option('--clt', 'train one cross-layer transcoder (features write to every later layer)')
    .option('--steps <n>', 'Adam steps per layer (with --clt: for all layers together)', '2000')
    .option('--batch <n>', 'tokens per step', '512')
    .option('--lr <rate>', 'Adam learning rate', '2e-3')
    .option('--seed <n>', 'seed of initialisation and sampling', '0')
    .option('--out <dir>', 'output folder', path.join(DEFAULT_OUT, 'transcoders'))
    .option('--force', 'replace an existing transcoder set')
    .option('--json', 'print the report as JSON')
    .action((o: TrainFlags) => {
      if (o.l1 !== undefined && o.topk !== undefined)
        throw new Error('give --topk (TopK) or --l1 (ReLU), not both');
      if (o.clt && o.skip) throw new Error('--skip: cross-layer transcoders have no skip here');
      const out = o.out;
      refuseOverwrite(path.join(out, 'config.yaml'), 'a transcoder set', !!o.force);
      const loaded = loadModel(o.model, { tokenizer: true });
      if (!loaded.tokenizer)
        throw new Error(`${o.model}: no tokenizer.json, needed to read --corpus`);
      const model = new GptNeoX(loaded.config, loaded.weights);
      const docs = readCorpus(o.corpus).map((l) => loaded.tokenizer!.encode(l));
      const heldOut = positiveInt('--held-out', o.heldOut);
      if (heldOut >= docs.length)
        throw new Error(`--held-out ${heldOut}: the corpus has only ${docs.length} documents`);
      const train = docs.slice(0, docs.length - heldOut);
      const pairs = collectMlpPairs(model, train);
      const l1 = o.l1 === undefined ? undefined : Number(o.l1);
      const modelName = path.basename(path.resolve(o.model));
      const transcoders = trainTranscoderSet(
        pairs,
        model.config.hiddenSize,
        {
          clt: !!o.clt,
          width: positiveInt('--width', o.width),
          k: l1 === undefined ? positiveInt('--topk', o.topk ?? '8') : undefined,
          l1,
          skip: !!o.skip,
          steps: positiveInt('--steps', o.steps),
          batchSize: positiveInt('--batch', o.batch),
          lr: Number(o.lr),
          seed: Number(o.seed),
        },
        (line) => process.stderr.write(`${line}\n`),
      );
      if (Array.isArray(transcoders)) saveTranscoderSet(out, transcoders, { modelName });
      else saveClt(out, transcoders, { modelName });
      const stats = evaluateTranscoders(model, transcoders, docs.slice(docs.length - heldOut));
      if (o.json) return void console.log(JSON.stringify(stats, null, 2));
      console.log(
        `wrote ${out}/config.yaml and ${model.config.numLayers} layer files` +
          (o.clt ? ' (cross-layer: W_enc_i / W_dec_i)' : ''),
      );
      for (const s of stats.layers)
        console.log(
          `layer ${s.layer}: FVE ${s.fve.toFixed(4)}  L0 ${s.l0.toFixed(1)}  dead ${(100 * s.dead).toFixed(1)}%`,
        );
      console.log(
        `next-token loss on ${stats.tokens} held-out tokens: clean ${stats.lossClean.toFixed(4)}, ` +
          `all MLPs replaced ${stats.lossReplaced.toFixed(4)}, all MLPs zeroed ${stats.lossZeroMlps.toFixed(4)}`,
      );
    });
  tc.command('label')
    .summary("Label every transcoder feature with the organism grammar's ground truth.")
    .description(
      'Runs the organism over a held-out annotated corpus and gives every feature the grammar ' +
        'annotation that best predicts where it fires (F1), as sfc label does for SAE features; ' +
        "writes <transcoders>/labels.jsonl, which sfc graph shows as each feature's clerp.",
    )
    .option('--model <dir>', 'model folder (the organism)', defaultModelDir())
    .option(
      '--transcoders <dir>',
      'transcoder_set or cross_layer_transcoder folder (default <model>/transcoders)',
    )
    .option('--tokens <n>', 'tokens of annotated corpus', '65536')
    .action((o: { model: string; transcoders?: string; tokens: string }) => {
      const result = runTranscoderLabels({
        model: o.model,
        transcoders: o.transcoders,
        tokens: positiveInt('--tokens', o.tokens),
      });
      console.log(formatLabelSummary(result.summary));
      console.log(`wrote ${result.file} (${result.tokens} tokens)`);
    });
}
