// The formats the fuzz suite attacks: for each, valid seed files (built here or taken from
// test/fixtures and the shipped organism), how one mutated input is made from a seeded Rng, the
// loader it goes through, and the largest single allocation that input may cause.

import fs from 'node:fs';
import path from 'node:path';
import { writeSafetensors, openSafetensors } from '../../src/io/safetensors.ts';
import { readTorchStateDict } from '../../src/sae/torch-checkpoint.ts';
import { loadGemmaScopeNpz, loadSaeLensFolder } from '../../src/sae/formats.ts';
import { npyHeaderBytes, openNpz, readNpyFile } from '../../src/sae/npy.ts';
import { readCircuit } from '../../src/circuit/circuit.ts';
import { readNeuronpediaGraph } from '../../src/graphs/neuronpedia-file.ts';
import { importGraph } from '../../src/graphs/import.ts';
import { loadTask } from '../../src/data/tasks.ts';
import { Tokenizer } from '../../src/model/tokenizer.ts';
import type { Rng } from '../../src/random.ts';
import {
  buildTorchArchive,
  buildZip,
  f32Bytes,
  statePickle,
  type PickledTensor,
} from '../helpers/torch-files.ts';
import { concatBytes, mutateBytes, mutateJsonText } from './mutate.ts';

const ROOT = path.join(import.meta.dirname, '..', '..');
const MiB = 1 << 20;

export interface FuzzFormat {
  name: string;
  /** Builds the seeds (once per worker). */
  setup(): void;
  /** Writes one mutated input under `dir`; returns the path the loader takes and its size. */
  input(rng: Rng, dir: string): { target: string; bytes: number };
  /** Reads the input the way the project does; throws on refusal. */
  load(target: string): void;
  /** Largest single typed-array allocation an input of `bytes` bytes may cause. */
  allocationBound(bytes: number): number;
}

const pick = <T>(rng: Rng, items: readonly T[]): T => items[rng.int(items.length)];

function writeFile(file: string, data: Uint8Array | string): number {
  fs.writeFileSync(file, data);
  return typeof data === 'string' ? Buffer.byteLength(data) : data.length;
}

// ---- safetensors ----------------------------------------------------------------------------

/** A safetensors file split into its header (parsed) and data buffer. */
function splitSafetensors(bytes: Uint8Array): { header: unknown; data: Uint8Array } {
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  return {
    header: JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n))),
    data: bytes.subarray(8 + n),
  };
}

function frameSafetensors(headerText: Uint8Array, data: Uint8Array, length?: bigint): Uint8Array {
  const len = new Uint8Array(8);
  new DataView(len.buffer).setBigUint64(0, length ?? BigInt(headerText.length), true);
  return concatBytes(len, headerText, data);
}

/** Header mutations keep the framing right (or break only the length), so the JSON is reached. */
function mutateSafetensors(rng: Rng, seed: Uint8Array): Uint8Array {
  const choice = rng.int(10);
  if (choice < 4) return mutateBytes(rng, seed);
  const { header, data } = splitSafetensors(seed);
  const text = mutateJsonText(rng, header);
  if (choice < 9) return frameSafetensors(text, data);
  const edges = [
    0n,
    1n,
    BigInt(text.length) - 1n,
    BigInt(text.length) + 1n,
    2n ** 63n,
    2n ** 64n - 1n,
  ];
  return frameSafetensors(text, data, pick(rng, edges));
}

let safetensorSeeds: Uint8Array[] = [];

