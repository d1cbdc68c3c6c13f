// Discovery at Gemma-2-2B's scale: the shape of google/gemma-2-2b's config.json (d 2304, 8 heads,
// 4 KV heads, head_dim 256, GeGLU MLP 9216, vocab 256000, attention soft cap 50, final soft cap
// 30, sliding window 4096 on even layers), cut to 4 layers to fit the machine, with random
// uniform weights (std 0.02) on the generic engine. Random JumpReLU dictionaries 16384 wide at
// every resid_L, mlp_L and attn_z_L site and at embed (13 for 4 layers) are written to a temporary
// folder as a Gemma Scope release lays them out (<release>-res|-mlp|-att/layer_L/width_16k/
// average_l0_64/params.npz) and opened with openSaes, so the real loading path runs; discovery
// gets the library, as `sfc discover` does, so it holds only the dictionaries a step needs.
//
// Reports: dictionary load throughput; the attrib and IG node stages over 20 agreement-like pairs
// of 8 tokens, with the GEMM kernel's share of the sgemm ceiling measured in the same run; IG
// nodes + edges; peak RSS (overall and per phase) against the model + 3 dictionaries + 1 GB
// goal, with the dictionaries held and loads; and a full-depth
// (26-layer) estimate from the measured cost per layer (see depthEstimate).
// SFC_BENCH_GEMMA2_LAYERS=n changes the depth; SFC_BENCH_GEMMA2_LAYERS=2,4 runs both depths and
// fits the IG stage's cost to its two terms (see depthEstimate). SFC_BENCH_GEMMA2_BATCH=n sets
// the examples per batch (default 10): the IG node stage's working memory grows with it.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { gemma2 } from '../src/model/families/gemma2.ts';
import {
  namedParameters,
  zeroTransformerWeights,
  type TransformerConfig,
} from '../src/model/families/family.ts';
import { Transformer } from '../src/model/transformer.ts';
import { makeBatch } from '../src/model/gptneox.ts';
import { openSaes } from '../src/sae/library.ts';
import { writeNpz } from '../src/sae/npy.ts';
import { transpose } from '../src/sae/transpose.ts';
import { normalizeRows } from '../src/sae/train-loss.ts';
import type { TaskExample } from '../src/data/tasks.ts';
import { discover, toCircuit, type DiscoverOptions } from '../src/attribution/discover.ts';
import { gemmTotals, matmul, type GemmTotals } from '../src/kernels/gemm.ts';
import { Rng } from '../src/random.ts';
import { sgemmCeiling } from './engine.ts';
import { randomExamples } from './discover.ts';
import { uniformFill } from './normal-fill.ts';

const DEPTHS = (process.env.SFC_BENCH_GEMMA2_LAYERS ?? '4').split(',').map(Number);
const FULL_DEPTH = 26; // gemma-2-2b's num_hidden_layers
const WIDTH = 16384;
const EXAMPLES = 20;
const T = 8;
const BATCH = Number(process.env.SFC_BENCH_GEMMA2_BATCH ?? 10);
const L0 = 64; // target active features per token
const DELTA_M = 4; // target mean |m_patch - m_clean|

/** gemma-2-2b's config.json, with num_hidden_layers cut to LAYERS. */
function gemma2Config(layers: number): TransformerConfig {
  return gemma2.readConfig(
    {
      architectures: ['Gemma2ForCausalLM'],
      vocab_size: 256000,
      hidden_size: 2304,
      num_hidden_layers: layers,
      num_attention_heads: 8,
      num_key_value_heads: 4,
      head_dim: 256,
      intermediate_size: 9216,
      max_position_embeddings: 8192,
      rms_norm_eps: 1e-6,
      hidden_activation: 'gelu_pytorch_tanh',
      query_pre_attn_scalar: 256,
      sliding_window: 4096,
      attn_logit_softcapping: 50,
      final_logit_softcapping: 30,
      rope_theta: 10000,
    },
    'bench gemma-2-2b shape',
  );
}

/** Norm weights 0 (Gemma's gain is 1 + w), every other tensor uniform with std 0.02, seeded per tensor. */
function randomWeights(config: TransformerConfig) {
  const w = zeroTransformerWeights(config);
  let seed = 11;
  for (const [name, t] of namedParameters(w))
    if (!/Norm/.test(name) && !/[Bb]ias$/.test(name)) uniformFill(t, 0.02, seed++);
  return w;
}

