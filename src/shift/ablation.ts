// Zero-ablating chosen dictionary features while keeping everything else, errors included.
//
// A site's activation is x = W_D f + b_D + ε with ε defined as the rest, so setting f_i to 0 and
// keeping the other features and ε gives x - f_i W_D[i]: the hook encodes only to learn f_i and
// never decodes. Each hook sees its site as the earlier ablations left it, so features of later
// sites are computed from the edited model, as they would be in it.
// N rows (tokens), d model width, F dictionary width.

import type { SiteHook } from '../model/gptneox.ts';
import type { Dictionary } from '../sae/dictionary.ts';

export interface FeatureRef {
  site: string;
  feature: number;
}

/** Hooks that zero the given features at their sites; other sites are left alone. */
export function zeroAblationHooks(
  dictionaries: (site: string) => Dictionary,
  features: readonly FeatureRef[],
): Record<string, SiteHook> {
  const bySite = new Map<string, number[]>();
  for (const { site, feature } of features) {
    const list = bySite.get(site) ?? [];
    list.push(feature);
    bySite.set(site, list);
  }
  const hooks: Record<string, SiteHook> = {};
  for (const [site, list] of bySite) {
    const dict = dictionaries(site);
    for (const i of list)
      if (!(Number.isInteger(i) && i >= 0 && i < dict.width))
        throw new Error(`ablation: feature ${i} is outside ${site}'s dictionary of ${dict.width}`);
    const chosen = [...new Set(list)];
    const d = dict.dIn;
    const F = dict.width;
    hooks[site] = (x) => {
      const N = x.length / d;
      const f = dict.encode(x, N); // [N*F]
      const out = Float32Array.from(x);
      for (const i of chosen) {
        const w = dict.decoderRow(i);
        for (let n = 0; n < N; n++) {
          const a = f[n * F + i];
          if (a !== 0) for (let j = 0; j < d; j++) out[n * d + j] -= a * w[j];
        }
      }
      return out;
    };
  }
  return hooks;
}