const safetensorsFormat: FuzzFormat = {
  name: 'safetensors',
  setup() {
    const dir = fs.mkdtempSync(
      path.join(fs.realpathSync(process.env.TMPDIR ?? '/tmp'), 'sfc-fuzz-seed-'),
    );
    const file = path.join(dir, 'seed.safetensors');
    writeSafetensors(
      file,
      [
        { name: 'w', shape: [3, 4], data: Float32Array.from({ length: 12 }, (_, i) => i / 7) },
        { name: 'h', shape: [5], data: Float32Array.of(1, -2, 0.5, 65504, 1e-5), dtype: 'F16' },
        { name: 'empty', shape: [0, 2], data: new Float32Array(0) },
        { name: 'scalar', shape: [], data: Float32Array.of(3) },
      ],
      { format: 'pt' },
    );
    safetensorSeeds = [
      new Uint8Array(fs.readFileSync(file)),
      // Written by Python's safetensors (F32, F16, BF16 and an I64 we never read).
      new Uint8Array(
        fs.readFileSync(path.join(ROOT, 'test/fixtures/load/torch-written.safetensors')),
      ),
    ];
    fs.rmSync(dir, { recursive: true });
  },
  input(rng, dir) {
    const target = path.join(dir, 'x.safetensors');
    return { target, bytes: writeFile(target, mutateSafetensors(rng, pick(rng, safetensorSeeds))) };
  },
  load(target) {
    const file = openSafetensors(target);
    for (const name of file.names()) file.read(name);
  },
  // Reading converts F16/BF16 to f32: at most twice the file's bytes.
  allocationBound: (bytes) => MiB + 2 * bytes,
};

// ---- torch.save ae.pt -----------------------------------------------------------------------

interface ArchiveSeed {
  tensors: PickledTensor[];
  storages: Record<string, Uint8Array>;
  method: 0 | 8;
}

const EDGE_DIMS = [0, 1, 2, 3, 4, 6, 12, 65536, 2 ** 31 - 1, -1, -(2 ** 31)];

let archiveSeeds: ArchiveSeed[] = [];
let fixtureArchives: Uint8Array[] = [];

function archiveOf(s: ArchiveSeed, declared?: (key: string) => number | undefined): Uint8Array {
  return buildTorchArchive(statePickle(s.tensors), s.storages, {
    method: s.method,
    declaredSize: declared,
  });
}

const aePtFormat: FuzzFormat = {
  name: 'ae.pt (zip + pickle)',
  setup() {
    const values = f32Bytes(Array.from({ length: 24 }, (_, i) => i - 11.5));
    const halves = new Uint8Array(12).fill(0x3c); // F16 1.0078125
    const ae = (method: 0 | 8): ArchiveSeed => ({
      method,
      storages: { '0': values, '1': halves },
      tensors: [
        { name: 'encoder.weight', storage: '0', numel: 24, shape: [6, 4] },
        { name: 'decoder.weight', storage: '0', numel: 24, shape: [4, 6], stride: [1, 4] },
        { name: 'encoder.bias', storage: '1', storageType: 'HalfStorage', numel: 6, shape: [6] },
        { name: 'bias', storage: '0', numel: 24, offset: 20, shape: [4] },
      ],
    });
    archiveSeeds = [ae(0), ae(8)];
    fixtureArchives = ['attn_out_layer0', 'embed', 'mlp_out_layer0', 'resid_out_layer0'].map(
      (sub) =>
        new Uint8Array(
          fs.readFileSync(
            path.join(ROOT, 'test/fixtures/sae/dictionary_learning', sub, '10_6', 'ae.pt'),
          ),
        ),
    );
  },
  input(rng, dir) {
    const target = path.join(dir, 'ae.pt');
    const seed = structuredClone(pick(rng, archiveSeeds));
    let bytes: Uint8Array;
    switch (rng.int(5)) {
      case 0: // raw bytes of an archive torch itself wrote (CRCs catch most of these)
        bytes = mutateBytes(rng, pick(rng, fixtureArchives));
        break;
      case 1: // raw bytes of our archive
        bytes = mutateBytes(rng, archiveOf(seed));
        break;
      case 2: // the pickle stream mutated, then packed with valid CRCs so the pickle reader sees it
        bytes = buildTorchArchive(mutateBytes(rng, statePickle(seed.tensors)), seed.storages, {
          method: seed.method,
        });
        break;
      case 3: {
        // tensor views and storage claims with edge values
        for (let r = 0; r <= rng.int(3); r++) {
          const t = pick(rng, seed.tensors);
          const field = rng.int(4);
          if (field === 0) t.numel = pick(rng, EDGE_DIMS);
          else if (field === 1) t.offset = pick(rng, EDGE_DIMS);
          else if (field === 2) {
            t.shape = Array.from({ length: rng.int(4) }, () => pick(rng, EDGE_DIMS));
            if (rng.int(2)) t.stride = t.shape.map(() => pick(rng, EDGE_DIMS));
            else t.stride = undefined;
          } else if (t.shape.length) {
            t.stride = t.shape.map(() => pick(rng, EDGE_DIMS));
          }
          if (rng.int(4) === 0)
            seed.tensors.push(
              ...Array.from({ length: rng.int(300) }, (_, i) => ({ ...t, name: `${t.name}.${i}` })),
            );
        }
        if (rng.int(4) === 0) seed.storages['0'] = seed.storages['0'].subarray(0, rng.int(96));
        bytes = archiveOf(seed);
        break;
      }
      default: {
        // declared sizes that lie (deflate bombs included)
        seed.method = 8;
        if (rng.int(2)) seed.storages['0'] = new Uint8Array(1 << (10 + rng.int(11))); // zeros: compress well
        const lie = pick(rng, [0, 1, 95, 96, 97, 4096, 1 << 20, 2 ** 31, 2 ** 32 - 1]);
        bytes = archiveOf(seed, (key) => (key === '0' ? lie : undefined));
      }
    }
    return { target, bytes: writeFile(target, bytes) };
  },
  load(target) {
    readTorchStateDict(target);
    // As loadAePt reads it: decoder.weight streamed into its transpose when it can be.
    readTorchStateDict(target, { transposed: new Set(['decoder.weight']) });
  },
  // Deflate expands at most 1032:1 (and the reader refuses declared sizes beyond that); tensors
  // are f32 copies of at most twice the stored elements.
  allocationBound: (bytes) => MiB + 1032 * bytes,
};

