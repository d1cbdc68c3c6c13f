// An attribution graph on a Pythia-70M-shaped model (random weights) and a 32-token prompt, with
// 32k-wide TopK transcoders (random; k = 16 features per token and layer): per-layer transcoders,
// then a cross-layer transcoder (decoders into every later layer: 21 [32k, 512] matrices, 1.4 GB).
// Seconds per stage, backward passes, peak RSS (of the process so far), and the GEMM's share
// against the machine's sgemm ceiling. The goal in issue #18 is <= 10 s and <= 4 GB per graph.

import { GptNeoX } from '../src/model/gptneox.ts';
import { gemmTotals } from '../src/kernels/gemm.ts';
import { buildReplacement } from '../src/graphs/replacement.ts';
import { buildGraph } from '../src/graphs/graph.ts';
import { graphScores, pruneGraph } from '../src/graphs/prune.ts';
import type { Transcoder } from '../src/transcoders/transcoder.ts';
import { memoryDecoders, type CrossLayerTranscoder } from '../src/transcoders/clt.ts';
import { PYTHIA_70M, initialWeights } from './pythia-70m.ts';
import { normalFill } from './normal-fill.ts';
import { sgemmCeiling } from './engine.ts';

const WIDTH = 32768;
const K = 16;
const TOKENS = 32;
const BATCH_TARGETS = 64;

export function runGraphBench(): void {
  const c = PYTHIA_70M;
  const d = c.hiddenSize;
  const model = new GptNeoX(c, initialWeights(c));
  const transcoders: Transcoder[] = Array.from({ length: c.numLayers }, (_, L) => {
    const tc: Transcoder = {
      layer: L,
      dIn: d,
      width: WIDTH,
      activation: 'topk',
      k: K,
      encoder: new Float32Array(WIDTH * d),
      encoderBias: new Float32Array(WIDTH),
      decoder: new Float32Array(WIDTH * d),
      decoderBias: new Float32Array(d),
    };
    normalFill(tc.encoder, 1 / Math.sqrt(d), 100 + L);
    normalFill(tc.decoder, 0.02, 200 + L);
    return tc;
  });
  const ids = Array.from({ length: TOKENS }, (_, i) => (i * 7919) % c.vocabSize);
  const ceiling = sgemmCeiling().best;
  timeGraph(model, transcoders, ids, ceiling, 'per-layer');
  transcoders.length = 0; // let the per-layer weights go before the CLT's
  const layers = Array.from({ length: c.numLayers }, (_, l) => l);
  const clt: CrossLayerTranscoder = {
    numLayers: c.numLayers,
    dIn: d,
    width: WIDTH,
    activation: 'topk',
    k: K,
    encoders: layers.map((l) => {
      const e = new Float32Array(WIDTH * d);
      normalFill(e, 1 / Math.sqrt(d), 300 + l);
      return e;
    }),
    encoderBiases: layers.map(() => new Float32Array(WIDTH)),
    decoderBiases: layers.map(() => new Float32Array(d)),
    decoders: memoryDecoders(
      layers.map((l) => {
        const w = new Float32Array(WIDTH * (c.numLayers - l) * d);
        normalFill(w, 0.02, 400 + l);
        return w;
      }),
      WIDTH,
      d,
    ),
  };
  timeGraph(model, clt, ids, ceiling, 'CLT');
}

function timeGraph(
  model: GptNeoX,
  transcoders: Transcoder[] | CrossLayerTranscoder,
  ids: number[],
  ceiling: number,
  name: string,
): void {
  const c = model.config;
  const before = gemmTotals();
  const t0 = performance.now();
  const replacement = buildReplacement(model, transcoders, ids);
  const t1 = performance.now();
  const graph = buildGraph(replacement, { batchTargets: BATCH_TARGETS });
  const t2 = performance.now();
  const pruned = pruneGraph(graph);
  graphScores(graph);
  const t3 = performance.now();
  const after = gemmTotals();
  const total = (t3 - t0) / 1000;
  const kernel = after.seconds - before.seconds;
  const rate = (after.flops - before.flops) / kernel / 1e9;
  const features = graph.nodes.filter((n) => n.kind === 'feature').length;
  console.log(
    `graph (${name}): ${TOKENS} tokens, ${c.numLayers} layers x ${WIDTH} features (TopK ${K}): ` +
      `${features} active features, ${graph.nodes.length} nodes, ${graph.targets.length} targets in ` +
      `${Math.ceil(graph.targets.length / BATCH_TARGETS)} batched backward passes; ` +
      `${pruned.nodeMask.reduce((a, b) => a + b, 0)} nodes kept`,
  );
  console.log(
    `graph (${name}): ${total.toFixed(1)} s (replacement ${((t1 - t0) / 1000).toFixed(1)}, edges ` +
      `${((t2 - t1) / 1000).toFixed(1)}, prune and scores ${((t3 - t2) / 1000).toFixed(1)}); ` +
      `GEMM ${kernel.toFixed(1)} s at ${rate.toFixed(0)} GFLOP/s = ${((100 * rate) / ceiling).toFixed(0)}% ` +
      `of the ${ceiling.toFixed(0)} GFLOP/s ceiling; peak RSS ${(process.resourceUsage().maxRSS / 1e6).toFixed(2)} GB`,
  );
}
