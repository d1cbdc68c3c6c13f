/* global app */
// The circuit as a graph (nodes, edges, rows by site, columns by token position), which nodes and
// edges pass the sliders, and the layout: a deterministic grid, recomputed only when the set of
// shown nodes changes (a slider moves), never per frame.
const { BOX_W, BOX_H, GAP, PAD, ROW_LABEL_W, HEAD_H, TOP_H, MIN_COL_W } = app;

function prepare(d) {
  const c = d.circuit;
  const perPosition = c.aggregation === 'none';
  const T = perPosition
    ? Math.max(c.tokens.length, ...c.nodes.map((n) => (n.position ?? 0) + 1), 1)
    : 1;
  const nodes = c.nodes.map((n, i) => {
    const key = n.kind === 'feature' ? `${n.site}/${n.feature}` : null;
    const label = key && d.labels[key] ? d.labels[key].label : '';
    return {
      i,
      id: n.id,
      site: n.site,
      layer: n.layer,
      kind: n.kind,
      feature: n.feature,
      position: n.position,
      col: perPosition ? n.position : 0,
      effect: n.effect,
      abs: Math.abs(n.effect),
      key,
      label,
      search: `${n.id} ${key ?? ''} ${label}`.toLowerCase(),
      edges: [],
    };
  });
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const edges = [];
  for (const e of c.edges) {
    const s = byId.get(e.source);
    const t = e.target === 'y' ? 'y' : byId.get(e.target);
    if (!s || !t) continue;
    const edge = { i: edges.length, s, t, w: e.weight, abs: Math.abs(e.weight) };
    edges.push(edge);
    s.edges.push(edge);
    if (t !== 'y') t.edges.push(edge);
  }
  const used = new Set(nodes.map((n) => n.site));
  const sites = c.sites.filter((s) => used.has(s));
  for (const s of used) if (!sites.includes(s)) sites.push(s);
  const hasY = edges.some((e) => e.t === 'y');
  // Top to bottom: the metric, then the sites from last to first (information flows upward).
  const rows = [...(hasY ? ['y'] : []), ...sites.slice().reverse()];
  const columns = perPosition
    ? Array.from({ length: T }, (_, p) => ({ head: c.tokens[p] ?? '', pos: p }))
    : [{ head: 'all tokens (summed)', pos: null }];
  const range = (xs) => {
    const nz = xs.filter((x) => x > 0);
    return nz.length ? [Math.min(...nz), Math.max(...nz)] : [0, 0];
  };
  return {
    nodes,
    edges,
    byId,
    rows,
    columns,
    hasY,
    perPosition,
    nodeRange: range(nodes.map((n) => n.abs)),
    edgeRange: range(edges.map((e) => e.abs)),
    maxEffect: Math.max(1e-12, ...nodes.map((n) => n.abs)),
    maxWeight: Math.max(1e-12, ...edges.map((e) => e.abs)),
  };
}

/** Slider position 0..1000 -> threshold on a log scale over the values present (0 at the left). */
function sliderThreshold(pos, [lo, hi]) {
  if (pos <= 0 || hi <= 0) return 0;
  if (pos >= 1000) return hi;
  const a = Math.log10(lo);
  const b = Math.log10(hi);
  return Math.pow(10, a + ((b - a) * pos) / 1000);
}

// ------------------------------------------------------------------------------------------
// Visibility and layout

/** Which nodes and edges pass the current thresholds. */
function visibility() {
  const nodeThr = sliderThreshold(app.state.nodeSlider, app.graph.nodeRange);
  const edgeThr = sliderThreshold(app.state.edgeSlider, app.graph.edgeRange);
  const shown = app.graph.nodes.map(
    (n) => n.abs >= nodeThr && (app.state.showErrors || n.kind !== 'error'),
  );
  const edgeShown = app.graph.edges.map(
    (e) => e.abs >= edgeThr && shown[e.s.i] && (e.t === 'y' || shown[e.t.i]),
  );
  return { nodeThr, edgeThr, shown, edgeShown };
}

function computeView() {
  const { nodeThr, edgeThr, shown, edgeShown } = visibility();
  // Cells: (row, column) -> shown nodes by |effect|, largest first.
  const rowIndex = new Map(app.graph.rows.map((r, i) => [r, i]));
  const cells = app.graph.rows.map(() => app.graph.columns.map(() => []));
  for (const n of app.graph.nodes) if (shown[n.i]) cells[rowIndex.get(n.site)][n.col].push(n);
  for (const row of cells)
    for (const cell of row)
      cell.sort((a, b) => b.abs - a.abs || (a.feature ?? -1) - (b.feature ?? -1));
  const cap = app.graph.perPosition ? (app.graph.columns.length > 8 ? 3 : 5) : 14;
  const perLine = app.graph.columns.map((_, c) =>
    Math.max(1, Math.min(cap, Math.max(0, ...cells.map((row) => row[c].length)))),
  );
  const colW = perLine.map((k) => Math.max(MIN_COL_W, k * (BOX_W + GAP) - GAP + 2 * PAD));
  const colX = [];
  let x = ROW_LABEL_W;
  for (const w of colW) {
    colX.push(x);
    x += w;
  }
  const width = x + 8;
  const rowH = app.graph.rows.map((r, ri) => {
    if (r === 'y') return BOX_H + 2 * PAD;
    let lines = 1;
    cells[ri].forEach((cell, c) => (lines = Math.max(lines, Math.ceil(cell.length / perLine[c]))));
    return lines * (BOX_H + GAP) - GAP + 2 * PAD;
  });
  const rowY = [];
  let y = TOP_H;
  for (const h of rowH) {
    rowY.push(y);
    y += h;
  }
  const height = y + HEAD_H;
  const pos = new Map(); // node i -> [cx, cy]
  cells.forEach((row, ri) =>
    row.forEach((cell, c) => {
      const k = perLine[c];
      cell.forEach((n, j) => {
        const line = Math.floor(j / k);
        const inLine = Math.min(k, cell.length - line * k);
        const lineW = inLine * (BOX_W + GAP) - GAP;
        const x0 = colX[c] + (colW[c] - lineW) / 2;
        pos.set(n.i, [
          x0 + (j % k) * (BOX_W + GAP) + BOX_W / 2,
          rowY[ri] + PAD + line * (BOX_H + GAP) + BOX_H / 2,
        ]);
      });
    }),
  );
  // y sits above the last column (the metric is read at the last token).
  const yPos = app.graph.hasY
    ? [colX[colX.length - 1] + colW[colW.length - 1] / 2, rowY[0] + PAD + BOX_H / 2]
    : null;
  return {
    nodeThr,
    edgeThr,
    shown,
    edgeShown,
    drawn: shown,
    pos,
    yPos,
    colX,
    colW,
    rowY,
    rowH,
    width,
    height,
  };
}

Object.assign(app, { prepare, sliderThreshold, visibility, computeView });
