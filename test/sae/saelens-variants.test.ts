// SAELens folders in each variant we read (standard, jumprelu with threshold or log_threshold, topk
// in both cfg styles, gated, apply_b_dec_to_input, normalize_activations expected_average_only_in
// with the factor from activation_scaler.json or dataset_average_activation_norm, old flat and v6
// cfgs), each against a float64 reference written here from SAELens's definitions:
//   x̃ = x·s - b_dec·[apply_b_dec_to_input],  u = x̃ W_enc
//   standard f = relu(u + b_enc); jumprelu f = relu(pre)·[pre > θ], pre = u + b_enc;
//   topk: the k largest pre, then relu; gated f = [u + b_gate > 0]·relu(e^r_mag u + b_mag)
//   x̂ = (f W_dec + b_dec) / s
// Also hook names to sites, the refusals, and one folder mixing every layout.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { writeSafetensors } from '../../src/io/safetensors.ts';
import { Rng } from '../../src/random.ts';
import { transformerSiteNames } from '../../src/model/sites.ts';
import { hookNameForSite, loadSaeLensFolder, siteFromHookName } from '../../src/sae/formats.ts';
import { openSaes } from '../../src/sae/library.ts';
import { writeNpz } from '../../src/sae/npy.ts';

const d = 3;
const F = 5;
const N = 4;

interface Params {
  W_enc: Float32Array; // [d, F]
  W_dec: Float32Array; // [F, d]
  b_enc: Float32Array;
  b_dec: Float32Array;
  threshold: Float32Array;
  r_mag: Float32Array;
  b_gate: Float32Array;
  b_mag: Float32Array;
}

function randomParams(seed: number): Params {
  const rng = new Rng(seed);
  const vec = (n: number, scale: number, shift = 0) =>
    Float32Array.from({ length: n }, () => shift + scale * rng.normal());
  return {
    W_enc: vec(d * F, 1),
    W_dec: vec(F * d, 0.8), // rows not unit norm
    b_enc: vec(F, 0.3),
    b_dec: vec(d, 0.5),
    threshold: Float32Array.from({ length: F }, () => 0.5 * rng.next()),
    r_mag: vec(F, 1),
    b_gate: vec(F, 1),
    b_mag: vec(F, 0.3),
  };
}

interface Variant {
  arch: 'standard' | 'jumprelu' | 'topk' | 'gated';
  k?: number;
  applyBDec: boolean;
  scale: number;
}

/** SAELens's forward pass in float64, straight from the definitions above. */
function reference(p: Params, v: Variant, x: Float32Array) {
  const features = new Float64Array(N * F);
  const reconstruction = new Float64Array(N * d);
  for (let n = 0; n < N; n++) {
    const xt = Array.from(
      { length: d },
      (_, j) => x[n * d + j] * v.scale - (v.applyBDec ? p.b_dec[j] : 0),
    );
    const u = Array.from({ length: F }, (_, i) =>
      xt.reduce((s, xj, j) => s + xj * p.W_enc[j * F + i], 0),
    );
    const f = u.map((ui, i) => {
      const pre = ui + p.b_enc[i];
      if (v.arch === 'standard' || v.arch === 'topk') return pre;
      if (v.arch === 'jumprelu') return pre > p.threshold[i] && pre > 0 ? pre : 0;
      return ui + p.b_gate[i] > 0 ? Math.max(0, Math.exp(p.r_mag[i]) * ui + p.b_mag[i]) : 0;
    });
    if (v.arch === 'topk') {
      const kept = [...f.keys()].sort((a, b) => f[b] - f[a]).slice(0, v.k);
      for (let i = 0; i < F; i++) f[i] = kept.includes(i) ? Math.max(0, f[i]) : 0;
    } else if (v.arch === 'standard') for (let i = 0; i < F; i++) f[i] = Math.max(0, f[i]);
    for (let i = 0; i < F; i++) features[n * F + i] = f[i];
    for (let j = 0; j < d; j++) {
      let s = p.b_dec[j];
      for (let i = 0; i < F; i++) s += f[i] * p.W_dec[i * d + j];
      reconstruction[n * d + j] = s / v.scale;
    }
  }
  return { features, reconstruction };
}

