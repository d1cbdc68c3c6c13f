// Loading a GPT-NeoX model folder as people have them from the Hugging Face Hub:
// config.json + model.safetensors (or shards listed in model.safetensors.index.json), F32/F16/BF16,
// and optionally tokenizer.json.

import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { describeIssues } from '../io/validation.ts';
import { openSafetensors, type SafetensorsFile } from '../io/safetensors.ts';
import { readJsonFile } from '../io/text-file.ts';
import { Tokenizer } from './tokenizer.ts';
import { parseConfig, type GptNeoXConfig } from './config.ts';
import { parameterLayout, type GptNeoXWeights } from './weights.ts';

export interface LoadedModel {
  dir: string;
  config: GptNeoXConfig;
  weights: GptNeoXWeights;
  tokenizer?: Tokenizer; // only when asked for and the folder has tokenizer.json
}

/** Absolute path of the model shipped with this repo, the default of every --model. */
export function defaultModelDir(): string {
  return fileURLToPath(new URL('../../models/organism', import.meta.url));
}

const CONVERT_HINT = (dir: string) =>
  `convert it once to safetensors with Python (pip install torch safetensors):\n` +
  `  import torch; from safetensors.torch import save_file\n` +
  `  sd = torch.load("${path.join(dir, 'pytorch_model.bin')}", map_location="cpu")\n` +
  `  save_file({k: v.contiguous() for k, v in sd.items()}, "${path.join(dir, 'model.safetensors')}", metadata={"format": "pt"})\n` +
  `or with transformers: GPTNeoXForCausalLM.from_pretrained(${JSON.stringify(dir)}).save_pretrained(${JSON.stringify(dir)}, safe_serialization=True)`;

// Buffers some checkpoints carry (Pythia's and GPT-2's causal masks, rotary frequencies); we
// recompute them.
const IGNORED_BUFFER = /\.(attention|attn)\.(bias|masked_bias)$|\.rotary_emb\.inv_freq$/;
const ATTENTION_BIAS = /\.attention\.(query_key_value|dense)\.bias$/;

const indexSchema = z.looseObject({ weight_map: z.record(z.string(), z.string()) });

/**
 * The path of a shard the index names, which must be a file inside the model folder: an index
 * from the internet may not send us reading /etc/passwd or ../../secrets (nor a symlink out).
 */
export function shardInside(dir: string, shard: string, index: string): string {
  const outside = (why: string) =>
    new Error(
      `${index}: shard ${JSON.stringify(shard)} ${why}; shards must be files inside the model folder ${dir}`,
    );
  if (
    shard === '' ||
    shard.includes('\0') ||
    path.isAbsolute(shard) ||
    path.win32.isAbsolute(shard) ||
    shard.split(/[\\/]/).includes('..')
  )
    throw outside('is not a relative file name');
  const shardPath = path.join(dir, shard);
  if (!fs.existsSync(shardPath))
    throw new Error(`${index}: lists shard ${shard}, but ${shardPath} does not exist`);
  const root = fs.realpathSync(dir);
  const real = fs.realpathSync(shardPath);
  const relative = path.relative(root, real);
  if (relative === '' || relative.startsWith('..') || path.isAbsolute(relative))
    throw outside(`resolves to ${real}, outside the folder (a symlink?)`);
  return shardPath;
}

export interface Checkpoint {
  source: string; // names the checkpoint in errors
  files: SafetensorsFile[];
  fileOf: (name: string) => SafetensorsFile | undefined;
}

/** Which file holds each tensor: one model.safetensors, or the shards of an index. */
export function openCheckpoint(dir: string): Checkpoint {
  const single = path.join(dir, 'model.safetensors');
  const index = path.join(dir, 'model.safetensors.index.json');
  if (fs.existsSync(single)) {
    const file = openSafetensors(single);
    return { source: single, files: [file], fileOf: (n) => (file.has(n) ? file : undefined) };
  }
  if (fs.existsSync(index)) {
    const parsed = indexSchema.safeParse(readJsonFile(index));
    if (!parsed.success)
      throw new Error(
        `${index}: no "weight_map" object (tensor name -> shard file): ${describeIssues(parsed.error, { limit: 3 })}`,
      );
    const shards = new Map<string, SafetensorsFile>();
    const byName = new Map<string, SafetensorsFile>();
    for (const [name, shard] of Object.entries(parsed.data.weight_map)) {
      let file = shards.get(shard);
      if (!file) {
        file = openSafetensors(shardInside(dir, shard, index));
        shards.set(shard, file);
      }
      byName.set(name, file);
    }
    return { source: index, files: [...shards.values()], fileOf: (n) => byName.get(n) };
  }
  const entries = fs.readdirSync(dir);
  if (entries.some((f) => /^pytorch_model.*\.bin$/.test(f) || f === 'pytorch_model.bin.index.json'))
    throw new Error(
      `${dir}: has only PyTorch pickle weights (pytorch_model.bin), which sfc does not read; ${CONVERT_HINT(dir)}`,
    );
  throw new Error(
    `${dir}: no model.safetensors or model.safetensors.index.json (found: ${entries.join(', ') || 'nothing'})`,
  );
}

