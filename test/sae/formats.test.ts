// The loaders against real files: ae.pt written by torch.save and SAELens folders, both made by
// scripts/make-sae-fixtures.py, with expected features/reconstructions computed there in float64.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SparseAutoencoder } from '../../src/sae/dictionary.ts';
import {
  loadAePt,
  loadDictionary,
  loadSaeLensFolder,
  saveDictionary,
  hookNameForSite,
  siteFromHookName,
} from '../../src/sae/formats.ts';
import { openSaes } from '../../src/sae/library.ts';
import { readTorchStateDict } from '../../src/sae/torch-checkpoint.ts';
import {
  buildTorchArchive,
  f32Bytes,
  statePickle,
  type PickledTensor,
} from '../helpers/torch-files.ts';

const FIX = path.join(import.meta.dirname, '..', 'fixtures', 'sae');
interface Case {
  features: number[];
  reconstruction: number[];
  decoderNorms: number[];
}
const expected = JSON.parse(fs.readFileSync(path.join(FIX, 'expected.json'), 'utf8')) as {
  N: number;
  d: number;
  F: number;
  x: number[];
  k: number;
  threshold: number[];
  params: { enc_w: number[]; enc_b: number[]; dec_w: number[]; bias: number[] };
} & Record<'f32' | 'f16' | 'bf16' | 'noCentering' | 'jumprelu' | 'topk', Case>;
const { N, d, F } = expected;
const x = Float32Array.from(expected.x);
const dl = (sub: string) => path.join(FIX, 'dictionary_learning', sub, '10_6', 'ae.pt');

function assertClose(
  actual: ArrayLike<number>,
  want: ArrayLike<number>,
  tol: number,
  what: string,
) {
  assert.equal(actual.length, want.length, `${what}: length`);
  for (let i = 0; i < want.length; i++)
    assert.ok(
      Math.abs(actual[i] - want[i]) <= tol * (1 + Math.abs(want[i])),
      `${what}[${i}]: ${actual[i]} vs ${want[i]}`,
    );
}

/** The loader normalises decoder rows: feature i is the file's feature times its decoder norm. */
function checkAgainst(sae: SparseAutoencoder, c: Case, what: string, scaleFeatures = true) {
  const out = sae.run(x, N);
  const wantF = c.features.map((v, i) => (scaleFeatures ? v * c.decoderNorms[i % F] : v));
  assertClose(out.features, wantF, 1e-5, `${what} features`);
  assertClose(out.reconstruction, c.reconstruction, 1e-5, `${what} reconstruction`);
  for (let i = 0; i < N * d; i++)
    assert.ok(Math.abs(out.error[i] - (x[i] - c.reconstruction[i])) < 1e-5, `${what} error`);
}

test('torch.save state dict: tensors match the values written, incl. transposed and offset views', () => {
  const p = expected.params;
  for (const sub of ['resid_out_layer0', 'attn_out_layer0']) {
    const t = readTorchStateDict(dl(sub));
    assert.deepEqual([...t.keys()].sort(), [
      'bias',
      'decoder.weight',
      'encoder.bias',
      'encoder.weight',
    ]);
    assert.deepEqual(t.get('decoder.weight')!.shape, [d, F]);
    assert.deepEqual(t.get('encoder.weight')!.shape, [F, d]);
    assertClose(t.get('encoder.weight')!.data, p.enc_w, 1e-7, `${sub} encoder.weight`);
    assertClose(t.get('decoder.weight')!.data, p.dec_w, 1e-7, `${sub} decoder.weight`);
    assertClose(t.get('bias')!.data, p.bias, 1e-7, `${sub} bias`);
    assert.equal(t.get('bias')!.dtype, 'F32');
  }
  assert.equal(readTorchStateDict(dl('embed')).get('bias')!.dtype, 'F16');
  assert.equal(readTorchStateDict(dl('mlp_out_layer0')).get('bias')!.dtype, 'BF16');
});

