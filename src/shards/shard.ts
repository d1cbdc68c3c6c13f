// What every sharded stage shares: the shard index I/N, the slice of batches a shard runs,
// content hashes for the manifest, and atomic writes (a killed shard leaves no half part).

import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';

export interface Shard {
  /** 0-based. */
  index: number;
  count: number;
}

/** The fields every part file starts with (its stage is the caller's). */
export const partHeaderShape = {
  format: z.literal('sfc-partial'),
  version: z.literal(1),
  shard: z.object({ index: z.number().int().min(0), count: z.number().int().min(1) }),
};

/** The batch range a part covers, of the run's total. */
export const batchRangeSchema = z.object({
  first: z.number().int(),
  end: z.number().int(),
  total: z.number().int(),
});

/** A file named by its content hash, and a folder by its fingerprint (manifest inputs). */
export const fileRefSchema = z.object({ path: z.string(), sha256: z.string() });
export const folderRefSchema = z.object({ path: z.string(), fingerprint: z.string() });

/** "I/N" with 0 <= I < N (Slurm's SLURM_ARRAY_TASK_ID and K8s's JOB_COMPLETION_INDEX are 0-based). */
export function parseShard(text: string, flag = '--shard'): Shard {
  const m = /^(\d+)\/(\d+)$/.exec(text.trim());
  const index = m ? Number(m[1]) : NaN;
  const count = m ? Number(m[2]) : NaN;
  if (!m || !(count >= 1) || !(index < count))
    throw new Error(
      `${flag}: expected I/N with 0 <= I < N (shard I of N, counted from 0), got "${text}"`,
    );
  return { index, count };
}

/**
 * The contiguous run of `total` items (batches) that shard I of N takes: sizes differ by at most
 * one, earlier shards take the extra ones, and the runs cover 0..total-1 in order. Contiguous
 * slices keep each shard's sums in the single run's order.
 */
export function shardSlice(
  total: number,
  shard: Shard,
  unit: 'batch' | 'group' = 'batch',
): { first: number; end: number } {
  if (shard.count > total) {
    const what =
      unit === 'batch'
        ? total === 1
          ? 'batch'
          : 'batches'
        : `group${total === 1 ? '' : 's'} of windows`;
    throw new Error(
      `--shard ${shard.index}/${shard.count}: only ${total} ${what} to split; use at most ${total} shards`,
    );
  }
  const base = Math.floor(total / shard.count);
  const extra = total % shard.count;
  const first = shard.index * base + Math.min(shard.index, extra);
  return { first, end: first + base + (shard.index < extra ? 1 : 0) };
}

const CHUNK = 1 << 24;

/** SHA-256 of a file's content, read in chunks (model weights may be gigabytes). */
export function fileSha256(file: string): string {
  const hash = crypto.createHash('sha256');
  const fd = fs.openSync(file, 'r');
  try {
    const buf = Buffer.allocUnsafe(CHUNK);
    let n: number;
    while ((n = fs.readSync(fd, buf, 0, CHUNK, null)) > 0) hash.update(buf.subarray(0, n));
  } finally {
    fs.closeSync(fd);
  }
  return hash.digest('hex');
}

/**
 * Fingerprint of a folder's files (names and contents): `recursive` false takes only the files
 * directly in it (a model folder, whose saes/ is fingerprinted on its own).
 */
export function folderFingerprint(dir: string, recursive: boolean): string {
  const files: string[] = [];
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) {
        if (recursive) walk(p);
      } else if (e.isFile()) files.push(p);
    }
  };
  walk(dir);
  const hash = crypto.createHash('sha256');
  for (const f of files.sort())
    hash.update(`${path.relative(dir, f).split(path.sep).join('/')}\0${fileSha256(f)}\n`);
  return hash.digest('hex');
}

/** Writes `text` to `file` through a temporary file in the same folder and a rename. */
export function writeFileAtomic(file: string, text: string): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    fs.writeFileSync(tmp, text);
    fs.renameSync(tmp, file);
  } finally {
    fs.rmSync(tmp, { force: true });
  }
}

/** The first field (dotted path) where two identities differ, with both values; null if none. */
export function firstDifference(a: unknown, b: unknown, at = ''): string | null {
  if (typeof a === 'object' && a !== null && typeof b === 'object' && b !== null) {
    const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
    for (const k of keys) {
      const d = firstDifference(
        (a as Record<string, unknown>)[k],
        (b as Record<string, unknown>)[k],
        at ? `${at}.${k}` : k,
      );
      if (d) return d;
    }
    return null;
  }
  return a === b ? null : `${at} (${JSON.stringify(a)} vs ${JSON.stringify(b)})`;
}
