// --sae-width beside every --saes: each command that takes an SAE folder takes the size too, and
// `sfc sae stats` on a folder with two sizes at a site fails naming the flag, then gets past
// opening the folder once the size is given; --sae-l0 beside it, and `sfc sae stats` on a Gemma
// Scope tree picking the L0 variant.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Command } from 'commander';
import { register } from '../../src/cli/commands/sae.ts';
import { buildProgram } from '../../src/cli/program.ts';
import { runCommand } from '../helpers/run-command.ts';
import { writeNpz } from '../../src/sae/npy.ts';
import { openSaes } from '../../src/sae/library.ts';
import { printSaeChoices } from '../../src/cli/sae-choices.ts';

const FIX = 'test/fixtures/sae/dictionary_learning';
let dir: string;

before(() => {
  // The fixture (6 features per site) plus a 12-feature dictionary at resid_0.
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sfc-sae-width-'));
  fs.cpSync(FIX, dir, { recursive: true });
  fs.cpSync(
    path.join(dir, 'resid_out_layer0', '10_6'),
    path.join(dir, 'resid_out_layer0', '10_12'),
    {
      recursive: true,
    },
  );
  const cfg = path.join(dir, 'resid_out_layer0', '10_12', 'config.json');
  fs.writeFileSync(cfg, fs.readFileSync(cfg, 'utf8').replace('"dict_size": 6', '"dict_size": 12'));
  fs.writeFileSync(path.join(dir, 'corpus.txt'), 'The teacher that the guards like is here.\n');
});
after(() => fs.rmSync(dir, { recursive: true }));

function commands(c: Command, prefix = ''): [string, Command][] {
  return c.commands.flatMap((s) => {
    const name = `${prefix}${s.name()}`;
    return [[name, s] as [string, Command], ...commands(s, `${name} `)];
  });
}

test('every command with --saes takes --sae-width', () => {
  const withSaes = commands(buildProgram()).filter(([, c]) =>
    c.options.some((o) => o.long === '--saes'),
  );
  const names = withSaes.map(([n]) => n).sort();
  for (const expected of ['discover', 'evaluate', 'dashboards', 'shift', 'sae stats', 'label'])
    assert.ok(names.includes(expected), `${expected} takes --saes (found: ${names.join(', ')})`);
  for (const [name, c] of withSaes)
    assert.ok(
      c.options.some((o) => o.long === '--sae-width'),
      `${name} has --saes but no --sae-width`,
    );
});

test('every command with --saes takes --sae-l0 (Gemma Scope L0 variants)', () => {
  const withSaes = commands(buildProgram()).filter(([, c]) =>
    c.options.some((o) => o.long === '--saes'),
  );
  for (const [name, c] of withSaes)
    assert.ok(
      c.options.some((o) => o.long === '--sae-l0'),
      `${name} has --saes but no --sae-l0`,
    );
});

test('sfc sae stats: two sizes at a site name --sae-width; with it the folder opens', async () => {
  const args = ['sae', 'stats', '--saes', dir, '--corpus', path.join(dir, 'corpus.txt')];
  await assert.rejects(
    runCommand(register, args),
    /2 dictionaries for site resid_0: .*sizes present: 6, 12: choose one with --sae-width N/,
  );
  // Past the choice, the fixture's 4-wide SAEs meet the organism's 128-wide model.
  await assert.rejects(
    runCommand(register, [...args, '--sae-width', '6']),
    /SAE input width 4 does not match the model width 128/,
  );
  await assert.rejects(
    runCommand(register, [...args, '--sae-width', 'lots']),
    /--sae-width: expected a positive integer, got "lots"/,
  );
  await assert.rejects(
    runCommand(register, [...args, '--sae-width', '6', '--sae-l0', '-3']),
    /--sae-l0: expected a non-negative number, got "-3"/,
  );
});

test('sfc sae stats on a Gemma Scope tree: --sae-width and --sae-l0 choose, the rows come out', async () => {
  // A res release for the organism (d 128): resid_1 in two L0 variants, resid_2 in one; each
  // dictionary's b_enc marks which file it is (a variant that fires nothing has L0 0).
  const gs = fs.mkdtempSync(path.join(os.tmpdir(), 'sfc-gs-cli-'));
  try {
    const d = 128;
    const F = 16;
    const write = (layer: number, l0: number, bias: number) => {
      const file = path.join(
        gs,
        'gemma-scope-tiny-res',
        `layer_${layer}`,
        'width_16',
        `average_l0_${l0}`,
        'params.npz',
      );
      fs.mkdirSync(path.dirname(file), { recursive: true });
      writeNpz(file, [
        {
          name: 'W_enc',
          shape: [d, F],
          data: Float32Array.from({ length: d * F }, (_, i) => Math.sin(i) * 0.1),
        },
        {
          name: 'W_dec',
          shape: [F, d],
          data: Float32Array.from({ length: F * d }, (_, i) => Math.cos(i)),
        },
        { name: 'b_enc', shape: [F], data: new Float32Array(F).fill(bias) },
        { name: 'b_dec', shape: [d], data: new Float32Array(d) },
        { name: 'threshold', shape: [F], data: new Float32Array(F).fill(0.01) },
      ]);
    };
    write(1, 10, -1e6); // never fires
    write(1, 150, 1e6); // always fires: L0 16
    write(2, 50, 1e6);
    const args = ['sae', 'stats', '--saes', gs, '--corpus', path.join(dir, 'corpus.txt')];
    const rows = async (extra: string[]) =>
      JSON.parse(await runCommand(register, [...args, '--tokens', '16', '--json', ...extra])) as {
        site: string;
        l0: number;
      }[];
    const near10 = await rows(['--sae-l0', '20']);
    assert.deepEqual(
      near10.map((r) => [r.site, r.l0]),
      [
        ['resid_1', 0],
        ['resid_2', F],
      ],
    );
    const byDefault = await rows([]); // 100 is closer to 150 than to 10
    assert.deepEqual(
      byDefault.map((r) => [r.site, r.l0]),
      [
        ['resid_1', F],
        ['resid_2', F],
      ],
    );
    await assert.rejects(
      runCommand(register, [...args, '--sae-width', '32']),
      /no dictionary of 32 features for site resid_1/,
    );
  } finally {
    fs.rmSync(gs, { recursive: true, force: true });
  }
});

test('printSaeChoices: one line per site used, then the files not used and why', () => {
  const capture = (lib: ReturnType<typeof openSaes>) => {
    const printed: string[] = [];
    const write = process.stderr.write;
    process.stderr.write = ((chunk: string) => printed.push(String(chunk)) > 0) as typeof write;
    try {
      printSaeChoices(lib);
    } finally {
      process.stderr.write = write;
    }
    return printed.join('');
  };
  const all = capture(openSaes(dir, 1, { width: 6 }));
  assert.match(all, /^SAEs from .*: 4 sites\n/);
  assert.match(all, /\n {2}resid_0 +dictionary_learning {2}6 features {2}.*10_6.ae\.pt\n/);
  assert.doesNotMatch(all, /not used/);
  // A 0-layer model has only embed: the other files are listed as not used, with the reason.
  const embedOnly = capture(openSaes(dir, 0));
  assert.match(embedOnly, /: 1 site\n {2}embed /);
  assert.match(embedOnly, /\n {2}not used: 4 files\n/);
  assert.match(embedOnly, /10_12.ae\.pt: site resid_0 does not exist in a 0-layer model\n/);
  assert.equal(capture(openSaes('neurons', 1, { modelWidth: 4 })), '', 'nothing for neurons');
});
