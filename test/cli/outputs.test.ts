// No silent data loss: commands write under out/ by default, and never replace a model, an SAE or
// a labels file without --force (refused before any work, naming the path and the flag).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Command } from 'commander';
import { saveModel } from '../../src/model/save.ts';
import { saveDictionary } from '../../src/sae/formats.ts';
import { buildOrganismTokenizer } from '../../src/organism/tokenizer-builder.ts';
import { register as registerSae } from '../../src/cli/commands/sae.ts';
import { register as registerOrganism, runOrganism } from '../../src/cli/commands/organism.ts';
import { runCommand } from '../helpers/run-command.ts';
import { randomWeights, tinyConfig } from '../helpers/random-model.ts';
import { randomSaes } from '../helpers/random-saes.ts';
import { Command as Program } from 'commander';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sfc-outputs-'));
const modelDir = path.join(dir, 'model');
const config = tinyConfig({ vocabSize: 832, numLayers: 1 });
const tokenizerFile = path.join(dir, 'tokenizer.json');
fs.writeFileSync(tokenizerFile, JSON.stringify(buildOrganismTokenizer().json));
saveModel(modelDir, config, randomWeights(config, 4), { tokenizer: tokenizerFile });
saveDictionary(path.join(modelDir, 'saes'), randomSaes(config, 16, 5).get('resid_0')!);
const shipped = path.join(modelDir, 'saes', 'resid_0', 'sae_weights.safetensors');
const shippedBytes = fs.readFileSync(shipped);
const corpus = path.join(dir, 'train.txt');
fs.writeFileSync(corpus, 'the teacher is here .\nthe teachers are here .\n'.repeat(20));

const train = ['sae', 'train', '--model', modelDir, '--site', 'resid_0', '--corpus', corpus];
const tiny = ['--steps', '4', '--batch', '8', '--width', '16', '--ctx', '8'];

/** The default of a subcommand's option, as commander holds it. */
function defaultOf(register: (p: Command) => void, names: string[], flag: string): unknown {
  const program = new Program();
  register(program);
  let cmd: Command = program;
  for (const n of names) cmd = cmd.commands.find((c) => c.name() === n)!;
  return cmd.options.find((o) => o.long === flag)?.defaultValue;
}

test('sae train refuses to replace an existing SAE without --force, before training', async () => {
  await assert.rejects(
    runCommand(registerSae, [...train, ...tiny, '--out', path.join(modelDir, 'saes')]),
    (e: Error) =>
      e.message.includes(path.join(modelDir, 'saes', 'resid_0')) &&
      /already holds an SAE for resid_0; refusing to overwrite it\. Pass --force/.test(e.message),
  );
  assert.deepEqual(fs.readFileSync(shipped), shippedBytes);
});

test('sae train writes to out/saes by default; a second run needs --force', async () => {
  assert.equal(defaultOf(registerSae, ['sae', 'train'], '--out'), path.join('out', 'saes'));
  const work = fs.mkdtempSync(path.join(dir, 'cwd-'));
  const cwd = process.cwd();
  process.chdir(work);
  try {
    await runCommand(registerSae, [...train, ...tiny]);
    const written = path.join(work, 'out', 'saes', 'resid_0', 'sae_weights.safetensors');
    assert.ok(fs.existsSync(written));
    assert.deepEqual(fs.readFileSync(shipped), shippedBytes, "the model's own SAE is untouched");
    await assert.rejects(runCommand(registerSae, [...train, ...tiny]), /--force/);
    await runCommand(registerSae, [...train, ...tiny, '--force', '--seed', '1']);
  } finally {
    process.chdir(cwd);
  }
});

test('the sae train help example trains on a training corpus, not the held-out one', () => {
  const program = new Program();
  registerSae(program);
  const help = program.commands
    .find((c) => c.name() === 'sae')!
    .commands.find((c) => c.name() === 'train')!
    .helpInformation();
  assert.match(help, /sfc sae train --site resid_1 --corpus train\.txt/);
  assert.doesNotMatch(help, /--corpus data\/corpus\.txt/);
});

test('label and organism train default to out/, and refuse to replace what is there', async () => {
  assert.equal(defaultOf(registerOrganism, ['label'], '--out'), path.join('out', 'labels.jsonl'));
  assert.equal(
    defaultOf(registerOrganism, ['organism', 'train'], '--out'),
    path.join('out', 'organism'),
  );
  const labels = path.join(dir, 'labels.jsonl');
  fs.writeFileSync(labels, 'keep me\n');
  await assert.rejects(
    runCommand(registerOrganism, ['label', '--model', modelDir, '--out', labels]),
    /labels\.jsonl already holds feature labels; refusing to overwrite it\. Pass --force/,
  );
  assert.equal(fs.readFileSync(labels, 'utf8'), 'keep me\n');

  // Each stage checks what it would replace before it starts.
  const run = (stage: string, sites?: string[], force?: boolean) =>
    runOrganism({ stage, quick: true, out: modelDir, dataDir: '', sites, force });
  assert.throws(() => run('model'), /model\.safetensors already holds a model.*--force/);
  assert.throws(() => run('all'), /model\.safetensors already holds a model/);
  assert.throws(() => run('saes', ['resid_0']), /saes\/resid_0 already holds an SAE.*--force/);
  assert.throws(() => run('saes'), /saes already holds SAEs.*--force/);
  fs.copyFileSync(labels, path.join(modelDir, 'labels.jsonl'));
  assert.throws(() => run('labels'), /labels\.jsonl already holds labels.*--force/);
  assert.deepEqual(fs.readFileSync(shipped), shippedBytes);
});

test.after(() => fs.rmSync(dir, { recursive: true, force: true }));

test('sae train --arch: a penalty flag of another architecture, or topk without k, is refused first', async () => {
  const out = ['--out', path.join(dir, 'arch')];
  const refused: [string[], RegExp][] = [
    [['--arch', 'jumprelu', '--l1', '2'], /--l1 is for --arch relu, not --arch jumprelu/],
    [['--l0-penalty', '2'], /--l0-penalty is for --arch jumprelu, not --arch relu/],
    [['--arch', 'relu', '--topk', '3'], /--topk is for --arch topk, not --arch relu/],
    [['--arch', 'topk', '--bandwidth', '1', '--topk', '3'], /--bandwidth is for --arch jumprelu/],
    [['--arch', 'topk'], /--arch topk needs --topk k/],
    [['--arch', 'gated'], /--arch.*Allowed choices are relu, jumprelu, topk/],
  ];
  for (const [flags, message] of refused)
    await assert.rejects(runCommand(registerSae, [...train, ...tiny, ...out, ...flags]), message);
  assert.ok(!fs.existsSync(path.join(dir, 'arch')), 'nothing was written');
});
