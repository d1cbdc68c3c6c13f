// Loading Hugging Face folders of every family through the folder loader (load-family.ts), against
// the PyTorch logits of test/fixtures/families/<family>/expected.json; copies of those folders in
// F16, BF16, sharded, renamed or broken, written here to a temporary folder.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { openSafetensors, writeSafetensors, type Dtype } from '../../src/io/safetensors.ts';
import { bf16BitsToF32, f16BitsToF32, f32ToBF16Bits, f32ToF16Bits } from '../../src/io/float16.ts';
import { GptNeoX, makeBatch } from '../../src/model/gptneox.ts';
import { loadModel } from '../../src/model/load.ts';
import { loadTransformer, openModel } from '../../src/model/load-family.ts';
import { modelShape, type LanguageModel } from '../../src/model/language-model.ts';
import { namedParameters } from '../../src/model/families/family.ts';
import { Transformer } from '../../src/model/transformer.ts';
import { saveModel } from '../../src/model/save.ts';
import { randomWeights, tinyConfig } from '../helpers/random-model.ts';

const FAMILIES = ['gpt2', 'llama', 'qwen2', 'qwen3', 'gemma2'];
const fixture = (family: string) =>
  fileURLToPath(new URL(`../fixtures/families/${family}/`, import.meta.url));
const tokenizers = fileURLToPath(new URL('../fixtures/tokenizers/', import.meta.url));

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sfc-load-family-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));
let dirCount = 0;

interface Tensor {
  name: string;
  shape: number[];
  data: Float32Array;
  dtype?: Dtype;
}

interface Reference {
  ids: number[][];
  lengths: number[];
  logits: number[];
}

const reference = (family: string) =>
  JSON.parse(fs.readFileSync(path.join(fixture(family), 'expected.json'), 'utf8')) as Reference;

const fixtureTensors = (family: string): Tensor[] => {
  const file = openSafetensors(path.join(fixture(family), 'model.safetensors'));
  return file.names().map((name) => ({ name, ...file.read(name) }));
};

/**
 * A copy of a family's fixture folder: its tensors (changed by `tensors`), config.json (changed by
 * `config`), in one file or `shards` files with an index.
 */
function copyFamily(
  family: string,
  options: {
    tensors?: (t: Tensor[]) => Tensor[];
    config?: (json: Record<string, unknown>) => Record<string, unknown>;
    shards?: number;
  } = {},
): string {
  const dir = path.join(tmp, `${dirCount++}-${family}`);
  fs.mkdirSync(dir);
  const config = JSON.parse(fs.readFileSync(path.join(fixture(family), 'config.json'), 'utf8'));
  fs.writeFileSync(
    path.join(dir, 'config.json'),
    JSON.stringify(options.config ? options.config(config) : config),
  );
  const tensors = (options.tensors ?? ((t) => t))(fixtureTensors(family));
  const shards = options.shards ?? 0;
  if (!shards) {
    writeSafetensors(path.join(dir, 'model.safetensors'), tensors);
    return dir;
  }
  const weightMap: Record<string, string> = {};
  for (let s = 0; s < shards; s++) {
    const file = `model-${String(s + 1).padStart(5, '0')}-of-${String(shards).padStart(5, '0')}.safetensors`;
    const part = tensors.filter((_, i) => i % shards === s);
    for (const t of part) weightMap[t.name] = file;
    writeSafetensors(path.join(dir, file), part);
  }
  fs.writeFileSync(
    path.join(dir, 'model.safetensors.index.json'),
    JSON.stringify({ metadata: { total_size: 0 }, weight_map: weightMap }),
  );
  return dir;
}

/** max |a - b| / max |b|. */
function relError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, 'lengths differ');
  let worst = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    worst = Math.max(worst, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return worst / scale;
}

function referenceLogits(model: LanguageModel, family: string): Float32Array {
  const ref = reference(family);
  const batch = makeBatch(ref.ids.map((seq, b) => seq.slice(0, ref.lengths[b])));
  return model.forward(batch, { logits: 'all' }).logits;
}

