// Reading and writing dictionaries in the published on-disk formats.
//
// dictionary_learning (Marks et al.'s Pythia-70M SAEs): `<root>/<submodule>/<dictid>_<F>/ae.pt`,
//   a torch.save'd state dict: bias [d] (= b_D), encoder.weight [F, d], encoder.bias [F],
//   decoder.weight [d, F]; submodule folders embed, attn_out_layerL, mlp_out_layerL, resid_out_layerL.
// SAELens: a folder with cfg.json + sae_weights.safetensors holding W_enc [d, F], b_enc [F],
//   W_dec [F, d], b_dec [d] (+ threshold [F] for jumprelu); the site comes from cfg.hook_name.
//   Architectures standard (ReLU), jumprelu, topk and gated (read as an equivalent JumpReLU, see
//   gatedAsJumpRelu); normalize_activations expected_average_only_in is folded into the weights.
// Gemma Scope: `<release>/layer_L/width_W/average_l0_K/params.npz` (np.savez) holding W_enc [d, F],
//   W_dec [F, d], b_enc [F], b_dec [d], threshold [F]; JumpReLU without input centring. The
//   release folder's suffix names the site: -res resid_L, -mlp mlp_L, -att attn_z_L.
// Ours: the SAELens layout in a folder named after the site, cfg.json also carrying `site` and our
//   training fields.
// Every ReLU/JumpReLU dictionary is brought to unit-norm decoder rows on load (see
// SparseAutoencoder.normalizeDecoder); TopK dictionaries keep their norms.
//
// Dims: d input width, F dictionary width.

import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { openSafetensors, writeSafetensors } from '../io/safetensors.ts';
import { readJsonFile } from '../io/text-file.ts';
import { describeIssues } from '../io/validation.ts';
import { SparseAutoencoder, type ActivationKind } from './dictionary.ts';
import { openNpz } from './npy.ts';
import { readTransposedF32, transpose } from './transpose.ts';
import { readTorchStateDict, type TorchTensor } from './torch-checkpoint.ts';

export const SAELENS_CFG = 'cfg.json';
export const SAELENS_WEIGHTS = 'sae_weights.safetensors';
export const AE_PT = 'ae.pt';

/** dictionary_learning submodule folder -> site, e.g. mlp_out_layer3 -> mlp_3; else undefined. */
export function siteFromDictionaryLearningFolder(name: string): string | undefined {
  if (name === 'embed') return 'embed';
  const m = /^(attn|mlp|resid)_out_layer(\d+)$/.exec(name);
  return m ? `${m[1]}_${Number(m[2])}` : undefined;
}

/**
 * TransformerLens hook name -> site, e.g. blocks.2.hook_mlp_out -> mlp_2, blocks.2.attn.hook_z ->
 * attn_z_2; else undefined. hook_embed is read as `embed`, which is what the residual stream
 * starts from in models without learned position embeddings (GPT-2's adds hook_pos_embed).
 */
export function siteFromHookName(hook: string): string | undefined {
  if (hook === 'hook_embed') return 'embed';
  const z = /^blocks\.(\d+)\.attn\.hook_z$/.exec(hook);
  if (z) return `attn_z_${Number(z[1])}`;
  const m = /^blocks\.(\d+)\.hook_(resid_pre|attn_out|mlp_out|resid_post)$/.exec(hook);
  if (!m) return undefined;
  const layer = Number(m[1]);
  switch (m[2]) {
    case 'resid_pre': // the residual stream entering block L is resid_{L-1}'s output
      return layer === 0 ? 'embed' : `resid_${layer - 1}`;
    case 'attn_out':
      return `attn_${layer}`;
    case 'mlp_out':
      return `mlp_${layer}`;
    default:
      return `resid_${layer}`;
  }
}

