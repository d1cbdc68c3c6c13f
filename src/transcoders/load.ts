// Whatever --transcoders names: a circuit-tracer folder (config.yaml says transcoder_set or
// cross_layer_transcoder) or a Gemma Scope transcoder release (layer_L/width_W/average_l0_K/params.npz).

import fs from 'node:fs';
import path from 'node:path';
import { readTextFile } from '../io/text-file.ts';
import type { Transcoder } from './transcoder.ts';
import type { CrossLayerTranscoder } from './clt.ts';
import { loadTranscoderSet, parseFlatYaml } from './file.ts';
import { loadClt } from './clt-file.ts';
import {
  isGemmaScopeRelease,
  loadGemmaScopeTranscoders,
  type GemmaScopeChoice,
} from './gemma-scope.ts';

export interface LoadedTranscoders {
  kind: 'transcoder_set' | 'cross_layer_transcoder' | 'gemma_scope';
  /** config.yaml's model_name, when there is one. */
  modelName?: string;
  transcoders: Transcoder[] | CrossLayerTranscoder;
}

export function loadTranscoders(dir: string, gemmaScope: GemmaScopeChoice = {}): LoadedTranscoders {
  const config = path.join(dir, 'config.yaml');
  if (fs.existsSync(config)) {
    const kind = parseFlatYaml(readTextFile(config), config).model_kind;
    if (kind === 'cross_layer_transcoder') {
      const { config: c, clt } = loadClt(dir);
      return { kind, modelName: c.model_name, transcoders: clt };
    }
    if (kind === 'transcoder_set') {
      const { config: c, transcoders } = loadTranscoderSet(dir);
      return { kind, modelName: c.model_name, transcoders };
    }
    throw new Error(
      `${config}: model_kind ${JSON.stringify(kind)}; expected transcoder_set or cross_layer_transcoder`,
    );
  }
  if (isGemmaScopeRelease(dir))
    return {
      kind: 'gemma_scope',
      transcoders: loadGemmaScopeTranscoders(dir, gemmaScope).transcoders,
    };
  throw new Error(
    `${dir}: neither a circuit-tracer folder (config.yaml) nor a Gemma Scope transcoder release (layer_0/width_W/average_l0_K/params.npz)`,
  );
}
