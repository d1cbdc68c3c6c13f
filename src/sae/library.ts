// A folder of dictionaries, one per site, in any of the layouts ./formats.ts reads. Opening it only
// scans names and small cfg files; a site's weights are read when first asked for and can be
// dropped again, so a full set (19 SAEs of 32768x512 for Pythia-70M) never has to sit in memory.

import fs from 'node:fs';
import path from 'node:path';
import { siteNames } from '../model/sites.ts';
import {
  IdentityDictionary,
  SparseAutoencoder,
  WEIGHT_DTYPES,
  type Dictionary,
  type WeightDtype,
} from './dictionary.ts';
import {
  AE_PT,
  GEMMA_SCOPE_PARAMS,
  SAELENS_CFG,
  SAELENS_WEIGHTS,
  gemmaScopePath,
  gemmaScopeShape,
  loadAePt,
  loadGemmaScopeNpz,
  loadSaeLensFolder,
  parseSaeLensCfg,
  readDictionaryLearningConfig,
  siteFromDictionaryLearningFolder,
  siteOfSaeLensCfg,
} from './formats.ts';

/** The special library location whose dictionaries are the model's raw dimensions. */
export const NEURONS = 'neurons';

export interface SaeEntry {
  site: string;
  format: 'dictionary_learning' | 'saelens' | 'gemma_scope' | 'identity';
  /** ae.pt file, SAELens folder or Gemma Scope params.npz. */
  location: string;
  /**
   * Its number of features as its files declare it (dictionary_learning: config.json's
   * trainer.dict_size, else the <id>_<F> folder name; SAELens: d_sae; Gemma Scope: W_enc's
   * shape), null when they do not.
   */
  width: number | null;
  /** Its input width as its files declare it (SAELens d_in, Gemma Scope W_enc), else null. */
  dIn: number | null;
  /** Gemma Scope's average L0 (the K of average_l0_K), else null. */
  l0: number | null;
}

export interface SaeLibrary {
  readonly dir: string;
  /** Sites found, in model order. */
  sites(): string[];
  has(site: string): boolean;
  /** Loads (once) and returns the site's dictionary; a clear error lists what exists otherwise. */
  get(site: string): Dictionary;
  /** Where a site's dictionary lives, without loading it. */
  entry(site: string): SaeEntry;
  /** The site's number of features as its files declare it, without loading it (null: unknown). */
  declaredWidth(site: string): number | null;
  /** The dictionary each site uses, in model order (print it: which file serves which site). */
  used(): SaeEntry[];
  /** Frees a loaded site (it is re-read on the next get). */
  drop(site: string): void;
  dropAll(): void;
  /** Files that looked like dictionaries but could not be used, with why. */
  skipped(): { location: string; reason: string }[];
}

export interface OpenSaesOptions {
  /** The model's width d; required for `neurons`, and checked against each SAE's d_in when given. */
  modelWidth?: number;
  /**
   * The model's own sites and their widths (a LanguageModel of any engine): the valid sites are
   * these (attn_z_L included on the generic engine), and each site's width is checked against its
   * dictionary's d_in. Shorthand for `sites` and `siteWidth`, which take precedence.
   */
  model?: { readonly sites: string[]; siteWidth(site: string): number };
  /**
   * The input width each site has (attn_z_L is heads·head_dim wide, not d); checked against each
   * dictionary's d_in, and the width of `neurons` dictionaries. Takes precedence over modelWidth.
   */
  siteWidth?: (site: string) => number | undefined;
  /**
   * The model's sites in computation order; default siteNames(numLayers) (embed, attn_L, mlp_L,
   * resid_L). Pass the engine's list to admit attn_z_L dictionaries.
   */
  sites?: readonly string[];
  /**
   * Among Gemma Scope variants of one site (and width), use the one whose average L0 is closest
   * to this (ties: the smaller L0). Default DEFAULT_SAE_L0.
   */
  l0?: number;
  /**
   * The dictionary size to use (number of features, e.g. 32768) when the folder holds several
   * per site, as dictionary_learning releases do; every site then uses a dictionary of this size.
   */
  width?: number;
  /**
   * How each SAE's encoder and decoder are held once loaded: f32 (default), or bf16 / f16 (half
   * the memory; converted to float32 per block of rows before each product).
   */
  dtype?: WeightDtype;
}

