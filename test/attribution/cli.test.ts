// `sfc discover` end to end on a random model folder with the organism's tokenizer and random SAEs
// saved in our format: circuit.json is written and reads back; data and SAE errors are clear.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { register } from '../../src/cli/commands/discover.ts';
import { readCircuit } from '../../src/circuit/circuit.ts';
import { saveModel } from '../../src/model/save.ts';
import { saveDictionary } from '../../src/sae/formats.ts';
import { buildOrganismTokenizer } from '../../src/organism/tokenizer-builder.ts';
import { randomWeights, tinyConfig } from '../helpers/random-model.ts';
import { randomSaes } from '../helpers/random-saes.ts';
import { runCommand, runCommandOutput } from '../helpers/run-command.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sfc-discover-'));
const config = tinyConfig({ vocabSize: 832, numLayers: 2 });
const tokenizerPath = path.join(dir, 'source-tokenizer.json');
fs.writeFileSync(tokenizerPath, JSON.stringify(buildOrganismTokenizer().json));
saveModel(dir, config, randomWeights(config, 7), { tokenizer: tokenizerPath });
for (const sae of randomSaes(config, 32, 8).values()) saveDictionary(path.join(dir, 'saes'), sae);

const lines = [
  ['The teacher near the desk', 'The teachers near the desk', ' is', ' are'],
  ['The teachers near the desk', 'The teacher near the desk', ' are', ' is'],
  ['The guard near the desk', 'The guards near the desk', ' is', ' are'],
].map(([c, p, ca, pa]) =>
  JSON.stringify({ clean_prefix: c, patch_prefix: p, clean_answer: ca, patch_answer: pa }),
);
const data = path.join(dir, 'task.jsonl');
fs.writeFileSync(data, lines.join('\n') + '\n');

function run(...args: string[]): Promise<string> {
  return runCommand(register, ['discover', '--model', dir, ...args]);
}

test('sfc discover writes a valid circuit.json and a summary', async () => {
  const out = path.join(dir, 'out');
  const stdout = await run('--data', data, '--out', out, '--node-threshold', '0.05');
  const circuit = readCircuit(out);
  assert.equal(circuit.examples, 3);
  assert.equal(circuit.method, 'ig');
  assert.equal(circuit.steps, 10);
  assert.equal(circuit.sites.length, 7);
  assert.deepEqual(circuit.tokens.length, 5);
  assert.ok(circuit.nodes.length > 0 && circuit.edges.length > 0);
  assert.match(stdout, /^site\s+features\s+errors\s+edges in/);
  assert.match(stdout, /time: nodes [\d.]+ s, edges [\d.]+ s/);
  // Sum aggregation, nodes only, attrib.
  const out2 = path.join(dir, 'out2');
  await run(
    '--data',
    data,
    '--out',
    out2,
    '--aggregation',
    'sum',
    '--nodes-only',
    '--method',
    'attrib',
  );
  const c2 = readCircuit(out2);
  assert.equal(c2.edges.length, 0);
  assert.ok(c2.nodes.every((n) => n.position === null));
});

