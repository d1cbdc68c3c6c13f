// The generic engine (src/model/transformer.ts) against the dedicated GptNeoX engine on the same
// Pythia-70M-shaped weights, batch 32 x 16: forward (last-token logits) and forward+backward (the
// gradient of a last-token logit difference at every site). Reported as time ratios, which the
// machine's load affects less than raw times; runs alternate between the engines.
// Run: npx tsx bench/families.ts

import { PYTHIA_70M, initialWeights } from './pythia-70m.ts';
import { toConfigJson } from '../src/model/config.ts';
import { GptNeoX, type Batch } from '../src/model/gptneox.ts';
import { parameterLayout } from '../src/model/weights.ts';
import { Transformer } from '../src/model/transformer.ts';
import { readTransformerWeights } from '../src/model/families/family.ts';
import { gptNeoX } from '../src/model/families/gptneox.ts';

const [B, T] = [32, 16];
const RUNS = 7;

const c = PYTHIA_70M;
const neoxWeights = initialWeights(c);
const neox = new GptNeoX(c, neoxWeights);
const config = gptNeoX.readConfig(toConfigJson(c), 'pythia-70m shape');
const layout = new Map(parameterLayout(c).map((p) => [p.name, p]));
const generic = new Transformer(
  config,
  readTransformerWeights(
    gptNeoX,
    config,
    (name) => {
      const p = layout.get(name);
      return p && { shape: p.shape, data: () => p.get(neoxWeights) };
    },
    'bench',
  ),
);
const ids = Int32Array.from({ length: B * T }, (_, i) => (i * 7919) % c.vocabSize);
const batch: Batch = { ids, batchSize: B, seqLen: T, lengths: Array(B).fill(T) };
const dLogits = new Float32Array(B * c.vocabSize);
for (let b = 0; b < B; b++) [dLogits[b * c.vocabSize + 3], dLogits[b * c.vocabSize + 5]] = [1, -1];

function median(xs: number[]): number {
  return [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
}

function time(run: () => void): number {
  const start = performance.now();
  run();
  return performance.now() - start;
}

const cases: [string, (m: GptNeoX | Transformer) => void][] = [
  ['forward (last-token logits)', (m) => m.forward(batch)],
  [
    'forward+backward (all sites)',
    (m) => m.forward(batch, { forBackward: true }).backward(dLogits),
  ],
  [
    'the same, topLayerRows last',
    (m) => m.forward(batch, { forBackward: true, topLayerRows: 'last' }).backward(dLogits),
  ],
];
for (const [label, run] of cases) {
  const a: number[] = [];
  const b: number[] = [];
  for (let i = 0; i < RUNS + 1; i++) {
    const ta = time(() => run(neox));
    const tb = time(() => run(generic));
    if (i === 0) continue; // the first round warms up
    a.push(ta);
    b.push(tb);
  }
  console.log(
    `${label.padEnd(30)} GptNeoX median ${median(a).toFixed(0)} ms, generic ${median(b).toFixed(0)} ms: generic/GptNeoX ${(median(b) / median(a)).toFixed(2)}`,
  );
}
