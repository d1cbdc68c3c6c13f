// Discovery benchmark: Pythia-70M shape (d 512, 6 layers, 8 heads, V 50304) with random weights,
// random 32768-wide ReLU SAEs at all 19 sites, 100 examples of 5 tokens (clean/patch differing in
// one token), IG with 10 steps. Reports the time of the node stage and of the edge stage
// (thresholds 0.1 / 0.01), how many downstream nodes the edges had to handle, and peak RSS.
//
// The random model is calibrated to look like a trained one where it matters for the cost: the
// SAE encoder biases put ~64 features on per token (a trained SAE's L0), and embed_out is scaled so
// that m moves by ~4 logits between clean and patch (Pythia-70M's agreement logit differences), so
// that thresholds 0.1 / 0.01 select a realistic number of nodes and edges.
// SFC_BENCH_DISCOVER=small runs a quick reduced shape (d 128, 2 layers, F 4096, 20 examples);
// SFC_BENCH_DISCOVER_EXAMPLES=n and SFC_BENCH_DISCOVER_BATCH=b change the examples and batch size;
// SFC_BENCH_DISCOVER_STAGES=nodes stops after the node stage. The node stage's GEMM time and
// FLOPs are reported against the machine's sgemm ceiling measured in the same run.

import { PYTHIA_70M, initialWeights } from './pythia-70m.ts';
import { normalFill } from './normal-fill.ts';
import os from 'node:os';
import type { GptNeoXConfig } from '../src/model/config.ts';
import { GptNeoX, makeBatch } from '../src/model/gptneox.ts';
import type { GptNeoXWeights } from '../src/model/weights.ts';
import { siteNames } from '../src/model/sites.ts';
import { SparseAutoencoder } from '../src/sae/dictionary.ts';
import { normalizeRows } from '../src/sae/train-loss.ts';
import { exampleFromIds, type TaskExample } from '../src/data/tasks.ts';
import { discover, toCircuit, type DiscoverOptions } from '../src/attribution/discover.ts';
import { Rng } from '../src/random.ts';
import { gemmTotals, type GemmTotals } from '../src/kernels/gemm.ts';
import { sgemmCeiling } from './engine.ts';

const SMALL = process.env.SFC_BENCH_DISCOVER === 'small';
export const CONFIG: GptNeoXConfig = {
  ...PYTHIA_70M,
  hiddenSize: SMALL ? 128 : 512,
  numLayers: SMALL ? 2 : 6,
  intermediateSize: SMALL ? 512 : 2048,
};
export const WIDTH = SMALL ? 4096 : 32768;
const EXAMPLES = Number(process.env.SFC_BENCH_DISCOVER_EXAMPLES ?? (SMALL ? 20 : 100));
const BATCH = Number(process.env.SFC_BENCH_DISCOVER_BATCH ?? 10);
const T = 5;
const L0 = 64; // target active features per token
const DELTA_M = 4; // target mean |m_patch - m_clean|
// The organism's (and the paper's Pythia) dictionary sites; attn_z_L is passed through.
export const SITES = siteNames(CONFIG.numLayers);

/**
 * Like an agreement task: every example swaps the same "subject" token at position 1 and has the
 * same two answers, around random other tokens, so effects agree in sign across examples.
 */
export function randomExamples(
  rng: Rng,
  { vocab = CONFIG.vocabSize, count = EXAMPLES, length = T } = {},
): TaskExample[] {
  const V = vocab;
  const [subject, subjects, answer, otherAnswer] = [rng.int(V), rng.int(V), rng.int(V), rng.int(V)];
  return Array.from({ length: count }, (_, i) => {
    const clean = Array.from({ length }, () => rng.int(V));
    clean[1] = subject;
    const patch = clean.slice();
    patch[1] = subjects;
    return exampleFromIds({
      line: i + 1,
      clean,
      patch,
      cleanAnswerId: answer,
      patchAnswerId: otherAnswer,
    });
  });
}

/**
 * One random ReLU SAE per site: unit decoder rows, encoder tied to them (the same array), and a
 * bias that leaves about L0 features on per token for this site's activations.
 */
export function randomSaes(
  model: GptNeoX,
  examples: TaskExample[],
  width = WIDTH,
  sites = SITES,
): Map<string, SparseAutoencoder> {
  const d = model.config.hiddenSize;
  const sample = model.forward(makeBatch(examples.slice(0, 20).map((e) => e.clean)), {
    logits: 'none',
  });
  const saes = new Map<string, SparseAutoencoder>();
  let seed = 101;
  for (const site of sites) {
    const decoder = new Float32Array(width * d);
    normalFill(decoder, 1 / Math.sqrt(d), seed++);
    normalizeRows(decoder, d);
    // b_D at the sample mean; b_E at minus the (1 - L0/F) quantile of sampled pre-activations.
    const x = sample.activation(site);
    const rows = x.length / d;
    const mean = new Float32Array(d);
    for (let n = 0; n < rows; n++) for (let j = 0; j < d; j++) mean[j] += x[n * d + j] / rows;
    const probe = new SparseAutoencoder({
      site,
      kind: 'relu',
      dIn: d,
      width: width,
      encoder: decoder,
      encoderBias: new Float32Array(width),
      decoder,
      decoderBias: mean,
    });
    const pre = probe.preActivations(x, rows);
    const picked = Float32Array.from({ length: 20000 }, (_, i) => pre[(i * 7919) % pre.length]);
    picked.sort();
    const cut = picked[Math.floor(picked.length * (1 - L0 / width))];
    saes.set(
      site,
      new SparseAutoencoder({
        site,
        kind: 'relu',
        dIn: d,
        width: width,
        encoder: decoder,
        encoderBias: new Float32Array(width).fill(-cut),
        decoder,
        decoderBias: mean,
      }),
    );
  }
  return saes;
}