/** site -> TransformerLens hook name (for the cfg.json we write). */
export function hookNameForSite(site: string): string {
  if (site === 'embed') return 'blocks.0.hook_resid_pre';
  const z = /^attn_z_(\d+)$/.exec(site);
  if (z) return `blocks.${z[1]}.attn.hook_z`;
  const m = /^(attn|mlp|resid)_(\d+)$/.exec(site);
  if (!m) throw new Error(`cannot name a hook for site "${site}"`);
  const hook = { attn: 'attn_out', mlp: 'mlp_out', resid: 'resid_post' }[
    m[1] as 'attn' | 'mlp' | 'resid'
  ];
  return `blocks.${m[2]}.hook_${hook}`;
}

function readJson(file: string): Record<string, unknown> {
  const json = readJsonFile(file);
  if (typeof json !== 'object' || json === null || Array.isArray(json))
    throw new Error(`${file}: expected a JSON object`);
  return json as Record<string, unknown>;
}

function expectShape(file: string, name: string, shape: number[], want: number[]): void {
  if (shape.length !== want.length || shape.some((s, i) => s !== want[i]))
    throw new Error(`${file}: tensor ${name} has shape [${shape}], expected [${want}]`);
}

// The config.json dictionary_learning writes beside ae.pt: the dictionary's class and size.
const DICTIONARY_LEARNING_CFG = 'config.json';
const dictionaryLearningConfigSchema = z.looseObject({
  trainer: z
    .looseObject({
      dict_class: z.string().nullish(),
      dict_size: z.number().int().positive().nullish(),
    })
    .nullish(),
});

export interface DictionaryLearningConfig {
  file: string;
  dictClass: string | null;
  /** trainer.dict_size, the number of features. */
  dictSize: number | null;
}

/** The config.json in a dictionary_learning folder (beside ae.pt), validated; null if absent. */
export function readDictionaryLearningConfig(folder: string): DictionaryLearningConfig | null {
  const file = path.join(folder, DICTIONARY_LEARNING_CFG);
  if (!fs.existsSync(file)) return null;
  const parsed = dictionaryLearningConfigSchema.safeParse(readJson(file));
  if (!parsed.success)
    throw new Error(
      `${file}: not a dictionary_learning config.json (${describeIssues(parsed.error, { limit: 3 })})`,
    );
  const trainer = parsed.data.trainer;
  return { file, dictClass: trainer?.dict_class ?? null, dictSize: trainer?.dict_size ?? null };
}

/** Loads a dictionary_learning AutoEncoder (`ae.pt`); `site` names it. */
export function loadAePt(file: string, site: string): SparseAutoencoder {
  const config = readDictionaryLearningConfig(path.dirname(file));
  const cls = config?.dictClass;
  if (config && typeof cls === 'string' && cls !== 'AutoEncoder')
    throw new Error(
      `${config.file}: dict_class ${cls} is not supported; only dictionary_learning's AutoEncoder (ReLU) is`,
    );
  // decoder.weight [d, F] streams from the file into its transposed rows [F, d].
  const tensors = readTorchStateDict(file, { transposed: new Set(['decoder.weight']) });
  const get = (name: string): TorchTensor => {
    const t = tensors.get(name);
    if (!t)
      throw new Error(
        `${file}: no tensor ${name}; expected dictionary_learning AutoEncoder tensors bias, encoder.weight, encoder.bias, decoder.weight (found: ${[...tensors.keys()].join(', ') || 'none'})`,
      );
    return t;
  };
  const enc = get('encoder.weight');
  if (enc.shape.length !== 2)
    throw new Error(`${file}: tensor encoder.weight has shape [${enc.shape}], expected [F, d]`);
  const [F, d] = enc.shape;
  const encBias = get('encoder.bias');
  const dec = get('decoder.weight');
  const bias = get('bias');
  expectShape(file, 'encoder.bias', encBias.shape, [F]);
  expectShape(file, 'decoder.weight', [...dec.shape].reverse(), [d, F]);
  expectShape(file, 'bias', bias.shape, [d]);
  return assemble({
    site,
    kind: 'relu',
    dIn: d,
    width: F,
    decoder: dec.data,
    decoderBias: bias.data,
    encoderBias: encBias.data,
    centerInput: true,
    readEncoder(scale) {
      // Already rows [F, d] (a fresh array or a view no other tensor shares): rescale in place.
      const e = enc.data;
      if (scale)
        for (let i = 0; i < F; i++) {
          const n = scale[i];
          for (let j = i * d; j < (i + 1) * d; j++) e[j] *= n;
        }
      return e;
    },
  });
}

