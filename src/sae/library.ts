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
}

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
  const valid = new Set(siteNames(numLayers));
  const order = siteNames(numLayers);
  const entries = new Map<string, SaeEntry>();
  const skipped: { location: string; reason: string }[] = [];
  const { modelWidth } = options;

  if (dir === NEURONS) {
    if (!modelWidth) throw new Error('openSaes("neurons"): the model width (modelWidth) is needed');
    for (const site of order) entries.set(site, { site, format: 'identity', location: NEURONS });
  } else {
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
      const seen = entries.get(site);
      if (seen)
        throw new Error(
          `${dir}: two dictionaries for site ${site}: ${seen.location} and ${entry.location}; keep one`,
        );
      entries.set(site, { site, ...entry });
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
        add(
          site,
          { format: 'dictionary_learning', location },
          'cannot tell the site from the folder names',
        );
        return;
      }
      if (names.includes(SAELENS_CFG) && names.includes(SAELENS_WEIGHTS)) {
        let site: string | undefined;
        let why: string;
        try {
          const cfg = parseSaeLensCfg(path.join(folder, SAELENS_CFG));
          site = siteOfSaeLensCfg(cfg);
          if (!site && valid.has(path.basename(folder))) site = path.basename(folder);
          why = `hook_name ${JSON.stringify(cfg.hookName)} is not a site we know`;
        } catch (e) {
          why = (e as Error).message;
        }
        add(site, { format: 'saelens', location: folder }, why);
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
          ? new IdentityDictionary(site, modelWidth!)
          : e.format === 'dictionary_learning'
            ? loadAePt(e.location, site)
            : loadSaeLensFolder(e.location, site);
      if (modelWidth !== undefined && dict.dIn !== modelWidth)
        throw new Error(
          `${e.location}: SAE input width ${dict.dIn} does not match the model width ${modelWidth}`,
        );
      loaded.set(site, dict);
      return dict;
    },
    drop: (site) => void loaded.delete(site),
    dropAll: () => loaded.clear(),
    skipped: () => [...skipped],
  };
}
