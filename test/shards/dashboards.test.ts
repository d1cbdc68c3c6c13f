// Sharded dashboards on the organism: the merged dashboards.json is the single run's byte for
// byte (nothing in a part is a rounded sum), for uneven shards and any shard count; merge refuses
// parts of another run.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { register as registerReport } from '../../src/cli/commands/report.ts';
import { register as registerMerge } from '../../src/cli/commands/merge.ts';
import { runCommand } from '../helpers/run-command.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sfc-shards-dash-'));
const features = path.join(dir, 'features.json');
// A circuit's features: a few per site, enough to fill contexts and histograms.
const sites = ['embed', 'resid_0', 'mlp_1', 'attn_2', 'resid_3'];
fs.writeFileSync(
  features,
  JSON.stringify({
    version: 1,
    model: 'm',
    saes: 's',
    data: 'd',
    method: 'ig',
    steps: 10,
    aggregation: 'sum',
    examples: 1,
    node_threshold: 0.1,
    edge_threshold: 0.01,
    sites,
    tokens: [],
    metric: { clean: 0, patch: null },
    nodes: sites.flatMap((site, l) =>
      [0, 5, 17, 40, 77].map((feature) => ({
        id: `${site}/${feature}`,
        site,
        layer: site === 'embed' ? -1 : Number(site.split('_')[1]),
        kind: 'feature',
        feature,
        position: null,
        effect: 1 + l,
      })),
    ),
    edges: [],
  }),
);

const ARGS = [
  '--model',
  path.join(ROOT, 'models/organism'),
  '--corpus',
  path.join(ROOT, 'data/corpus.txt'),
  '--max-documents',
  '150',
  '--features',
  features,
];
const dashboards = (...args: string[]) =>
  runCommand(registerReport, ['dashboards', ...ARGS, ...args]);
const merge = (...args: string[]) => runCommand(registerMerge, ['merge', ...args]);

async function parts(name: string, count: number, extra: string[] = []): Promise<string[]> {
  const files: string[] = [];
  for (let i = 0; i < count; i++) {
    await dashboards(...extra, '--out', path.join(dir, name), '--shard', `${i}/${count}`);
    files.push(path.join(dir, name, `dashboards-${i}-of-${count}.part.json`));
  }
  return files;
}

test('sharded dashboards equal the single run byte for byte', async () => {
  await dashboards('--out', path.join(dir, 'single'));
  const single = fs.readFileSync(path.join(dir, 'single', 'dashboards.json'), 'utf8');
  const parsed = JSON.parse(single) as { features: Record<string, { contexts: unknown[] }> };
  assert.ok(Object.values(parsed.features).some((f) => f.contexts.length === 20));
  for (const count of [1, 3, 7]) {
    const out = path.join(dir, `merged-${count}`);
    await merge(...(await parts(`parts-${count}`, count)).reverse(), '--out', out);
    assert.equal(
      fs.readFileSync(path.join(out, 'dashboards.json'), 'utf8'),
      single,
      `${count} shards`,
    );
  }
});

test('merge refuses dashboards parts of another run and missing shards', async () => {
  const three = [0, 1, 2].map((i) => path.join(dir, 'parts-3', `dashboards-${i}-of-3.part.json`));
  const other = await parts('other-top', 3, ['--top', '5']);
  await assert.rejects(
    merge(three[0], other[1], three[2], '--out', path.join(dir, 'x')),
    /other-top\/dashboards-1-of-3\.part\.json does not belong with .*: options\.top \(20 vs 5\) differs/,
  );
  await assert.rejects(
    merge(three[0], three[2], '--out', path.join(dir, 'x')),
    /missing shard 1\/3/,
  );
  await assert.rejects(merge(three[0], other[0], '--out', path.join(dir, 'x')), /does not belong/);
});
