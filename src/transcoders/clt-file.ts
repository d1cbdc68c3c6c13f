// A cross-layer transcoder folder in circuit-tracer's layout: config.yaml (model_kind
// cross_layer_transcoder, the hooks; our `activation` and `k` for TopK, which circuit-tracer's
// CLT does not have) and, per layer i, W_enc_i.safetensors holding W_enc_i [F, d], b_enc_i [F],
// b_dec_i [d] and (JumpReLU) threshold_i [F], and W_dec_i.safetensors holding W_dec_i [F, n − i, d].
// Encoders are read at once; decoders lazily: the rows of the features a graph asks for, read at
// their offsets and kept in a cache of bounded size.

import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { openSafetensors, writeSafetensors, type SafetensorsFile } from '../io/safetensors.ts';
import { decodeBF16, decodeF16 } from '../io/float16.ts';
import { readTextFile } from '../io/text-file.ts';
import { describeIssues } from '../io/validation.ts';
import { checkClt, type CltDecoders, type CrossLayerTranscoder } from './clt.ts';
import {
  FEATURE_INPUT_HOOK,
  FEATURE_OUTPUT_HOOK,
  parseFlatYaml,
  sharedConfigShape,
} from './file.ts';

const configSchema = z.object({
  model_kind: z.literal('cross_layer_transcoder'),
  ...sharedConfigShape,
});
export type CltConfig = z.infer<typeof configSchema>;

/** Decoder floats the lazy cache keeps before it drops the oldest rows (64 M floats = 256 MB). */
export const DECODER_CACHE_FLOATS = 64 * 1024 * 1024;

export function saveClt(
  dir: string,
  clt: CrossLayerTranscoder,
  meta: { modelName?: string; scan?: string } = {},
): void {
  checkClt(clt);
  const { numLayers: n, dIn: d, width: F } = clt;
  fs.mkdirSync(dir, { recursive: true });
  for (let i = 0; i < n; i++) {
    writeSafetensors(path.join(dir, `W_enc_${i}.safetensors`), [
      { name: `W_enc_${i}`, shape: [F, d], data: clt.encoders[i] },
      { name: `b_enc_${i}`, shape: [F], data: clt.encoderBiases[i] },
      { name: `b_dec_${i}`, shape: [d], data: clt.decoderBiases[i] },
      ...(clt.thresholds ? [{ name: `threshold_${i}`, shape: [F], data: clt.thresholds[i] }] : []),
    ]);
    writeSafetensors(path.join(dir, `W_dec_${i}.safetensors`), [
      { name: `W_dec_${i}`, shape: [F, n - i, d], data: clt.decoders.layer(i) },
    ]);
  }
  const lines = [
    'model_kind: cross_layer_transcoder',
    ...(meta.modelName ? [`model_name: ${meta.modelName}`] : []),
    ...(meta.scan ? [`scan: ${meta.scan}`] : []),
    `feature_input_hook: ${FEATURE_INPUT_HOOK}`,
    `feature_output_hook: ${FEATURE_OUTPUT_HOOK}`,
    `activation: ${clt.activation}`,
    ...(clt.activation === 'topk' ? [`k: ${clt.k}`] : []),
  ];
  fs.writeFileSync(path.join(dir, 'config.yaml'), lines.join('\n') + '\n');
}