function writeFolder(
  folder: string,
  p: Params,
  cfg: Record<string, unknown>,
  tensors: (keyof Params)[],
  rename: Partial<Record<keyof Params, string>> = {},
) {
  fs.mkdirSync(folder, { recursive: true });
  const shapes: Record<keyof Params, number[]> = {
    W_enc: [d, F],
    W_dec: [F, d],
    b_enc: [F],
    b_dec: [d],
    threshold: [F],
    r_mag: [F],
    b_gate: [F],
    b_mag: [F],
  };
  writeSafetensors(
    path.join(folder, 'sae_weights.safetensors'),
    tensors.map((t) => ({ name: rename[t] ?? t, shape: shapes[t], data: p[t] })),
  );
  fs.writeFileSync(path.join(folder, 'cfg.json'), JSON.stringify(cfg));
}

const x = Float32Array.from({ length: N * d }, (_, i) => Math.sin(3 * i + 1) * 1.5);
const norms = (p: Params) =>
  Array.from({ length: F }, (_, i) => Math.hypot(...p.W_dec.subarray(i * d, (i + 1) * d)));

function checkVariant(folder: string, p: Params, v: Variant, what: string) {
  const sae = loadSaeLensFolder(folder);
  const out = sae.run(x, N);
  const want = reference(p, v, x);
  const n = norms(p);
  const active = want.features.filter((f) => f > 0).length;
  assert.ok(
    active > 0 && active < N * F,
    `${what}: the reference has active and inactive features`,
  );
  for (let i = 0; i < N * d; i++)
    assert.ok(
      Math.abs(out.reconstruction[i] - want.reconstruction[i]) <
        1e-5 * (1 + Math.abs(want.reconstruction[i])),
      `${what} reconstruction[${i}]: ${out.reconstruction[i]} vs ${want.reconstruction[i]}`,
    );
  for (let i = 0; i < N * F; i++) {
    // Unit-norm decoder rows (not for topk): feature i carries its decoder norm, over s.
    const f = v.arch === 'topk' ? want.features[i] : (want.features[i] * n[i % F]) / v.scale;
    assert.ok(
      Math.abs(out.features[i] - f) < 1e-5 * (1 + Math.abs(f)),
      `${what} features[${i}]: ${out.features[i]} vs ${f}`,
    );
  }
}

