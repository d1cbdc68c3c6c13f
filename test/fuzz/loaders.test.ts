// The fuzz suite: thousands of seeded mutations of every file format sfc reads (safetensors,
// torch.save ae.pt, SAELens folders, circuit.json, task JSONL, tokenizer.json, .npy/.npz, graph
// JSON; see ./formats.ts).
// Each input must either load or be refused with the project's own clear error, which here means
// a plain Error (not a TypeError, RangeError or anything uncaught) whose message starts with the
// path of the file or folder being read. Bounds, per input:
//   - time: PER_INPUT_SECONDS; the inputs run in a worker thread that is stopped when one input
//     takes longer, and the input's index is reported;
//   - memory: no single typed array or ArrayBuffer beyond the format's bound (1 MiB plus 2x the
//     input for safetensors, 4x for SAELens folders, 16x for JSON formats, 1032x for zip archives,
//     deflate's own limit), checked by wrapping those constructors before they allocate; and the
//     process's resident memory stays under PEAK_RSS_BYTES.
// Defaults keep the suite at ~20 s on a 2-core machine: SFC_FUZZ_COUNT inputs per format (default
// 1500) within SFC_FUZZ_SECONDS per format (default 3.5), seeded by SFC_FUZZ_SEED (default 1).
// Longer local run: SFC_FUZZ_SEED=7 SFC_FUZZ_COUNT=100000 SFC_FUZZ_SECONDS=120 npm test -- ...

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { FORMATS } from './formats.ts';
import type { WorkerInput, WorkerMessage } from './worker.ts';

const SEED = Number(process.env.SFC_FUZZ_SEED ?? 1);
const COUNT = Number(process.env.SFC_FUZZ_COUNT ?? 2000);
const SECONDS = Number(process.env.SFC_FUZZ_SECONDS ?? 2.5);
const PER_INPUT_SECONDS = 5;
const PEAK_RSS_BYTES = 1.5 * 2 ** 30;

interface Outcome {
  tried: number;
  loaded: number;
  refused: number;
  peakRss: number;
  largestAllocation: number;
  largestAllocationBound: number;
  failures: { index: number; kind: string; message: string }[];
}

/** Runs one format's inputs in a worker thread, stopping it when an input exceeds the time bound. */
function runFormat(format: number): Promise<Outcome> {
  const data: WorkerInput = { format, seed: SEED, count: COUNT, seconds: SECONDS };
  // Workers do not inherit tsx's loader: register it before importing the TypeScript worker.
  const tsx = import.meta.resolve('tsx/esm/api');
  const script = new URL('./worker.ts', import.meta.url).href;
  const worker = new Worker(
    `import { register } from ${JSON.stringify(tsx)}; register(); await import(${JSON.stringify(script)});`,
    { eval: true, workerData: data },
  );
  const failures: Outcome['failures'] = [];
  return new Promise((resolve, reject) => {
    let current = -1;
    let since = performance.now();
    const watchdog = setInterval(() => {
      if (current >= 0 && performance.now() - since > PER_INPUT_SECONDS * 1000) {
        clearInterval(watchdog);
        failures.push({
          index: current,
          kind: 'hang',
          message: `input ${current} ran for more than ${PER_INPUT_SECONDS} s`,
        });
        void worker.terminate();
        resolve({
          tried: current + 1,
          loaded: 0,
          refused: 0,
          peakRss: 0,
          largestAllocation: 0,
          largestAllocationBound: 0,
          failures,
        });
      }
    }, 250);
    worker.on('message', (m: WorkerMessage) => {
      if (m.type === 'start') {
        current = m.index;
        since = performance.now();
      } else if (m.type === 'failure') failures.push(m);
      else {
        clearInterval(watchdog);
        current = -1;
        void worker.terminate();
        resolve({ ...m, failures });
      }
    });
    worker.on('error', (e) => {
      clearInterval(watchdog);
      reject(new Error(`fuzz worker died at input ${current}: ${e.message}`, { cause: e }));
    });
  });
}

FORMATS.forEach((format, i) => {
  test(`fuzz ${format.name}: every mutated input loads or is refused with a clear error`, async (t) => {
    const o = await runFormat(i);
    const mb = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;
    const line =
      `fuzz ${format.name} (seed ${SEED}): ${o.tried} inputs tried, ${o.loaded} loaded, ` +
      `${o.refused} refused, ${o.failures.length} failed; largest allocation ${mb(o.largestAllocation)} ` +
      `(its bound ${mb(o.largestAllocationBound)}), peak RSS ${mb(o.peakRss)}`;
    t.diagnostic(line);
    const shown = o.failures
      .slice(0, 5)
      .map((f) => `input ${f.index} (SFC_FUZZ_SEED=${SEED}): ${f.kind}: ${f.message}`)
      .join('\n\n');
    assert.equal(o.failures.length, 0, `${o.failures.length} inputs failed:\n${shown}`);
    assert.ok(o.tried >= Math.min(COUNT, 50), `only ${o.tried} inputs ran in ${SECONDS} s`);
    assert.ok(o.peakRss < PEAK_RSS_BYTES, `peak RSS ${mb(o.peakRss)}`);
  });
});
