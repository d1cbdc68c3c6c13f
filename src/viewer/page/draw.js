/* global app */
// The graph drawn as one SVG string (rows by site, columns by token position, as the paper
// draws circuits), its zoom, and the counts of what is shown.
const { BLUE, RED, $, esc, fmt, showToken, mix, SVG_NS, BOX_W, BOX_H, HEAD_H, TOP_H } = app;

function effectFill(effect) {
  const t = Math.min(1, Math.sqrt(Math.abs(effect) / app.graph.maxEffect));
  return { fill: mix(effect >= 0 ? BLUE : RED, 0.08 + 0.92 * t), dark: t > 0.55 };
}

const SVG_STYLE = `
  text { font-family: system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif; }
  .edge { fill: none; stroke-opacity: 0.42; }
  .node { cursor: pointer; }
  .node .shape { stroke: #57606a; stroke-width: 0.8; }
  .row-label { font-size: 12px; fill: #1f2328; font-weight: 600; }
  .col-head { font-size: 12px; fill: #1f2328; font-family: ui-monospace, Menlo, Consolas, monospace; }
  .col-pos { font-size: 10px; fill: #8c959f; }
  .col-top { font-size: 11px; fill: #8c959f; font-family: ui-monospace, Menlo, Consolas, monospace; }
  .fnum { font-size: 10.5px; font-weight: 600; }
  .flabel { font-size: 8.5px; }
  svg.focus .edge { stroke-opacity: 0.05; }
  svg.focus .edge.on { stroke-opacity: 0.95; }
  svg.focus .node { opacity: 0.22; }
  svg.focus .node.on { opacity: 1; }
  svg.searching .node:not(.match) { opacity: 0.18; }
  .gone { display: none; }
  .node.match .shape { stroke: #d97706; stroke-width: 3; }
  .node.selected .shape { stroke: #111; stroke-width: 2.5; }
`;

