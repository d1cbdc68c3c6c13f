// Gemma Scope params.npz: the JumpReLU (no input centring) against numpy's float64 computation,
// the release tree (site from the release suffix, width from the arrays, the L0 variant closest to
// --sae-l0, the width from --sae-width), a folder mixing layouts, and the errors that name files.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { transformerSiteNames } from '../../src/model/sites.ts';
import { writeSafetensors } from '../../src/io/safetensors.ts';
import { SparseAutoencoder } from '../../src/sae/dictionary.ts';
import {
  gemmaScopePath,
  loadDictionary,
  loadGemmaScopeNpz,
  loadSaeLensFolder,
} from '../../src/sae/formats.ts';
import { transpose } from '../../src/sae/transpose.ts';
import { describeSaeChoices, openSaes } from '../../src/sae/library.ts';
import { writeNpz } from '../../src/sae/npy.ts';

const FIX = path.join(import.meta.dirname, '..', 'fixtures', 'sae');
const expected = JSON.parse(
  fs.readFileSync(path.join(FIX, 'npy', 'gemma-scope', 'expected.json'), 'utf8'),
) as {
  N: number;
  d: number;
  F: number;
  x: number[];
  features: number[];
  reconstruction: number[];
  decoderNorms: number[];
};

function assertClose(actual: ArrayLike<number>, want: ArrayLike<number>, what: string) {
  assert.equal(actual.length, want.length, `${what}: length`);
  for (let i = 0; i < want.length; i++)
    assert.ok(
      Math.abs(actual[i] - want[i]) <= 1e-5 * (1 + Math.abs(want[i])),
      `${what}[${i}]: ${actual[i]} vs ${want[i]}`,
    );
}

test('JumpReLU from numpy-written params.npz (stored and compressed) matches numpy in float64', () => {
  const { N, F } = expected;
  const x = Float32Array.from(expected.x);
  for (const name of ['params.npz', 'compressed.npz']) {
    const sae = loadGemmaScopeNpz(path.join(FIX, 'npy', 'gemma-scope', name), 'resid_0');
    assert.equal(sae.kind, 'jumprelu');
    assert.equal(sae.centerInput, false, 'Gemma Scope does not subtract b_dec from the input');
    const out = sae.run(x, N);
    // Decoder rows come out unit-norm; feature i carries the file's decoder norm.
    const want = expected.features.map((v, i) => v * expected.decoderNorms[i % F]);
    assertClose(out.features, want, `${name} features`);
    assertClose(out.reconstruction, expected.reconstruction, `${name} reconstruction`);
    assert.ok(
      expected.features.some((v) => v === 0) && expected.features.some((v) => v > 0),
      'the fixture has features both below and above threshold',
    );
  }
});