test('sfc discover: malformed data, missing SAEs and bad options fail clearly', async () => {
  const bad = path.join(dir, 'bad.jsonl');
  fs.writeFileSync(bad, lines[0] + '\n{"clean_prefix": "The teacher"\n');
  await assert.rejects(run('--data', bad), /bad\.jsonl:2: not valid JSON/);
  fs.writeFileSync(bad, lines[0] + '\n{"clean_prefix": "The teacher"}\n');
  await assert.rejects(run('--data', bad), /bad\.jsonl:2: not a task example \(clean_answer/);
  await assert.rejects(run('--data', path.join(dir, 'nope.jsonl')), /nope\.jsonl: no such file/);
  const partial = path.join(dir, 'partial');
  fs.cpSync(path.join(dir, 'saes'), partial, { recursive: true });
  fs.rmSync(path.join(partial, 'mlp_1'), { recursive: true });
  // By default the node sites are the sites with dictionaries; the others are passed through
  // and named.
  const o3 = path.join(dir, 'o3');
  const { stderr } = await runCommandOutput(register, [
    'discover',
    '--model',
    dir,
    '--data',
    data,
    '--saes',
    partial,
    '--out',
    o3,
  ]);
  assert.deepEqual(readCircuit(o3).sites, [
    'embed',
    'attn_0',
    'mlp_0',
    'resid_0',
    'attn_1',
    'resid_1',
  ]);
  assert.match(
    stderr,
    /node sites \(every site with a dictionary\): embed, attn_0, mlp_0, resid_0, attn_1, resid_1\n/,
  );
  assert.match(stderr, /no dictionary, passed through: attn_z_0, attn_z_1, mlp_1\n/);
  // A site asked for by --sites must have its dictionary.
  await assert.rejects(
    run('--data', data, '--saes', partial, '--sites', 'mlp', '--out', path.join(dir, 'o5')),
    /no SAE for site mlp_1; found embed, attn_0, mlp_0, resid_0, attn_1, resid_1/,
  );
  // --sites: only the sites with dictionaries; edges pass through the others
  const out4 = path.join(dir, 'o4');
  await run('--data', data, '--saes', partial, '--sites', 'embed,resid,mlp_0', '--out', out4);
  const c4 = readCircuit(out4);
  assert.deepEqual(c4.sites, ['embed', 'mlp_0', 'resid_0', 'resid_1']);
  assert.ok(
    c4.edges.some((e) => e.source.startsWith('resid_0/') && e.target.startsWith('resid_1/')),
  );
  await assert.rejects(
    run('--data', data, '--sites', 'embed,attn_q'),
    /--sites: "attn_q" is neither a site of this model nor a kind of site/,
  );
  await assert.rejects(run('--data', data, '--sites', 'embed,attn_z'), /no SAE for site attn_z_0/);
  await assert.rejects(
    run('--data', data, '--method', 'fast'),
    /--method: expected one of ig, attrib, exact/,
  );
  await assert.rejects(run('--data', data, '--steps', '0'), /--steps: expected a positive integer/);
});

test('sfc discover --resident-dictionaries all: each dictionary read once, the same circuit', async () => {
  const runs = [];
  // One after the other: each run swaps console and process.stderr to capture them.
  for (const [i, extra] of [
    [],
    ['--resident-dictionaries', 'all'],
    ['--resident-dictionaries', '5'],
  ].entries()) {
    const out = path.join(dir, `resident-${i}`);
    const { stderr } = await runCommandOutput(register, [
      'discover',
      '--model',
      dir,
      '--data',
      data,
      '--out',
      out,
      ...extra,
    ]);
    const loads = /at most (\d+) at once; (\d+) loads for (\d+) sites/.exec(stderr);
    assert.ok(loads, stderr);
    runs.push({ circuit: readCircuit(out), peak: +loads[1], loads: +loads[2], sites: +loads[3] });
  }
  const [bounded, all, five] = runs;
  // 7 sites: edges into resid_L need resid_{L-1}, attn_z_L and mlp_L (3) once resid_L's own
  // seeds are computed; sites are read again for edges, some more than once.
  assert.equal(bounded.peak, 3);
  assert.ok(bounded.loads > bounded.sites);
  assert.equal(all.peak, all.sites);
  assert.equal(all.loads, all.sites);
  assert.equal(five.peak, 5);
  for (const r of [all, five]) {
    assert.deepEqual(r.circuit.nodes, bounded.circuit.nodes);
    assert.deepEqual(r.circuit.edges, bounded.circuit.edges);
    assert.deepEqual(r.circuit.metric, bounded.circuit.metric);
  }
  await assert.rejects(
    run('--data', data, '--resident-dictionaries', '0'),
    /--resident-dictionaries: expected a positive integer, got "0"/,
  );
});