// ---- SAELens cfg.json + sae_weights.safetensors ---------------------------------------------

let saeLensSeeds: { cfg: unknown; weights: Uint8Array }[] = [];

const saeLensFormat: FuzzFormat = {
  name: 'SAELens cfg.json + weights',
  setup() {
    const base = path.join(ROOT, 'test/fixtures/sae/saelens');
    saeLensSeeds = fs.readdirSync(base).map((name) => ({
      cfg: JSON.parse(fs.readFileSync(path.join(base, name, 'cfg.json'), 'utf8')),
      weights: new Uint8Array(fs.readFileSync(path.join(base, name, 'sae_weights.safetensors'))),
    }));
  },
  input(rng, dir) {
    const folder = path.join(dir, 'sae');
    fs.mkdirSync(folder, { recursive: true });
    const seed = pick(rng, saeLensSeeds);
    const choice = rng.int(10);
    const cfg = choice < 6 ? mutateJsonText(rng, seed.cfg) : JSON.stringify(seed.cfg);
    const weights =
      choice < 6
        ? seed.weights
        : choice < 8
          ? mutateBytes(rng, seed.weights)
          : mutateSafetensors(rng, seed.weights);
    const bytes =
      writeFile(path.join(folder, 'cfg.json'), cfg) +
      writeFile(path.join(folder, 'sae_weights.safetensors'), weights);
    return { target: folder, bytes };
  },
  load(target) {
    loadSaeLensFolder(target);
  },
  allocationBound: (bytes) => MiB + 4 * bytes,
};

// ---- .npy / .npz (Gemma Scope params.npz) ---------------------------------------------------

interface NpzSeed {
  records: { name: string; data: Uint8Array; payload: Uint8Array }[];
  method: 0 | 8;
}
let npzSeeds: NpzSeed[] = [];
let npzFiles: Uint8Array[] = [];

// Headers whose framing is right but whose dict says something hostile or odd.
const NPY_HEADERS = [
  "{'descr': '<f4', 'fortran_order': False, 'shape': (4, 6), }",
  "{'descr': '<f4', 'fortran_order': True, 'shape': (4, 6), }",
  "{'descr': '|O', 'fortran_order': False, 'shape': (2,), }",
  "{'descr': '>f4', 'fortran_order': False, 'shape': (4, 6), }",
  "{'descr': '<f2', 'fortran_order': False, 'shape': (4, 6), }",
  "{'descr': '<f8', 'fortran_order': False, 'shape': (4, 3), }",
  "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }",
  "{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296), }",
  "{'descr': '<f4', 'fortran_order': False, 'shape': (0, 6), }",
  "{'descr': '<f4', 'fortran_order': False, 'shape': (), }",
  "{'descr': '<f4', 'fortran_order': False, 'shape': (9007199254740993,), }",
  "{'descr': '<f4', 'shape': (4, 6), }",
  "{'descr': '<f4', 'fortran_order': False, 'shape': (4, 6), 'descr': '<f4'}",
  "__import__('os').system('true')",
];