/**
 * Where a stage's time went: the GEMM kernel's share, its rate against the sgemm ceiling, and the
 * time the stage would take if every product ran at the ceiling and nothing else took time.
 */
function gemmShare(before: GemmTotals, after: GemmTotals, seconds: number, ceiling: number) {
  const flops = after.flops - before.flops;
  const kernel = after.seconds - before.seconds;
  const rate = flops / kernel / 1e9;
  return (
    `${kernel.toFixed(1)} s for ${(flops / 1e12).toFixed(2)} TFLOP in ${after.calls - before.calls} products ` +
    `(${rate.toFixed(0)} GFLOP/s = ${((100 * rate) / ceiling).toFixed(0)}% of the ${ceiling.toFixed(0)} GFLOP/s sgemm ceiling); ` +
    `${(seconds - kernel).toFixed(1)} s outside it; ${(flops / ceiling / 1e9).toFixed(1)} s at the ceiling`
  );
}

/** Scales embed_out so that m moves by ~DELTA_M logits on average over `examples`. */
export function scaleHeadToDeltaM(
  c: GptNeoXConfig,
  weights: GptNeoXWeights,
  examples: TaskExample[],
): void {
  const model = new GptNeoX(c, weights);
  const m = (ids: number[][]) => {
    const logits = model.forward(makeBatch(ids)).logits;
    return ids.map((_, b) => {
      const row = logits.subarray(b * c.vocabSize, (b + 1) * c.vocabSize);
      const e = examples[b];
      return row[e.patchAnswerId!] - row[e.cleanAnswerId];
    });
  };
  const [mc, mp] = [m(examples.map((e) => e.clean)), m(examples.map((e) => e.patch!))];
  const mean = mc.reduce((s, v, i) => s + Math.abs(mp[i] - v), 0) / mc.length;
  const k = DELTA_M / mean;
  for (let i = 0; i < weights.embedOut.length; i++) weights.embedOut[i] *= k;
}

/**
 * The bench's model (random weights, embed_out scaled so that m moves by ~DELTA_M logits on
 * average) and examples; the same on every call.
 */
export function benchModel(): { model: GptNeoX; examples: TaskExample[] } {
  const c = CONFIG;
  const weights = initialWeights(c);
  const rng = new Rng(1);
  const examples = randomExamples(rng);
  scaleHeadToDeltaM(c, weights, examples.slice(0, 20));
  return { model: new GptNeoX(c, weights), examples };
}

export function runDiscoverBench(): void {
  const c = CONFIG;
  const t0 = performance.now();
  const { model, examples } = benchModel();
  const saes = randomSaes(model, examples);
  const setup = (performance.now() - t0) / 1000;
  const dictionaries = (site: string) => saes.get(site)!;
  console.log(
    `discover: Pythia-70M shape (d ${c.hiddenSize}, ${c.numLayers} layers, ${c.numHeads} heads, V ${c.vocabSize}), ` +
      `random ${WIDTH}-wide SAEs at ${SITES.length} sites, ${EXAMPLES} examples of ${T} tokens in batches of ${BATCH}, IG 10 steps ` +
      `(setup ${setup.toFixed(0)} s)`,
  );
  const line = (label: string, value: string) => console.log(`${label.padEnd(34)} ${value}`);

  const nodesOptions: DiscoverOptions = {
    method: 'ig',
    steps: 10,
    nodesOnly: true,
    batchSize: BATCH,
    sites: SITES,
  };
  const ceiling = sgemmCeiling().best;
  const gemmBefore = gemmTotals();
  const nodes = discover(model, dictionaries, examples, nodesOptions);
  const gemm = gemmShare(gemmBefore, gemmTotals(), nodes.times.nodes, ceiling);
  const nodesCircuit = toCircuit(
    nodes,
    { model: '', saes: '', data: '', tokens: [] },
    nodesOptions,
  );
  line(
    'nodes (ig, 10 steps)',
    `${nodes.times.nodes.toFixed(1)} s; ${nodesCircuit.nodes.length} nodes above 0.1; metric clean ${nodes.metric.clean.toFixed(2)}, patch ${nodes.metric.patch!.toFixed(2)}`,
  );

  line('  of which in the GEMM kernel', gemm);
  if (process.env.SFC_BENCH_DISCOVER_STAGES === 'nodes') return;

  const fullOptions: DiscoverOptions = { method: 'ig', steps: 10, batchSize: BATCH, sites: SITES };
  const full = discover(model, dictionaries, examples, fullOptions);
  const circuit = toCircuit(full, { model: '', saes: '', data: '', tokens: [] }, fullOptions);
  let downstream = 0;
  for (const bn of full.batches)
    for (const sn of bn.sites.values()) {
      for (const e of sn.effect) if (Math.abs(e) > 0.1) downstream++;
      for (const e of sn.errorEffect) if (Math.abs(e) > 0.1) downstream++;
    }
  line(
    'nodes + edges (0.1 / 0.01)',
    `${(full.times.nodes + full.times.edges).toFixed(1)} s (nodes ${full.times.nodes.toFixed(1)} s, edges ${full.times.edges.toFixed(1)} s); ` +
      `${downstream} downstream (example, position, node)s; ${full.sums.edgeCount()} edge sums; ` +
      `circuit: ${circuit.nodes.length} nodes, ${circuit.edges.length} edges`,
  );
  line('peak RSS', `${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MiB`);
  line(
    '1-minute load average at the end',
    `${os.loadavg()[0].toFixed(1)} on ${os.availableParallelism()} cores`,
  );
}

if (import.meta.url === `file://${process.argv[1]}`) runDiscoverBench();
