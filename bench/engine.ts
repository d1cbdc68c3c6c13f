// Engine benchmark: Pythia-70M shape with random weights, batch 32 x 16 tokens. Reports forward and
// forward+backward times (gradient of a last-token logit difference w.r.t. every site), tokens/s,
// achieved GEMM GFLOP/s against the native sgemm ceiling measured in the same run, and peak RSS.
// Then, in the same run and with the same thread count, bench/pytorch_baseline.py does the same
// work in PyTorch (Debian's /usr/bin/python3 with python3-torch) and the ratios are printed; when
// it cannot run, the bench says why and prints no PyTorch number. SFC_BENCH_PYTORCH=skip skips it.

import { PYTHIA_70M, initialWeights } from './pythia-70m.ts';
import { normalFill } from './normal-fill.ts';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { gemmThreads, matmul } from '../src/kernels/gemm.ts';
import { singleNodeModel } from '../src/kernels/onnx-graph.ts';
import type { GptNeoXConfig } from '../src/model/config.ts';
import { headSize } from '../src/model/config.ts';
import { GptNeoX, type Batch } from '../src/model/gptneox.ts';

const [B, T] = [32, 16];
const WARMUP = 2;
const RUNS = 9;

interface Timing {
  median: number; // seconds
  best: number;
}

/** Median and best of RUNS timed runs after WARMUP untimed ones (best resists other load). */
function timeRuns(run: () => void): Timing {
  for (let i = 0; i < WARMUP; i++) run();
  const times: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const start = performance.now();
    run();
    times.push((performance.now() - start) / 1000);
  }
  times.sort((a, b) => a - b);
  return { median: times[Math.floor(RUNS / 2)], best: times[0] };
}

/**
 * GEMM flops of one forward and of one site-gradient backward (no parameter gradients) under a
 * last-token metric: the head and the last layer's MLP backward only touch B rows.
 */
function gemmFlops(c: GptNeoXConfig): { forward: number; backward: number } {
  const N = B * T;
  const d = c.hiddenSize;
  const f = c.intermediateSize;
  const S = headSize(c);
  const G = B * c.numHeads;
  const attention = (rows: number) => 2 * rows * (3 * d * d + d * d); // qkv, dense
  const mlp = (rows: number) => 2 * rows * (2 * d * f); // dense_h_to_4h, dense_4h_to_h
  const scores = 2 * G * T * T * S; // one [T,S]x[S,T] or [T,T]x[T,S] product over all heads
  const head = 2 * B * d * c.vocabSize;
  return {
    forward: c.numLayers * (attention(N) + mlp(N) + 2 * scores) + head,
    backward:
      c.numLayers * (attention(N) + 4 * scores) + (c.numLayers - 1) * mlp(N) + mlp(B) + head,
  };
}

/** Best GFLOP/s of a native sgemm [m, k]·[k, n] on this machine, now. */
function ceiling(m: number, n: number, k: number): number {
  const a = new Float32Array(m * k);
  const b = new Float32Array(k * n);
  const c = new Float32Array(m * n);
  normalFill(a, 1, 1);
  normalFill(b, 1, 2);
  const reps = Math.max(1, Math.round(2e10 / (2 * m * n * k)));
  const t = timeRuns(() => {
    for (let r = 0; r < reps; r++) matmul(a, b, c, m, n, k);
  });
  return (2 * m * n * k * reps) / t.best / 1e9;
}

/** The ceiling at a small (512x512 . 512x2048) and a large (4096x512 . 512x8192) product. */
export function sgemmCeiling(): { small: number; large: number; best: number } {
  const small = ceiling(512, 2048, 512);
  const large = ceiling(4096, 8192, 512);
  return { small, large, best: Math.max(small, large) };
}

