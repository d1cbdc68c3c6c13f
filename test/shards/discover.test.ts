// Sharded discovery on the organism: the merged circuit equals a single run's (same nodes and
// edges, effects within 1e-9 relative; bit for bit with one shard, whose sums run in the single
// run's order), one pass cannot give the edges, and merge refuses parts that do not belong together.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { register as registerDiscover } from '../../src/cli/commands/discover.ts';
import { register as registerMerge } from '../../src/cli/commands/merge.ts';
import { readCircuit, type Circuit } from '../../src/circuit/circuit.ts';
import { parseShard, shardSlice, writeFileAtomic } from '../../src/shards/shard.ts';
import { runCommand } from '../helpers/run-command.ts';
import { compareCircuits } from '../helpers/compare-circuits.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const MODEL = path.join(ROOT, 'models/organism');
const DATA = path.join(ROOT, 'data/simple_train.jsonl');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sfc-shards-'));

const discover = (...args: string[]) =>
  runCommand(registerDiscover, ['discover', '--model', MODEL, '--data', DATA, ...args]);
const merge = (...args: string[]) => runCommand(registerMerge, ['merge', ...args]);

/** Both passes of a sharded discovery over `count` shards; returns the merged circuit. */
async function sharded(name: string, count: number, args: string[]): Promise<Circuit> {
  const parts = path.join(dir, name, 'parts');
  const out = path.join(dir, name, 'out');
  const files = async (extra: string[]) => {
    const list: string[] = [];
    // Out of order on purpose: merge sorts by shard.
    for (let i = count - 1; i >= 0; i--)
      list.push(
        (await discover(...args, ...extra, '--shard', `${i}/${count}`, '--out', parts)).replace(
          /^wrote /,
          '',
        ),
      );
    return list;
  };
  const first = await merge(...(await files([])), '--out', out);
  if (!args.includes('--nodes-only')) {
    assert.match(first, /wrote .*nodes\.json\nnext: the edges pass/);
    await merge(...(await files(['--nodes', path.join(out, 'nodes.json')])), '--out', out);
  }
  return readCircuit(out);
}

test('shards: balanced contiguous slices and I/N parsing', () => {
  for (const [total, count] of [
    [10, 3],
    [7, 7],
    [30, 4],
    [1, 1],
  ]) {
    const slices = Array.from({ length: count }, (_, index) => shardSlice(total, { index, count }));
    assert.equal(slices[0].first, 0);
    assert.equal(slices[count - 1].end, total);
    for (let i = 1; i < count; i++) assert.equal(slices[i].first, slices[i - 1].end);
    const sizes = slices.map((s) => s.end - s.first);
    assert.ok(Math.max(...sizes) - Math.min(...sizes) <= 1, `${sizes}`);
  }
  assert.throws(() => shardSlice(2, { index: 0, count: 3 }), /only 2 batches to split/);
  assert.deepEqual(parseShard('2/5'), { index: 2, count: 5 });
  for (const bad of ['5/5', '1', '-1/3', '1/0', 'a/b'])
    assert.throws(() => parseShard(bad), /--shard: expected I\/N with 0 <= I < N/);
});

test('sharded discovery with edges equals the single run (nodes, edges, effects within 1e-9)', async () => {
  const args = ['--examples', '40', '--batch-size', '4'];
  await discover(...args, '--out', path.join(dir, 'single'));
  const single = readCircuit(path.join(dir, 'single'));
  assert.ok(single.nodes.length > 20 && single.edges.length > 100);
  const merged = await sharded('three', 3, args);
  const worst = compareCircuits(single, merged);
  assert.ok(worst <= 1e-9, `worst relative difference ${worst}`);
  // One shard sums in the single run's order: equal bit for bit.
  assert.equal(compareCircuits(single, await sharded('one', 1, args)), 0);
});

test('sharded discovery: sum aggregation, attrib, nodes only', async () => {
  const args = ['--examples', '30', '--aggregation', 'sum', '--method', 'attrib', '--nodes-only'];
  await discover(...args, '--out', path.join(dir, 'single-sum'));
  const single = readCircuit(path.join(dir, 'single-sum'));
  assert.ok(single.nodes.length > 5);
  const worst = compareCircuits(single, await sharded('sum', 2, args));
  assert.ok(worst <= 1e-9, `worst relative difference ${worst}`);
});

test('one pass is not enough: a shard alone chooses another node set than all examples', async () => {
  // The edges a shard computes are those between the nodes it would choose; the single run's
  // nodes come from every example. With shard-local node sets, edges of the circuit go missing.
  const args = ['--examples', '40', '--batch-size', '4', '--node-threshold', '0.1'];
  const single = readCircuit(path.join(dir, 'single'));
  const ids = new Set(single.nodes.map((n) => n.id));
  let differs = 0;
  for (let i = 0; i < 3; i++) {
    const out = path.join(dir, `alone-${i}`);
    // The shard's batches as a task of their own.
    const lines = fs.readFileSync(DATA, 'utf8').trim().split('\n').slice(0, 40);
    const slice = shardSlice(10, { index: i, count: 3 });
    const data = path.join(dir, `alone-${i}.jsonl`);
    fs.writeFileSync(data, lines.slice(slice.first * 4, slice.end * 4).join('\n') + '\n');
    await runCommand(registerDiscover, [
      'discover',
      '--model',
      MODEL,
      '--data',
      data,
      ...args,
      '--out',
      out,
    ]);
    const own = new Set(readCircuit(out).nodes.map((n) => n.id));
    if ([...ids].some((id) => !own.has(id)) || [...own].some((id) => !ids.has(id))) differs++;
  }
  assert.ok(differs > 0, 'every shard chose the single run node set: the test shows nothing');
});