export interface SaeLensCfg {
  kind: ActivationKind;
  /** SAELens `gated`: read as the equivalent JumpReLU (kind 'jumprelu'). */
  gated: boolean;
  dIn: number;
  width: number;
  k?: number;
  centerInput: boolean;
  /** normalize_activations is expected_average_only_in: the input is scaled by a factor found beside the cfg. */
  scaledInput: boolean;
  hookName?: string;
  /** Our `site` field, when the folder was written by us. */
  site?: string;
  raw: Record<string, unknown>;
}

const positiveInt = z.number().int().positive();
const hookFields = {
  hook_name: z.string().nullish(),
  hook_head_index: z.number().int().nullish(),
};
// Every version we know: hook_name at the top or under metadata/meta; other keys pass through.
const saeLensCfgSchema = z.looseObject({
  d_in: positiveInt,
  d_sae: positiveInt,
  architecture: z.string().nullish(),
  activation_fn_str: z.string().nullish(),
  activation_fn_kwargs: z.looseObject({ k: positiveInt.optional() }).nullish(),
  k: positiveInt.nullish(),
  normalize_activations: z.string().nullish(),
  reshape_activations: z.string().nullish(),
  rescale_acts_by_decoder_norm: z.boolean().nullish(),
  apply_b_dec_to_input: z.boolean().nullish(),
  site: z.string().nullish(),
  metadata: z.looseObject(hookFields).nullish(),
  meta: z.looseObject(hookFields).nullish(),
  ...hookFields,
});

/** Validates a SAELens cfg.json (any version we know: hook_name at the top or under metadata). */
export function parseSaeLensCfg(file: string): SaeLensCfg {
  const raw = readJson(file);
  const parsed = saeLensCfgSchema.safeParse(raw);
  if (!parsed.success)
    throw new Error(
      `${file}: not a SAELens cfg.json (${describeIssues(parsed.error, { limit: 4 })})`,
    );
  const c = parsed.data;
  const meta = c.metadata ?? c.meta ?? {};
  const dIn = c.d_in;
  const width = c.d_sae;
  const arch = c.architecture ?? 'standard';
  const fn = c.activation_fn_str ?? (arch === 'topk' ? 'topk' : 'relu');
  let kind: ActivationKind;
  if (arch === 'jumprelu' || arch === 'gated') kind = 'jumprelu';
  else if (arch === 'topk' || (arch === 'standard' && fn === 'topk')) kind = 'topk';
  else if (arch === 'standard' && fn === 'relu') kind = 'relu';
  else
    throw new Error(
      `${file}: architecture ${JSON.stringify(arch)} with activation ${JSON.stringify(fn)} is not supported; supported: standard (relu), jumprelu, topk, gated`,
    );
  let k: number | undefined;
  if (kind === 'topk') {
    const v = c.k ?? c.activation_fn_kwargs?.k;
    if (v === undefined || v > width)
      throw new Error(
        `${file}: topk needs k (top level or activation_fn_kwargs.k) in 1..${width}, got ${JSON.stringify(v)}`,
      );
    k = v;
  }
  const norm = c.normalize_activations ?? 'none';
  if (norm !== 'none' && norm !== 'expected_average_only_in')
    throw new Error(
      `${file}: normalize_activations ${JSON.stringify(norm)} is not supported (it rescales each token by its own norm); supported: "none", "expected_average_only_in"`,
    );
  const hookName = c.hook_name ?? meta.hook_name ?? undefined;
  // hook_z SAELens SAEs flatten [heads, d_head] to heads·d_head, which is what attn_z_L is.
  const reshape = c.reshape_activations ?? 'none';
  if (reshape !== 'none' && !(reshape === 'hook_z' && hookName?.endsWith('.attn.hook_z')))
    throw new Error(
      `${file}: reshape_activations ${JSON.stringify(reshape)} is not supported` +
        (reshape === 'hook_z'
          ? ` for hook ${JSON.stringify(hookName)} (only for blocks.L.attn.hook_z)`
          : ''),
    );
  const head = c.hook_head_index ?? meta.hook_head_index;
  if (head != null)
    throw new Error(`${file}: per-head SAEs (hook_head_index ${head}) are not supported`);
  if (c.rescale_acts_by_decoder_norm === true)
    throw new Error(`${file}: rescale_acts_by_decoder_norm true is not supported`);
  return {
    kind,
    gated: arch === 'gated',
    dIn,
    width,
    k,
    centerInput: c.apply_b_dec_to_input ?? true,
    scaledInput: norm === 'expected_average_only_in',
    hookName,
    site: c.site ?? undefined,
    raw,
  };
}

