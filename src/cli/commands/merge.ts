// `sfc merge`: finish a sharded run from its part files (src/shards/).

import type { Command } from 'commander';
import { mergeParts } from '../../shards/merge.ts';

export function register(program: Command): void {
  program
    .command('merge')
    .summary('Merge the part files of a sharded run (--shard I/N) into its result.')
    .description(
      [
        'Merge the part files written by `sfc discover --shard I/N`: checks that they are one ' +
          "run's every shard, once each (same inputs, options, model and SAE fingerprints), adds " +
          'their sums in shard order and writes what a single run writes.',
        '',
        'Discovery with edges takes two sharded passes: merging the first writes <out>/nodes.json, ' +
          'the circuit node set; rerun every shard with --nodes <out>/nodes.json and merge those ' +
          'parts for <out>/circuit.json. With --nodes-only the first pass gives circuit.json.',
        '',
        'Examples:',
        '  sfc discover --data data/rc_train.jsonl --shard 0/2 --out parts   (and 1/2)',
        '  sfc merge parts/discover-nodes-*.part.json --out out',
        '  sfc discover --data data/rc_train.jsonl --shard 0/2 --nodes out/nodes.json --out parts',
        '  sfc merge parts/discover-edges-*.part.json --out out',
      ].join('\n'),
    )
    .argument('<parts...>', 'part files (*.part.json), one per shard')
    .option('--out <dir>', 'output folder', 'out')
    .action((files: string[], opts: { out: string }) => {
      const result = mergeParts(files, opts.out);
      const slowest = Math.max(...result.parts.map((p) => p.measured.seconds));
      const rss = Math.max(...result.parts.map((p) => p.measured.max_rss_bytes));
      console.log(
        `merged ${result.parts.length} shards, ${result.parts.reduce((s, p) => s + p.examples, 0)} examples ` +
          `(slowest shard ${slowest.toFixed(1)} s, peak memory ${(rss / 2 ** 20).toFixed(0)} MiB)`,
      );
      if (result.circuit)
        console.log(`${result.circuit.nodes.length} nodes, ${result.circuit.edges.length} edges`);
      console.log(`wrote ${result.file}`);
      if (result.nextStep) console.log(`next: ${result.nextStep}`);
    });
}