/** Per-call overhead of a 1x1 product: the synchronous binding vs onnxruntime's public async run. */
async function callOverheads(): Promise<{ sync: number; async: number }> {
  const calls = 3000;
  const one = Float32Array.of(1);
  const out = new Float32Array(1);
  for (let i = 0; i < 200; i++) matmul(one, one, out, 1, 1, 1);
  let start = performance.now();
  for (let i = 0; i < calls; i++) matmul(one, one, out, 1, 1, 1);
  const sync = ((performance.now() - start) * 1000) / calls;
  const ort = createRequire(import.meta.url)('onnxruntime-node') as {
    InferenceSession: {
      create(model: Uint8Array, options: object): Promise<{ run(feeds: object): Promise<unknown> }>;
    };
    Tensor: new (type: 'float32', data: Float32Array, dims: number[]) => unknown;
  };
  const model = singleNodeModel({
    node: { op: 'MatMul', inputs: ['A', 'B'], outputs: ['C'] },
    inputs: [
      { name: 'A', shape: ['m', 'k'] },
      { name: 'B', shape: ['k', 'n'] },
    ],
    outputs: [{ name: 'C', shape: ['m', 'n'] }],
  });
  const session = await ort.InferenceSession.create(model, { intraOpNumThreads: gemmThreads() });
  const feeds = {
    A: new ort.Tensor('float32', one, [1, 1]),
    B: new ort.Tensor('float32', one, [1, 1]),
  };
  for (let i = 0; i < 200; i++) await session.run(feeds);
  start = performance.now();
  for (let i = 0; i < calls; i++) await session.run(feeds);
  const async = ((performance.now() - start) * 1000) / calls;
  return { sync, async };
}

// The PyTorch baseline needs Debian's python (python3-torch), not whatever python3 is on PATH.
const PYTHON = '/usr/bin/python3';
const BASELINE = fileURLToPath(new URL('./pytorch_baseline.py', import.meta.url));

const BaselineTiming = z.object({ median: z.number().positive(), best: z.number().positive() });
const BaselineOutput = z.object({
  torch: z.string(),
  threads: z.number().int().positive(),
  openblas_coretype: z.string().nullable(),
  forward: BaselineTiming,
  forward_backward: BaselineTiming,
  peak_rss_mib: z.number(),
});
type BaselineOutput = z.infer<typeof BaselineOutput>;

/**
 * Runs bench/pytorch_baseline.py now, with the engine's thread count: the same work as the
 * engine's forward and forward+backward. Returns why not when it cannot run (never an old number).
 */
function pytorchBaseline(threads: number): BaselineOutput | { skipped: string } {
  if (process.env.SFC_BENCH_PYTORCH === 'skip') return { skipped: 'SFC_BENCH_PYTORCH=skip' };
  if (!fs.existsSync(PYTHON))
    return { skipped: `no ${PYTHON} (Debian: apt-get install python3-torch libopenblas0-pthread)` };
  const run = spawnSync(PYTHON, [BASELINE], {
    env: { ...process.env, SFC_THREADS: String(threads) },
    encoding: 'utf8',
    timeout: 30 * 60 * 1000,
  });
  if (run.error) return { skipped: `${PYTHON} ${BASELINE}: ${run.error.message}` };
  if (run.status !== 0) {
    const err = run.stderr.trim().split('\n').slice(-1)[0] ?? '';
    return {
      skipped: /No module named 'torch'/.test(run.stderr)
        ? `${PYTHON} has no torch (Debian: apt-get install python3-torch libopenblas0-pthread)`
        : `${BASELINE} exited with ${run.status}: ${err}`,
    };
  }
  const last = run.stdout.trim().split('\n').slice(-1)[0] ?? '';
  let parsed: unknown;
  try {
    parsed = JSON.parse(last);
  } catch {
    return { skipped: `${BASELINE} printed no JSON result (last line: ${last.slice(0, 80)})` };
  }
  const result = BaselineOutput.safeParse(parsed);
  if (!result.success)
    return { skipped: `${BASELINE}: unexpected result ${result.error.issues[0]?.message}` };
  return result.data;
}

