// Single-precision matrix products on onnxruntime's native CPU kernel (MLAS).
//
// Why this kernel: it installs from npm with its binary inside the package (no compiler, no
// download) and runs ~35 GFLOP/s per core here, 40x the pure-JS alternatives; see docs/engine.md.
// Why the internal binding: the public InferenceSession.run defers every call through
// setImmediate and a Promise (~70 us each); the binding under it is synchronous (~30 us) and lets
// the whole engine stay synchronous. The version is pinned in package.json for that reason.

import { createRequire } from 'node:module';
import os from 'node:os';
import { singleNodeModel } from './onnx-graph.ts';

const require = createRequire(import.meta.url);

interface OrtTensorConstructor {
  new (type: 'float32', data: Float32Array, dims: readonly number[]): unknown;
}
interface BindingSession {
  loadModel(buffer: ArrayBufferLike, byteOffset: number, byteLength: number, options: object): void;
  run(feeds: Record<string, unknown>, fetches: Record<string, unknown>, options: object): unknown;
}
interface Binding {
  InferenceSession: new () => BindingSession;
}

let ortTensor: OrtTensorConstructor | undefined;
let ortBinding: Binding | undefined;

function loadOrt(): { Tensor: OrtTensorConstructor; binding: Binding } {
  if (!ortTensor || !ortBinding) {
    try {
      const ort = require('onnxruntime-node') as { Tensor: OrtTensorConstructor };
      const internal = require('onnxruntime-node/dist/binding.js') as {
        binding: Binding;
        initOrt: () => void;
      };
      internal.initOrt();
      ortTensor = ort.Tensor;
      ortBinding = internal.binding;
    } catch (err) {
      throw new Error(
        `could not load the native GEMM kernel (onnxruntime-node): ${(err as Error).message}. ` +
          'Run `npm ci` in the project folder; the kernel supports linux/darwin/win32 on x64 and arm64.',
        { cause: err },
      );
    }
  }
  return { Tensor: ortTensor, binding: ortBinding };
}

/** Threads the kernel may use: SFC_THREADS, else every core the OS offers. */
export function gemmThreads(): number {
  const fromEnv = Number(process.env.SFC_THREADS);
  return Number.isInteger(fromEnv) && fromEnv > 0 ? fromEnv : os.availableParallelism();
}

const sessions = new Map<string, BindingSession>();

function session(batched: boolean, transA: boolean, transB: boolean): BindingSession {
  const id = `${batched}/${transA}/${transB}`;
  let s = sessions.get(id);
  if (!s) {
    const { binding } = loadOrt();
    const lead = batched ? ['batch'] : [];
    const model = singleNodeModel({
      node: {
        op: 'FusedMatMul',
        domain: 'com.microsoft',
        inputs: ['A', 'B'],
        outputs: ['C'],
        intAttributes: { transA: transA ? 1 : 0, transB: transB ? 1 : 0 },
      },
      inputs: [
        { name: 'A', shape: [...lead, ...(transA ? ['k', 'm'] : ['m', 'k'])] },
        { name: 'B', shape: [...lead, ...(transB ? ['n', 'k'] : ['k', 'n'])] },
      ],
      outputs: [{ name: 'C', shape: [...lead, 'm', 'n'] }],
    });
    s = new binding.InferenceSession();
    s.loadModel(model.buffer, model.byteOffset, model.byteLength, {
      intraOpNumThreads: gemmThreads(),
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
      // Between products the engine runs JS loops on this same machine; a spinning worker
      // would take a core from them (measured: forward+backward 2x slower with spinning).
      extra: { session: { intra_op: { allow_spinning: '0' } } },
    });
    sessions.set(id, s);
  }
  return s;
}

export interface GemmOptions {
  /** A is stored [k, m] and used transposed. */
  transA?: boolean;
  /** B is stored [n, k] and used transposed (the layout of a PyTorch Linear weight). */
  transB?: boolean;
  /** Number of independent products stored back to back in A, B and C. */
  batch?: number;
  /** Add the product into C instead of overwriting it (gradients that fan in). */
  accumulate?: boolean;
}

let scratch = new Float32Array(0);

/** Products run so far in this process: for benchmarks that report their GEMM share. */
export interface GemmTotals {
  calls: number;
  /** 2·batch·m·n·k summed over the products. */
  flops: number;
  /** Wall time inside the native kernel. */
  seconds: number;
}
const totals: GemmTotals = { calls: 0, flops: 0, seconds: 0 };

/** A copy of the running totals (subtract two to measure a stretch of work). */
export function gemmTotals(): GemmTotals {
  return { ...totals };
}

/**
 * C = op(A) · op(B), row-major: op(A) is [m, k], op(B) is [k, n], C is [m, n]
 * (each with a leading batch dimension when `batch` is given). Views into larger buffers are fine.
 */
export function matmul(
  a: Float32Array,
  b: Float32Array,
  c: Float32Array,
  m: number,
  n: number,
  k: number,
  options: GemmOptions = {},
): void {
  const { transA = false, transB = false, accumulate = false } = options;
  const batch = options.batch ?? 1;
  const batched = options.batch !== undefined;
  if (a.length < batch * m * k || b.length < batch * k * n || c.length < batch * m * n) {
    throw new Error(
      `matmul: buffers too small for ${batch}x[${m}x${k}]·[${k}x${n}] ` +
        `(A ${a.length}, B ${b.length}, C ${c.length} floats)`,
    );
  }
  if (m === 0 || n === 0) return;
  if (k === 0) {
    if (!accumulate) c.fill(0, 0, batch * m * n);
    return;
  }
  const { Tensor } = loadOrt();
  const lead = batched ? [batch] : [];
  const size = batch * m * n;
  let out = c.length === size ? c : c.subarray(0, size);
  if (accumulate) {
    if (scratch.length < size) scratch = new Float32Array(size);
    out = scratch.subarray(0, size);
  }
  const feeds = {
    A: new Tensor('float32', a.length === batch * m * k ? a : a.subarray(0, batch * m * k), [
      ...lead,
      ...(transA ? [k, m] : [m, k]),
    ]),
    B: new Tensor('float32', b.length === batch * k * n ? b : b.subarray(0, batch * k * n), [
      ...lead,
      ...(transB ? [n, k] : [k, n]),
    ]),
  };
  const start = performance.now();
  session(batched, transA, transB).run(
    feeds,
    { C: new Tensor('float32', out, [...lead, m, n]) },
    {},
  );
  totals.seconds += (performance.now() - start) / 1000;
  totals.calls++;
  totals.flops += 2 * batch * m * n * k;
  if (accumulate) {
    for (let i = 0; i < size; i++) c[i] += out[i];
  }
}
