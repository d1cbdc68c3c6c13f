// Reading and writing dictionaries in the published on-disk formats.
//
// dictionary_learning (Marks et al.'s Pythia-70M SAEs): `<root>/<submodule>/<dictid>_<F>/ae.pt`,
//   a torch.save'd state dict: bias [d] (= b_D), encoder.weight [F, d], encoder.bias [F],
//   decoder.weight [d, F]; submodule folders embed, attn_out_layerL, mlp_out_layerL, resid_out_layerL.
// SAELens: a folder with cfg.json + sae_weights.safetensors holding W_enc [d, F], b_enc [F],
//   W_dec [F, d], b_dec [d] (+ threshold [F] for jumprelu); the site comes from cfg.hook_name.
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
 * attn_z_2 (Gemma Scope's attention SAEs, on the flattened heads' outputs); else undefined.
 */
export function siteFromHookName(hook: string): string | undefined {
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

function transpose(a: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = a[r * cols + c];
  return out;
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
  const tensors = readTorchStateDict(file);
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
  expectShape(file, 'decoder.weight', dec.shape, [d, F]);
  expectShape(file, 'bias', bias.shape, [d]);
  const sae = new SparseAutoencoder({
    site,
    kind: 'relu',
    dIn: d,
    width: F,
    encoder: enc.data,
    encoderBias: encBias.data,
    decoder: transpose(dec.data, d, F),
    decoderBias: bias.data,
  });
  sae.normalizeDecoder();
  return sae;
}

export interface SaeLensCfg {
  kind: ActivationKind;
  dIn: number;
  width: number;
  k?: number;
  centerInput: boolean;
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
  if (arch === 'jumprelu') kind = 'jumprelu';
  else if (arch === 'topk' || (arch === 'standard' && fn === 'topk')) kind = 'topk';
  else if (arch === 'standard' && fn === 'relu') kind = 'relu';
  else
    throw new Error(
      `${file}: architecture ${JSON.stringify(arch)} with activation ${JSON.stringify(fn)} is not supported; supported: standard (relu), jumprelu, topk`,
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
  if (norm !== 'none')
    throw new Error(
      `${file}: normalize_activations ${JSON.stringify(norm)} is not supported; only "none" (fold any scaling factor into the weights first)`,
    );
  if (c.reshape_activations != null && c.reshape_activations !== 'none')
    throw new Error(
      `${file}: reshape_activations ${JSON.stringify(c.reshape_activations)} is not supported`,
    );
  const head = c.hook_head_index ?? meta.hook_head_index;
  if (head != null)
    throw new Error(`${file}: per-head SAEs (hook_head_index ${head}) are not supported`);
  if (c.rescale_acts_by_decoder_norm === true)
    throw new Error(`${file}: rescale_acts_by_decoder_norm true is not supported`);
  return {
    kind,
    dIn,
    width,
    k,
    centerInput: c.apply_b_dec_to_input ?? true,
    hookName: c.hook_name ?? meta.hook_name ?? undefined,
    site: c.site ?? undefined,
    raw,
  };
}

/** The site a SAELens/our folder is for: our `site` field, else its hook name; undefined if neither. */
export function siteOfSaeLensCfg(cfg: SaeLensCfg): string | undefined {
  return cfg.site ?? (cfg.hookName ? siteFromHookName(cfg.hookName) : undefined);
}

/** Loads a SAELens (or our) folder; `site` overrides the one the cfg names. */
export function loadSaeLensFolder(folder: string, site?: string): SparseAutoencoder {
  const cfgFile = path.join(folder, SAELENS_CFG);
  const cfg = parseSaeLensCfg(cfgFile);
  const resolved = site ?? siteOfSaeLensCfg(cfg);
  if (!resolved)
    throw new Error(
      `${cfgFile}: cannot tell which site this SAE is for (hook_name ${JSON.stringify(cfg.hookName)} is not one of blocks.L.hook_{resid_pre,attn_out,mlp_out,resid_post})`,
    );
  const file = openSafetensors(path.join(folder, SAELENS_WEIGHTS));
  const { dIn: d, width: F } = cfg;
  const read = (name: string, want: number[]) => {
    if (!file.has(name))
      throw new Error(`${file.path}: no tensor ${name}; found ${file.names().join(', ')}`);
    const t = file.read(name);
    expectShape(file.path, name, t.shape, want);
    return t.data;
  };
  const sae = new SparseAutoencoder({
    site: resolved,
    kind: cfg.kind,
    dIn: d,
    width: F,
    encoder: transpose(read('W_enc', [d, F]), d, F),
    encoderBias: read('b_enc', [F]),
    decoder: read('W_dec', [F, d]),
    decoderBias: read('b_dec', [d]),
    threshold: cfg.kind === 'jumprelu' ? read('threshold', [F]) : undefined,
    k: cfg.k,
    centerInput: cfg.centerInput,
  });
  if (sae.kind !== 'topk') sae.normalizeDecoder();
  return sae;
}

/** Loads one dictionary from an ae.pt file, or a folder holding ae.pt or cfg.json + weights. */
export function loadDictionary(location: string, site?: string): SparseAutoencoder {
  const stat = fs.statSync(location, { throwIfNoEntry: false });
  if (!stat) throw new Error(`${location}: no such file or folder`);
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
  throw new Error(`${location}: holds neither ${AE_PT} nor ${SAELENS_CFG} + ${SAELENS_WEIGHTS}`);
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
