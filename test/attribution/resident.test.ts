// Discovery with dictionaries loaded when a site needs them and freed after: the same sums, bit
// for bit, as with every dictionary in memory, while a source that counts what it holds never
// holds more than the stated bound (the largest group of sites found together for nodes; a
// downstream site's direct upstream sites for edges, its own dictionary only while its seeds are
// computed first).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { discover, type DiscoverOptions } from '../../src/attribution/discover.ts';
import { ResidentDictionaries, type DictionarySource } from '../../src/attribution/resident.ts';
import type { Dictionary } from '../../src/sae/dictionary.ts';
import { saveDictionary } from '../../src/sae/formats.ts';
import { openSaes } from '../../src/sae/library.ts';
import { makeWorld, type ModelWorld } from './world.ts';

/** A source over the world's SAEs that records what it holds between get and drop. */
function countingSource(w: ModelWorld) {
  const held = new Set<string>();
  const stats = { most: 0, loads: 0, loadsBySite: new Map<string, number>() };
  const source: DictionarySource = {
    get(site) {
      if (!held.has(site)) {
        held.add(site);
        stats.loads++;
        stats.loadsBySite.set(site, (stats.loadsBySite.get(site) ?? 0) + 1);
        stats.most = Math.max(stats.most, held.size);
      }
      return w.saes.get(site)! as Dictionary;
    },
    drop: (site) => void held.delete(site),
    declaredWidth: (site) => w.saes.get(site)!.width,
  };
  return { source, stats, held };
}

const options: DiscoverOptions = {
  method: 'ig',
  steps: 3,
  batchSize: 2,
  nodeThreshold: 0.001,
  edgeThreshold: 0,
};

for (const parallel of [true, false]) {
  test(`dictionaries held at once stay within the bound, same sums (${parallel ? 'parallel' : 'sequential'})`, () => {
    const w = makeWorld({ parallel, examples: 5, T: 4 });
    const all = discover(w.model, (s) => w.saes.get(s)!, w.examples, options);
    const { source, stats, held } = countingSource(w);
    const bounded = discover(w.model, source, w.examples, options);
    assert.deepEqual(bounded.sums.rawSums(), all.sums.rawSums());
    assert.deepEqual(bounded.metric, all.metric);
    // Node stage: a parallel block finds attn_L, mlp_L and resid_L together (one tail), a
    // sequential one mlp_L and resid_L; edges into resid_L need it, resid_{L-1}, attn_L, mlp_L.
    assert.deepEqual(bounded.dictionaries!.capacity, { nodes: parallel ? 3 : 2, edges: 3 });
    assert.equal(stats.most, 3);
    assert.equal(bounded.dictionaries!.peak, 3);
    // Edges: a site's dictionary gives its seeds first, then its upstream sites' are loaded, so
    // the bound is the most direct upstream sites (3 for resid_L); a site is read again when it
    // was evicted in between (the price of the lower bound: 25-27 loads here against 18 at 4).
    assert.equal(bounded.dictionaries!.loads, stats.loads);
    const four = countingSource(w);
    const atFour = discover(w.model, four.source, w.examples, { ...options, resident: 4 });
    assert.deepEqual(atFour.sums.rawSums(), all.sums.rawSums());
    assert.equal(four.stats.most, 4);
    assert.ok(four.stats.loads < stats.loads);
    assert.equal(held.size, 0, 'every dictionary is freed at the end');
    // Nodes only: at most the largest group.
    const nodesOnly = countingSource(w);
    discover(w.model, nodesOnly.source, w.examples, { ...options, nodesOnly: true });
    assert.equal(nodesOnly.stats.most, parallel ? 3 : 2);
    assert.equal(nodesOnly.stats.loads, w.saes.size);
  });
}

test("seeds that outgrow the site's dictionary: the edges go in chunks of batches, same sums", () => {
  // Width 4 on d 12: the seed budget (a float32 dictionary, 2·4·12·4 bytes) holds 8 seeds, fewer
  // than the 4 batches make, so the edges into resid_1 go in more than one chunk and resid_1 is
  // read again for each (besides once for its nodes); width 256 keeps all batches' seeds in one.
  const opts = { ...options, batchSize: 1, nodeThreshold: 0 };
  for (const width of [4, 256]) {
    const w = makeWorld({ parallel: true, examples: 4, T: 4, width });
    const all = discover(w.model, (s) => w.saes.get(s)!, w.examples, opts);
    const { source, stats } = countingSource(w);
    const bounded = discover(w.model, source, w.examples, opts);
    assert.deepEqual(bounded.sums.rawSums(), all.sums.rawSums());
    assert.equal(stats.most, 3);
    const reads = stats.loadsBySite.get('resid_1')!;
    if (width === 4) assert.ok(reads >= 3, `width 4: resid_1 read ${reads} times`);
    else assert.equal(reads, 2);
  }
});

test('a larger resident bound keeps more dictionaries and loads fewer times', () => {
  const w = makeWorld({ parallel: true, examples: 3, T: 4 });
  const { source, stats } = countingSource(w);
  const d = discover(w.model, source, w.examples, { ...options, resident: 100 });
  assert.equal(stats.loads, w.saes.size);
  assert.equal(d.dictionaries!.peak, w.saes.size);
  assert.throws(
    () => discover(w.model, source, w.examples, { ...options, resident: 0 }),
    /resident must be a positive integer/,
  );
});

test('an SAE folder as the source: the library frees what discovery releases, same sums', () => {
  const w = makeWorld({ parallel: true, examples: 3, T: 4 });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sfc-resident-'));
  try {
    for (const sae of w.saes.values()) saveDictionary(dir, sae);
    const library = openSaes(dir, w.model.shape.numLayers, { model: w.model });
    const loaded = new Set<string>();
    let most = 0;
    const watched: DictionarySource = {
      get(site) {
        loaded.add(site);
        most = Math.max(most, loaded.size);
        return library.get(site);
      },
      drop(site) {
        loaded.delete(site);
        library.drop(site);
      },
      declaredWidth: (site) => library.declaredWidth(site),
    };
    const bounded = discover(w.model, watched, w.examples, options);
    // The same files, every one kept in memory once loaded.
    const all = discover(w.model, (s) => library.get(s), w.examples, options);
    assert.deepEqual(bounded.sums.rawSums(), all.sums.rawSums());
    assert.equal(most, 3);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('ResidentDictionaries evicts the least recently used site that no step holds', () => {
  const dropped: string[] = [];
  const r = new ResidentDictionaries(
    { get: () => ({}) as Dictionary, drop: (s) => void dropped.push(s) },
    2,
  );
  r.hold(['a', 'b']);
  r.hold(['c', 'b']); // a is the least recently used not held
  assert.deepEqual(dropped, ['a']);
  r.hold(['a', 'b', 'c']); // three held: above the capacity, nothing to evict
  assert.deepEqual(dropped, ['a']);
  assert.equal(r.peak, 3);
  r.hold(['d']);
  assert.deepEqual(dropped, ['a', 'a', 'b']); // a then b, the least recently held
  assert.equal(r.loads, 5);
});