test('a hand-computed JumpReLU: pre = x·W_enc + b_enc, f = pre·[pre > θ], b_dec not subtracted', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sfc-gs-hand-'));
  try {
    // d 2, F 3; W_dec rows unit norm so the loader's normalisation leaves features as they are.
    const file = path.join(dir, 'params.npz');
    writeNpz(file, [
      { name: 'W_enc', shape: [2, 3], data: Float32Array.of(1, 0, 2, 0, 1, -1) },
      { name: 'W_dec', shape: [3, 2], data: Float32Array.of(1, 0, 0, 1, 0.6, 0.8) },
      { name: 'b_enc', shape: [3], data: Float32Array.of(0.5, -1, 0) },
      { name: 'b_dec', shape: [2], data: Float32Array.of(10, 20) },
      { name: 'threshold', shape: [3], data: Float32Array.of(1, 1, 1) },
    ]);
    const sae = loadGemmaScopeNpz(file, 'mlp_0');
    // x = (1, 3): pre = (1 + 0.5, 3 - 1, 2 - 3) = (1.5, 2, -1) -> f = (1.5, 2, 0).
    // Had b_dec been subtracted, pre would be (-8.5, -18, ...) and nothing would fire.
    const f = sae.encode(Float32Array.of(1, 3), 1);
    assert.deepEqual([...f], [1.5, 2, 0]);
    // x = (0.9, 0): pre = (1.4, -1, 1.8) -> (1.4, 0, 1.8); x̂ = 1.4·(1,0) + 1.8·(0.6,0.8) + b_dec.
    const out = sae.run(Float32Array.of(0.9, 0), 1);
    assertClose(out.features, [1.4, 0, 1.8], 'features');
    assertClose(out.reconstruction, [10 + 1.4 + 1.08, 20 + 1.44], 'reconstruction');
    // Exactly at the threshold does not fire (strict >).
    assert.deepEqual([...sae.encode(Float32Array.of(0.5, 0), 1)], [0, 0, 0]);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

// ---- a release tree ------------------------------------------------------------------------

let root: string;
const D = 4; // model width (resid, mlp)
const Z = 6; // attn_z width: heads · head_dim

/** A JumpReLU params.npz of input width d and F features; `tag` makes its b_enc recognisable. */
function writeParams(file: string, d: number, F: number, tag: number) {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const wEnc = Float32Array.from({ length: d * F }, (_, i) => Math.sin(i + tag));
  const wDec = Float32Array.from({ length: F * d }, (_, i) => Math.cos(i + tag));
  writeNpz(file, [
    { name: 'W_enc', shape: [d, F], data: wEnc },
    { name: 'W_dec', shape: [F, d], data: wDec },
    { name: 'b_enc', shape: [F], data: new Float32Array(F).fill(tag) },
    { name: 'b_dec', shape: [d], data: new Float32Array(d) },
    { name: 'threshold', shape: [F], data: new Float32Array(F).fill(0.1) },
  ]);
}

const at = (...parts: string[]) => path.join(root, ...parts, 'params.npz');

before(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'sfc-gs-tree-'));
  // resid_0: two L0 variants at width "16k" (6 features) and one at "65k" (12 features). The
  // folder names lie about the width on purpose: the arrays decide.
  writeParams(at('gemma-scope-2b-pt-res', 'layer_0', 'width_16k', 'average_l0_50'), D, 6, 1);
  writeParams(at('gemma-scope-2b-pt-res', 'layer_0', 'width_16k', 'average_l0_120'), D, 6, 2);
  writeParams(at('gemma-scope-2b-pt-res', 'layer_0', 'width_65k', 'average_l0_90'), D, 12, 3);
  // resid_1 as a Hugging Face cache lays it out (release name in models--org--name).
  writeParams(
    at(
      'hub',
      'models--google--gemma-scope-2b-pt-res',
      'snapshots',
      '0123abcd',
      'layer_1',
      'width_16k',
      'average_l0_70',
    ),
    D,
    6,
    4,
  );
  writeParams(at('gemma-scope-2b-pt-mlp', 'layer_1', 'width_16k', 'average_l0_100'), D, 6, 5);
  writeParams(at('gemma-scope-2b-pt-att', 'layer_0', 'width_16k', 'average_l0_30'), Z, 6, 6);
  // Not a release we know: skipped with its reason.
  writeParams(at('gemma-scope-2b-pt-transcoders', 'layer_0', 'width_16k', 'average_l0_9'), D, 6, 7);
});
after(() => fs.rmSync(root, { recursive: true, force: true }));

const SITES = transformerSiteNames(2);
const siteWidth = (site: string) => (site.startsWith('attn_z_') ? Z : D);
const open = (options: { width?: number; l0?: number } = {}) =>
  openSaes(root, 2, { sites: SITES, siteWidth, ...options });
const chosen = (lib: ReturnType<typeof open>, site: string) =>
  path.relative(root, lib.entry(site).location);

test('the release suffix names the site; -att is attn_z_L', () => {
  assert.deepEqual(
    gemmaScopePath(at('gemma-scope-2b-pt-res', 'layer_3', 'width_16k', 'average_l0_7')),
    {
      site: 'resid_3',
      l0: 7,
    },
  );
  assert.equal(
    gemmaScopePath(at('gemma-scope-9b-it-mlp-canonical', 'layer_2', 'w', 'average_l0_1')).site,
    'mlp_2',
  );
  assert.equal(gemmaScopePath(at('gemma-scope-2b-pt-att', 'layer_0', 'w', 'a')).site, 'attn_z_0');
  // The -res release's embedding SAEs (hook_embed).
  assert.deepEqual(
    gemmaScopePath(at('gemma-scope-2b-pt-res', 'embedding', 'width_4k', 'average_l0_6')),
    {
      site: 'embed',
      l0: 6,
    },
  );
  assert.equal(gemmaScopePath(at('gemma-scope-2b-pt-mlp', 'embedding', 'w', 'a')).site, undefined);
  // layer_L is looked for just above width_W/average_l0_K, not anywhere up the path.
  assert.equal(
    gemmaScopePath(at('gemma-scope-2b-pt-res', 'layer_2', 'x', 'width_16k', 'average_l0_1')).site,
    undefined,
  );
  assert.equal(
    gemmaScopePath(at('gemma-scope-2b-pt-transcoders', 'layer_0', 'w', 'a')).site,
    undefined,
  );
});

