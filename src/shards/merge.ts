// `sfc merge`: reads the part files of one sharded run, checks that they belong together (one
// stage, the same inputs, options and fingerprints, every shard exactly once) and finishes the
// computation.

import { firstDifference } from './shard.ts';
import {
  mergeDiscoverParts,
  parseDiscoverPart,
  type DiscoverMerge,
  type DiscoverPart,
} from './discover.ts';

/** What must agree between parts: everything but the shard's own slice, sums and measurements. */
function identityOf(part: DiscoverPart): unknown {
  const { inputs, options, stage, nodes_sha256, shard, batches, widths, positions } = part;
  return {
    stage,
    inputs: {
      data: inputs.data.sha256,
      model: inputs.model.fingerprint,
      saes: inputs.saes.fingerprint,
    },
    options,
    nodes_sha256,
    shards: shard.count,
    batches: batches.total,
    widths,
    positions,
  };
}

/**
 * Parts in shard order, after checking that they are one run's every shard, once each;
 * `identity` gives what must agree between parts.
 */
export function checkParts<P extends { shard: { index: number; count: number } }>(
  parts: P[],
  files: string[],
  identity: (part: P) => unknown,
): number[] {
  if (parts.length === 0) throw new Error('merge: no part files given');
  const first = identity(parts[0]);
  parts.forEach((p, i) => {
    const diff = firstDifference(first, identity(p));
    if (diff)
      throw new Error(
        `merge: ${files[i]} does not belong with ${files[0]}: ${diff.replace(/^inputs\./, 'input ')} differs`,
      );
  });
  const count = parts[0].shard.count;
  const byIndex = new Map<number, number>();
  parts.forEach((p, i) => {
    const seen = byIndex.get(p.shard.index);
    if (seen !== undefined)
      throw new Error(
        `merge: shard ${p.shard.index}/${count} given twice: ${files[seen]} and ${files[i]}`,
      );
    byIndex.set(p.shard.index, i);
  });
  const missing = Array.from({ length: count }, (_, i) => i).filter((i) => !byIndex.has(i));
  if (missing.length > 0)
    throw new Error(
      `merge: missing shard${missing.length > 1 ? 's' : ''} ${missing.map((i) => `${i}/${count}`).join(', ')} ` +
        `(got ${parts.length} of ${count} parts); rerun ${missing.length > 1 ? 'them' : 'it'} with --shard`,
    );
  return Array.from({ length: count }, (_, i) => byIndex.get(i)!);
}

export type MergeResult = DiscoverMerge & { parts: DiscoverPart[] };

/** Merges the parts of a sharded discovery (`values`: the files' parsed JSON). */
export function mergeDiscoverFiles(files: string[], values: unknown[], out: string): MergeResult {
  const parts = files.map((f, i) => parseDiscoverPart(values[i], f));
  const order = checkParts(parts, files, identityOf);
  const sorted = order.map((i) => parts[i]);
  return {
    ...mergeDiscoverParts(
      sorted,
      order.map((i) => files[i]),
      out,
    ),
    parts: sorted,
  };
}