function withDir(run: (dir: string) => void) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sfc-saelens-'));
  try {
    run(dir);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const CORE: (keyof Params)[] = ['W_enc', 'b_enc', 'W_dec', 'b_dec'];

test('standard, jumprelu, topk and gated folders, old flat and v6 cfgs, match the float64 reference', () =>
  withDir((dir) => {
    const cases: [
      string,
      Variant,
      Record<string, unknown>,
      (keyof Params)[],
      Partial<Record<keyof Params, string>>?,
    ][] = [
      // Old flat cfg: hook_name at the top, activation_fn_str.
      [
        'standard',
        { arch: 'standard', applyBDec: true, scale: 1 },
        {
          architecture: 'standard',
          d_in: d,
          d_sae: F,
          hook_name: 'blocks.0.hook_resid_post',
          activation_fn_str: 'relu',
          apply_b_dec_to_input: true,
        },
        CORE,
      ],
      // v6: metadata.hook_name, no activation_fn_str.
      [
        'standard-no-bdec',
        { arch: 'standard', applyBDec: false, scale: 1 },
        {
          architecture: 'standard',
          d_in: d,
          d_sae: F,
          apply_b_dec_to_input: false,
          normalize_activations: 'none',
          metadata: { hook_name: 'blocks.0.hook_mlp_out' },
        },
        CORE,
      ],
      [
        'jumprelu',
        { arch: 'jumprelu', applyBDec: false, scale: 1 },
        {
          architecture: 'jumprelu',
          d_in: d,
          d_sae: F,
          apply_b_dec_to_input: false,
          metadata: { hook_name: 'blocks.0.hook_attn_out' },
        },
        [...CORE, 'threshold'],
      ],
      [
        'jumprelu-centred-log',
        { arch: 'jumprelu', applyBDec: true, scale: 1 },
        {
          architecture: 'jumprelu',
          d_in: d,
          d_sae: F,
          apply_b_dec_to_input: true,
          hook_name: 'blocks.1.hook_resid_post',
        },
        [...CORE, 'threshold'],
        { threshold: 'log_threshold' }, // holds log θ: written below
      ],
      [
        'topk-v6',
        { arch: 'topk', k: 2, applyBDec: true, scale: 1 },
        {
          architecture: 'topk',
          d_in: d,
          d_sae: F,
          k: 2,
          apply_b_dec_to_input: true,
          metadata: { hook_name: 'blocks.1.hook_mlp_out' },
        },
        CORE,
      ],
      [
        'topk-old',
        { arch: 'topk', k: 3, applyBDec: false, scale: 1 },
        {
          architecture: 'standard',
          d_in: d,
          d_sae: F,
          activation_fn_str: 'topk',
          activation_fn_kwargs: { k: 3 },
          apply_b_dec_to_input: false,
          hook_name: 'blocks.1.hook_attn_out',
        },
        CORE,
      ],
      [
        'gated',
        { arch: 'gated', applyBDec: true, scale: 1 },
        {
          architecture: 'gated',
          d_in: d,
          d_sae: F,
          apply_b_dec_to_input: true,
          hook_name: 'blocks.0.hook_resid_pre',
        },
        ['W_enc', 'W_dec', 'b_dec', 'r_mag', 'b_gate', 'b_mag'],
      ],
    ];
    cases.forEach(([name, variant, cfg, tensors, rename], c) => {
      const p = randomParams(100 + c);
      const folder = path.join(dir, name);
      if (rename?.threshold) {
        const logged = { ...p, threshold: p.threshold.map(Math.log) };
        writeFolder(folder, logged, cfg, tensors, rename);
      } else writeFolder(folder, p, cfg, tensors, rename);
      checkVariant(folder, p, variant, name);
    });
  }));

test('expected_average_only_in: the input is scaled by s and the output divided by s', () =>
  withDir((dir) => {
    const base = {
      d_in: d,
      d_sae: F,
      normalize_activations: 'expected_average_only_in',
      hook_name: 'blocks.0.hook_resid_post',
    };
    // s from activation_scaler.json, as SAELens's trainer writes beside a checkpoint.
    const p = randomParams(7);
    const a = path.join(dir, 'scaler');
    writeFolder(a, p, { ...base, architecture: 'standard', apply_b_dec_to_input: true }, CORE);
    fs.writeFileSync(
      path.join(a, 'activation_scaler.json'),
      JSON.stringify({ scaling_factor: 0.4 }),
    );
    checkVariant(a, p, { arch: 'standard', applyBDec: true, scale: 0.4 }, 'scaler 0.4');
    // s = √d_in / dataset_average_activation_norm.in (Llama Scope's cfg).
    const q = randomParams(8);
    const b = path.join(dir, 'average-norm');
    writeFolder(
      b,
      q,
      {
        ...base,
        architecture: 'jumprelu',
        apply_b_dec_to_input: false,
        dataset_average_activation_norm: { in: 1.25, out: 9 },
      },
      [...CORE, 'threshold'],
    );
    checkVariant(
      b,
      q,
      { arch: 'jumprelu', applyBDec: false, scale: Math.sqrt(d) / 1.25 },
      'average norm',
    );
    // TopK: no decoder normalisation, the fold alone.
    const t = path.join(dir, 'topk');
    writeFolder(t, p, { ...base, architecture: 'topk', k: 2 }, CORE);
    fs.writeFileSync(path.join(t, 'activation_scaler.json'), JSON.stringify({ scaling_factor: 3 }));
    checkVariant(t, p, { arch: 'topk', k: 2, applyBDec: true, scale: 3 }, 'topk scaled');
    // A null factor means no scaling (SAELens's ActivationScaler with none).
    fs.writeFileSync(
      path.join(a, 'activation_scaler.json'),
      JSON.stringify({ scaling_factor: null }),
    );
    checkVariant(a, p, { arch: 'standard', applyBDec: true, scale: 1 }, 'scaler null');
    // No factor anywhere: refused, saying where to put it.
    const c = path.join(dir, 'unknown');
    writeFolder(c, p, { ...base, architecture: 'standard' }, CORE);
    assert.throws(
      () => loadSaeLensFolder(c),
      /unknown.cfg\.json: normalize_activations is expected_average_only_in but the folder does not say by how much: write activation_scaler\.json/,
    );
    fs.writeFileSync(path.join(c, 'activation_scaler.json'), '{"scaling_factor": -1}');
    assert.throws(
      () => loadSaeLensFolder(c),
      /activation_scaler\.json: expected \{"scaling_factor"/,
    );
  }));

test('per-token normalisations and misplaced reshapes are refused by name', () =>
  withDir((dir) => {
    const p = randomParams(9);
    const refuse = (name: string, cfg: Record<string, unknown>, message: RegExp) => {
      const folder = path.join(dir, name);
      writeFolder(
        folder,
        p,
        {
          architecture: 'standard',
          d_in: d,
          d_sae: F,
          hook_name: 'blocks.0.hook_resid_post',
          ...cfg,
        },
        CORE,
      );
      assert.throws(() => loadSaeLensFolder(folder), message);
    };
    refuse(
      'cnr',
      { normalize_activations: 'constant_norm_rescale' },
      /cnr.cfg\.json: normalize_activations "constant_norm_rescale" is not supported/,
    );
    refuse(
      'ln',
      { normalize_activations: 'layer_norm' },
      /ln.cfg\.json: normalize_activations "layer_norm" is not supported/,
    );
    refuse(
      'reshape',
      { reshape_activations: 'hook_z' },
      /reshape.cfg\.json: reshape_activations "hook_z" is not supported for hook "blocks\.0\.hook_resid_post"/,
    );
    refuse(
      'arch',
      { architecture: 'batchtopk_weird' },
      /arch.cfg\.json: architecture "batchtopk_weird" .* supported: standard \(relu\), jumprelu, topk, gated/,
    );
    const gated = path.join(dir, 'gated-missing');
    writeFolder(
      gated,
      p,
      { architecture: 'gated', d_in: d, d_sae: F, hook_name: 'blocks.0.hook_resid_post' },
      CORE,
    );
    assert.throws(
      () => loadSaeLensFolder(gated),
      /gated-missing.sae_weights\.safetensors: no tensor r_mag/,
    );
    const wrong = path.join(dir, 'threshold-short');
    writeFolder(
      wrong,
      { ...p, threshold: p.threshold.subarray(0, 3) },
      { architecture: 'jumprelu', d_in: d, d_sae: F, hook_name: 'blocks.0.hook_resid_post' },
      CORE,
    );
    // Its weights again, with a threshold of 3 values for 5 features.
    writeSafetensors(path.join(wrong, 'sae_weights.safetensors'), [
      { name: 'W_enc', shape: [d, F], data: p.W_enc },
      { name: 'b_enc', shape: [F], data: p.b_enc },
      { name: 'W_dec', shape: [F, d], data: p.W_dec },
      { name: 'b_dec', shape: [d], data: p.b_dec },
      { name: 'threshold', shape: [3], data: p.threshold.subarray(0, 3) },
    ]);
    assert.throws(
      () => loadSaeLensFolder(wrong),
      /threshold-short.sae_weights\.safetensors: tensor threshold has shape \[3\], expected \[5\]/,
    );
  }));

test('hook names of every family map to sites, and back', () => {
  const cases: [string, string][] = [
    ['hook_embed', 'embed'],
    ['blocks.0.hook_resid_pre', 'embed'],
    ['blocks.3.hook_resid_pre', 'resid_2'],
    ['blocks.3.hook_resid_post', 'resid_3'],
    ['blocks.3.hook_attn_out', 'attn_3'],
    ['blocks.3.hook_mlp_out', 'mlp_3'],
    ['blocks.3.attn.hook_z', 'attn_z_3'],
  ];
  for (const [hook, site] of cases) assert.equal(siteFromHookName(hook), site, hook);
  for (const site of ['embed', 'attn_z_2', 'attn_2', 'mlp_2', 'resid_2'])
    assert.equal(siteFromHookName(hookNameForSite(site)), site, site);
  for (const hook of ['blocks.1.hook_resid_mid', 'blocks.1.attn.hook_q', 'hook_pos_embed'])
    assert.equal(siteFromHookName(hook), undefined, hook);
});

test('a hook_z SAELens folder (reshape_activations hook_z) serves attn_z_L', () =>
  withDir((dir) => {
    const p = randomParams(11);
    const folder = path.join(dir, 'z');
    writeFolder(
      folder,
      p,
      {
        architecture: 'standard',
        d_in: d,
        d_sae: F,
        reshape_activations: 'hook_z',
        metadata: { hook_name: 'blocks.1.attn.hook_z' },
      },
      CORE,
    );
    assert.equal(loadSaeLensFolder(folder).site, 'attn_z_1');
    checkVariant(folder, p, { arch: 'standard', applyBDec: true, scale: 1 }, 'hook_z');
  }));

test('one folder mixing dictionary_learning, SAELens and Gemma Scope: one dictionary per site', () =>
  withDir((dir) => {
    const D = 4;
    // resid_0: the dictionary_learning fixture (d 4).
    fs.cpSync(
      path.join(
        import.meta.dirname,
        '..',
        'fixtures',
        'sae',
        'dictionary_learning',
        'resid_out_layer0',
      ),
      path.join(dir, 'resid_out_layer0'),
      { recursive: true },
    );
    // attn_0: the SAELens jumprelu fixture re-pointed at blocks.0.hook_attn_out.
    const attn = path.join(dir, 'saelens-attn');
    fs.cpSync(
      path.join(import.meta.dirname, '..', 'fixtures', 'sae', 'saelens', 'jumprelu'),
      attn,
      { recursive: true },
    );
    const cfg = JSON.parse(fs.readFileSync(path.join(attn, 'cfg.json'), 'utf8'));
    fs.writeFileSync(
      path.join(attn, 'cfg.json'),
      JSON.stringify({ ...cfg, hook_name: 'blocks.0.hook_attn_out' }),
    );
    // mlp_0: Gemma Scope; attn_z_0: Gemma Scope att (width 6 = heads · head_dim).
    const npz = (release: string, dIn: number) => {
      const file = path.join(dir, release, 'layer_0', 'width_16k', 'average_l0_40', 'params.npz');
      fs.mkdirSync(path.dirname(file), { recursive: true });
      writeNpz(file, [
        {
          name: 'W_enc',
          shape: [dIn, 8],
          data: Float32Array.from({ length: dIn * 8 }, (_, i) => Math.sin(i)),
        },
        {
          name: 'W_dec',
          shape: [8, dIn],
          data: Float32Array.from({ length: 8 * dIn }, (_, i) => Math.cos(i)),
        },
        { name: 'b_enc', shape: [8], data: new Float32Array(8) },
        { name: 'b_dec', shape: [dIn], data: new Float32Array(dIn) },
        { name: 'threshold', shape: [8], data: new Float32Array(8).fill(0.2) },
      ]);
    };
    npz('gemma-scope-2b-pt-mlp', D);
    npz('gemma-scope-2b-pt-att', 6);
    const lib = openSaes(dir, 1, {
      sites: transformerSiteNames(1),
      siteWidth: (site) => (site.startsWith('attn_z') ? 6 : D),
    });
    // embed has no dictionary: it is simply not listed.
    assert.deepEqual(
      lib.used().map((e) => `${e.site} ${e.format}`),
      [
        'attn_z_0 gemma_scope',
        'attn_0 saelens',
        'mlp_0 gemma_scope',
        'resid_0 dictionary_learning',
      ],
    );
    assert.ok(!lib.has('embed'));
    for (const site of lib.sites()) {
      const dict = lib.get(site);
      assert.equal(dict.dIn, site === 'attn_z_0' ? 6 : D, site);
      assert.equal(dict.site, site);
    }
    assert.equal(lib.get('attn_0').kind, 'jumprelu');
    assert.equal(lib.get('resid_0').kind, 'relu');
  }));