/** The file SAELens's trainer writes beside a checkpoint: {"scaling_factor": s | null}. */
export const SAELENS_SCALER = 'activation_scaler.json';
const scalerSchema = z.looseObject({ scaling_factor: z.number().positive().nullable() });
const averageNormSchema = z.looseObject({
  dataset_average_activation_norm: z.looseObject({ in: z.number().positive() }),
});

/**
 * The input scale s of an expected_average_only_in folder (SAELens runs the SAE on x·s and
 * divides its output by s): activation_scaler.json's scaling_factor (null: no scaling), else a
 * cfg's dataset_average_activation_norm.in (Llama Scope: s = √d_in / in). SAELens keeps the
 * factors of its hub releases in its own release table, which a folder does not carry.
 */
export function saeLensInputScale(folder: string, cfg: SaeLensCfg): number {
  const scalerFile = path.join(folder, SAELENS_SCALER);
  if (fs.existsSync(scalerFile)) {
    const parsed = scalerSchema.safeParse(readJsonFile(scalerFile));
    if (!parsed.success)
      throw new Error(
        `${scalerFile}: expected {"scaling_factor": a positive number or null} (${describeIssues(parsed.error, { limit: 2 })})`,
      );
    return parsed.data.scaling_factor ?? 1;
  }
  const avg = averageNormSchema.safeParse(cfg.raw);
  if (avg.success) return Math.sqrt(cfg.dIn) / avg.data.dataset_average_activation_norm.in;
  throw new Error(
    `${path.join(folder, SAELENS_CFG)}: normalize_activations is expected_average_only_in but the folder does not say by how much: ` +
      `write ${SAELENS_SCALER} beside it with {"scaling_factor": s} (SAELens's norm_scaling_factor for this SAE), or fold s into the weights and set "none"`,
  );
}

/** The site a SAELens/our folder is for: our `site` field, else its hook name; undefined if neither. */
export function siteOfSaeLensCfg(cfg: SaeLensCfg): string | undefined {
  return cfg.site ?? (cfg.hookName ? siteFromHookName(cfg.hookName) : undefined);
}

/**
 * Divides each decoder row [F, d] by its L2 norm in place, as SparseAutoencoder.normalizeDecoder
 * does, and returns the factor each feature's encoder row, bias and threshold take on (the norm;
 * 1 for an all-zero row, which is left alone).
 */