test('two widths at a site: an error naming --sae-width; with it, the closest L0 to --sae-l0', () => {
  assert.throws(
    () => open(),
    /3 dictionaries for site resid_0: .*sizes present: 6, 12: choose one with --sae-width N/,
  );
  // Width 6: average L0 50 and 120; the default target 100 is closer to 120.
  assert.equal(
    chosen(open({ width: 6 }), 'resid_0'),
    path.relative(root, at('gemma-scope-2b-pt-res', 'layer_0', 'width_16k', 'average_l0_120')),
  );
  assert.match(chosen(open({ width: 6, l0: 60 }), 'resid_0'), /average_l0_50\b/);
  // 85 is 35 from both: the sparser (smaller L0) wins.
  assert.match(chosen(open({ width: 6, l0: 85 }), 'resid_0'), /average_l0_50\b/);
  assert.match(chosen(open({ width: 6, l0: 86 }), 'resid_0'), /average_l0_120\b/);
  // Width 12 exists only at resid_0: the other sites have no 12-feature dictionary.
  assert.throws(() => open({ width: 12 }), /no dictionary of 12 features for site attn_z_0/);
});

test('the library lists the file each site uses, attn_z_L included, and loads lazily', () => {
  const lib = open({ width: 6 });
  assert.deepEqual(lib.sites(), ['attn_z_0', 'resid_0', 'mlp_1', 'resid_1']);
  assert.deepEqual(
    lib.used().map((e) => [e.site, e.format, e.width, e.dIn, e.l0]),
    [
      ['attn_z_0', 'gemma_scope', 6, Z, 30],
      ['resid_0', 'gemma_scope', 6, D, 120],
      ['mlp_1', 'gemma_scope', 6, D, 100],
      ['resid_1', 'gemma_scope', 6, D, 70],
    ],
  );
  const lines = describeSaeChoices(lib);
  assert.equal(lines.length, 4);
  assert.match(
    lines[1],
    /^resid_0 +gemma_scope {2}6 features, average L0 120 {2}.*average_l0_120.params\.npz$/,
  );
  assert.match(
    lib
      .skipped()
      .map((s) => `${s.location}: ${s.reason}`)
      .join('\n'),
    /transcoders.*params\.npz: cannot tell the site: no layer_L folder below a release folder ending in -res, -mlp or -att/,
  );
  const z = lib.get('attn_z_0');
  assert.equal(z.dIn, Z);
  assert.equal(z.width, 6);
  // The loaded weights are the average_l0_120 file's, not the average_l0_50 one's.
  const resid = lib.get('resid_0') as ReturnType<typeof loadGemmaScopeNpz>;
  const file = (l0: number) =>
    at('gemma-scope-2b-pt-res', 'layer_0', 'width_16k', `average_l0_${l0}`);
  assert.deepEqual(resid.encoder, loadGemmaScopeNpz(file(120), 'resid_0').encoder);
  assert.notDeepEqual(resid.encoder, loadGemmaScopeNpz(file(50), 'resid_0').encoder);
});

test('without attn_z in the model, -att dictionaries are skipped with the reason', () => {
  const lib = openSaes(root, 2, { modelWidth: D, width: 6 });
  assert.deepEqual(lib.sites(), ['resid_0', 'mlp_1', 'resid_1']);
  assert.ok(lib.skipped().some((s) => /site attn_z_0 does not exist/.test(s.reason)));
});

test('an input width that does not match its site is an error naming the file', () => {
  assert.throws(
    () => openSaes(root, 2, { sites: SITES, siteWidth: () => D, width: 6 }),
    /gemma-scope-2b-pt-att.layer_0.width_16k.average_l0_30.params\.npz: SAE input width 6 does not match site attn_z_0's width 4/,
  );
});