for (const family of FAMILIES) {
  test(`${family}: the folder loads and its logits equal the PyTorch reference`, () => {
    const loaded = loadTransformer(fixture(family));
    assert.equal(loaded.family.architecture, loaded.config.architecture);
    const e = relError(referenceLogits(loaded.model, family), reference(family).logits);
    assert.ok(e <= 1e-4, `${family}: logits error ${e} of the largest value`);
    assert.equal(loaded.tokenizer, undefined);
    // openModel takes it to the generic engine
    const opened = openModel(fixture(family));
    assert.ok(opened.model instanceof Transformer);
    assert.equal(opened.architecture, loaded.config.architecture);
    assert.deepEqual(modelShape(opened.model), {
      architecture: loaded.config.architecture,
      numLayers: 2,
      hiddenSize: 16,
      vocabSize: 31,
      maxPositions: 16,
    });
  });
}

test('openModel keeps GPT-NeoX on its dedicated engine, with the weights loadModel reads', () => {
  const config = tinyConfig({ vocabSize: 13, numLayers: 2 });
  const dir = path.join(tmp, `${dirCount++}-neox`);
  saveModel(dir, config, randomWeights(config, 5));
  const opened = openModel(dir);
  assert.ok(opened.model instanceof GptNeoX);
  assert.equal(opened.architecture, 'GPTNeoXForCausalLM');
  const loaded = loadModel(dir);
  assert.deepEqual(opened.model.config, loaded.config);
  const batch = makeBatch([[1, 2, 3, 4]]);
  const want = new GptNeoX(loaded.config, loaded.weights).forward(batch, { logits: 'all' });
  assert.deepEqual(opened.model.forward(batch, { logits: 'all' }).logits, want.logits);
  assert.deepEqual(modelShape(opened.model), {
    architecture: 'GPTNeoXForCausalLM',
    numLayers: 2,
    hiddenSize: config.hiddenSize,
    vocabSize: 13,
    maxPositions: config.maxPositionEmbeddings,
  });
  // a config naming no architecture stays on the GPT-NeoX path, as loadModel always took it
  const configFile = path.join(dir, 'config.json');
  const { architectures, ...bare } = JSON.parse(fs.readFileSync(configFile, 'utf8'));
  assert.deepEqual(architectures, ['GPTNeoXForCausalLM']);
  fs.writeFileSync(configFile, JSON.stringify(bare));
  assert.ok(openModel(dir).model instanceof GptNeoX);
  fs.writeFileSync(configFile, JSON.stringify({ ...bare, model_type: 'llama' }));
  assert.throws(() => openModel(dir), /config\.json: no "architectures" entry; supported: /);
  fs.writeFileSync(configFile, JSON.stringify({ ...bare, architectures }));
  // and loadTransformer reads the same folder onto the generic engine, to the same logits
  const generic = loadTransformer(dir).model.forward(batch, { logits: 'all' }).logits;
  assert.ok(relError(generic, want.logits) <= 1e-5);
});

const rounders: Record<'F16' | 'BF16', { round: (x: number) => number; unit: number }> = {
  F16: { round: (x) => f16BitsToF32(f32ToF16Bits(x)), unit: 2 ** -11 },
  BF16: { round: (x) => bf16BitsToF32(f32ToBF16Bits(x)), unit: 2 ** -8 },
};

