// A folder of per-layer transcoders in circuit-tracer's layout: config.yaml (model_kind
// transcoder_set, the hooks, the activation, one path per layer under `transcoders`) and
// layer_<i>.safetensors with W_enc [F, d], W_dec [F, d], b_enc [F], b_dec [d], optional W_skip
// [d, d], activation_function.threshold [F] (JumpReLU) and k (TopK, a 1-element tensor).
// config.yaml is read as the flat subset circuit-tracer's configs use (key: value, and one list).

import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { readSafetensors, writeSafetensors } from '../io/safetensors.ts';
import { readTextFile } from '../io/text-file.ts';
import { describeIssues } from '../io/validation.ts';
import { checkTranscoder, type Transcoder, type TranscoderActivation } from './transcoder.ts';

/** Our hook names (TransformerLens' for the same places): the MLP's normalised input and its output. */
export const FEATURE_INPUT_HOOK = 'blocks.{L}.ln2.hook_normalized';
export const FEATURE_OUTPUT_HOOK = 'blocks.{L}.hook_mlp_out';

/** config.yaml's fields that circuit-tracer's transcoder_set and cross_layer_transcoder share. */
export const sharedConfigShape = {
  model_name: z.string().optional(),
  scan: z.string().optional(),
  feature_input_hook: z.string(),
  feature_output_hook: z.string(),
  activation: z.enum(['relu', 'jumprelu', 'topk']).optional(),
  k: z.coerce.number().int().positive().optional(),
};

const configSchema = z.object({
  model_kind: z.literal('transcoder_set'),
  ...sharedConfigShape,
  transcoders: z.array(z.string()).min(1),
});
export type TranscoderSetConfig = z.infer<typeof configSchema>;

/** The flat YAML subset: `key: value` lines and `- item` lines under the last key with no value. */
export function parseFlatYaml(text: string, file: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  let list: string | null = null;
  const scalar = (v: string) => v.trim().replace(/^(['"])(.*)\1$/, '$2');
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/\s+#.*$/, '').replace(/\r$/, '');
    if (line.trim() === '' || line.trim().startsWith('#')) return;
    const item = /^\s*-\s+(.*)$/.exec(line);
    if (item) {
      if (list === null) throw new Error(`${file}:${i + 1}: a list item outside a list`);
      (out[list] as string[]).push(scalar(item[1]));
      return;
    }
    const kv = /^([A-Za-z_][\w-]*)\s*:\s*(.*)$/.exec(line);
    if (!kv) throw new Error(`${file}:${i + 1}: expected "key: value" or "- item", got "${raw}"`);
    if (kv[2].trim() === '') {
      list = kv[1];
      out[list] = [];
    } else {
      list = null;
      out[kv[1]] = scalar(kv[2]);
    }
  });
  return out;
}

export function saveTranscoderSet(
  dir: string,
  transcoders: Transcoder[],
  meta: { modelName?: string; scan?: string } = {},
): void {
  fs.mkdirSync(dir, { recursive: true });
  transcoders.forEach((tc, L) => {
    if (tc.layer !== L) throw new Error(`saveTranscoderSet: entry ${L} is layer ${tc.layer}`);
    checkTranscoder(tc);
    const { dIn: d, width: F } = tc;
    const tensors = [
      { name: 'W_enc', shape: [F, d], data: tc.encoder },
      { name: 'W_dec', shape: [F, d], data: tc.decoder },
      { name: 'b_enc', shape: [F], data: tc.encoderBias },
      { name: 'b_dec', shape: [d], data: tc.decoderBias },
    ];
    if (tc.skip) tensors.push({ name: 'W_skip', shape: [d, d], data: tc.skip });
    if (tc.threshold)
      tensors.push({ name: 'activation_function.threshold', shape: [F], data: tc.threshold });
    if (tc.activation === 'topk')
      tensors.push({ name: 'k', shape: [1], data: Float32Array.of(tc.k!) });
    writeSafetensors(path.join(dir, `layer_${L}.safetensors`), tensors);
  });
  const tc0 = transcoders[0];
  const lines = [
    'model_kind: transcoder_set',
    ...(meta.modelName ? [`model_name: ${meta.modelName}`] : []),
    ...(meta.scan ? [`scan: ${meta.scan}`] : []),
    `feature_input_hook: ${FEATURE_INPUT_HOOK}`,
    `feature_output_hook: ${FEATURE_OUTPUT_HOOK}`,
    `activation: ${tc0.activation}`,
    ...(tc0.activation === 'topk' ? [`k: ${tc0.k}`] : []),
    'transcoders:',
    ...transcoders.map((_, L) => `  - layer_${L}.safetensors`),
  ];
  fs.writeFileSync(path.join(dir, 'config.yaml'), lines.join('\n') + '\n');
}

/** Reads a transcoder_set folder; layer paths are relative to the folder (hf:// URIs are refused). */
export function loadTranscoderSet(dir: string): {
  config: TranscoderSetConfig;
  transcoders: Transcoder[];
} {
  const file = path.join(dir, 'config.yaml');
  if (!fs.existsSync(file))
    throw new Error(`${dir}: no config.yaml (a circuit-tracer transcoder_set folder has one)`);
  const parsed = configSchema.safeParse(parseFlatYaml(readTextFile(file), file));
  if (!parsed.success) throw new Error(`${file}: ${describeIssues(parsed.error)}`);
  const config = parsed.data;
  const transcoders = config.transcoders.map((rel, L) => {
    if (/^[a-z]+:\/\//.test(rel))
      throw new Error(`${file}: transcoders[${L}] is ${rel}; download it and give a local path`);
    const where = path.resolve(dir, rel);
    const t = readSafetensors(where);
    const get = (name: string) => {
      const x = t.get(name);
      if (!x) throw new Error(`${where}: no tensor ${name} (has ${[...t.keys()].join(', ')})`);
      return x;
    };
    const bEnc = get('b_enc');
    const bDec = get('b_dec');
    const F = bEnc.data.length;
    const d = bDec.data.length;
    const threshold = t.get('activation_function.threshold') ?? t.get('threshold');
    const kTensor = t.get('k');
    const activation: TranscoderActivation =
      config.activation ?? (threshold ? 'jumprelu' : kTensor ? 'topk' : 'relu');
    const tc: Transcoder = {
      layer: L,
      dIn: d,
      width: F,
      activation,
      encoder: get('W_enc').data,
      encoderBias: bEnc.data,
      decoder: get('W_dec').data,
      decoderBias: bDec.data,
      ...(t.get('W_skip') ? { skip: get('W_skip').data } : {}),
      ...(threshold ? { threshold: threshold.data } : {}),
      ...(activation === 'topk' ? { k: config.k ?? (kTensor ? kTensor.data[0] : undefined) } : {}),
    };
    checkTranscoder(tc, where);
    return tc;
  });
  return { config, transcoders };
}
