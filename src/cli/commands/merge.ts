// `sfc merge`: finish a sharded run from its part files (src/shards/, src/dashboards/shards.ts).

import type { Command } from 'commander';
import { readJsonFile } from '../../io/text-file.ts';
import { checkParts, mergeDiscoverFiles } from '../../shards/merge.ts';
import {
  dashboardsIdentity,
  mergeDashboardsParts,
  parseDashboardsPart,
} from '../../dashboards/shards.ts';
import {
  evaluateIdentityOf,
  mergeEvaluateParts,
  parseEvaluatePart,
} from '../../shards/evaluate.ts';
import { formatEvaluation } from '../../evaluation/output.ts';

interface Measured {
  examples?: number;
  measured: { seconds: number; max_rss_bytes: number };
}

function measuredLine(parts: Measured[]): string {
  const slowest = Math.max(...parts.map((p) => p.measured.seconds));
  const rss = Math.max(...parts.map((p) => p.measured.max_rss_bytes));
  return `slowest shard ${slowest.toFixed(1)} s, peak memory ${(rss / 2 ** 20).toFixed(0)} MiB`;
}

export function register(program: Command): void {
  program
    .command('merge')
    .summary('Merge the part files of a sharded run (--shard I/N) into its result.')
    .description(
      [
        'Merge the part files written by `sfc discover`, `sfc evaluate` or `sfc dashboards` with ' +
          "--shard I/N: checks that they are one run's every shard, once each (same inputs, options, " +
          'model and SAE fingerprints), joins them in shard order and writes what a single run ' +
          'writes.',
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
        'Evaluation with mean ablation likewise: merging the first pass writes <out>/means.json; ' +
          'rerun every shard with --means <out>/means.json and merge those parts for ' +
          '<out>/evaluation.json and the plots.',
        '',
        '  sfc evaluate --circuit out/circuit.json --shard 0/2 --out parts   (and 1/2)',
        '  sfc merge parts/evaluate-means-*.part.json --out ev',
        '  sfc evaluate --circuit out/circuit.json --shard 0/2 --means ev/means.json --out parts',
        '  sfc merge parts/evaluate-metrics-*.part.json --out ev',
        '  sfc dashboards --corpus data/corpus.txt --out out --shard 0/2   (and 1/2)',
        '  sfc merge out/dashboards-*.part.json --out out',
      ].join('\n'),
    )
    .argument('<parts...>', 'part files (*.part.json), one per shard')
    .option('--out <dir>', 'output folder', 'out')
    .action(async (files: string[], opts: { out: string }) => {
      const values = files.map((f) => readJsonFile(f));
      const stage = (values[0] as { stage?: unknown } | null)?.stage;
      if (stage === 'dashboards') {
        const parts = files.map((f, i) => parseDashboardsPart(values[i], f));
        const order = checkParts(parts, files, dashboardsIdentity);
        const sorted = order.map((i) => parts[i]);
        const file = mergeDashboardsParts(sorted, opts.out);
        console.log(`merged ${parts.length} shards (${measuredLine(parts)})`);
        console.log(`wrote ${file}`);
        return;
      }
      if (typeof stage === 'string' && stage.startsWith('evaluate-')) {
        const parts = files.map((f, i) => parseEvaluatePart(values[i], f));
        const order = checkParts(parts, files, evaluateIdentityOf);
        const result = await mergeEvaluateParts(
          order.map((i) => parts[i]),
          opts.out,
        );
        console.log(
          `merged ${parts.length} shards, ${parts[0].total_examples} examples (${measuredLine(parts)})`,
        );
        if (result.evaluation)
          console.log(
            formatEvaluation(result.evaluation, result.nodeThreshold!, result.startLayer),
          );
        console.log(`wrote ${result.file}`);
        if (result.nextStep) console.log(`next: ${result.nextStep}`);
        return;
      }
      const result = mergeDiscoverFiles(files, values, opts.out);
      console.log(
        `merged ${result.parts.length} shards, ${result.parts.reduce((s, p) => s + p.examples, 0)} examples ` +
          `(${measuredLine(result.parts)})`,
      );
      if (result.circuit)
        console.log(`${result.circuit.nodes.length} nodes, ${result.circuit.edges.length} edges`);
      console.log(`wrote ${result.file}`);
      if (result.nextStep) console.log(`next: ${result.nextStep}`);
    });
}