export async function runEngineBench(): Promise<void> {
  const c = PYTHIA_70M;
  const weights = initialWeights(c);
  const model = new GptNeoX(c, weights);
  const ids = new Int32Array(B * T);
  for (let i = 0; i < ids.length; i++) ids[i] = (i * 7919 + 13) % c.vocabSize;
  const batch: Batch = { ids, batchSize: B, seqLen: T, lengths: new Array(B).fill(T) };
  // Metric: logit(token 1) - logit(token 2) at each example's last token.
  const dLogits = new Float32Array(B * c.vocabSize);
  for (let b = 0; b < B; b++) {
    dLogits[b * c.vocabSize + 1] = 1;
    dLogits[b * c.vocabSize + 2] = -1;
  }

  const forward = timeRuns(() => model.forward(batch));
  const forwardBackward = timeRuns(() =>
    model.forward(batch, { forBackward: true }).backward(dLogits),
  );
  const flops = gemmFlops(c);
  const { small, large, best: ceilingRate } = sgemmCeiling();
  const overhead = await callOverheads();
  const load = os.loadavg()[0];
  const rssMiB = process.resourceUsage().maxRSS / 1024;
  const torch = pytorchBaseline(gemmThreads());
  const loadAfterTorch = os.loadavg()[0];

  const line = (label: string, value: string) => console.log(`${label.padEnd(34)} ${value}`);
  const report = (label: string, t: Timing, gflop: number) => {
    const rate = (x: number) => `${(gflop / x).toFixed(1)} GFLOP/s`;
    const share = (x: number) => `${((100 * gflop) / x / ceilingRate).toFixed(0)}%`;
    line(
      label,
      `median ${(t.median * 1000).toFixed(0)} ms (best ${(t.best * 1000).toFixed(0)} ms), ` +
        `${((B * T) / t.median).toFixed(0)} tokens/s; ${gflop.toFixed(1)} GFLOP: ` +
        `${rate(t.median)} median, ${rate(t.best)} best = ${share(t.median)} / ${share(t.best)} of the ceiling`,
    );
  };
  console.log(
    `engine: Pythia-70M shape (d ${c.hiddenSize}, ${c.numLayers} layers, ${c.numHeads} heads, ` +
      `V ${c.vocabSize}, f ${c.intermediateSize}), random weights, batch ${B} x ${T}, ` +
      `${gemmThreads()} GEMM threads; ${RUNS} timed runs after ${WARMUP} warm-up runs`,
  );
  report('forward (last-token logits)', forward, flops.forward / 1e9);
  report('forward+backward (all sites)', forwardBackward, (flops.forward + flops.backward) / 1e9);
  line('sgemm ceiling 512x512 . 512x2048', `${small.toFixed(1)} GFLOP/s (best run)`);
  line('sgemm ceiling 4096x512 . 512x8192', `${large.toFixed(1)} GFLOP/s (best run)`);
  line(
    'GEMM call overhead (1x1 product)',
    `sync binding ${overhead.sync.toFixed(0)} us, public async run ${overhead.async.toFixed(0)} us`,
  );
  line('peak RSS', `${rssMiB.toFixed(0)} MiB`);
  line(
    '1-minute load average at the end',
    `${load.toFixed(1)} on ${os.availableParallelism()} cores`,
  );
  if ('skipped' in torch) {
    line('PyTorch baseline', `not run: ${torch.skipped}`);
    return;
  }
  const ms = (x: number) => `${(x * 1000).toFixed(0)} ms`;
  const ratio = (theirs: Timing, ours: Timing) =>
    `${(theirs.median / ours.median).toFixed(2)}x median, ${(theirs.best / ours.best).toFixed(2)}x best`;
  console.log(
    `PyTorch baseline (bench/pytorch_baseline.py, same run, same work): torch ${torch.torch}, ` +
      `${torch.threads} threads, OPENBLAS_CORETYPE ${torch.openblas_coretype ?? 'unset'}`,
  );
  line(
    'forward (last-token logits)',
    `median ${ms(torch.forward.median)} (best ${ms(torch.forward.best)})`,
  );
  line(
    'forward+backward (all sites)',
    `median ${ms(torch.forward_backward.median)} (best ${ms(torch.forward_backward.best)})`,
  );
  line('PyTorch / engine, forward', ratio(torch.forward, forward));
  line('PyTorch / engine, forward+backward', ratio(torch.forward_backward, forwardBackward));
  line('PyTorch peak RSS', `${torch.peak_rss_mib.toFixed(0)} MiB`);
  line('1-minute load average after it', `${loadAfterTorch.toFixed(1)}`);
}
