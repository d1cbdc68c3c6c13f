// Peak memory of discovery with dictionaries loaded from a folder: the discover bench's
// Pythia-70M-shaped model and random 32768-wide SAEs at all 19 sites (bench/discover.ts), written
// to a temporary folder in our SAELens layout (~128 MiB each, 2.4 GiB in all), then `discover`
// (IG 10 steps, nodes and edges) on 20 of its examples in a fresh process per mode, so that each
// peak RSS (process.resourceUsage().maxRSS) is that mode's alone:
//   all      every dictionary kept once loaded (a plain function as the source: as before
//            dictionaries were freed)
//   bounded  the folder's library as the source: only the sites at work are in memory
//   bf16     bounded, with the library holding each SAE's weights in bfloat16 (--dtype bf16)
// Each child also reports its peak after building the model, before any dictionary (the
// model term of the memory model in docs/discover.md). The folder is written by a child too: on
// Linux a process's maxRSS starts at what its parent held when it was forked, so the parent holds
// nothing big. SFC_BENCH_DISCOVER=small shrinks everything as bench/discover.ts does.

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { discover } from '../src/attribution/discover.ts';
import { saveDictionary } from '../src/sae/formats.ts';
import { openSaes } from '../src/sae/library.ts';
import { SITES, WIDTH, benchModel, randomSaes } from './discover.ts';

const EXAMPLES = 20;
const MODES = ['all', 'bounded', 'bf16'] as const;
const WRITE = 'write';
type Mode = (typeof MODES)[number];

const MiB = (bytes: number) => `${(bytes / 2 ** 20).toFixed(0)} MiB`;
const maxRss = () => process.resourceUsage().maxRSS * 1024; // bytes

interface ChildResult {
  mode: Mode;
  modelPeak: number;
  peak: number;
  nodes: number;
  edges: number;
  /** Seconds of the whole discover call, loading included. */
  total: number;
  resident: number;
  loads: number;
  circuitNodes: number;
}

function child(mode: Mode, dir: string): void {
  const { model, examples } = benchModel();
  const modelPeak = maxRss();
  const library = openSaes(dir, model.shape.numLayers, {
    model,
    dtype: mode === 'bf16' ? 'bf16' : 'f32',
  });
  const t0 = performance.now();
  const d = discover(
    model,
    mode === 'all' ? (site) => library.get(site) : library,
    examples.slice(0, EXAMPLES),
    { method: 'ig', steps: 10, batchSize: 10, sites: SITES },
  );
  const result: ChildResult = {
    mode,
    modelPeak,
    peak: maxRss(),
    nodes: d.times.nodes,
    edges: d.times.edges,
    total: (performance.now() - t0) / 1000,
    resident: d.dictionaries!.peak,
    loads: d.dictionaries!.loads,
    circuitNodes: d.sums.nodes(0.1).length,
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

/** The bench's SAEs, written to `dir`; prints their total bytes on disk. */
function writeSaes(dir: string): void {
  const { model, examples } = benchModel();
  let bytes = 0;
  for (const sae of randomSaes(model, examples).values()) {
    const folder = saveDictionary(dir, sae);
    for (const f of fs.readdirSync(folder)) bytes += fs.statSync(path.join(folder, f)).size;
  }
  process.stdout.write(`${bytes}\n`);
}

function runChild(mode: string, dir: string): string {
  const run = spawnSync(
    process.execPath,
    ['--import', 'tsx', fileURLToPath(import.meta.url), '--child', mode, dir],
    { encoding: 'utf8', maxBuffer: 1 << 24 },
  );
  if (run.status !== 0) throw new Error(`discover memory (${mode}): ${run.stderr}`);
  return run.stdout.trim().split('\n').pop()!;
}

export function runDiscoverMemoryBench(): void {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sfc-bench-discover-memory-'));
  try {
    const t0 = performance.now();
    const bytes = Number(runChild(WRITE, dir));
    const dictBytes = bytes / SITES.length;
    console.log(
      `discover memory: the discover bench's model, ${WIDTH}-wide SAEs at ${SITES.length} sites ` +
        `(${MiB(dictBytes)} each, ${MiB(bytes)} in all on disk), ${EXAMPLES} examples, IG 10 ` +
        `steps, nodes + edges; one process per mode (setup ${((performance.now() - t0) / 1000).toFixed(0)} s)`,
    );
    const results = MODES.map((mode) => JSON.parse(runChild(mode, dir)) as ChildResult);
    for (const r of results)
      console.log(
        `${r.mode.padEnd(8)} peak RSS ${MiB(r.peak).padStart(9)} (model alone ${MiB(r.modelPeak)}; ` +
          `above it ${MiB(r.peak - r.modelPeak)} = ${((r.peak - r.modelPeak) / dictBytes).toFixed(1)} ` +
          `dictionaries); at most ${r.resident} dictionaries held, ${r.loads} loads; ` +
          `discover ${r.total.toFixed(1)} s with loading (nodes ${r.nodes.toFixed(1)} s, edges ` +
          `${r.edges.toFixed(1)} s); ${r.circuitNodes} nodes`,
      );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[2] === '--child') {
  if (process.argv[3] === WRITE) writeSaes(process.argv[4]);
  else child(process.argv[3] as Mode, process.argv[4]);
} else if (import.meta.url === `file://${process.argv[1]}`) runDiscoverMemoryBench();
