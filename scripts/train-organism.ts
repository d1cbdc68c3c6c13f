// `npm run organism`: retrains the shipped model organism from seeds and writes models/organism/:
// the model, its tokenizer, SAEs at every site, ground-truth feature labels, per-layer and
// cross-layer transcoders (with their labels) and TRAINING.md.
//
//   npm run organism                       # everything (about an hour on 2 cores)
//   npm run organism -- --stage saes       # one stage, from the files earlier stages wrote
//   npm run organism -- --stage clt --remeasure   # rewrite training/clt.json from the shipped CLT
//   npm run organism -- --quick --out DIR  # tiny budget end to end (for tests)

import { parseArgs } from 'node:util';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

// Small GEMMs run several times slower on two threads than on one on a busy 2-core machine.
process.env.SFC_THREADS ??= '1';

const { runOrganism } = await import('../src/cli/commands/organism.ts');

const { values } = parseArgs({
  options: {
    stage: { type: 'string', default: 'all' },
    quick: { type: 'boolean', default: false },
    sites: { type: 'string' },
    out: { type: 'string' },
    force: { type: 'boolean' },
    remeasure: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});
if (values.help) {
  process.stdout.write(
    [
      'Usage: npm run organism -- [--stage model|saes|labels|transcoders|clt|report|all] [--quick] [--out DIR]',
      '  --stage  which stage to run (default all); later stages read what earlier ones wrote;',
      '           transcoders and clt train, label and measure models/organism/transcoders/ and clt/',
      '  --quick  a tiny budget (seconds), to check the pipeline end to end',
      '  --sites  saes stage: retrain only these comma-separated sites (e.g. embed), keep the rest',
      '  --out    output folder (default models/organism, the shipped organism, which this script',
      '           retrains and so replaces; another --out that already holds a model, SAEs,',
      '           labels or transcoders needs --force)',
      '  --force  replace what --out already holds',
      '  --remeasure  transcoders / clt: no training; measure the set already in --out and rewrite',
      '           its record in training/ (keeps the recorded training time)',
      '',
    ].join('\n'),
  );
  process.exit(0);
}
const repo = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
try {
  runOrganism({
    stage: values.stage!,
    quick: values.quick!,
    sites: values.sites?.split(',').map((s) => s.trim()),
    out: values.out ?? path.join(repo, 'models', 'organism'),
    dataDir: path.join(repo, 'data'),
    // Retraining the shipped organism is this script's job; elsewhere, only with --force.
    force: values.force ?? values.out === undefined,
    remeasure: values.remeasure!,
  });
} catch (err) {
  process.stderr.write(`train-organism: ${err instanceof Error ? err.message : String(err)}\n`);
  if (process.env.SFC_DEBUG && err instanceof Error) process.stderr.write(`${err.stack}\n`);
  process.exit(1);
}
