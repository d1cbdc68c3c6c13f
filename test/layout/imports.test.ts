// The import direction the developers' guide asks for, checked on the source: cli -> everything,
// nothing outside src/cli/ imports it; the viewer reads files, never the engine; no cycle between
// src/ folders. Imports are read from the text (static, dynamic and type-only alike).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const SRC = fileURLToPath(new URL('../../src/', import.meta.url));

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(p);
    return /\.(ts|js|mjs)$/.test(e.name) ? [p] : [];
  });
}

const IMPORT = /(?:\bfrom\s*|\bimport\s*\(\s*|^\s*import\s+)['"]([^'"]+)['"]/gm;

/** file (relative to src/) -> the src/ files it imports (relative to src/). */
function importGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of sourceFiles(SRC)) {
    const text = fs.readFileSync(file, 'utf8');
    const targets: string[] = [];
    for (const m of text.matchAll(IMPORT)) {
      if (!m[1].startsWith('.')) continue; // a package or node: built-in
      const target = path.relative(SRC, path.resolve(path.dirname(file), m[1]));
      if (!target.startsWith('..')) targets.push(target.split(path.sep).join('/'));
    }
    graph.set(path.relative(SRC, file).split(path.sep).join('/'), targets);
  }
  return graph;
}

/** src/<folder>/... -> folder; a file directly in src/ is its own unit (random.ts, progress.ts). */
const folderOf = (file: string) => file.split('/')[0];

const graph = importGraph();

test('the import graph covers the source tree', () => {
  assert.ok(graph.size > 50, `only ${graph.size} source files found under ${SRC}`);
  const edges = [...graph.values()].reduce((s, t) => s + t.length, 0);
  assert.ok(edges > 100, `only ${edges} imports found: the import pattern no longer matches`);
  for (const [file, targets] of graph)
    for (const t of targets)
      assert.ok(fs.existsSync(path.join(SRC, t)), `${file} imports ${t}, which does not exist`);
});

test('nothing outside src/cli/ imports from src/cli/', () => {
  const offenders = [...graph]
    .filter(([file]) => folderOf(file) !== 'cli')
    .flatMap(([file, targets]) =>
      targets.filter((t) => folderOf(t) === 'cli').map((t) => `${file} -> ${t}`),
    );
  assert.deepEqual(offenders, []);
});

test('the viewer reaches no engine code (model, sae, attribution, evaluation, kernels), only site names and file readers', () => {
  const engine = new Set(['model', 'sae', 'attribution', 'evaluation', 'kernels']);
  // Everything the viewer's modules load, transitively, with the path that reaches it.
  const via = new Map<string, string>();
  const queue = [...graph.keys()].filter((f) => folderOf(f) === 'viewer');
  for (const f of queue) via.set(f, f);
  while (queue.length > 0) {
    const file = queue.shift()!;
    for (const t of graph.get(file) ?? [])
      if (!via.has(t)) {
        via.set(t, `${via.get(file)} -> ${t}`);
        queue.push(t);
      }
  }
  // The site names (embed, attn_L, ...) are the vocabulary circuit files and the viewer share
  // with the engine: model/sites.ts is names only, and must stay so.
  const vocabulary = 'model/sites.ts';
  assert.deepEqual(graph.get(vocabulary), [], `${vocabulary} must import nothing`);
  // A folder's file reader (file.ts, *-file.ts) defines a format the viewer reads; it is allowed
  // itself, and what it imports is still walked, so a reader that pulls in engine code is caught.
  const fileReader = (f: string) => /(^|\/|-)file\.ts$/.test(f);
  const reached = [...via]
    .filter(([f]) => engine.has(folderOf(f)) && f !== vocabulary && !fileReader(f))
    .map(([, chain]) => chain);
  assert.deepEqual(reached, []);
});

test('no import cycle between src/ folders', () => {
  const folders = new Map<string, Map<string, string>>(); // folder -> folder it imports -> an example
  for (const [file, targets] of graph)
    for (const t of targets) {
      const [a, b] = [folderOf(file), folderOf(t)];
      if (a === b) continue;
      if (!folders.has(a)) folders.set(a, new Map());
      if (!folders.get(a)!.has(b)) folders.get(a)!.set(b, `${file} -> ${t}`);
    }
  // Depth-first search; a back edge closes a cycle, reported with one import per step.
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const cycles: string[] = [];
  const visit = (f: string) => {
    state.set(f, 'open');
    stack.push(f);
    for (const next of folders.get(f)?.keys() ?? []) {
      if (state.get(next) === 'open') {
        const loop = [...stack.slice(stack.indexOf(next)), next];
        cycles.push(
          loop
            .slice(1)
            .map((to, i) => folders.get(loop[i])!.get(to)!)
            .join('; '),
        );
      } else if (!state.has(next)) visit(next);
    }
    stack.pop();
    state.set(f, 'done');
  };
  for (const f of [...folders.keys()].sort()) if (!state.has(f)) visit(f);
  assert.deepEqual(cycles, []);
});