test('torch.save state dict: a tensor asked for transposed, streamed from its record or not', () => {
  // resid: decoder.weight is its whole F32 storage (streamed); attn: a transposed view (gathered
  // then transposed); embed: F16 (decoded then transposed). All must give the same [F, d] rows.
  const want = Array.from(
    { length: F * d },
    (_, k) => expected.params.dec_w[(k % d) * F + Math.floor(k / d)],
  );
  for (const sub of ['resid_out_layer0', 'attn_out_layer0', 'embed']) {
    const t = readTorchStateDict(dl(sub), { transposed: new Set(['decoder.weight']) });
    const dec = t.get('decoder.weight')!;
    assert.deepEqual(dec.shape, [F, d], sub);
    assertClose(dec.data, want, sub === 'embed' ? 1e-3 : 1e-7, `${sub} decoder.weight transposed`);
  }
  // A flipped byte inside the streamed record fails its CRC, naming the file.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sfc-ae-crc-'));
  try {
    const bytes = new Uint8Array(fs.readFileSync(dl('resid_out_layer0')));
    const at = findStorageRecord(bytes, 'decoder.weight');
    bytes[at] ^= 0x40;
    const file = path.join(dir, 'ae.pt');
    fs.writeFileSync(file, bytes);
    assert.throws(
      () => readTorchStateDict(file, { transposed: new Set(['decoder.weight']) }),
      /ae\.pt: corrupt zip archive \(record .*data\/\d+ fails its CRC-32 check\)/,
    );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

/** A byte inside the storage record holding `tensor` (found through the reader's own map). */
function findStorageRecord(bytes: Uint8Array, tensor: string): number {
  const values = readTorchStateDict(dl('resid_out_layer0')).get(tensor)!.data;
  // The first stored float of that tensor, as bytes, located in the archive.
  const probe = new Uint8Array(Float32Array.of(values[0]).buffer);
  for (let i = 0; i + 4 <= bytes.length; i++)
    if (probe.every((b, j) => bytes[i + j] === b)) return i + 1;
  throw new Error(`no stored bytes of ${tensor} found`);
}

test('ae.pt (F32, strided, F16, BF16) encodes and decodes as torch does', () => {
  checkAgainst(loadAePt(dl('resid_out_layer0'), 'resid_0'), expected.f32, 'f32');
  checkAgainst(loadAePt(dl('attn_out_layer0'), 'attn_0'), expected.f32, 'strided');
  checkAgainst(loadAePt(dl('embed'), 'embed'), expected.f16, 'f16');
  checkAgainst(loadAePt(dl('mlp_out_layer0'), 'mlp_0'), expected.bf16, 'bf16');
});

test('SAELens standard, no-centering, jumprelu and topk folders load and run as torch does', () => {
  const sl = (name: string) => path.join(FIX, 'saelens', name);
  const standard = loadSaeLensFolder(sl('standard'));
  assert.equal(standard.site, 'resid_0');
  assert.equal(standard.kind, 'relu');
  checkAgainst(standard, expected.f32, 'standard');
  const noCenter = loadSaeLensFolder(sl('no-centering'));
  assert.equal(noCenter.site, 'embed');
  assert.equal(noCenter.centerInput, false);
  checkAgainst(noCenter, expected.noCentering, 'no-centering');
  const jump = loadSaeLensFolder(sl('jumprelu'));
  assert.equal(jump.kind, 'jumprelu');
  assert.equal(jump.site, 'mlp_0');
  checkAgainst(jump, expected.jumprelu, 'jumprelu');
  // TopK keeps the file's decoder norms (renormalising would change which features win).
  for (const name of ['topk', 'topk-old-style']) {
    const topk = loadSaeLensFolder(sl(name));
    assert.equal(topk.kind, 'topk');
    assert.equal(topk.k, expected.k);
    checkAgainst(topk, expected.topk, name, false);
  }
});

test('the same dictionary in both formats loads to identical numbers', () => {
  const a = loadAePt(dl('resid_out_layer0'), 'resid_0');
  const b = loadSaeLensFolder(path.join(FIX, 'saelens', 'standard'));
  assert.deepEqual(a.encoder, b.encoder);
  assert.deepEqual(a.encoderBias, b.encoderBias);
  assert.deepEqual(a.decoder, b.decoder);
  assert.deepEqual(a.decoderBias, b.decoderBias);
});

test('loaded decoder rows have unit norm', () => {
  const sae = loadAePt(dl('resid_out_layer0'), 'resid_0');
  for (let i = 0; i < F; i++) {
    const row = sae.decoderRow(i);
    const norm = Math.hypot(...row);
    assert.ok(Math.abs(norm - 1) < 1e-6, `row ${i} norm ${norm}`);
  }
});

test('refuses corrupt, truncated, legacy and hostile files with clear errors', () => {
  const bad = (name: string) => path.join(FIX, 'bad', name);
  const cases: [string, RegExp][] = [
    ['truncated-zip.pt', /truncated-zip\.pt: corrupt or truncated zip archive/],
    ['corrupt-zip.pt', /corrupt-zip\.pt: corrupt or truncated zip archive/],
    [
      'not-a-zip.pt',
      /not-a-zip\.pt: a bare pickle stream \(the legacy pre-1\.6 torch\.save format\)/,
    ],
    ['truncated-pickle.pt', /truncated-pickle\.pt: archive\/data\.pkl: pickle ends early/],
    ['hostile-os-system.pt', /refusing to load: the pickle refers to the global os\.system/],
    ['hostile-eval.pt', /refusing to load: the pickle refers to the global builtins\.eval/],
    ['missing-storage.pt', /refers to storage 0 but the archive has no archive\/data\/0/],
  ];
  for (const [file, pattern] of cases)
    assert.throws(() => readTorchStateDict(bad(file)), pattern, file);
  assert.throws(() => loadAePt(bad('nope.pt'), 'embed'), /nope\.pt: cannot read/);
});

test('hook names map to sites', () => {
  assert.equal(siteFromHookName('blocks.0.hook_resid_pre'), 'embed');
  assert.equal(siteFromHookName('blocks.3.hook_resid_pre'), 'resid_2');
  assert.equal(siteFromHookName('blocks.2.hook_attn_out'), 'attn_2');
  assert.equal(siteFromHookName('blocks.5.hook_mlp_out'), 'mlp_5');
  assert.equal(siteFromHookName('blocks.1.hook_resid_post'), 'resid_1');
  assert.equal(siteFromHookName('blocks.1.hook_z'), undefined);
  // Gemma Scope's attention SAEs read the heads' outputs: attn_z_L, and back
  assert.equal(siteFromHookName('blocks.4.attn.hook_z'), 'attn_z_4');
  assert.equal(hookNameForSite('attn_z_4'), 'blocks.4.attn.hook_z');
});

test('openSaes finds each layout lazily and explains a missing site', () => {
  const lib = openSaes(path.join(FIX, 'dictionary_learning'), 1, { modelWidth: d });
  assert.deepEqual(lib.sites(), ['embed', 'attn_0', 'mlp_0', 'resid_0']);
  assert.equal(lib.entry('resid_0').format, 'dictionary_learning');
  const sae = lib.get('resid_0');
  assert.equal(lib.get('resid_0'), sae, 'cached');
  lib.drop('resid_0');
  assert.notEqual(lib.get('resid_0'), sae, 'reloaded after drop');
  assert.ok(lib.has('embed') && !lib.has('resid_1'));

  const sl = openSaes(path.join(FIX, 'saelens'), 2, { modelWidth: d });
  assert.deepEqual(sl.sites(), ['embed', 'attn_0', 'mlp_0', 'resid_0', 'attn_1']);
  assert.throws(
    () => sl.get('mlp_1'),
    /no SAE for site mlp_1; found embed, attn_0, mlp_0, resid_0, attn_1/,
  );
  assert.throws(() => sl.get('resid_9'), /not a site of this 2-layer model/);
  assert.throws(() => openSaes(path.join(FIX, 'nowhere'), 1), /no such folder of SAEs/);
  assert.throws(
    () => openSaes(path.join(FIX, 'saelens'), 2, { modelWidth: 8 }).get('embed'),
    /input width 4 does not match the model width 8/,
  );
});

test('neurons gives identity dictionaries of the model width', () => {
  const lib = openSaes('neurons', 2, { modelWidth: 3 });
  assert.equal(lib.sites().length, 7);
  const id = lib.get('mlp_1');
  assert.equal(id.kind, 'identity');
  const xs = Float32Array.from([1, -2, 3, 4, 5, -6]);
  const out = id.run(xs, 2);
  assert.deepEqual(out.features, xs);
  assert.deepEqual(out.reconstruction, xs);
  assert.deepEqual(out.error, new Float32Array(6));
  assert.deepEqual(id.featureGradient(xs, 2), xs);
  assert.deepEqual(id.decoderRow(1), Float32Array.from([0, 1, 0]));
  assert.throws(() => openSaes('neurons', 2), /modelWidth/);
});

test('saveDictionary writes our layout, which loads back identically through openSaes', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sae-save-'));
  try {
    const jump = loadSaeLensFolder(path.join(FIX, 'saelens', 'jumprelu'));
    const topk = loadSaeLensFolder(path.join(FIX, 'saelens', 'topk'));
    saveDictionary(dir, jump, { metrics: { fve: 0.9 } });
    saveDictionary(dir, topk);
    const cfg = JSON.parse(fs.readFileSync(path.join(dir, 'mlp_0', 'cfg.json'), 'utf8'));
    assert.equal(cfg.site, 'mlp_0');
    assert.equal(cfg.architecture, 'jumprelu');
    assert.equal(cfg.metrics.fve, 0.9);
    const lib = openSaes(dir, 1);
    assert.deepEqual(lib.sites(), ['attn_0', 'mlp_0']);
    for (const [site, orig] of [
      ['mlp_0', jump],
      ['attn_0', topk],
    ] as const) {
      const back = lib.get(site) as SparseAutoencoder;
      assert.equal(back.kind, orig.kind);
      assert.equal(back.k, orig.k);
      assert.deepEqual(back.run(x, N), orig.run(x, N));
    }
    assert.equal(loadDictionary(path.join(dir, 'attn_0')).site, 'attn_0');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('refuses hand-built hostile ae.pt: huge, stride-0, negative and overflowing views, deflate bombs', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sfc-hostile-pt-'));
  const write = (name: string, bytes: Uint8Array) => {
    const file = path.join(dir, name);
    fs.writeFileSync(file, bytes);
    return file;
  };
  const four = { '0': f32Bytes([1, 2, 3, 4]) };
  const one = (t: Partial<PickledTensor>) =>
    statePickle([{ name: 'w', storage: '0', numel: 4, shape: [4], ...t }]);
  try {
    const cases: [string, Uint8Array, RegExp][] = [
      // A few bytes of pickle asking for 16 GiB: refused before allocating.
      [
        'huge.pt',
        buildTorchArchive(one({ shape: [65536, 65536], stride: [0, 0] }), four),
        /huge\.pt: tensor w: view \(offset 0, size \[65536,65536\], stride \[0,0\]\) has 4294967296 elements but its storage holds 4/,
      ],
      [
        'stride0.pt',
        buildTorchArchive(one({ shape: [2, 2], stride: [0, 1] }), four),
        /stride0\.pt: tensor w: .* repeats elements \(stride 0\)/,
      ],
      [
        'offset.pt',
        buildTorchArchive(one({ offset: 2147483647 }), four),
        /offset\.pt: tensor w: .* reaches element 2147483650 but its storage holds 4/,
      ],
      [
        'overflow.pt',
        buildTorchArchive(
          one({ shape: [2147483647, 2147483647, 2147483647], stride: [1, 1, 1] }),
          four,
        ),
        /overflow\.pt: tensor w: .* has 9\.9\d*e\+27 elements but its storage holds 4/,
      ],
      [
        'negative.pt',
        buildTorchArchive(one({ shape: [-1], stride: [1] }), four),
        /negative\.pt: archive\/data\.pkl: _rebuild_tensor_v2: tensor size holds -1, expected non-negative integers/,
      ],
      [
        'claims-more.pt',
        buildTorchArchive(one({ numel: 1 << 30 }), four),
        /claims-more\.pt: archive\/data\/0 holds 16 bytes but 1073741824 F32 elements need 4294967296/,
      ],
      // One storage named by 1000 tensors: each view is in bounds, together they copy it 1000 times.
      [
        'many-views.pt',
        buildTorchArchive(
          statePickle(
            Array.from({ length: 1000 }, (_, i) => ({
              name: `w${i}`,
              storage: '0',
              numel: 4,
              shape: [4],
            })),
          ),
          four,
        ),
        /many-views\.pt: archive\/data\.pkl: its tensors hold 4000 elements in all but the archive stores only 4/,
      ],
      // 8 MiB of zeros deflate to ~8 KB; the directory says 16 bytes: inflating stops at 16.
      [
        'bomb.pt',
        buildTorchArchive(
          one({}),
          { '0': new Uint8Array(8 << 20) },
          {
            method: 8,
            declaredSize: () => 16,
          },
        ),
        /bomb\.pt: corrupt or truncated zip archive \(record archive\/data\/0 does not inflate: .*larger than 16 bytes/,
      ],
      // ... and a declared size beyond deflate's 1032:1 is refused before inflating at all.
      [
        'bomb-declared.pt',
        buildTorchArchive(
          one({}),
          { '0': new Uint8Array(1 << 20) },
          {
            method: 8,
            declaredSize: () => 0xfffffff0,
          },
        ),
        /bomb-declared\.pt: corrupt or truncated zip archive \(record archive\/data\/0 declares 4294967280 bytes from \d+ compressed, more than deflate can produce/,
      ],
    ];
    for (const [name, bytes, pattern] of cases)
      assert.throws(() => readTorchStateDict(write(name, bytes)), pattern, name);
    // The same archive with honest views and a deflated storage loads.
    const ok = readTorchStateDict(
      write(
        'ok.pt',
        buildTorchArchive(one({ shape: [2, 2], stride: [1, 2] }), four, { method: 8 }),
      ),
    );
    assert.deepEqual([...ok.get('w')!.data], [1, 3, 2, 4]);
  } finally {
    fs.rmSync(dir, { recursive: true });
  }
});
