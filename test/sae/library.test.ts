// A dictionary_learning folder with two sizes at one site (as the releases ship several widths):
// without a width it is an error that lists the files and sizes and names --sae-width; with one,
// that size is used at every site.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { readDictionaryLearningConfig, saveDictionary } from '../../src/sae/formats.ts';
import { NEURONS, openSaes } from '../../src/sae/library.ts';
import { tinyTransformer } from '../helpers/random-transformer.ts';
import { randomModelSaes } from '../helpers/random-saes.ts';

const FIX = 'test/fixtures/sae/dictionary_learning';
const D = 4; // the fixture's d_in
let dir: string;

/** The 1-layer fixture (every site 6 features, folders <id>_6), plus a 12-feature resid_0. */
before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sfc-dl-sizes-'));
  fs.cpSync(FIX, dir, { recursive: true });
  // A second size at resid_0: its declared size is 12; its weights are the 6-feature file (no
  // torch here to write another), which the loader's check against the declared size catches,
  // so loading it proves it was the one chosen.
  const big = path.join(dir, 'resid_out_layer0', '10_12');
  fs.mkdirSync(big);
  fs.copyFileSync(path.join(FIX, 'resid_out_layer0', '10_6', 'ae.pt'), path.join(big, 'ae.pt'));
  const cfg = JSON.parse(
    fs.readFileSync(path.join(FIX, 'resid_out_layer0', '10_6', 'config.json'), 'utf8'),
  );
  cfg.trainer.dict_size = 12;
  fs.writeFileSync(path.join(big, 'config.json'), JSON.stringify(cfg));
});
after(() => fs.rmSync(dir, { recursive: true }));

test('two sizes at a site: the error lists them and names --sae-width', () => {
  assert.throws(
    () => openSaes(dir, 1, { modelWidth: D }),
    (e: Error) => {
      assert.match(e.message, /2 dictionaries for site resid_0/);
      assert.match(e.message, /10_12\/ae\.pt \(12 features\)/);
      assert.match(e.message, /10_6\/ae\.pt \(6 features\)/);
      assert.match(e.message, /sizes present: 6, 12: choose one with --sae-width N/);
      return true;
    },
  );
});

test('--sae-width 6 chooses the 6-feature dictionaries everywhere', () => {
  const lib = openSaes(dir, 1, { modelWidth: D, width: 6 });
  assert.deepEqual(lib.sites(), ['embed', 'attn_0', 'mlp_0', 'resid_0']);
  assert.match(lib.entry('resid_0').location, /10_6\/ae\.pt$/);
  assert.equal(lib.entry('resid_0').width, 6);
  assert.equal(lib.get('resid_0').width, 6);
});

test('--sae-width 12: resid_0 takes the 12-feature file; sites without that size are an error', () => {
  assert.throws(
    () => openSaes(dir, 1, { modelWidth: D, width: 12 }),
    /no dictionary of 12 features for site embed; found .*10_6\/ae\.pt \(6 features\); sizes present: 6 \(choose with --sae-width\)/,
  );
  // Only resid_0 in a folder of its own: the 12-feature entry is the one chosen, and its weights
  // are checked against the size it declares.
  const only = path.join(dir, 'resid_out_layer0');
  const lib = openSaes(only, 1, { modelWidth: D, width: 12 });
  assert.match(lib.entry('resid_0').location, /10_12\/ae\.pt$/);
  assert.throws(() => lib.get('resid_0'), /holds 6 features, but its files declare 12/);
});

test('two dictionaries of the same size cannot be told apart: keep one', () => {
  const twin = fs.mkdtempSync(path.join(os.tmpdir(), 'sfc-dl-twin-'));
  try {
    fs.cpSync(path.join(FIX, 'embed'), path.join(twin, 'embed'), { recursive: true });
    fs.cpSync(path.join(twin, 'embed', '10_6'), path.join(twin, 'embed', '11_6'), {
      recursive: true,
    });
    for (const width of [undefined, 6])
      assert.throws(
        () => openSaes(twin, 1, { modelWidth: D, width }),
        /2 dictionaries for site embed: .*10_6\/ae\.pt.*11_6\/ae\.pt.*; keep one$/,
      );
  } finally {
    fs.rmSync(twin, { recursive: true });
  }
});

test('a width that is not a positive integer is refused', () => {
  assert.throws(() => openSaes(FIX, 1, { width: 0 }), /--sae-width: expected a positive integer/);
});