function draw() {
  app.view = app.computeView();
  const v = app.view;
  const parts = [];
  parts.push(
    `<svg xmlns="${SVG_NS}" id="graph-svg" viewBox="0 0 ${v.width} ${v.height}" width="${v.width}" height="${v.height}">`,
    `<style>${SVG_STYLE}</style>`,
    `<rect x="0" y="0" width="${v.width}" height="${v.height}" fill="#ffffff"/>`,
  );
  // Row bands and labels.
  app.graph.rows.forEach((r, ri) => {
    if (ri % 2 === 1)
      parts.push(
        `<rect x="0" y="${v.rowY[ri]}" width="${v.width}" height="${v.rowH[ri]}" fill="#f6f8fa"/>`,
      );
    const label = r === 'y' ? 'y (metric)' : r;
    parts.push(
      `<text class="row-label" x="8" y="${v.rowY[ri] + v.rowH[ri] / 2 + 4}">${esc(label)}</text>`,
    );
  });
  // Column separators and heads (the tokens, under the embedding row as in the paper).
  const headY = v.height - HEAD_H;
  app.graph.columns.forEach((col, c) => {
    if (c > 0)
      parts.push(
        `<line x1="${v.colX[c]}" y1="${TOP_H}" x2="${v.colX[c]}" y2="${headY}" stroke="#eaeef2" stroke-width="1"/>`,
      );
    const cx = v.colX[c] + v.colW[c] / 2;
    const head = showToken(col.head);
    // Monospace 12px: about 7.3 px a character.
    const fit = Math.max(4, Math.floor((v.colW[c] - 8) / 7.3));
    const short = head.length > fit ? head.slice(0, fit - 1) + '…' : head;
    parts.push(
      `<text class="col-head" x="${cx}" y="${headY + 18}" text-anchor="middle" xml:space="preserve">${esc(short)}</text>`,
      `<text class="col-top" x="${cx}" y="${TOP_H - 8}" text-anchor="middle" xml:space="preserve">${esc(short)}</text>`,
    );
    if (col.pos !== null)
      parts.push(
        `<text class="col-pos" x="${cx}" y="${headY + 33}" text-anchor="middle">${col.pos}</text>`,
      );
  });
  // Edges under the nodes: from the top of the upstream node to the bottom of the downstream one.
  parts.push('<g class="edges">');
  const order = app.graph.edges.filter((e) => v.edgeShown[e.i]).sort((a, b) => a.abs - b.abs);
  for (const e of order) {
    const [x1, y1] = v.pos.get(e.s.i);
    const [x2, y2] = e.t === 'y' ? v.yPos : v.pos.get(e.t.i);
    const a = y1 - BOX_H / 2;
    const b = y2 + BOX_H / 2;
    const m = (a + b) / 2;
    const width = 0.6 + 5 * (e.abs / app.graph.maxWeight);
    parts.push(
      `<path class="edge" data-i="${e.i}" d="M${x1} ${a}C${x1} ${m} ${x2} ${m} ${x2} ${b}" stroke="${e.w >= 0 ? '#2166ac' : '#b2182b'}" stroke-width="${width.toFixed(2)}"/>`,
    );
  }
  parts.push('</g><g class="nodes">');
  if (v.yPos) {
    const [x, y] = v.yPos;
    parts.push(
      `<g class="metric" transform="translate(${x},${y})"><ellipse class="shape" rx="${BOX_W / 2}" ry="${BOX_H / 2}" fill="#fff8c5" stroke="#9a6700"/><text text-anchor="middle" y="4" class="fnum">y</text></g>`,
    );
  }
  for (const n of app.graph.nodes) {
    if (!v.shown[n.i]) continue;
    const [x, y] = v.pos.get(n.i);
    const { fill, dark } = effectFill(n.effect);
    const ink = dark ? '#ffffff' : '#1f2328';
    const cls = `node ${n.kind}${app.state.selected === n.id ? ' selected' : ''}`;
    let shape;
    let text;
    if (n.kind === 'error') {
      const h = BOX_H + 2;
      shape = `<path class="shape" d="M0 ${-h / 2}L${BOX_W / 2 - 8} ${h / 2}L${-BOX_W / 2 + 8} ${h / 2}Z" fill="${fill}"/>`;
      text = `<text text-anchor="middle" y="${h / 2 - 5}" class="fnum" fill="${ink}">ε</text>`;
    } else {
      shape = `<rect class="shape" x="${-BOX_W / 2}" y="${-BOX_H / 2}" width="${BOX_W}" height="${BOX_H}" rx="4" fill="${fill}"/>`;
      const label = n.label.length > 13 ? n.label.slice(0, 12) + '…' : n.label;
      text = label
        ? `<text text-anchor="middle" y="-2" class="fnum" fill="${ink}">${n.feature}</text><text text-anchor="middle" y="10" class="flabel" fill="${ink}">${esc(label)}</text>`
        : `<text text-anchor="middle" y="4" class="fnum" fill="${ink}">${n.feature}</text>`;
    }
    parts.push(
      `<g class="${cls}" data-id="${esc(n.id)}" transform="translate(${x},${y})">${shape}${text}</g>`,
    );
  }
  parts.push('</g></svg>');
  $('graph').innerHTML = parts.join('');
  const svg = $('graph-svg');
  app.view.svg = svg;
  app.view.nodeEls = new Map();
  for (const el of svg.querySelectorAll('.node')) app.view.nodeEls.set(el.dataset.id, el);
  app.view.edgeEls = new Map();
  for (const el of svg.querySelectorAll('.edge')) app.view.edgeEls.set(Number(el.dataset.i), el);
  applyZoom();
  app.applySearch();
  updateCounts();
  app.drawCurves();
}

function applyZoom() {
  if (!app.view) return;
  if (app.state.zoom === null) {
    const avail = $('graph-pane').clientWidth - 20;
    // Fit the width; small circuits grow up to 1.5x so their labels are easy to read.
    app.state.zoom = Math.max(0.25, Math.min(1.5, avail / app.view.width));
  }
  app.view.svg.setAttribute('width', String(Math.round(app.view.width * app.state.zoom)));
  app.view.svg.setAttribute('height', String(Math.round(app.view.height * app.state.zoom)));
}

function shownCount() {
  let nodes = 0;
  let atStart = 0;
  const start = app.data.evaluation ? app.data.evaluation.startLayer : 0;
  for (const n of app.graph.nodes)
    if (app.view.shown[n.i]) {
      nodes++;
      if (n.layer >= start) atStart++;
    }
  let edges = 0;
  for (const e of app.graph.edges) if (app.view.edgeShown[e.i]) edges++;
  return { nodes, atStart, edges };
}

function updateCounts() {
  const { nodes, edges } = shownCount();
  $('counts').textContent =
    `${nodes} of ${app.graph.nodes.length} nodes · ${edges} of ${app.graph.edges.length} edges`;
  $('node-value').textContent = fmt(app.view.nodeThr);
  $('edge-value').textContent = fmt(app.view.edgeThr);
}

Object.assign(app, { draw, applyZoom, shownCount, updateCounts });