for (const family of ['llama', 'gemma2', 'gpt2']) {
  for (const dtype of ['F16', 'BF16'] as const) {
    test(`${family} in ${dtype}: weights are the F32 ones rounded; logits within the rounding`, () => {
      const dir = copyFamily(family, {
        tensors: (ts) => ts.map((t) => ({ ...t, dtype })),
      });
      const f32 = loadTransformer(fixture(family)).model;
      const half = loadTransformer(dir).model;
      const { round, unit } = rounders[dtype];
      const want = new Map(namedParameters(f32.weights));
      for (const [name, got] of namedParameters(half.weights)) {
        const w = want.get(name)!;
        for (let i = 0; i < w.length; i++)
          assert.equal(got[i], round(w[i]), `${name}[${i}]: ${got[i]} vs ${w[i]}`);
      }
      const a = referenceLogits(half, family);
      const b = referenceLogits(f32, family);
      const e = relError(a, b);
      assert.ok(e > 0, 'the rounded model computes exactly the F32 logits: no rounding happened');
      // a few roundings of 2^-p relative each, through two layers (seen: up to 5 units)
      assert.ok(e <= 16 * unit, `${dtype} logits differ by ${e} of the largest value`);
    });
  }
}

test('a sharded checkpoint with an index loads to the same logits', () => {
  for (const family of ['qwen3', 'gpt2']) {
    const dir = copyFamily(family, { shards: 3 });
    assert.ok(fs.existsSync(path.join(dir, 'model-00003-of-00003.safetensors')));
    assert.ok(!fs.existsSync(path.join(dir, 'model.safetensors')));
    const logits = referenceLogits(loadTransformer(dir).model, family);
    assert.deepEqual(logits, referenceLogits(loadTransformer(fixture(family)).model, family));
  }
});

test('a shard path leading out of the folder is refused', () => {
  const dir = copyFamily('qwen2', { shards: 2 });
  const index = path.join(dir, 'model.safetensors.index.json');
  const json = JSON.parse(fs.readFileSync(index, 'utf8'));
  const first = Object.keys(json.weight_map)[0];
  json.weight_map[first] = '../elsewhere.safetensors';
  fs.writeFileSync(index, JSON.stringify(json));
  assert.throws(() => loadTransformer(dir), /shards must be files inside the model folder/);
});