function npyWithHeader(text: string, data: Uint8Array): Uint8Array {
  const padded = text + ' '.repeat((64 - ((10 + text.length + 1) % 64)) % 64) + '\n';
  const head = new Uint8Array(10 + padded.length);
  head.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
  new DataView(head.buffer).setUint16(8, padded.length, true);
  for (let i = 0; i < padded.length; i++) head[10 + i] = padded.charCodeAt(i) & 0xff;
  return concatBytes(head, data);
}

const npzFormat: FuzzFormat = {
  name: '.npy / .npz (Gemma Scope)',
  setup() {
    const base = path.join(ROOT, 'test/fixtures/sae/npy');
    npzFiles = ['params.npz', 'compressed.npz'].map(
      (f) => new Uint8Array(fs.readFileSync(path.join(base, 'gemma-scope', f))),
    );
    const records = ['W_enc', 'W_dec', 'b_enc', 'b_dec', 'threshold'].map((name) =>
      npyRecord(path.join(base, 'gemma-scope', 'params.npz'), name),
    );
    npzSeeds = [
      { records, method: 0 },
      { records, method: 8 },
    ];
  },
  input(rng, dir) {
    const choice = rng.int(6);
    if (choice === 0) {
      // numpy's own archive, bytes mutated (CRCs catch most)
      const target = path.join(dir, 'params.npz');
      return { target, bytes: writeFile(target, mutateBytes(rng, pick(rng, npzFiles))) };
    }
    if (choice === 1) {
      // a bare .npy, bytes mutated
      const target = path.join(dir, 'x.npy');
      const seed = pick(rng, npzSeeds[0].records).data;
      return { target, bytes: writeFile(target, mutateBytes(rng, seed)) };
    }
    // one record mutated (or its header replaced), packed with valid CRCs so the parser sees it
    const seed = pick(rng, npzSeeds);
    const records = seed.records.map((r) => ({ name: r.name, data: r.data, method: seed.method }));
    const victim = rng.int(records.length);
    const { data, payload } = seed.records[victim];
    records[victim].data =
      choice < 4
        ? mutateBytes(rng, data)
        : npyWithHeader(pick(rng, NPY_HEADERS), payload.subarray(0, rng.int(payload.length + 9)));
    if (rng.int(8) === 0) records.splice(rng.int(records.length), 1); // an array missing
    const target = path.join(dir, 'params.npz');
    return { target, bytes: writeFile(target, buildZip(records)) };
  },
  load(target) {
    if (target.endsWith('.npy')) return void readNpyFile(target);
    const npz = openNpz(target);
    for (const name of npz.names()) npz.read(name);
    loadGemmaScopeNpz(target, 'resid_0');
  },
  // Deflated records inflate at most 1032:1; <f2 arrays double once converted to f32.
  allocationBound: (bytes) => MiB + 2 * 1032 * bytes,
};

/** One array of a numpy-written .npz as a .npy record, and its raw data bytes. */
function npyRecord(
  file: string,
  name: string,
): { name: string; data: Uint8Array; payload: Uint8Array } {
  const a = openNpz(file).read(name);
  const payload = new Uint8Array(a.data.buffer, a.data.byteOffset, a.data.byteLength);
  return { name: `${name}.npy`, data: concatBytes(npyHeaderBytes(a.shape), payload), payload };
}

// ---- circuit.json ---------------------------------------------------------------------------

let circuitSeed: unknown;

const circuitFormat: FuzzFormat = {
  name: 'circuit.json',
  setup() {
    circuitSeed = JSON.parse(
      fs.readFileSync(path.join(ROOT, 'test/fixtures/viewer/small/circuit.json'), 'utf8'),
    );
  },
  input(rng, dir) {
    const target = path.join(dir, 'circuit.json');
    const text =
      rng.int(8) === 0
        ? mutateBytes(rng, new TextEncoder().encode(JSON.stringify(circuitSeed)))
        : mutateJsonText(rng, circuitSeed);
    return { target, bytes: writeFile(target, text) };
  },
  load(target) {
    readCircuit(target);
  },
  allocationBound: (bytes) => MiB + 16 * bytes,
};