test('a dictionary_learning config.json is read through its reader: size and class, or refused by name', () => {
  const folder = path.join(FIX, 'resid_out_layer0', '10_6');
  assert.deepEqual(readDictionaryLearningConfig(folder), {
    file: path.join(folder, 'config.json'),
    dictClass: 'AutoEncoder',
    dictSize: 6,
  });
  assert.equal(readDictionaryLearningConfig(path.join(FIX, 'resid_out_layer0')), null);

  const one = fs.mkdtempSync(path.join(os.tmpdir(), 'sfc-dl-config-'));
  try {
    fs.cpSync(path.join(FIX, 'resid_out_layer0'), path.join(one, 'resid_out_layer0'), {
      recursive: true,
    });
    const config = path.join(one, 'resid_out_layer0', '10_6', 'config.json');
    const skippedFor = (text: string, why: RegExp) => {
      fs.writeFileSync(config, text);
      const lib = openSaes(one, 1, { modelWidth: D });
      assert.deepEqual(lib.sites(), []);
      assert.equal(lib.skipped().length, 1);
      assert.match(lib.skipped()[0].reason, why);
      // Asking for the site says why its dictionary was passed over.
      assert.throws(() => lib.get('resid_0'), why);
    };
    const where = config.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    skippedFor(
      JSON.stringify({ trainer: { dict_class: 'AutoEncoder', dict_size: '6' } }),
      new RegExp(`${where}: not a dictionary_learning config\\.json \\(trainer\\.dict_size: `),
    );
    skippedFor(
      JSON.stringify({ trainer: { dict_class: 7, dict_size: 6 } }),
      new RegExp(`${where}: not a dictionary_learning config\\.json \\(trainer\\.dict_class: `),
    );
    skippedFor('{"trainer": {', new RegExp(`${where}: not valid JSON`));
    skippedFor('[]', new RegExp(`${where}: expected a JSON object`));

    // Without trainer.dict_size the folder name <id>_<F> still gives the size.
    fs.writeFileSync(config, JSON.stringify({ trainer: { dict_class: 'AutoEncoder' } }));
    const lib = openSaes(one, 1, { modelWidth: D });
    assert.equal(lib.entry('resid_0').width, 6);
    assert.equal(lib.get('resid_0').width, 6);
    // A valid config of another dictionary class: found, but refused when loaded.
    fs.writeFileSync(config, JSON.stringify({ trainer: { dict_class: 'JumpReluAutoEncoder' } }));
    assert.throws(
      () => openSaes(one, 1, { modelWidth: D }).get('resid_0'),
      new RegExp(`${where}: dict_class JumpReluAutoEncoder is not supported`),
    );
  } finally {
    fs.rmSync(one, { recursive: true });
  }
});

test('a model of the generic engine: its sites (attn_z_L, H·Dh wide) and widths, saved and reopened', () => {
  const model = tinyTransformer('gemma2', 1); // d 16, attn_z 4 heads x 6 = 24
  const saes = randomModelSaes(model, 5, 2);
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'sfc-family-saes-'));
  try {
    for (const sae of saes.values()) saveDictionary(root, sae);
    const cfg = JSON.parse(fs.readFileSync(path.join(root, 'attn_z_1', 'cfg.json'), 'utf8'));
    assert.equal(cfg.hook_name, 'blocks.1.attn.hook_z');
    const lib = openSaes(root, 2, { model });
    assert.deepEqual(lib.sites(), model.sites);
    assert.equal(lib.get('attn_z_0').dIn, 24);
    assert.equal(lib.get('mlp_1').dIn, 16);
    // GPT-NeoX's site list does not know attn_z: skipped, with the reason
    const neox = openSaes(root, 2, { modelWidth: 16 });
    assert.ok(!neox.has('attn_z_0'));
    assert.match(
      neox
        .skipped()
        .map((s) => s.reason)
        .join('; '),
      /site attn_z_0 does not exist in a 2-layer model/,
    );
    // a dictionary of the wrong width at attn_z names the site's width
    fs.rmSync(path.join(root, 'attn_z_0'), { recursive: true });
    fs.cpSync(path.join(root, 'attn_0'), path.join(root, 'attn_z_0'), { recursive: true });
    const cfg0 = path.join(root, 'attn_z_0', 'cfg.json');
    const moved = JSON.parse(fs.readFileSync(cfg0, 'utf8'));
    fs.writeFileSync(
      cfg0,
      JSON.stringify({ ...moved, site: 'attn_z_0', hook_name: 'blocks.0.attn.hook_z' }),
    );
    assert.throws(
      () => openSaes(root, 2, { model }).get('attn_z_0'),
      /SAE input width 16 does not match site attn_z_0's width 24/,
    );
  } finally {
    fs.rmSync(root, { recursive: true });
  }
  const neurons = openSaes(NEURONS, 2, { model });
  assert.equal(neurons.get('attn_z_1').dIn, 24);
  assert.equal(neurons.get('resid_1').width, 16);
});
