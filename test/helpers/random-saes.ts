// Random ReLU sparse autoencoders at every site of a model, for tests that need dictionaries but
// not trained ones. Encoders are tied to the unit decoder rows with a small negative bias, so a
// good share of the features fire on typical activations (and the error term is far from zero).

import type { GptNeoXConfig } from '../../src/model/config.ts';
import type { LanguageModel } from '../../src/model/language-model.ts';
import { siteNames } from '../../src/model/sites.ts';
import { SparseAutoencoder } from '../../src/sae/dictionary.ts';
import { normalizeRows } from '../../src/sae/train-loss.ts';
import { Rng } from '../../src/random.ts';

/** One SAE of `width` features per site (embed, attn_L, mlp_L, resid_L), keyed by site. */
export function randomSaes(
  config: GptNeoXConfig,
  width: number,
  seed: number,
): Map<string, SparseAutoencoder> {
  const d = config.hiddenSize;
  return randomSaesAt(
    siteNames(config.numLayers).map((site) => ({ site, dIn: d })),
    width,
    seed,
  );
}

/** One SAE of `width` features at each of `sites` of a model (default all), as wide as the site. */
export function randomModelSaes(
  model: LanguageModel,
  width: number,
  seed: number,
  sites = model.sites,
): Map<string, SparseAutoencoder> {
  return randomSaesAt(
    sites.map((site) => ({ site, dIn: model.siteWidth(site) })),
    width,
    seed,
  );
}

function randomSaesAt(
  sites: { site: string; dIn: number }[],
  width: number,
  seed: number,
): Map<string, SparseAutoencoder> {
  const rng = new Rng(seed);
  const saes = new Map<string, SparseAutoencoder>();
  for (const { site, dIn: d } of sites) {
    const decoder = new Float32Array(width * d);
    for (let i = 0; i < width * d; i++) decoder[i] = rng.normal();
    normalizeRows(decoder, d);
    const encoder = Float32Array.from(decoder, (v) => v * (0.8 + 0.4 * rng.next()));
    const encoderBias = Float32Array.from({ length: width }, () => -0.1 * rng.next());
    const decoderBias = Float32Array.from({ length: d }, () => 0.1 * rng.normal());
    saes.set(
      site,
      new SparseAutoencoder({
        site,
        kind: 'relu',
        dIn: d,
        width,
        encoder,
        encoderBias,
        decoder,
        decoderBias,
      }),
    );
  }
  return saes;
}
