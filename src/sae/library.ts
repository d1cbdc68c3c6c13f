// A folder of dictionaries, one per site, in any of the layouts ./formats.ts reads. Opening it only
// scans names and small cfg files; a site's weights are read when first asked for and can be
// dropped again, so a full set (19 SAEs of 32768x512 for Pythia-70M) never has to sit in memory.

import fs from 'node:fs';
import path from 'node:path';
import { siteNames } from '../model/sites.ts';
import { IdentityDictionary, type Dictionary } from './dictionary.ts';
import {
  AE_PT,
  SAELENS_CFG,
  SAELENS_WEIGHTS,
  loadAePt,
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
  format: 'dictionary_learning' | 'saelens' | 'identity';
  /** ae.pt file or SAELens folder. */
  location: string;
  /**
   * Its number of features as its files declare it (dictionary_learning: config.json's
   * trainer.dict_size, else the <id>_<F> folder name; SAELens: d_sae), null when they do not.
   */
  width: number | null;
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
   * The model's own sites and their widths (a LanguageModel of any engine): then the valid sites
   * are these (attn_z_L included on the generic engine) rather than GPT-NeoX's, and each SAE's d_in
   * (and each neuron dictionary's width) is its site's width rather than modelWidth.
   */
  model?: { readonly sites: string[]; siteWidth(site: string): number };
  /**
   * The dictionary size to use (number of features, e.g. 32768) when the folder holds several
   * per site, as dictionary_learning releases do; every site then uses a dictionary of this size.
   */
  width?: number;
}

/** The command-line flag that sets OpenSaesOptions.width, named in the errors that need it. */
export const SAE_WIDTH_FLAG = '--sae-width';

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

const MAX_DEPTH = 4;

/**
 * Opens `dir` (or the special value `neurons`) for a model with `numLayers` layers.
 * Recognises dictionary_learning trees (<sub>/<id>_<F>/ae.pt), SAELens folders (cfg.json +
 * sae_weights.safetensors, site from hook_name) and ours (SAELens folders named after the site).
 */
export function openSaes(
  dir: string,
  numLayers: number,
  options: OpenSaesOptions = {},
): SaeLibrary {
  const order = options.model?.sites ?? siteNames(numLayers);
  const valid = new Set(order);
  const entries = new Map<string, SaeEntry>();
  const skipped: { location: string; reason: string }[] = [];
  const { width } = options;
  const modelWidth = options.model?.siteWidth('embed') ?? options.modelWidth;
  const widthAt = (site: string) => options.model?.siteWidth(site) ?? modelWidth;
  if (width !== undefined && !(Number.isInteger(width) && width > 0))
    throw new Error(`${SAE_WIDTH_FLAG}: expected a positive integer, got ${width}`);

  if (dir === NEURONS) {
    if (!modelWidth) throw new Error('openSaes("neurons"): the model width (modelWidth) is needed');
    for (const site of order)
      entries.set(site, { site, format: 'identity', location: NEURONS, width: widthAt(site)! });
  } else {
    // Every dictionary found, by site; one per site is chosen after the walk.
    const found = new Map<string, SaeEntry[]>();
    const stat = fs.statSync(dir, { throwIfNoEntry: false });
    if (!stat?.isDirectory())
      throw new Error(
        `${dir}: no such folder of SAEs (expected one folder per site, e.g. resid_0/cfg.json, or the dictionary_learning layout resid_out_layer0/10_32768/ae.pt; or pass "neurons")`,
      );
    const add = (site: string | undefined, entry: Omit<SaeEntry, 'site'>, why: string) => {
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
        try {
          const cfg = parseSaeLensCfg(path.join(folder, SAELENS_CFG));
          size = cfg.width;
          site = siteOfSaeLensCfg(cfg);
          if (!site && valid.has(path.basename(folder))) site = path.basename(folder);
          why = `hook_name ${JSON.stringify(cfg.hookName)} is not a site we know`;
        } catch (e) {
          why = (e as Error).message;
        }
        add(site, { format: 'saelens', location: folder, width: size }, why);
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
      if (list) entries.set(site, chooseEntry(dir, site, list, width));
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
    get(site) {
      const cached = loaded.get(site);
      if (cached) return cached;
      const e = entry(site);
      const dict =
        e.format === 'identity'
          ? new IdentityDictionary(site, widthAt(site)!)
          : e.format === 'dictionary_learning'
            ? loadAePt(e.location, site)
            : loadSaeLensFolder(e.location, site);
      const expected = widthAt(site);
      if (expected !== undefined && dict.dIn !== expected)
        throw new Error(
          options.model && expected !== modelWidth
            ? `${e.location}: SAE input width ${dict.dIn} does not match the width of site ${site}, ${expected}`
            : `${e.location}: SAE input width ${dict.dIn} does not match the model width ${expected}`,
        );
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
 * features when a width is asked for. Otherwise an error that lists what is there.
 */
function chooseEntry(
  dir: string,
  site: string,
  list: SaeEntry[],
  width: number | undefined,
): SaeEntry {
  const listed = () => list.map((e) => `${e.location} (${widthText(e.width)})`).join(', ');
  const sizes = [...new Set(list.map((e) => e.width).filter((w) => w !== null))].sort(
    (a, b) => a - b,
  );
  const candidates = width === undefined ? list : list.filter((e) => e.width === width);
  if (candidates.length === 1) return candidates[0];
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