/** Scales the final norm's gain so that m moves by ~DELTA_M logits between clean and patch. */
function calibrateMetric(model: Transformer, examples: TaskExample[]): void {
  const V = model.config.vocabSize;
  const m = (ids: number[][]) => {
    const logits = model.forward(makeBatch(ids)).logits;
    return ids.map(
      (_, b) =>
        logits[b * V + examples[b].patchAnswerId!] - logits[b * V + examples[b].cleanAnswerId],
    );
  };
  const [mc, mp] = [m(examples.map((e) => e.clean)), m(examples.map((e) => e.patch!))];
  const mean = mc.reduce((s, v, i) => s + Math.abs(mp[i] - v), 0) / mc.length;
  const gain = model.weights.finalNorm.weight;
  for (let j = 0; j < gain.length; j++) gain[j] = (1 + gain[j]) * (DELTA_M / mean) - 1;
}

/** Where Gemma Scope keeps a site's dictionary (embed: the -res release's embedding folder). */
function gemmaScopeFile(dir: string, site: string): string {
  const leaf = path.join(`width_16k`, `average_l0_${L0}`, 'params.npz');
  if (site === 'embed') return path.join(dir, 'gemma-scope-2b-pt-res', 'embedding', leaf);
  const [, kind, layer] = /^(attn_z|mlp|resid)_(\d+)$/.exec(site)!;
  const release = { resid: 'res', mlp: 'mlp', attn_z: 'att' }[kind as 'resid' | 'mlp' | 'attn_z'];
  return path.join(dir, `gemma-scope-2b-pt-${release}`, `layer_${layer}`, leaf);
}

/**
 * One random JumpReLU dictionary per site, written as params.npz: unit decoder rows, the encoder
 * tied to them (W_enc = W_decᵀ), b_enc 0, b_dec the sampled mean, and one threshold for all
 * features at the (1 - L0/F) quantile of sampled pre-activations, so ~L0 features fire per token.
 */
function writeDictionaries(
  model: Transformer,
  examples: TaskExample[],
  sites: string[],
  dir: string,
) {
  const sample = model.forward(makeBatch(examples.map((e) => e.clean)), { logits: 'none' });
  let seed = 101;
  for (const site of sites) {
    const d = model.siteWidth(site);
    const x = sample.activation(site);
    const rows = x.length / d;
    const decoder = new Float32Array(WIDTH * d);
    uniformFill(decoder, 1, seed++);
    normalizeRows(decoder, d);
    const encoder = transpose(decoder, WIDTH, d); // [d, F]
    const pre = new Float32Array(rows * WIDTH);
    matmul(x, encoder, pre, rows, WIDTH, d);
    const picked = Float32Array.from({ length: 20000 }, (_, i) => pre[(i * 7919) % pre.length]);
    picked.sort();
    const cut = picked[Math.floor(picked.length * (1 - L0 / WIDTH))];
    const mean = new Float32Array(d);
    for (let n = 0; n < rows; n++) for (let j = 0; j < d; j++) mean[j] += x[n * d + j] / rows;
    const file = gemmaScopeFile(dir, site);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    writeNpz(file, [
      { name: 'W_enc', shape: [d, WIDTH], data: encoder },
      { name: 'W_dec', shape: [WIDTH, d], data: decoder },
      { name: 'b_enc', shape: [WIDTH], data: new Float32Array(WIDTH) },
      { name: 'b_dec', shape: [d], data: mean },
      { name: 'threshold', shape: [WIDTH], data: new Float32Array(WIDTH).fill(cut) },
    ]);
  }
}

function gemmShare(before: GemmTotals, after: GemmTotals, seconds: number, ceiling: number) {
  const flops = after.flops - before.flops;
  const kernel = after.seconds - before.seconds;
  const rate = flops / kernel / 1e9;
  return {
    tflop: flops / 1e12,
    text:
      `${kernel.toFixed(1)} s for ${(flops / 1e12).toFixed(2)} TFLOP in ${after.calls - before.calls} products ` +
      `(${rate.toFixed(0)} GFLOP/s = ${((100 * rate) / ceiling).toFixed(0)}% of the ${ceiling.toFixed(0)} GFLOP/s sgemm ceiling); ` +
      `${(seconds - kernel).toFixed(1)} s outside it; ${(flops / ceiling / 1e9).toFixed(1)} s at the ceiling`,
  };
}

const gb = (bytes: number) => (bytes / 2 ** 30).toFixed(2);
const rssBytes = () => process.resourceUsage().maxRSS * 1024;

/**
 * Peak RSS since the previous call, to tell which phase sets the process's peak: Linux's VmHWM,
 * reset to the current RSS by writing 5 to /proc/self/clear_refs. Elsewhere, the process's peak.
 */