/** The command-line flag that sets OpenSaesOptions.dtype. */
export const SAE_DTYPE_FLAG = '--dtype';

/** The command-line flag that sets OpenSaesOptions.width, named in the errors that need it. */
export const SAE_WIDTH_FLAG = '--sae-width';
/** The command-line flag that sets OpenSaesOptions.l0. */
export const SAE_L0_FLAG = '--sae-l0';
/** The average L0 aimed for among Gemma Scope variants, as the paper's Gemma-2 setup did. */
export const DEFAULT_SAE_L0 = 100;

/**
 * dictionary_learning's declared size: config.json's trainer.dict_size, else <id>_<F>. A
 * config.json its reader refuses throws (loading the ae.pt would refuse it too).
 */
function dictionaryLearningWidth(folder: string): number | null {
  const size = readDictionaryLearningConfig(folder)?.dictSize;
  if (size) return size;
  const m = /^\d+_(\d+)$/.exec(path.basename(folder));
  return m ? Number(m[1]) : null;
}

const widthText = (w: number | null) => (w === null ? 'size unknown' : `${w} features`);

// Deep enough for a Hugging Face cache:
// models--<org>--<release>/snapshots/<hash>/layer_L/width_W/average_l0_K.
const MAX_DEPTH = 8;

/**
 * Opens `dir` (or the special value `neurons`) for a model with `numLayers` layers.
 * Recognises dictionary_learning trees (<sub>/<id>_<F>/ae.pt), Gemma Scope releases
 * (<release>-res|-mlp|-att/layer_L/width_W/average_l0_K/params.npz), SAELens folders (cfg.json +
 * sae_weights.safetensors, site from hook_name) and ours (SAELens folders named after the site),
 * mixed in any way; one dictionary per site is chosen (see chooseEntry).
 */