test('transformers 5.x rope_parameters and 4.x rope_theta/rope_scaling give the same model', () => {
  const dir = copyFamily('llama', {
    config: ({ rope_theta, rope_scaling, ...rest }) => ({
      ...rest,
      rope_parameters: { ...(rope_scaling as object), rope_theta },
    }),
  });
  assert.ok(
    !('rope_scaling' in JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'))),
  );
  const five = loadTransformer(dir);
  const four = loadTransformer(fixture('llama'));
  assert.deepEqual(five.config, four.config);
  assert.deepEqual(referenceLogits(five.model, 'llama'), referenceLogits(four.model, 'llama'));
});

test('GPT-2 tensors saved with the "transformer." prefix load too', () => {
  const dir = copyFamily('gpt2', {
    tensors: (ts) => ts.map((t) => ({ ...t, name: `transformer.${t.name}` })),
  });
  assert.deepEqual(
    referenceLogits(loadTransformer(dir).model, 'gpt2'),
    referenceLogits(loadTransformer(fixture('gpt2')).model, 'gpt2'),
  );
});

test('the folder tokenizer loads with its BOS settings; one too big for the embedding is refused', () => {
  const dir = copyFamily('gemma2');
  fs.copyFileSync(
    path.join(tokenizers, 'chars-bos.tokenizer.json'),
    path.join(dir, 'tokenizer.json'),
  );
  const loaded = loadTransformer(dir, { tokenizer: true });
  assert.equal(loaded.tokenizer?.vocabSize, 30);
  assert.equal(loaded.tokenizer?.addsBos, true);
  assert.equal(loadTransformer(dir).tokenizer, undefined, 'only when asked for');
  // tokenizer_config.json beside it is read
  fs.writeFileSync(path.join(dir, 'tokenizer_config.json'), '{"add_bos_token": false}');
  assert.equal(openModel(dir, { tokenizer: true }).tokenizer?.addsBos, false);

  const json = JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer.json'), 'utf8'));
  json.added_tokens.push({ id: 39, content: '<extra>', special: true, normalized: false });
  fs.writeFileSync(path.join(dir, 'tokenizer.json'), JSON.stringify(json));
  assert.throws(
    () => loadTransformer(dir, { tokenizer: true }),
    /tokenizer\.json: has 40 token ids but .*config\.json says vocab_size 31: the embedding has no row for ids 31\.\.39/,
  );
});

test('errors: unknown architecture names the supported ones', () => {
  const dir = copyFamily('llama', {
    config: (c) => ({ ...c, architectures: ['MistralForCausalLM'] }),
  });
  const message =
    /config\.json: architecture MistralForCausalLM is not supported; supported: GPT2LMHeadModel, LlamaForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM, Gemma2ForCausalLM, GPTNeoXForCausalLM/;
  assert.throws(() => loadTransformer(dir), message);
  assert.throws(() => openModel(dir), message);
});

test('errors: a missing tensor is named with its shape, in one file or shards', () => {
  const drop = (ts: Tensor[]) => ts.filter((t) => t.name !== 'model.layers.1.mlp.down_proj.weight');
  assert.throws(
    () => loadTransformer(copyFamily('llama', { tensors: drop })),
    /model\.safetensors: missing tensor model\.layers\.1\.mlp\.down_proj\.weight \(shape \[16,24\]\) for LlamaForCausalLM; it has \d+ tensors, e\.g\. model\.layers\.0\.mlp\.down_proj\.weight/,
  );
  assert.throws(
    () => loadTransformer(copyFamily('llama', { tensors: drop, shards: 2 })),
    /model\.safetensors\.index\.json: missing tensor model\.layers\.1\.mlp\.down_proj\.weight \(shape \[16,24\]\)/,
  );
  // a config with more layers than the checkpoint holds
  assert.throws(
    () => loadTransformer(copyFamily('qwen2', { config: (c) => ({ ...c, num_hidden_layers: 3 }) })),
    /missing tensor model\.layers\.2\.input_layernorm\.weight \(shape \[16\]\)/,
  );
});

test('errors: a tensor of the wrong shape names it, its shape and the expected one', () => {
  const dir = copyFamily('qwen3', {
    tensors: (ts) =>
      ts.map((t) =>
        t.name === 'model.layers.0.self_attn.k_proj.weight'
          ? { ...t, shape: [12, 15], data: t.data.subarray(0, 12 * 15) }
          : t,
      ),
  });
  assert.throws(
    () => loadTransformer(dir),
    /tensor model\.layers\.0\.self_attn\.k_proj\.weight has shape \[12,15\], expected \[12,16\] from the config/,
  );
});

test('errors: config keys out of range are named', () => {
  const cases: [string, (c: Record<string, unknown>) => Record<string, unknown>, RegExp][] = [
    ['llama', (c) => ({ ...c, num_hidden_layers: 0 }), /num_hidden_layers/],
    [
      'llama',
      (c) => ({ ...c, num_key_value_heads: 3 }),
      /num_attention_heads 4 is not a multiple of num_key_value_heads 3/,
    ],
    ['gpt2', (c) => ({ ...c, n_head: 3 }), /n_embd 16 is not divisible by n_head 3/],
    ['gemma2', (c) => ({ ...c, sliding_window: -1 }), /sliding_window/],
    [
      'qwen3',
      (c) => ({ ...c, rope_parameters: { rope_type: 'yarn', factor: 2 } }),
      /rope_parameters\.rope_type "yarn" is not implemented/,
    ],
  ];
  for (const [family, change, message] of cases) {
    const dir = copyFamily(family, { config: change });
    assert.throws(() => loadTransformer(dir), message, family);
  }
});

test('errors: a sequence longer than the context names both numbers', () => {
  const { model } = loadTransformer(fixture('gemma2'));
  const ids = Array.from({ length: 17 }, (_, i) => i % 31);
  assert.throws(
    () => model.forward(makeBatch([ids])),
    /sequence length 17 exceeds the model's context of 16 positions/,
  );
  assert.doesNotThrow(() => model.forward(makeBatch([ids.slice(0, 16)])));
});