function unitDecoderRows(decoder: Float32Array, F: number, d: number): Float64Array {
  const scale = new Float64Array(F);
  for (let i = 0; i < F; i++) {
    const o = i * d;
    let s = 0;
    for (let j = o, e = o + d; j < e; j++) {
      const x = decoder[j];
      s += x * x; // exactly x ** 2, without the call
    }
    const n = Math.sqrt(s);
    scale[i] = n === 0 ? 1 : n;
    if (n !== 0) for (let j = o, e = o + d; j < e; j++) decoder[j] /= n;
  }
  return scale;
}

/** A dictionary's arrays as a file holds them, before normalisation. */
interface RawDictionary {
  site: string;
  kind: ActivationKind;
  dIn: number;
  width: number;
  decoder: Float32Array; // [F, d], modified in place
  decoderBias: Float32Array;
  encoderBias: Float32Array;
  threshold?: Float32Array;
  k?: number;
  centerInput: boolean;
  /** SAELens expected_average_only_in: the SAE runs on x·s and its output is divided by s. */
  inputScale?: number;
  /** Per-feature factors the encoder rows carry on top (gated: e^r_mag). */
  encoderRowScale?: Float64Array;
  /** W_enc as rows [F, d], row i multiplied by scale[i] (one pass: read, transpose and scale). */
  readEncoder(scale: Float64Array | undefined): Float32Array;
}

/**
 * Builds the SparseAutoencoder a file describes, with unit-norm decoder rows for ReLU and JumpReLU
 * (TopK keeps its norms): the same numbers as constructing it and calling normalizeDecoder, with
 * the encoder read, transposed and rescaled in one pass. An input scale s is folded in first as
 * SAELens's fold_activation_norm_scaling_factor does: W_enc·s, W_dec/s, b_dec/s.
 */
function assemble(raw: RawDictionary): SparseAutoencoder {
  const { dIn: d, width: F, decoder, decoderBias } = raw;
  const s = raw.inputScale ?? 1;
  if (s !== 1) {
    for (let i = 0; i < decoder.length; i++) decoder[i] /= s;
    for (let i = 0; i < decoderBias.length; i++) decoderBias[i] /= s;
  }
  let scale: Float64Array | undefined;
  if (raw.kind !== 'topk') {
    scale = unitDecoderRows(decoder, F, d);
    for (let i = 0; i < F; i++) {
      raw.encoderBias[i] *= scale[i];
      if (raw.threshold) raw.threshold[i] *= scale[i];
    }
  }
  if (s !== 1 || raw.encoderRowScale) {
    scale ??= new Float64Array(F).fill(1);
    for (let i = 0; i < F; i++) scale[i] *= s * (raw.encoderRowScale?.[i] ?? 1);
  }
  return new SparseAutoencoder({
    site: raw.site,
    kind: raw.kind,
    dIn: d,
    width: F,
    encoder: raw.readEncoder(scale),
    encoderBias: raw.encoderBias,
    decoder,
    decoderBias,
    threshold: raw.threshold,
    k: raw.k,
    centerInput: raw.centerInput,
  });
}

/**
 * A gated SAE (Rajamanoharan et al. 2024; SAELens `gated`) as a JumpReLU. With u = W_enc·x̃:
 * f = 1[u + b_gate > 0] · relu(e^r_mag ⊙ u + b_mag). Writing z = e^r_mag ⊙ u + b_mag (encoder rows
 * scaled by e^r_mag, bias b_mag), the gate u > -b_gate is z > b_mag - e^r_mag ⊙ b_gate, so
 * f = relu(z) · 1[z > θ] with θ = b_mag - e^r_mag ⊙ b_gate: the JumpReLU form, exact up to float
 * rounding of the gate at its boundary. Returns the encoder row factors, bias and threshold.
 */
export function gatedAsJumpRelu(
  rMag: Float32Array,
  bGate: Float32Array,
  bMag: Float32Array,
): { encoderRowScale: Float64Array; encoderBias: Float32Array; threshold: Float32Array } {
  const F = rMag.length;
  const encoderRowScale = new Float64Array(F);
  const threshold = new Float32Array(F);
  for (let i = 0; i < F; i++) {
    encoderRowScale[i] = Math.exp(rMag[i]);
    threshold[i] = bMag[i] - encoderRowScale[i] * bGate[i];
  }
  return { encoderRowScale, encoderBias: bMag, threshold };
}