/** A few tensor names of the checkpoint close to a missing one, to spot prefix mismatches. */
export function nearbyNames(wanted: string, files: SafetensorsFile[]): string {
  const names = files.flatMap((f) => f.names()).filter((n) => !IGNORED_BUFFER.test(n));
  if (!names.length) return 'the checkpoint holds no tensors';
  const tail = wanted.split('.').slice(-3).join('.');
  const similar = names.filter((n) => n.endsWith(tail)).slice(0, 3);
  const shown = (similar.length ? similar : names.slice(0, 3)).join(', ');
  return `it has ${names.length} tensors, e.g. ${shown}`;
}

/** The config.json of a model folder, after checking the folder exists and holds one. */
export function modelConfigFile(dir: string): string {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(dir);
  } catch {
    throw new Error(
      path.resolve(dir) === defaultModelDir()
        ? `${dir}: the shipped model is missing; pass --model <folder> with config.json and model.safetensors`
        : `${dir}: no such model folder (expected a folder with config.json and model.safetensors)`,
    );
  }
  if (!stat.isDirectory())
    throw new Error(
      `${dir}: not a folder; --model takes the folder holding config.json and model.safetensors`,
    );

  const configFile = path.join(dir, 'config.json');
  if (!fs.existsSync(configFile))
    throw new Error(
      `${configFile}: missing; a model folder needs the Hugging Face config.json next to its weights`,
    );
  return configFile;
}

/**
 * Reads config.json and the weights of a model folder (and tokenizer.json when options.tokenizer).
 * Tensors not used by the model (buffers, extra heads) are ignored.
 */
export function loadModel(dir: string, options: { tokenizer?: boolean } = {}): LoadedModel {
  const configFile = modelConfigFile(dir);
  const config = parseConfig(readJsonFile(configFile), configFile);

  const checkpoint = openCheckpoint(dir);
  const weights = {
    layers: Array.from({ length: config.numLayers }, () => ({})),
  } as unknown as GptNeoXWeights;
  for (const p of parameterLayout(config)) {
    const n = p.shape.reduce((a, b) => a * b, 1);
    // HF GPT-NeoX with attention_bias false has no attention bias parameters: they are zero.
    if (!config.attentionBias && ATTENTION_BIAS.test(p.name)) {
      p.set(weights, new Float32Array(n));
      continue;
    }
    const file = checkpoint.fileOf(p.name);
    if (!file)
      throw new Error(
        `${checkpoint.source}: missing tensor ${p.name} (shape ${JSON.stringify(p.shape)}); ${nearbyNames(p.name, checkpoint.files)}`,
      );
    const shape = file.shape(p.name);
    if (shape.length !== p.shape.length || shape.some((s, i) => s !== p.shape[i]))
      throw new Error(
        `${file.path}: tensor ${p.name} has shape ${JSON.stringify(shape)}, expected ${JSON.stringify(p.shape)} (from ${configFile})`,
      );
    p.set(weights, file.read(p.name).data);
  }

  const loaded: LoadedModel = { dir, config, weights };
  if (options.tokenizer) loaded.tokenizer = loadFolderTokenizer(dir, config.vocabSize, configFile);
  return loaded;
}

/**
 * The folder's tokenizer.json (with tokenizer_config.json when present), or undefined without
 * one; refused when its ids do not fit the model's embedding rows.
 */
export function loadFolderTokenizer(
  dir: string,
  vocabSize: number,
  configFile: string,
): Tokenizer | undefined {
  const file = path.join(dir, 'tokenizer.json');
  if (!fs.existsSync(file)) return undefined;
  const settings = path.join(dir, 'tokenizer_config.json');
  const tokenizer = Tokenizer.fromFile(file, {
    configFile: fs.existsSync(settings) ? settings : undefined,
  });
  if (tokenizer.vocabSize > vocabSize)
    throw new Error(
      `${file}: has ${tokenizer.vocabSize} token ids but ${configFile} says vocab_size ${vocabSize}: the embedding has no row for ids ${vocabSize}..${tokenizer.vocabSize - 1} (a tokenizer from another model?)`,
    );
  return tokenizer;
}