test('a threshold of the wrong length, a missing array, a bad W_enc: errors name the file', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sfc-gs-bad-'));
  try {
    const good = {
      W_enc: { shape: [2, 3], data: new Float32Array(6) },
      W_dec: { shape: [3, 2], data: new Float32Array(6).fill(1) },
      b_enc: { shape: [3], data: new Float32Array(3) },
      b_dec: { shape: [2], data: new Float32Array(2) },
      threshold: { shape: [3], data: new Float32Array(3) },
    };
    const write = (
      name: string,
      arrays: Record<string, { shape: number[]; data: Float32Array }>,
    ) => {
      const file = path.join(dir, name, 'params.npz');
      fs.mkdirSync(path.dirname(file), { recursive: true });
      writeNpz(
        file,
        Object.entries(arrays).map(([n, a]) => ({ name: n, ...a })),
      );
      return file;
    };
    const shortThreshold = write('short', {
      ...good,
      threshold: { shape: [2], data: new Float32Array(2) },
    });
    assert.throws(
      () => loadGemmaScopeNpz(shortThreshold, 'resid_0'),
      /short.params\.npz: array threshold has shape \(2\), expected \(3\) for W_enc \(2, 3\)/,
    );
    const { threshold: _, ...noThreshold } = good;
    const missing = write('missing', noThreshold);
    assert.throws(
      () => loadGemmaScopeNpz(missing, 'resid_0'),
      /missing.params\.npz: no array threshold; a Gemma Scope params\.npz holds W_enc, W_dec, b_enc, b_dec, threshold \(found: W_enc, W_dec, b_enc, b_dec\)/,
    );
    const flat = write('flat', { ...good, W_enc: { shape: [6], data: new Float32Array(6) } });
    assert.throws(
      () => loadGemmaScopeNpz(flat, 'resid_0'),
      /flat.params\.npz: array W_enc has shape \(6\), expected \(d, F\)/,
    );
    // loadDictionary on a bare params.npz outside a release tree needs the site.
    assert.throws(
      () => loadDictionary(flat),
      /flat.params\.npz: cannot tell the site from the path/,
    );
    assert.throws(() => loadDictionary(path.dirname(missing), 'resid_0'), /no array threshold/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a params.npz in a folder named after a site serves that site', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sfc-gs-named-'));
  try {
    writeParams(path.join(dir, 'mlp_1', 'params.npz'), D, 6, 1);
    writeParams(path.join(dir, 'misc', 'params.npz'), D, 6, 1);
    const lib = openSaes(dir, 2, { modelWidth: D });
    assert.deepEqual(
      lib.used().map((e) => [e.site, e.format, e.l0]),
      [['mlp_1', 'gemma_scope', null]],
    );
    assert.match(lib.skipped()[0].location, /misc.params\.npz$/);
    assert.equal(lib.get('mlp_1').kind, 'jumprelu');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('streamed, fused loading gives bit for bit what constructing and normalizeDecoder give', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sfc-gs-bits-'));
  try {
    // Wide enough (d 40, F 70) that the streamed transpose crosses tile edges; one zero decoder row.
    const d = 40;
    const F = 70;
    const wEnc = Float32Array.from({ length: d * F }, (_, i) => Math.sin(i * 1.3) * 0.7);
    const wDec = Float32Array.from({ length: F * d }, (_, i) => Math.cos(i * 0.7) * 1.9);
    wDec.fill(0, 5 * d, 6 * d);
    const bEnc = Float32Array.from({ length: F }, (_, i) => Math.sin(i) * 0.1);
    const bDec = Float32Array.from({ length: d }, (_, i) => Math.cos(i) * 0.2);
    const threshold = Float32Array.from({ length: F }, (_, i) => 0.05 + (i % 7) * 0.01);
    const reference = new SparseAutoencoder({
      site: 'resid_0',
      kind: 'jumprelu',
      dIn: d,
      width: F,
      encoder: transpose(wEnc, d, F),
      encoderBias: bEnc.slice(),
      decoder: wDec.slice(),
      decoderBias: bDec.slice(),
      threshold: threshold.slice(),
      centerInput: false,
    });
    reference.normalizeDecoder();
    const npz = path.join(dir, 'params.npz');
    writeNpz(npz, [
      { name: 'W_enc', shape: [d, F], data: wEnc },
      { name: 'W_dec', shape: [F, d], data: wDec },
      { name: 'b_enc', shape: [F], data: bEnc },
      { name: 'b_dec', shape: [d], data: bDec },
      { name: 'threshold', shape: [F], data: threshold },
    ]);
    const folder = path.join(dir, 'saelens');
    fs.mkdirSync(folder);
    writeSafetensors(path.join(folder, 'sae_weights.safetensors'), [
      { name: 'W_enc', shape: [d, F], data: wEnc },
      { name: 'b_enc', shape: [F], data: bEnc },
      { name: 'W_dec', shape: [F, d], data: wDec },
      { name: 'b_dec', shape: [d], data: bDec },
      { name: 'threshold', shape: [F], data: threshold },
    ]);
    fs.writeFileSync(
      path.join(folder, 'cfg.json'),
      JSON.stringify({
        architecture: 'jumprelu',
        d_in: d,
        d_sae: F,
        apply_b_dec_to_input: false,
        hook_name: 'blocks.0.hook_resid_post',
      }),
    );
    for (const loaded of [loadGemmaScopeNpz(npz, 'resid_0'), loadSaeLensFolder(folder)]) {
      assert.deepEqual(loaded.encoder, reference.encoder);
      assert.deepEqual(loaded.decoder, reference.decoder);
      assert.deepEqual(loaded.encoderBias, reference.encoderBias);
      assert.deepEqual(loaded.threshold, reference.threshold);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