/** Loads a SAELens (or our) folder; `site` overrides the one the cfg names. */
export function loadSaeLensFolder(folder: string, site?: string): SparseAutoencoder {
  const cfgFile = path.join(folder, SAELENS_CFG);
  const cfg = parseSaeLensCfg(cfgFile);
  const resolved = site ?? siteOfSaeLensCfg(cfg);
  if (!resolved)
    throw new Error(
      `${cfgFile}: cannot tell which site this SAE is for (hook_name ${JSON.stringify(cfg.hookName)} is not hook_embed or one of blocks.L.hook_{resid_pre,attn_out,mlp_out,resid_post}, blocks.L.attn.hook_z)`,
    );
  const inputScale = cfg.scaledInput ? saeLensInputScale(folder, cfg) : 1;
  const file = openSafetensors(path.join(folder, SAELENS_WEIGHTS));
  const { dIn: d, width: F } = cfg;
  const check = (name: string, want: number[]) => {
    if (!file.has(name))
      throw new Error(`${file.path}: no tensor ${name}; found ${file.names().join(', ')}`);
    expectShape(file.path, name, file.shape(name), want);
  };
  const read = (name: string, want: number[]) => {
    check(name, want);
    return file.read(name).data;
  };
  check('W_enc', [d, F]);
  let encoderBias: Float32Array;
  let threshold: Float32Array | undefined;
  let encoderRowScale: Float64Array | undefined;
  if (cfg.gated) {
    ({ encoderBias, threshold, encoderRowScale } = gatedAsJumpRelu(
      read('r_mag', [F]),
      read('b_gate', [F]),
      read('b_mag', [F]),
    ));
  } else {
    encoderBias = read('b_enc', [F]);
    if (cfg.kind === 'jumprelu')
      threshold =
        !file.has('threshold') && file.has('log_threshold')
          ? read('log_threshold', [F]).map(Math.exp)
          : read('threshold', [F]);
  }
  return assemble({
    site: resolved,
    kind: cfg.kind,
    dIn: d,
    width: F,
    decoder: read('W_dec', [F, d]),
    decoderBias: read('b_dec', [d]),
    encoderBias,
    threshold,
    k: cfg.k,
    centerInput: cfg.centerInput,
    inputScale,
    encoderRowScale,
    readEncoder(scale) {
      if (file.dtype('W_enc') === 'F32')
        return readTransposedF32(file.path, file.byteRange('W_enc').begin, d, F, scale);
      return transpose(file.read('W_enc').data, d, F, scale); // F16/BF16: decoded first
    },
  });
}

/** The Gemma Scope weights file in each average_l0_K folder. */
export const GEMMA_SCOPE_PARAMS = 'params.npz';

export interface GemmaScopePath {
  /** The site, from the release folder's suffix and layer_L; undefined when not recognisable. */
  site: string | undefined;
  /** K of average_l0_K, or null. */
  l0: number | null;
}

/**
 * What a params.npz path says: the site from `layer_L` and the nearest ancestor folder ending in
 * -res, -mlp or -att (optionally -canonical; the Hugging Face cache's models--google--gemma-scope-
 * 2b-pt-res counts), `embedding/` under a -res release being `embed`; the L0 from average_l0_K.
 */
