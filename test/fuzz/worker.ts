// Runs one format's fuzz inputs inside a worker thread, so the test's main thread can stop it
// when an input takes longer than the per-input bound (a hang cannot be interrupted from within).
// Typed-array and ArrayBuffer constructors are wrapped to refuse any single allocation beyond the
// format's bound while a loader runs: an oversized request is caught before memory is taken.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import { Rng } from '../../src/random.ts';
import { FORMATS } from './formats.ts';

export interface WorkerInput {
  format: number;
  seed: number;
  count: number;
  seconds: number;
}

export type WorkerMessage =
  | { type: 'start'; index: number }
  | { type: 'failure'; index: number; kind: string; message: string }
  | {
      type: 'done';
      tried: number;
      loaded: number;
      refused: number;
      peakRss: number;
      largestAllocation: number;
      largestAllocationBound: number;
    };

/** Thrown by the allocation guard; never a "clear error" of the project. */
class AllocationBeyondBound extends Error {}

let limit = Infinity;
let largest = 0;
let largestBound = 0;

function guard<T extends abstract new (...args: never[]) => object>(
  ctor: T,
  bytesPerElement: number,
): T {
  return new Proxy(ctor, {
    construct(target, args: unknown[], newTarget) {
      const a = args[0];
      const elements =
        typeof a === 'number'
          ? a
          : a !== null && typeof a === 'object' && !(a instanceof ArrayBuffer) && 'length' in a
            ? Number((a as { length: unknown }).length)
            : 0;
      const bytes = elements * bytesPerElement;
      if (limit !== Infinity && bytes > largest) {
        largest = bytes;
        largestBound = limit;
      }
      if (bytes > limit)
        throw new AllocationBeyondBound(
          `allocation of ${bytes} bytes, beyond the bound of ${limit}`,
        );
      return Reflect.construct(
        target,
        args,
        newTarget === proxyOf.get(target) ? target : newTarget,
      );
    },
  });
}
const proxyOf = new Map<unknown, unknown>();
const g = globalThis as unknown as Record<string, abstract new (...args: never[]) => object>;
for (const [name, bpe] of [
  ['ArrayBuffer', 1],
  ['Uint8Array', 1],
  ['Int8Array', 1],
  ['Uint16Array', 2],
  ['Int16Array', 2],
  ['Uint32Array', 4],
  ['Int32Array', 4],
  ['Float32Array', 4],
  ['Float64Array', 8],
  ['BigInt64Array', 8],
  ['BigUint64Array', 8],
] as const) {
  const proxy = guard(g[name], bpe);
  proxyOf.set(g[name], proxy);
  g[name] = proxy;
}

/** A plain Error (not TypeError, RangeError, ...) whose message starts with the input's path. */
function isClearError(e: unknown, target: string): boolean {
  return (
    e instanceof Error &&
    Object.getPrototypeOf(e) === Error.prototype &&
    e.message.startsWith(target)
  );
}

const input = workerData as WorkerInput;
const format = FORMATS[input.format];
format.setup();
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sfc-fuzz-'));
const post = (m: WorkerMessage) => parentPort!.postMessage(m);
const started = performance.now();
let tried = 0;
let loaded = 0;
let refused = 0;
let peakRss = process.memoryUsage.rss();
try {
  for (let index = 0; index < input.count; index++) {
    if (performance.now() - started > input.seconds * 1000) break;
    post({ type: 'start', index });
    // Each input from (seed, format, index) alone, so a failure reproduces on its own.
    const rng = new Rng(
      (input.seed * 0x9e3779b1 + input.format * 0x85ebca6b + index * 0xc2b2ae35) >>> 0,
    );
    const { target, bytes } = format.input(rng, dir);
    tried++;
    limit = format.allocationBound(bytes);
    try {
      format.load(target);
      loaded++;
    } catch (e) {
      if (isClearError(e, target)) refused++;
      else {
        const err = e as Error;
        post({
          type: 'failure',
          index,
          kind:
            e instanceof AllocationBeyondBound
              ? 'allocation beyond bound'
              : (err?.constructor?.name ?? typeof e),
          message: `${String(err?.message ?? e).slice(0, 400)}\n${String(err?.stack ?? '')
            .split('\n')
            .slice(1, 5)
            .join('\n')}`,
        });
      }
    } finally {
      limit = Infinity;
    }
    if (index % 16 === 0) peakRss = Math.max(peakRss, process.memoryUsage.rss());
  }
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
post({
  type: 'done',
  tried,
  loaded,
  refused,
  peakRss: Math.max(peakRss, process.memoryUsage.rss()),
  largestAllocation: largest,
  largestAllocationBound: largestBound,
});