function phasePeak(): number {
  try {
    const kb = Number(/VmHWM:\s+(\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'))![1]);
    fs.writeFileSync('/proc/self/clear_refs', '5');
    return kb * 1024;
  } catch {
    return rssBytes();
  }
}

interface DepthTimes {
  layers: number;
  attribNodes: number;
  igNodes: number;
  igAll: number;
  /** TFLOP of products in the IG node stage. */
  igTflop: number;
  ceiling: number;
}

function runDepth(LAYERS: number): DepthTimes {
  const t0 = performance.now();
  const config = gemma2Config(LAYERS);
  const model = new Transformer(config, randomWeights(config));
  const modelBytes = namedParameters(model.weights).reduce((s, [, t]) => s + t.byteLength, 0);
  const examples = randomExamples(new Rng(1), {
    vocab: config.vocabSize,
    count: EXAMPLES,
    length: T,
  });
  calibrateMetric(model, examples);
  const sites = model.sites.filter((s) => s === 'embed' || /^(attn_z|mlp|resid)_/.test(s));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sfc-bench-gemma2-'));
  try {
    writeDictionaries(model, examples, sites, dir);
    const setup = (performance.now() - t0) / 1000;
    const line = (label: string, value: string) => console.log(`${label.padEnd(34)} ${value}`);
    console.log(
      `gemma2: Gemma-2-2B shape (d 2304, ${LAYERS} of 26 layers, 8 heads / 4 KV, head_dim 256, MLP 9216, V 256000, ` +
        `soft caps 50 / 30, window 4096 on even layers), random weights (${gb(modelBytes)} GiB float32); ` +
        `random JumpReLU ${WIDTH}-wide Gemma Scope params.npz at ${sites.length} sites; ` +
        `${EXAMPLES} pairs of ${T} tokens in batches of ${BATCH}; IG 10 steps (setup ${setup.toFixed(0)} s)`,
    );

    const library = openSaes(dir, LAYERS, { model });
    // Each file is read and freed at once, so the load figure holds no dictionary past its site.
    const t1 = performance.now();
    let dictionaryBytes = 0;
    for (const site of library.sites()) {
      library.get(site);
      library.drop(site);
      dictionaryBytes += fs.statSync(library.entry(site).location).size;
    }
    const load = (performance.now() - t1) / 1000;
    const oneDictionary = dictionaryBytes / sites.length;
    line(
      'load (openSaes, every site)',
      `${load.toFixed(1)} s for ${sites.length} files, ${gb(dictionaryBytes)} GiB = ${(dictionaryBytes / load / 1e9).toFixed(2)} GB/s`,
    );
    const ceiling = sgemmCeiling().best;

    const attribOptions: DiscoverOptions = {
      method: 'attrib',
      nodesOnly: true,
      batchSize: BATCH,
      sites,
    };
    const peaks = { setup: phasePeak(), attrib: 0, igNodes: 0, igEdges: 0 };
    const attrib = discover(model, library, examples, attribOptions);
    peaks.attrib = phasePeak();
    const attribNodes = toCircuit(
      attrib,
      { model: '', saes: '', data: '', tokens: [] },
      attribOptions,
    ).nodes.length;
    line(
      'nodes (attrib)',
      `${attrib.times.nodes.toFixed(1)} s = ${(attrib.times.nodes / EXAMPLES).toFixed(2)} s per example; ${attribNodes} nodes above 0.1`,
    );

    // One IG run: the GEMM totals are taken when the edge stage reports its first progress.
    const before = gemmTotals();
    let atEdges: GemmTotals | undefined;
    const igOptions: DiscoverOptions = {
      method: 'ig',
      steps: 10,
      batchSize: BATCH,
      sites,
      onEdges: () => {
        if (!atEdges) peaks.igNodes = phasePeak();
        atEdges ??= gemmTotals();
      },
    };
    const ig = discover(model, library, examples, igOptions);
    peaks.igEdges = phasePeak();
    const gemm = gemmShare(before, atEdges ?? gemmTotals(), ig.times.nodes, ceiling);
    const circuit = toCircuit(ig, { model: '', saes: '', data: '', tokens: [] }, igOptions);
    line(
      'nodes (ig, 10 steps)',
      `${ig.times.nodes.toFixed(1)} s = ${(ig.times.nodes / EXAMPLES).toFixed(2)} s per example; metric clean ${ig.metric.clean.toFixed(2)}, patch ${ig.metric.patch!.toFixed(2)}`,
    );
    line('  of which in the GEMM kernel', gemm.text);
    line(
      'nodes + edges (0.1 / 0.01)',
      `${(ig.times.nodes + ig.times.edges).toFixed(1)} s (edges ${ig.times.edges.toFixed(1)} s) = ` +
        `${((ig.times.nodes + ig.times.edges) / EXAMPLES).toFixed(2)} s per example; ` +
        `circuit: ${circuit.nodes.length} nodes, ${circuit.edges.length} edges`,
    );
    const goal = modelBytes + 3 * oneDictionary + 2 ** 30;
    const held = ig.dictionaries!;
    // Each phase's peak resets the process's (getrusage's maxRSS reads the same high-water mark).
    const peak = Math.max(peaks.setup, peaks.attrib, peaks.igNodes, peaks.igEdges, rssBytes());
    line(
      'peak RSS',
      `${gb(peak)} GiB; goal model + 3 dictionaries + 1 GiB = ${gb(goal)} GiB ` +
        `(model ${gb(modelBytes)}, one dictionary ${gb(oneDictionary)}; at most ${held.peak} of ` +
        `${sites.length} held at once (capacity nodes ${held.capacity.nodes}, edges ` +
        `${held.capacity.edges}), ${held.loads} loads in the IG run)`,
    );
    line(
      '  peak RSS by phase',
      `setup, load and ceiling ${gb(peaks.setup)}, attrib nodes ${gb(peaks.attrib)}, ` +
        `IG nodes ${gb(peaks.igNodes)}, IG edges ${gb(peaks.igEdges)} GiB`,
    );
    line(
      `ig seconds per layer`,
      `${(ig.times.nodes / LAYERS).toFixed(1)} s (nodes), ${((ig.times.nodes + ig.times.edges) / LAYERS).toFixed(1)} s (nodes + edges)`,
    );
    line(
      '1-minute load average at the end',
      `${os.loadavg()[0].toFixed(1)} on ${os.availableParallelism()} cores`,
    );
    return {
      layers: LAYERS,
      attribNodes: attrib.times.nodes,
      igNodes: ig.times.nodes,
      igAll: ig.times.nodes + ig.times.edges,
      igTflop: gemm.tflop,
      ceiling,
    };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The IG node stage at FULL_DEPTH layers, from two measured depths. IG interpolates each site
 * group's features and runs the rest of the model after it, forward and backward: embed's tail
 * holds every layer, attn_z_L's starts inside layer L, mlp_L's and resid_L's at L + 1; the top
 * layer runs only at the last position, so the full-width layer passes number (N - 1) + Σ (N - 1
 * - L) + Σ (N - 2 - L) = N(N - 1). Fitted as a·N(N - 1) + c·N (c: each layer's own work, the clean
 * and patch passes and encodes), for seconds and for TFLOP of products (the portable figure:
 * divide by a machine's sgemm rate). With one depth only the linear scaling (a lower bound).
 */
function depthEstimate(runs: DepthTimes[]): void {
  const line = (label: string, value: string) => console.log(`${label.padEnd(34)} ${value}`);
  const last = runs.at(-1)!;
  const linear = (t: number) => ((t * FULL_DEPTH) / last.layers).toFixed(0);
  line(
    `${FULL_DEPTH}-layer estimate (linear)`,
    `attrib nodes ${linear(last.attribNodes)} s; ig nodes ≥ ${linear(last.igNodes)} s ` +
      `(≥ ${linear(last.igTflop)} TFLOP), nodes + edges ≥ ${linear(last.igAll)} s`,
  );
  if (runs.length < 2) return;
  const [p, q] = [runs[0], last];
  const passes = (n: number) => n * (n - 1);
  const fit = (tp: number, tq: number) => {
    // tp = a·passes(Np) + c·Np, tq = a·passes(Nq) + c·Nq
    const det = passes(p.layers) * q.layers - passes(q.layers) * p.layers;
    const a = (tp * q.layers - tq * p.layers) / det;
    const c = (passes(p.layers) * tq - passes(q.layers) * tp) / det;
    return a * passes(FULL_DEPTH) + c * FULL_DEPTH;
  };
  const seconds = fit(p.igNodes, q.igNodes);
  const tflop = fit(p.igTflop, q.igTflop);
  line(
    `${FULL_DEPTH}-layer estimate (fit ${p.layers}, ${q.layers})`,
    `ig nodes ${seconds.toFixed(0)} s = ${(seconds / EXAMPLES).toFixed(0)} s per example at this run's rates; ` +
      `${tflop.toFixed(0)} TFLOP of products = ${((tflop * 1e3) / q.ceiling).toFixed(0)} s at the ` +
      `${q.ceiling.toFixed(0)} GFLOP/s ceiling alone; nodes + edges ${fit(p.igAll, q.igAll).toFixed(0)} s`,
  );
}

export function runGemma2Bench(): void {
  const runs = DEPTHS.map((n) => runDepth(n));
  depthEstimate(runs);
}

if (import.meta.url === `file://${process.argv[1]}`) runGemma2Bench();
