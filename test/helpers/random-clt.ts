// A random cross-layer transcoder for tests: layer l's features write to every layer l' >= l.
// Each test picks its scales (they decide how many features are active on its model).

import { memoryDecoders, type CrossLayerTranscoder } from '../../src/transcoders/clt.ts';
import type { Rng } from '../../src/random.ts';

/** Standard deviations; encoder and decoder are in units of 1/√d. */
export interface RandomCltScales {
  encoder: number;
  encoderBias: number;
  /** Added to every encoder bias (fewer active features when negative). */
  encoderBiasOffset?: number;
  decoderBias: number;
  decoder: number;
}

/**
 * Draws encoders, encoder biases, decoder biases and decoders in that order, ReLU unless `extra`
 * says otherwise (evaluate `extra`'s random parts before the call: they draw from `rng` first).
 */
export function randomClt(
  rng: Rng,
  numLayers: number,
  d: number,
  F: number,
  scales: RandomCltScales,
  extra: Partial<CrossLayerTranscoder> = {},
): CrossLayerTranscoder {
  const vec = (m: number, s: number) => Float32Array.from({ length: m }, () => s * rng.normal());
  const layers = Array.from({ length: numLayers }, (_, l) => l);
  const offset = scales.encoderBiasOffset;
  return {
    numLayers,
    dIn: d,
    width: F,
    activation: 'relu',
    encoders: layers.map(() => vec(F * d, scales.encoder / Math.sqrt(d))),
    encoderBiases: layers.map(() => {
      const b = vec(F, scales.encoderBias);
      return offset === undefined ? b : b.map((v) => v + offset);
    }),
    decoderBiases: layers.map(() => vec(d, scales.decoderBias)),
    decoders: memoryDecoders(
      layers.map((l) => vec(F * (numLayers - l) * d, scales.decoder / Math.sqrt(d))),
      F,
      d,
    ),
    ...extra,
  };
}