export function openSaes(
  dir: string,
  numLayers: number,
  options: OpenSaesOptions = {},
): SaeLibrary {
  const order = [...(options.sites ?? options.model?.sites ?? siteNames(numLayers))];
  const valid = new Set(order);
  const entries = new Map<string, SaeEntry>();
  const skipped: { location: string; reason: string }[] = [];
  const { width } = options;
  const model = options.model;
  const siteWidth =
    options.siteWidth ?? (model ? (site: string) => model.siteWidth(site) : undefined);
  const modelWidth = options.modelWidth ?? model?.siteWidth('embed');
  const l0 = options.l0 ?? DEFAULT_SAE_L0;
  if (width !== undefined && !(Number.isInteger(width) && width > 0))
    throw new Error(`${SAE_WIDTH_FLAG}: expected a positive integer, got ${width}`);
  if (!(Number.isFinite(l0) && l0 >= 0))
    throw new Error(`${SAE_L0_FLAG}: expected a non-negative number, got ${l0}`);
  const dtype = options.dtype ?? 'f32';
  if (!WEIGHT_DTYPES.includes(dtype))
    throw new Error(`${SAE_DTYPE_FLAG}: expected one of ${WEIGHT_DTYPES.join(', ')}, got ${dtype}`);
  const expectedWidth = (site: string) => siteWidth?.(site) ?? modelWidth;
  const widthMismatch = (location: string, dIn: number, site: string, want: number) =>
    new Error(
      `${location}: SAE input width ${dIn} does not match ` +
        // A d-wide site is named by the model's width; attn_z_L (H·Dh wide) by its own.
        (want !== modelWidth
          ? `site ${site}'s width ${want}`
          : `the model width ${want} (site ${site})`),
    );

  if (dir === NEURONS) {
    for (const site of order) {
      const w = expectedWidth(site);
      if (!w)
        throw new Error(
          `openSaes("neurons"): the width of site ${site} is needed (modelWidth or siteWidth)`,
        );
      entries.set(site, {
        site,
        format: 'identity',
        location: NEURONS,
        width: w,
        dIn: w,
        l0: null,
      });
    }
  } else {
    // Every dictionary found, by site; one per site is chosen after the walk.
    const found = new Map<string, SaeEntry[]>();
    const stat = fs.statSync(dir, { throwIfNoEntry: false });
    if (!stat?.isDirectory())
      throw new Error(
        `${dir}: no such folder of SAEs (expected one folder per site, e.g. resid_0/cfg.json, or the dictionary_learning layout resid_out_layer0/10_32768/ae.pt; or pass "neurons")`,
      );
    const add = (
      site: string | undefined,
      candidate: Omit<SaeEntry, 'site' | 'dIn' | 'l0'> & Partial<Pick<SaeEntry, 'dIn' | 'l0'>>,
      why: string,
    ) => {
      const entry = { dIn: null, l0: null, ...candidate };
      if (!site) return void skipped.push({ location: entry.location, reason: why });
      if (!valid.has(site))
        return void skipped.push({
          location: entry.location,
          reason: `site ${site} does not exist in a ${numLayers}-layer model`,
        });
      found.set(site, [...(found.get(site) ?? []), { site, ...entry }]);
    };
    const walk = (folder: string, depth: number) => {
      const names = fs.readdirSync(folder).sort();
      if (names.includes(GEMMA_SCOPE_PARAMS)) {
        const location = path.join(folder, GEMMA_SCOPE_PARAMS);
        const where = gemmaScopePath(location);
        const site =
          where.site ?? (valid.has(path.basename(folder)) ? path.basename(folder) : undefined);
        try {
          // Width and input width from W_enc's header, not the width_W folder name.
          const shape = gemmaScopeShape(location);
          add(
            site,
            { format: 'gemma_scope', location, width: shape.width, dIn: shape.dIn, l0: where.l0 },
            'cannot tell the site: no layer_L folder below a release folder ending in -res, -mlp or -att',
          );
        } catch (e) {
          add(undefined, { format: 'gemma_scope', location, width: null }, (e as Error).message);
        }
        return;
      }
      if (names.includes(AE_PT)) {
        // dictionary_learning: the submodule folder is the parent of <id>_<F>/ (or this folder).
        const location = path.join(folder, AE_PT);
        const site =
          siteFromDictionaryLearningFolder(path.basename(path.dirname(folder))) ??
          siteFromDictionaryLearningFolder(path.basename(folder)) ??
          (valid.has(path.basename(folder)) ? path.basename(folder) : undefined);
        let width: number | null;
        try {
          width = dictionaryLearningWidth(folder);
        } catch (e) {
          // Skipped with the reader's reason, as a SAELens folder with a bad cfg.json is.
          const entry = { format: 'dictionary_learning' as const, location, width: null };
          return add(undefined, entry, (e as Error).message);
        }
        add(
          site,
          { format: 'dictionary_learning', location, width },
          'cannot tell the site from the folder names',
        );
        return;
      }
      if (names.includes(SAELENS_CFG) && names.includes(SAELENS_WEIGHTS)) {
        let site: string | undefined;
        let why: string;
        let size: number | null = null;
        let dIn: number | null = null;
        try {
          const cfg = parseSaeLensCfg(path.join(folder, SAELENS_CFG));
          size = cfg.width;
          dIn = cfg.dIn;
          site = siteOfSaeLensCfg(cfg);
          if (!site && valid.has(path.basename(folder))) site = path.basename(folder);
          why = `hook_name ${JSON.stringify(cfg.hookName)} is not a site we know`;
        } catch (e) {
          why = (e as Error).message;
        }
        add(site, { format: 'saelens', location: folder, width: size, dIn }, why);
        return;
      }
      if (depth >= MAX_DEPTH) return;
      for (const name of names) {
        if (name.startsWith('.')) continue;
        const child = path.join(folder, name);
        if (fs.statSync(child).isDirectory()) walk(child, depth + 1);
      }
    };
    walk(dir, 0);
    for (const site of order) {
      const list = found.get(site);
      if (!list) continue;
      const chosen = chooseEntry(dir, site, list, width, l0);
      const want = expectedWidth(site);
      if (want !== undefined && chosen.dIn !== null && chosen.dIn !== want)
        throw widthMismatch(chosen.location, chosen.dIn, site, want);
      entries.set(site, chosen);
    }
  }

  const loaded = new Map<string, Dictionary>();
  const sites = () => order.filter((s) => entries.has(s));
  const entry = (site: string): SaeEntry => {
    const e = entries.get(site);
    if (!e) {
      const found = sites();
      const why = valid.has(site)
        ? ''
        : ` ("${site}" is not a site of this ${numLayers}-layer model)`;
      throw new Error(
        `${dir}: no SAE for site ${site}${why}; found ${found.length ? found.join(', ') : 'none'}` +
          (skipped.length
            ? `; skipped ${skipped.map((s) => `${s.location} (${s.reason})`).join('; ')}`
            : ''),
      );
    }
    return e;
  };
  return {
    dir,
    sites,
    has: (site) => entries.has(site),
    entry,
    declaredWidth: (site) => entry(site).width,
    used: () => sites().map((site) => entries.get(site)!),
    get(site) {
      const cached = loaded.get(site);
      if (cached) return cached;
      const e = entry(site);
      const loadedDict =
        e.format === 'identity'
          ? new IdentityDictionary(site, e.dIn!)
          : e.format === 'dictionary_learning'
            ? loadAePt(e.location, site)
            : e.format === 'gemma_scope'
              ? loadGemmaScopeNpz(e.location, site)
              : loadSaeLensFolder(e.location, site);
      // Converted as soon as it is read: the float32 copy is garbage from here on.
      const dict =
        loadedDict instanceof SparseAutoencoder ? loadedDict.inPrecision(dtype) : loadedDict;
      const want = expectedWidth(site);
      if (want !== undefined && dict.dIn !== want)
        throw widthMismatch(e.location, dict.dIn, site, want);
      if (e.width !== null && dict.width !== e.width)
        throw new Error(
          `${e.location}: holds ${dict.width} features, but its files declare ${e.width}`,
        );
      loaded.set(site, dict);
      return dict;
    },
    drop: (site) => void loaded.delete(site),
    dropAll: () => loaded.clear(),
    skipped: () => [...skipped],
  };
}

