/* global app */
// Supernodes of an attribution graph: features grouped by label, by shared edges, and the graph
// seen with each group collapsed into one node whose edges are the sums of its members' edges.
// Pure functions of the graph (nodes: {id, kind, layer, clerp}; links: [source, target, weight]
// by node index), so test/viewer/supernodes.test.ts runs them outside the browser.

/** The label a feature is grouped by: its clerp without `sfc graph`'s " (F1 0.93)" suffix. */
function labelKey(clerp) {
  return String(clerp ?? '')
    .replace(/\s*\(F1 [0-9.]+\)\s*$/, '')
    .trim();
}

/** Features with the same non-empty label, groups of two or more, largest first. */
function groupByLabel(nodes) {
  const by = new Map();
  nodes.forEach((n) => {
    const key = n.kind === 'feature' ? labelKey(n.clerp) : '';
    if (!key) return;
    if (!by.has(key)) by.set(key, []);
    by.get(key).push(n.id);
  });
  return [...by]
    .filter(([, members]) => members.length >= 2)
    .map(([name, members]) => ({ name, members }))
    .sort((a, b) => b.members.length - a.members.length || (a.name < b.name ? -1 : 1));
}

/**
 * Features grouped by shared edges. Each feature's edge vector holds its incoming weights (one
 * entry per source node) and its outgoing weights (one per target node). Complete linkage: pairs
 * are merged from the most similar down, and two groups join only when every pair across them has
 * cosine similarity ≥ `threshold` and the joined group spans at most `band` layers
 * (max layer − min layer ≤ band). Returns groups of two or more, in the order they formed.
 */
function groupBySharedEdges(nodes, links, { threshold = 0.9, band = 1 } = {}) {
  const features = [];
  nodes.forEach((n, i) => {
    if (n.kind === 'feature') features.push(i);
  });
  // Sparse vectors: "in:source" / "out:target" -> weight.
  const vec = new Map(features.map((i) => [i, new Map()]));
  for (const [s, t, w] of links) {
    if (vec.has(t)) vec.get(t).set(`in:${s}`, (vec.get(t).get(`in:${s}`) ?? 0) + w);
    if (vec.has(s)) vec.get(s).set(`out:${t}`, (vec.get(s).get(`out:${t}`) ?? 0) + w);
  }
  const norm = new Map();
  for (const [i, v] of vec) {
    let q = 0;
    for (const w of v.values()) q += w * w;
    norm.set(i, Math.sqrt(q));
  }
  const cosine = (a, b) => {
    const na = norm.get(a);
    const nb = norm.get(b);
    if (na === 0 || nb === 0) return 0;
    let [va, vb] = [vec.get(a), vec.get(b)];
    if (va.size > vb.size) [va, vb] = [vb, va];
    let dot = 0;
    for (const [k, w] of va) dot += w * (vb.get(k) ?? 0);
    return dot / (na * nb);
  };
  const sim = new Map(); // "a,b" (a < b) -> cosine, for the pairs within the band
  const pairs = [];
  for (let x = 0; x < features.length; x++)
    for (let y = x + 1; y < features.length; y++) {
      const [a, b] = [features[x], features[y]];
      if (Math.abs(nodes[a].layer - nodes[b].layer) > band) continue;
      const c = cosine(a, b);
      if (c < threshold) continue;
      sim.set(`${a},${b}`, c);
      pairs.push([c, a, b]);
    }
  pairs.sort((p, q) => q[0] - p[0] || p[1] - q[1] || p[2] - q[2]);
  const groupOf = new Map(features.map((i) => [i, [i]]));
  const close = (a, b) => sim.has(a < b ? `${a},${b}` : `${b},${a}`);
  const formed = [];
  for (const [, a, b] of pairs) {
    const A = groupOf.get(a);
    const B = groupOf.get(b);
    if (A === B) continue;
    const layers = [...A, ...B].map((i) => nodes[i].layer);
    if (Math.max(...layers) - Math.min(...layers) > band) continue;
    if (!A.every((i) => B.every((j) => close(i, j)))) continue;
    const joined = [...A, ...B].sort((i, j) => i - j);
    for (const i of joined) groupOf.set(i, joined);
    formed.push(joined);
  }
  const out = [];
  const seen = new Set();
  for (const g of formed) {
    if (seen.has(g[0]) || groupOf.get(g[0]) !== g) continue;
    seen.add(g[0]);
    const named = g.map((i) => labelKey(nodes[i].clerp)).find((s) => s);
    out.push({
      name: `${named || `L${nodes[g[0]].layer} features`} (${g.length}, shared edges)`,
      members: g.map((i) => nodes[i].id),
    });
  }
  return out;
}

/**
 * The graph with each group collapsed: `items` are the shown nodes outside groups and the groups
 * with a shown member ({key, node} or {key, group, members}); `edges` sum the links between items
 * ([fromKey, toKey, weight, count]), links inside one group dropped. `shown[i]` says which nodes
 * pass the node threshold; a link counts only when both its ends are shown.
 */
function collapse(nodes, links, groups, shown) {
  const index = new Map(nodes.map((n, i) => [n.id, i]));
  const keyOf = nodes.map((_, i) => `n:${i}`);
  const items = [];
  groups.forEach((g, gi) => {
    const members = g.members.map((id) => index.get(id)).filter((i) => i !== undefined && shown[i]);
    for (const i of members) keyOf[i] = `g:${gi}`;
    if (members.length > 0) items.push({ key: `g:${gi}`, group: g, members });
  });
  nodes.forEach((n, i) => {
    if (shown[i] && keyOf[i] === `n:${i}`) items.push({ key: `n:${i}`, node: n, index: i });
  });
  const sums = new Map();
  for (const [s, t, w] of links) {
    if (!shown[s] || !shown[t]) continue;
    const a = keyOf[s];
    const b = keyOf[t];
    if (a === b) continue;
    const k = `${a}|${b}`;
    const e = sums.get(k);
    if (e) {
      e[2] += w;
      e[3]++;
    } else sums.set(k, [a, b, w, 1]);
  }
  return { items, edges: [...sums.values()] };
}

Object.assign(app, { labelKey, groupByLabel, groupBySharedEdges, collapse });