// ---- task JSONL -----------------------------------------------------------------------------

let taskSeed: unknown[] = [];
let organismTokenizer: Tokenizer;

const taskFormat: FuzzFormat = {
  name: 'task JSONL',
  setup() {
    organismTokenizer = Tokenizer.fromFile(path.join(ROOT, 'models/organism/tokenizer.json'));
    taskSeed = ['simple_train', 'rc_train', 'nounpp_test'].flatMap((name) =>
      fs
        .readFileSync(path.join(ROOT, 'data', `${name}.jsonl`), 'utf8')
        .split('\n')
        .filter((l) => l.trim())
        .slice(0, 8)
        .map((l) => JSON.parse(l) as unknown),
    );
  },
  input(rng, dir) {
    const target = path.join(dir, 'task.jsonl');
    const choice = rng.int(10);
    let text: Uint8Array | string;
    if (choice < 6) {
      // some lines mutated as JSON, the rest kept
      const lines = taskSeed.map((l) =>
        rng.int(6) === 0 ? new TextDecoder().decode(mutateJsonText(rng, l)) : JSON.stringify(l),
      );
      text = lines.join('\n') + '\n';
    } else if (choice < 8)
      text = mutateJsonText(rng, taskSeed); // the JSON-array form
    else
      text = mutateBytes(
        rng,
        new TextEncoder().encode(taskSeed.map((l) => JSON.stringify(l)).join('\n')),
      );
    return { target, bytes: writeFile(target, text) };
  },
  load(target) {
    loadTask(target, organismTokenizer, { maxLength: 64 });
  },
  allocationBound: (bytes) => MiB + 16 * bytes,
};

// ---- tokenizer.json -------------------------------------------------------------------------

let tokenizerSeed: unknown;

const tokenizerFormat: FuzzFormat = {
  name: 'tokenizer.json',
  setup() {
    tokenizerSeed = JSON.parse(
      fs.readFileSync(path.join(ROOT, 'models/organism/tokenizer.json'), 'utf8'),
    );
  },
  input(rng, dir) {
    const target = path.join(dir, 'tokenizer.json');
    const text =
      rng.int(8) === 0
        ? mutateBytes(rng, new TextEncoder().encode(JSON.stringify(tokenizerSeed)))
        : mutateJsonText(rng, tokenizerSeed);
    return { target, bytes: writeFile(target, text) };
  },
  load(target) {
    // Loading includes what every caller does next: encode, decode, show tokens.
    const tok = Tokenizer.fromFile(target);
    const ids = tok.encode('The teachers that the guard likes are here.');
    tok.decode(ids.filter((id) => id < tok.vocabSize));
    for (const id of ids.slice(0, 4)) tok.tokenString(id);
    tok.tokenId(' teachers');
  },
  allocationBound: (bytes) => MiB + 16 * bytes,
};

// ---- attribution graph JSON (Neuronpedia / circuit-tracer) -------------------------------------

let graphSeed: unknown;

const graphFormat: FuzzFormat = {
  name: 'graph JSON (Neuronpedia)',
  setup() {
    graphSeed = JSON.parse(
      fs.readFileSync(
        path.join(ROOT, 'test/fixtures/graphs/neuronpedia-123-gemma-2-2b-clt-hp.json'),
        'utf8',
      ),
    );
  },
  input(rng, dir) {
    const target = path.join(dir, 'graph.json');
    const text =
      rng.int(8) === 0
        ? mutateBytes(rng, new TextEncoder().encode(JSON.stringify(graphSeed)))
        : mutateJsonText(rng, graphSeed);
    return { target, bytes: writeFile(target, text) };
  },
  load(target) {
    importGraph(readNeuronpediaGraph(target), target);
  },
  allocationBound: (bytes) => MiB + 16 * bytes,
};

export const FORMATS: FuzzFormat[] = [
  safetensorsFormat,
  aePtFormat,
  saeLensFormat,
  circuitFormat,
  taskFormat,
  tokenizerFormat,
  // Last, so that adding it left every other format's inputs (seeded by its index) unchanged.
  npzFormat,
  graphFormat,
];
