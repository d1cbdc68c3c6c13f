// `sfc view --live`: the model and dictionaries opened once, behind the LiveEngine the viewer's
// server calls (src/viewer/ never imports the engine; the CLI wires the two). Each request runs
// what `sfc intervene` runs (interveneOnPrompt, nodeActivations), so the page shows its numbers.

import type { WeightDtype } from '../sae/dictionary.ts';
import fs from 'node:fs';
import path from 'node:path';
import { readCorpus } from '../data/corpus.ts';
import type { LanguageModel } from '../model/language-model.ts';
import { openModel } from '../model/load-family.ts';
import type { Tokenizer } from '../model/tokenizer.ts';
import type { Dictionary } from '../sae/dictionary.ts';
import { NEURONS, openSaes } from '../sae/library.ts';
import {
  cachedFeatureStats,
  computeFeatureStats,
  type FeatureStats,
} from '../steer/feature-stats.ts';
import {
  parseIntervention,
  resolveInterventions,
  type Intervention,
  type InterventionSpec,
} from '../steer/intervention.ts';
import { interveneOnPrompt, nodeActivations } from '../steer/run.ts';
import type { BosMode } from '../model/tokenizer.ts';
import type {
  ActivationsRequest,
  InterveneRequest,
  LiveEngine,
  LiveIntervention,
} from '../viewer/live-api.ts';

export interface FeatureStatsSource {
  model: LanguageModel;
  modelDir: string;
  saesDir: string;
  /** The dictionary folder of `site` (hashed into the cache key). */
  location: (site: string) => string;
  dictionary: (site: string) => Dictionary;
  corpus: string;
  cache: string;
  /** Tokenizes a corpus line (thrown when the model has no tokenizer). */
  encode: (text: string) => number[];
  /** Told when statistics are computed rather than read from the cache. */
  onCompute?: (site: string) => void;
}

/** The `stats` of resolveInterventions: corpus means and maxima, cached per site and inputs. */
export function featureStatsFor(s: FeatureStatsSource): (site: string) => FeatureStats {
  return (site) => {
    if (!fs.existsSync(s.corpus))
      throw new Error(
        `${s.corpus}: no corpus for the mean and max activations (mean, steer=Amax); pass --corpus FILE (one text per line)`,
      );
    const location = s.saesDir === NEURONS ? NEURONS : s.location(site);
    const inputs = [
      path.join(s.modelDir, 'config.json'),
      path.join(s.modelDir, 'model.safetensors'),
      path.join(s.modelDir, 'model.safetensors.index.json'),
      location,
      path.join(location, 'sae_weights.safetensors'),
      s.corpus,
    ];
    return cachedFeatureStats(s.cache, site, inputs, () => {
      s.onCompute?.(site);
      const docs = readCorpus(s.corpus).map(s.encode);
      return computeFeatureStats(s.model, s.dictionary(site), docs);
    });
  };
}

export interface LiveEngineOptions {
  model: string;
  saes: string;
  saeWidth?: number;
  dtype?: WeightDtype;
  saeL0?: number;
  corpus: string;
  cache: string;
  bos: BosMode;
}

/** Opens the model and dictionaries and answers the viewer's API with them. */
export function openLiveEngine(o: LiveEngineOptions): LiveEngine & { model: LanguageModel } {
  const { model, tokenizer } = openModel(o.model, { tokenizer: true });
  const library = openSaes(o.saes, model.shape.numLayers, {
    model,
    width: o.saeWidth,
    dtype: o.dtype,
    l0: o.saeL0,
  });
  const dictionary = (site: string) => library.get(site);
  const needTokenizer = (): Tokenizer => {
    if (!tokenizer)
      throw new Error(`${o.model}: no tokenizer.json, needed to read text; send "ids" instead`);
    return tokenizer;
  };
  const stats = featureStatsFor({
    model,
    modelDir: o.model,
    saesDir: o.saes,
    location: (site) => library.entry(site).location,
    dictionary,
    corpus: o.corpus,
    cache: o.cache,
    encode: (text) => needTokenizer().encodePrompt(text, o.bos).ids,
    onCompute: (site) =>
      process.stderr.write(
        `feature statistics for ${site} on ${o.corpus} (cached in ${o.cache})\n`,
      ),
  });
  const show = (id: number) => (tokenizer ? tokenizer.tokenString(id) : String(id));
  const prepare = (r: { prompt?: string; ids?: number[]; interventions: LiveIntervention[] }) => {
    const ids = r.ids ?? needTokenizer().encodePrompt(r.prompt!, o.bos).ids;
    if (ids.length === 0) throw new Error('the prompt is empty: nothing to run');
    if (ids.length > model.shape.maxPositions)
      throw new Error(
        `the prompt has ${ids.length} tokens, more than the model's context of ${model.shape.maxPositions}`,
      );
    const vocab = model.shape.vocabSize;
    const badId = ids.find((id) => id >= vocab);
    if (badId !== undefined)
      throw new Error(`token id ${badId} is outside the vocabulary (0..${vocab - 1})`);
    const specs = r.interventions.map((iv): InterventionSpec =>
      typeof iv === 'string' ? parseIntervention(iv) : iv,
    );
    const interventions: Intervention[] = resolveInterventions(specs, { model, dictionary, stats });
    return { ids, interventions, tokens: ids.map(show) };
  };
  return {
    model,
    intervene(r: InterveneRequest) {
      const { ids, interventions, tokens } = prepare(r);
      const outcome = interveneOnPrompt({ model, dictionary }, ids, interventions, {
        top: r.top,
        generate: r.generate,
        temperature: r.temperature,
        seed: r.seed,
      });
      const decode = (g: number[]) => (tokenizer ? tokenizer.decode(g) : g.join(','));
      return {
        ids,
        tokens,
        interventions: interventions.map(
          (iv, i) => iv.spec.text ?? JSON.stringify(r.interventions[i]),
        ),
        top: outcome.top.map((t) => ({ ...t, token: show(t.id) })),
        kl: outcome.kl,
        generated: outcome.generated && {
          without: decode(outcome.generated.without),
          with: decode(outcome.generated.with),
        },
      };
    },
    activations(r: ActivationsRequest) {
      const { ids, interventions, tokens } = prepare(r);
      for (const n of r.nodes)
        if (!model.sites.includes(n.site))
          throw new Error(`node ${n.site}: the model has no such site`);
      const { before, after } = nodeActivations({ model, dictionary }, ids, r.nodes, interventions);
      return { ids, tokens, before, after };
    },
  };
}
