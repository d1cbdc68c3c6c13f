// SHIFT's automatic judge on the organism: which circuit features are about gender, decided from
// the grammar's ground truth rather than by a person. Over a held-out annotated corpus, each token
// is known to come after the text last showed male or female gender (shown_m / shown_f: he, his,
// man, ... or she, her, woman, ...). A feature is gender-related when its mean activation on one
// gender's tokens is most of the sum of both means (default 60%). Activation, not firing, is
// compared because the organism's SAEs often share one feature between he and she and let its
// size tell them apart: such a feature fires on both pronouns but 60/40, and that lean is the
// gender it carries; even shares (50–55%) are pronoun or word-class features.

import type { OnProgress } from '../progress.ts';
import type { Tokenizer } from '../model/tokenizer.ts';
import type { LanguageModel } from '../model/language-model.ts';
import type { Dictionary } from '../sae/dictionary.ts';
import { forEachCorpusBatch, grammarTokenIds, labelCorpus } from './feature-labels.ts';
import { ORGANISM_MIX } from './train-model.ts';

/** Distinct from the training seeds (1, 101..303), the labels' (404) and the corpus file's (505). */
const JUDGE_SEED = 606;

/** A feature whose activation leans at least this much to one gender is gender-related. */
export const DEFAULT_MIN_SHARE = 0.6;

export interface GenderVerdict {
  site: string;
  feature: number;
  /** Mean activation on female tokens over the sum of the female and male means (0.5: no lean). */
  femaleShare: number;
  genderRelated: boolean;
}

export interface GenderJudgeOptions {
  /** The model organism's tokenizer (every grammar word one token); `modelDir` names it. */
  tokenizer: Tokenizer;
  modelDir: string;
  tokens?: number; // default 16384
  /** Share of one gender from which a feature is gender-related (default 0.6). */
  minShare?: number;
  onProgress?: OnProgress;
}

/** Verdicts for `features`, in their order. */
export function judgeGender(
  model: LanguageModel,
  dictionaries: (site: string) => Dictionary,
  features: readonly { site: string; feature: number }[],
  o: GenderJudgeOptions,
): GenderVerdict[] {
  const minShare = o.minShare ?? DEFAULT_MIN_SHARE;
  if (!(minShare > 0.5 && minShare <= 1))
    throw new Error(`gender judge: the share must be in (0.5, 1], got ${minShare}`);
  const { tokenIds, eosId } = grammarTokenIds(o.tokenizer, o.modelDir);
  const T = model.shape.maxPositions;
  const corpus = labelCorpus(o.tokens ?? 16384, T, tokenIds, eosId, JUDGE_SEED, ORGANISM_MIX);
  const gender = corpus.words.map((w) => w?.genderShown ?? 'none');
  const counts = {
    m: gender.filter((g) => g === 'm').length,
    f: gender.filter((g) => g === 'f').length,
  };
  if (counts.m === 0 || counts.f === 0)
    throw new Error('gender judge: the judging corpus shows only one gender; use more tokens');
  const sites = [...new Set(features.map((f) => f.site))];
  const sums = new Map(
    sites.map((s) => {
      const F = dictionaries(s).width;
      return [s, { m: new Float64Array(F), f: new Float64Array(F) }];
    }),
  );
  forEachCorpusBatch(model, corpus, 32, (pass, r0, n) => {
    for (const site of sites) {
      const dict = dictionaries(site);
      const F = dict.width;
      const acts = dict.encode(pass.activation(site), n);
      const sum = sums.get(site)!;
      for (let i = 0; i < n; i++) {
        const g = gender[r0 * T + i];
        if (g !== 'm' && g !== 'f') continue;
        const into = sum[g];
        for (let k = 0; k < F; k++) into[k] += acts[i * F + k];
      }
    }
    o.onProgress?.(r0 + n / T, corpus.rows);
  });
  return features.map(({ site, feature }) => {
    const sum = sums.get(site)!;
    const male = sum.m[feature] / counts.m;
    const female = sum.f[feature] / counts.f;
    const total = Math.abs(male) + Math.abs(female);
    const femaleShare = total > 0 ? Math.abs(female) / total : 0.5;
    return {
      site,
      feature,
      femaleShare,
      genderRelated: total > 0 && Math.max(femaleShare, 1 - femaleShare) >= minShare,
    };
  });
}