/** Reads a cross_layer_transcoder folder: encoders now, decoders when asked for. */
export function loadClt(
  dir: string,
  cacheFloats = DECODER_CACHE_FLOATS,
): { config: CltConfig; clt: CrossLayerTranscoder } {
  const file = path.join(dir, 'config.yaml');
  if (!fs.existsSync(file))
    throw new Error(
      `${dir}: no config.yaml (a circuit-tracer cross_layer_transcoder folder has one)`,
    );
  const parsed = configSchema.safeParse(parseFlatYaml(readTextFile(file), file));
  if (!parsed.success) throw new Error(`${file}: ${describeIssues(parsed.error)}`);
  const config = parsed.data;
  const present = fs.readdirSync(dir).filter((f) => /^W_enc_\d+\.safetensors$/.test(f)).length;
  if (present === 0) throw new Error(`${dir}: no W_enc_0.safetensors (one W_enc_i file per layer)`);
  const n = present;
  const encoders: Float32Array[] = [];
  const encoderBiases: Float32Array[] = [];
  const decoderBiases: Float32Array[] = [];
  const thresholds: Float32Array[] = [];
  const decoderFiles: SafetensorsFile[] = [];
  let d = 0;
  let F = 0;
  for (let i = 0; i < n; i++) {
    const where = path.join(dir, `W_enc_${i}.safetensors`);
    if (!fs.existsSync(where))
      throw new Error(
        `${dir}: ${n} W_enc files but no W_enc_${i}.safetensors (layers 0..${n - 1})`,
      );
    const enc = openSafetensors(where);
    const shape = enc.shape(`W_enc_${i}`);
    if (shape.length !== 2)
      throw new Error(`${where}: W_enc_${i} has shape [${shape}], expected [F, d]`);
    if (i === 0) [F, d] = shape;
    encoders.push(enc.read(`W_enc_${i}`).data);
    encoderBiases.push(enc.read(`b_enc_${i}`).data);
    decoderBiases.push(enc.read(`b_dec_${i}`).data);
    if (enc.has(`threshold_${i}`)) thresholds.push(enc.read(`threshold_${i}`).data);
    const decPath = path.join(dir, `W_dec_${i}.safetensors`);
    const dec = openSafetensors(decPath);
    const want = [F, n - i, d];
    const got = dec.shape(`W_dec_${i}`);
    if (got.join() !== want.join())
      throw new Error(
        `${decPath}: W_dec_${i} has shape [${got}], expected [${want}] (F, n − i, d)`,
      );
    decoderFiles.push(dec);
  }
  if (thresholds.length !== 0 && thresholds.length !== n)
    throw new Error(`${dir}: threshold_i in ${thresholds.length} of ${n} W_enc files`);
  const activation =
    config.activation ?? (thresholds.length ? 'jumprelu' : config.k ? 'topk' : 'relu');
  const clt: CrossLayerTranscoder = {
    numLayers: n,
    dIn: d,
    width: F,
    activation,
    ...(activation === 'topk' ? { k: config.k } : {}),
    ...(thresholds.length ? { thresholds } : {}),
    encoders,
    encoderBiases,
    decoderBiases,
    decoders: lazyDecoders(decoderFiles, n, d, F, cacheFloats),
  };
  checkClt(clt, dir);
  return { config, clt };
}

/** Decoder rows read from the files at their offsets, the most recent kept up to `cacheFloats`. */
function lazyDecoders(
  files: SafetensorsFile[],
  n: number,
  d: number,
  F: number,
  cacheFloats: number,
): CltDecoders {
  const cache = new Map<string, Float32Array>();
  let cached = 0;
  const readRow = (l: number, i: number): Float32Array => {
    const key = `${l}/${i}`;
    const hit = cache.get(key);
    if (hit) return hit;
    const file = files[l];
    const name = `W_dec_${l}`;
    const m = (n - l) * d;
    const dtype = file.dtype(name);
    const size = dtype === 'F32' ? 4 : dtype === 'F16' || dtype === 'BF16' ? 2 : 0;
    if (size === 0)
      throw new Error(`${file.path}: ${name} has dtype ${dtype}; expected F32, F16 or BF16`);
    const { begin } = file.byteRange(name);
    const bytes = new Uint8Array(m * size);
    const fd = fs.openSync(file.path, 'r');
    try {
      const got = fs.readSync(fd, bytes, 0, bytes.length, begin + i * m * size);
      if (got !== bytes.length) throw new Error(`${file.path}: ${name} row ${i} is cut short`);
    } finally {
      fs.closeSync(fd);
    }
    let row: Float32Array;
    if (dtype === 'F32') row = new Float32Array(bytes.buffer);
    else {
      row = new Float32Array(m);
      const bits = new Uint16Array(bytes.buffer);
      if (dtype === 'F16') decodeF16(bits, row);
      else decodeBF16(bits, row);
    }
    // Bounded: drop the oldest rows (Map keeps insertion order) before going over the budget.
    for (const [k, v] of cache) {
      if (cached + m <= cacheFloats) break;
      cache.delete(k);
      cached -= v.length;
    }
    if (m <= cacheFloats) {
      cache.set(key, row);
      cached += m;
    }
    return row;
  };
  return {
    rows(l, ids) {
      const m = (n - l) * d;
      const out = new Float32Array(ids.length * m);
      ids.forEach((i, j) => {
        if (!(Number.isInteger(i) && i >= 0 && i < F))
          throw new Error(`${files[l].path}: no feature ${i} (width ${F})`);
        out.set(readRow(l, i), j * m);
      });
      return out;
    },
    layer: (l) => files[l].read(`W_dec_${l}`).data,
  };
}