export function gemmaScopePath(file: string): GemmaScopePath {
  const parts = path.resolve(file).split(path.sep);
  parts.pop(); // params.npz
  const l0Match = /^average_l0_(\d+)$/.exec(parts.at(-1) ?? '');
  const l0 = l0Match ? Number(l0Match[1]) : null;
  // layer_L (or embedding/, the -res release's embedding SAEs on hook_embed) sits above width_W
  // and average_l0_K: look no further up than that.
  let at = parts.length - 1;
  while (at >= parts.length - 3 && at >= 0 && !/^(layer_\d+|embedding)$/.test(parts[at])) at--;
  if (at < parts.length - 3 || at < 0) return { site: undefined, l0 };
  const layer = parts[at] === 'embedding' ? null : Number(parts[at].slice('layer_'.length));
  for (let i = at - 1; i >= Math.max(0, at - 4); i--) {
    const m = /-(res|mlp|att)(?:-canonical)?$/.exec(parts[i]);
    if (!m) continue;
    if (layer === null) return { site: m[1] === 'res' ? 'embed' : undefined, l0 };
    const kind = { res: 'resid', mlp: 'mlp', att: 'attn_z' }[m[1] as 'res' | 'mlp' | 'att'];
    return { site: `${kind}_${layer}`, l0 };
  }
  return { site: undefined, l0 };
}

const GEMMA_SCOPE_ARRAYS = ['W_enc', 'W_dec', 'b_enc', 'b_dec', 'threshold'];

/** d and F of a Gemma Scope params.npz from W_enc's header alone (reads a few hundred bytes). */
export function gemmaScopeShape(file: string): { dIn: number; width: number } {
  const npz = openNpz(file);
  if (!npz.has('W_enc')) missingArray(npz.path, 'W_enc', npz.names());
  const { shape } = npz.header('W_enc');
  if (shape.length !== 2)
    throw new Error(`${file}: array W_enc has shape (${shape.join(', ')}), expected (d, F)`);
  return { dIn: shape[0], width: shape[1] };
}

function missingArray(file: string, name: string, found: string[]): never {
  throw new Error(
    `${file}: no array ${name}; a Gemma Scope params.npz holds ${GEMMA_SCOPE_ARRAYS.join(', ')} (found: ${found.join(', ') || 'none'})`,
  );
}

/** Loads a Gemma Scope params.npz as a JumpReLU dictionary for `site` (no input centring). */
export function loadGemmaScopeNpz(file: string, site: string): SparseAutoencoder {
  const npz = openNpz(file);
  const header = (name: string) => {
    if (!npz.has(name)) missingArray(file, name, npz.names());
    return npz.header(name);
  };
  const enc = header('W_enc');
  if (enc.shape.length !== 2)
    throw new Error(`${file}: array W_enc has shape (${enc.shape.join(', ')}), expected (d, F)`);
  const [d, F] = enc.shape;
  if (d === 0 || F === 0)
    throw new Error(`${file}: array W_enc has shape (${d}, ${F}); an SAE needs d, F > 0`);
  const read = (name: string, want: number[]) => {
    const { shape } = header(name);
    if (shape.length !== want.length || shape.some((s, i) => s !== want[i]))
      throw new Error(
        `${file}: array ${name} has shape (${shape.join(', ')}), expected (${want.join(', ')}) for W_enc (${d}, ${F})`,
      );
    return npz.read(name).data;
  };
  return assemble({
    site,
    kind: 'jumprelu',
    dIn: d,
    width: F,
    decoder: read('W_dec', [F, d]),
    decoderBias: read('b_dec', [d]),
    encoderBias: read('b_enc', [F]),
    threshold: read('threshold', [F]),
    centerInput: false,
    readEncoder(scale) {
      const stored = npz.storedF32('W_enc');
      if (!stored) return transpose(npz.read('W_enc').data, d, F, scale); // compressed or not <f4
      return readTransposedF32(file, stored.dataStart, d, F, scale, {
        prefix: stored.prefix,
        expected: stored.crc,
        what: 'W_enc.npy',
      });
    },
  });
}