/**
 * The one dictionary a site uses among those found: the only one, or the only one of `width`
 * features when a width is asked for, or among Gemma Scope variants of one width the one whose
 * average L0 is closest to `l0`. Otherwise an error that lists what is there.
 */
function chooseEntry(
  dir: string,
  site: string,
  list: SaeEntry[],
  width: number | undefined,
  l0: number,
): SaeEntry {
  const listed = () => list.map((e) => `${e.location} (${widthText(e.width)})`).join(', ');
  const sizes = [...new Set(list.map((e) => e.width).filter((w) => w !== null))].sort(
    (a, b) => a - b,
  );
  const candidates = width === undefined ? list : list.filter((e) => e.width === width);
  if (candidates.length === 1) return candidates[0];
  // Gemma Scope L0 variants of one width: the closest average L0 (ties: the sparser).
  const oneWidth = new Set(candidates.map((e) => e.width)).size === 1;
  if (candidates.length > 1 && oneWidth && candidates.every((e) => e.l0 !== null))
    return candidates.reduce((best, e) => {
      const d = Math.abs(e.l0! - l0) - Math.abs(best.l0! - l0);
      return d < 0 || (d === 0 && e.l0! < best.l0!) ? e : best;
    });
  if (candidates.length === 0)
    throw new Error(
      `${dir}: no dictionary of ${width} features for site ${site}; found ${listed()}` +
        (sizes.length
          ? `; sizes present: ${sizes.join(', ')} (choose with ${SAE_WIDTH_FLAG})`
          : ''),
    );
  // Several: a width tells them apart only when their sizes differ.
  const canChoose = width === undefined && sizes.length > 1;
  throw new Error(
    `${dir}: ${candidates.length} dictionaries for site ${site}: ` +
      (width === undefined ? listed() : candidates.map((e) => e.location).join(', ')) +
      (canChoose
        ? `; sizes present: ${sizes.join(', ')}: choose one with ${SAE_WIDTH_FLAG} N`
        : '; keep one'),
  );
}

/** One line per site: which file serves it, in what format, its size and (Gemma Scope) L0. */
export function describeSaeChoices(library: SaeLibrary): string[] {
  const rows = library.used();
  const pad = Math.max(0, ...rows.map((e) => e.site.length));
  return rows.map(
    (e) =>
      `${e.site.padEnd(pad)}  ${e.format}  ${widthText(e.width)}` +
      (e.l0 !== null ? `, average L0 ${e.l0}` : '') +
      `  ${e.location}`,
  );
}