test('merge names missing, duplicate and mismatched parts; a nodes file from another run is refused', async () => {
  const parts = path.join(dir, 'three', 'parts');
  const p = (i: number, stage = 'edges') =>
    path.join(parts, `discover-${stage}-${i}-of-3.part.json`);
  const out = path.join(dir, 'bad-out');
  await assert.rejects(merge(p(0), p(2), '--out', out), /missing shard 1\/3 \(got 2 of 3 parts\)/);
  await assert.rejects(
    merge(p(0), p(1), p(1), p(2), '--out', out),
    /shard 1\/3 given twice: .*edges-1-of-3.* and .*edges-1-of-3/,
  );
  await assert.rejects(
    merge(p(0), p(1, 'nodes'), p(2), '--out', out),
    /nodes-1-of-3\.part\.json does not belong with .*edges-0-of-3\.part\.json: stage \("discover-edges" vs "discover-nodes"\) differs/,
  );
  const other = path.join(dir, 'other.part.json');
  const part = JSON.parse(fs.readFileSync(p(1), 'utf8'));
  part.options.steps = 5;
  fs.writeFileSync(other, JSON.stringify(part));
  await assert.rejects(
    merge(p(0), other, p(2), '--out', out),
    /other\.part\.json does not belong with .*: options\.steps \(10 vs 5\) differs/,
  );
  part.options.steps = 10;
  part.inputs.data.sha256 = '0'.repeat(64);
  fs.writeFileSync(other, JSON.stringify(part));
  await assert.rejects(
    merge(p(0), other, p(2), '--out', out),
    /input data \("[0-9a-f]{64}" vs "0{64}"\) differs/,
  );
  // A half-written part (what a rename-less writer could leave) is refused by name.
  fs.writeFileSync(other, fs.readFileSync(p(1), 'utf8').slice(0, 500));
  await assert.rejects(merge(p(0), other, p(2), '--out', out), /other\.part\.json: not valid JSON/);
  // The edges pass checks its nodes file against its own inputs and options.
  await assert.rejects(
    discover(
      '--examples',
      '40',
      '--batch-size',
      '4',
      '--steps',
      '5',
      '--shard',
      '0/3',
      '--nodes',
      path.join(dir, 'three', 'out', 'nodes.json'),
      '--out',
      out,
    ),
    /--nodes .*nodes\.json: made by merging another run's parts; options\.steps \(5 vs 10\)/,
  );
  await assert.rejects(
    discover('--nodes', path.join(dir, 'three', 'out', 'nodes.json')),
    /--nodes: only with --shard/,
  );
});

test('writeFileAtomic replaces a file whole and leaves no temporary file', () => {
  const file = path.join(dir, 'atomic', 'x.json');
  writeFileAtomic(file, 'one');
  writeFileAtomic(file, 'two');
  assert.equal(fs.readFileSync(file, 'utf8'), 'two');
  assert.deepEqual(fs.readdirSync(path.dirname(file)), ['x.json']);
});

test('a killed shard leaves no part; rerun alone, it completes the set', async () => {
  const args = ['--examples', '40', '--batch-size', '4'];
  const parts = path.join(dir, 'killed', 'parts');
  for (const i of [0, 2]) await discover(...args, '--shard', `${i}/3`, '--out', parts);
  // Killed while it runs (node and the model take over a second to start).
  const child = spawn(
    process.execPath,
    [
      path.join(ROOT, 'bin/sfc.js'),
      'discover',
      '--model',
      MODEL,
      '--data',
      DATA,
      ...args,
      '--shard',
      '1/3',
      '--out',
      parts,
    ],
    { stdio: 'ignore' },
  );
  await new Promise((r) => setTimeout(r, 300));
  child.kill('SIGKILL');
  await new Promise((r) => child.once('exit', r));
  const files = () =>
    fs
      .readdirSync(parts)
      .filter((f) => f.endsWith('.part.json'))
      .sort();
  assert.deepEqual(files(), ['discover-nodes-0-of-3.part.json', 'discover-nodes-2-of-3.part.json']);
  const all = () => files().map((f) => path.join(parts, f));
  await assert.rejects(
    merge(...all(), '--out', path.join(dir, 'killed', 'out')),
    /missing shard 1\/3/,
  );
  await discover(...args, '--shard', '1/3', '--out', parts);
  assert.match(
    await merge(...all(), '--out', path.join(dir, 'killed', 'out')),
    /wrote .*nodes\.json/,
  );
  // The same node set as the three shards run without a kill.
  assert.equal(
    fs.readFileSync(path.join(dir, 'killed', 'out', 'nodes.json'), 'utf8'),
    fs.readFileSync(path.join(dir, 'three', 'out', 'nodes.json'), 'utf8'),
  );
});