/** Loads one dictionary from an ae.pt file, or a folder holding ae.pt or cfg.json + weights. */
export function loadDictionary(location: string, site?: string): SparseAutoencoder {
  const stat = fs.statSync(location, { throwIfNoEntry: false });
  if (!stat) throw new Error(`${location}: no such file or folder`);
  const npz = stat.isFile() ? location : path.join(location, GEMMA_SCOPE_PARAMS);
  if (path.basename(npz) === GEMMA_SCOPE_PARAMS && fs.existsSync(npz)) {
    const resolved = site ?? gemmaScopePath(npz).site;
    if (!resolved)
      throw new Error(
        `${npz}: cannot tell the site from the path (expected <release>-res|-mlp|-att/layer_L/width_W/average_l0_K/${GEMMA_SCOPE_PARAMS}); pass the site`,
      );
    return loadGemmaScopeNpz(npz, resolved);
  }
  const aePt = stat.isFile() ? location : path.join(location, AE_PT);
  if (stat.isFile() || fs.existsSync(aePt)) {
    const folder = path.basename(path.dirname(path.dirname(aePt)));
    const resolved = site ?? siteFromDictionaryLearningFolder(folder);
    if (!resolved)
      throw new Error(
        `${aePt}: cannot tell the site from the folder name "${folder}" (expected embed, attn_out_layerL, mlp_out_layerL or resid_out_layerL); pass the site`,
      );
    return loadAePt(aePt, resolved);
  }
  if (fs.existsSync(path.join(location, SAELENS_CFG))) return loadSaeLensFolder(location, site);
  throw new Error(
    `${location}: holds neither ${AE_PT}, ${GEMMA_SCOPE_PARAMS} nor ${SAELENS_CFG} + ${SAELENS_WEIGHTS}`,
  );
}

/**
 * Writes `dict` in our format: `<root>/<site>/cfg.json` + `sae_weights.safetensors` (SAELens-readable).
 * `extraCfg` (e.g. training settings and metrics) is recorded in cfg.json. Returns the folder.
 */
export function saveDictionary(
  root: string,
  dict: SparseAutoencoder,
  extraCfg: Record<string, unknown> = {},
): string {
  const folder = path.join(root, dict.site);
  writeDictionaryFolder(folder, dict, extraCfg);
  return folder;
}

/** Writes `dict` into exactly `folder` (see saveDictionary). */
export function writeDictionaryFolder(
  folder: string,
  dict: SparseAutoencoder,
  extraCfg: Record<string, unknown> = {},
): void {
  const { dIn: d, width: F } = dict;
  fs.mkdirSync(folder, { recursive: true });
  const tensors = [
    { name: 'W_enc', shape: [d, F], data: transpose(dict.encoder, F, d) },
    { name: 'b_enc', shape: [F], data: dict.encoderBias },
    { name: 'W_dec', shape: [F, d], data: dict.decoder },
    { name: 'b_dec', shape: [d], data: dict.decoderBias },
  ];
  if (dict.threshold) tensors.push({ name: 'threshold', shape: [F], data: dict.threshold });
  writeSafetensors(path.join(folder, SAELENS_WEIGHTS), tensors);
  const cfg: Record<string, unknown> = {
    architecture: dict.kind === 'relu' ? 'standard' : dict.kind,
    d_in: d,
    d_sae: F,
    dtype: 'float32',
    device: 'cpu',
    apply_b_dec_to_input: dict.centerInput,
    normalize_activations: 'none',
    activation_fn_str: dict.kind === 'topk' ? 'topk' : 'relu',
    ...(dict.kind === 'topk' ? { k: dict.k, activation_fn_kwargs: { k: dict.k } } : {}),
    hook_name: hookNameForSite(dict.site),
    hook_head_index: null,
    site: dict.site,
    ...extraCfg,
  };
  const tmp = path.join(folder, `${SAELENS_CFG}.tmp-${process.pid}`);
  fs.writeFileSync(tmp, `${JSON.stringify(cfg, null, 2)}\n`);
  fs.renameSync(tmp, path.join(folder, SAELENS_CFG));
}
