/* global app, document, window */
// The "Attribution graph" view: a graph from `sfc graph` or circuit-tracer / Neuronpedia
// (data.graphs, read by src/viewer/graph-input.ts) drawn with prompt tokens as columns and
// layers as rows (embeddings at the bottom, logits on top). Node marks grow with influence and
// darken with activation; edges with |weight|. Hover for a node's numbers and edges, click for its
// top incoming and outgoing edges, drag a feature onto another to group them (supernodes.js), and
// thresholds on cumulative influence and |edge weight|.
const { $, esc, fmt, showToken, mix, SVG_NS } = app;

const STEP = 22; // distance between marks in a cell
const CELL_PAD = 12;
const ROW_LABEL = 70;
const HEAD = 40;
const MAX_PER_LINE = 6;
const ORANGE = [217, 119, 6];
const MAX_AUTO_GROUP = 3000;

app.ag = {
  index: 0,
  nodeSlider: 100, // keep nodes whose cumulative influence ≤ nodeSlider / 100
  edgeSlider: 0, // log-scale |weight| threshold, as the circuit's slider
  groups: [], // per graph index: [{name, members: [node ids]}]
  selected: null, // item key ("n:i" or "g:k")
  view: null,
};

function current() {
  return app.data.graphs[app.ag.index];
}

/** Per graph, prepared once: rows, ranges and which nodes the user may group. */
function prepareGraph(g) {
  if (g.prepared) return g.prepared;
  const layers = new Set();
  for (const n of g.nodes) layers.add(n.kind === 'logit' ? g.logitLayer : n.layer);
  const rows = [...layers].sort((a, b) => b - a); // top (logits) to bottom (embeddings)
  // Loops, not Math.max(...array): an imported graph may have 400,000 links, past the spread limit.
  const T = g.nodes.reduce((m, n) => Math.max(m, n.position + 1), Math.max(1, g.tokens.length));
  const abs = g.links.map((l) => Math.abs(l[2])).filter((v) => v > 0);
  const acts = g.nodes.map((n) => Math.abs(n.activation ?? 0));
  g.prepared = {
    rows,
    T,
    edgeRange: abs.length
      ? [abs.reduce((a, b) => Math.min(a, b)), abs.reduce((a, b) => Math.max(a, b))]
      : [0, 0],
    maxActivation: acts.reduce((a, b) => Math.max(a, b), 1e-12),
  };
  if (!app.ag.groups[app.ag.index])
    app.ag.groups[app.ag.index] = g.supernodes.map((s) => ({ name: s.name, members: s.members }));
  return g.prepared;
}

function groups() {
  return app.ag.groups[app.ag.index] ?? [];
}

const importance = (n) => (n.influence === null ? 0.5 : Math.max(0, Math.min(1, 1 - n.influence)));
const radius = (n) => 4 + 6 * importance(n);
const rowOf = (g, n) => (n.kind === 'logit' ? g.logitLayer : n.layer);

function nodeShown(n) {
  if (n.kind === 'token' || n.kind === 'logit' || n.influence === null) return true;
  return n.influence <= app.ag.nodeSlider / 100 + 1e-12;
}

function layout() {
  const g = current();
  const p = prepareGraph(g);
  const shown = g.nodes.map(nodeShown);
  const { items, edges } = app.collapse(g.nodes, g.links, groups(), shown);
  const edgeThr = app.sliderThreshold(app.ag.edgeSlider, p.edgeRange);
  const keptEdges = edges.filter((e) => Math.abs(e[2]) >= edgeThr && e[2] !== 0);
  // Cells hold the single nodes; a group sits at the mean position of its members' cells.
  const rowIndex = new Map(p.rows.map((r, i) => [r, i]));
  const cells = p.rows.map(() => Array.from({ length: p.T }, () => []));
  for (const it of items)
    if (it.node) cells[rowIndex.get(rowOf(g, it.node))][it.node.position].push(it);
  for (const row of cells)
    for (const cell of row) cell.sort((a, b) => importance(b.node) - importance(a.node));
  const perLine = Array.from({ length: p.T }, (_, c) =>
    Math.max(1, Math.min(MAX_PER_LINE, Math.max(...cells.map((r) => r[c].length)))),
  );
  const colW = perLine.map((k) => Math.max(64, k * STEP + 2 * CELL_PAD));
  const colX = [];
  let x = ROW_LABEL;
  for (const w of colW) {
    colX.push(x);
    x += w;
  }
  const rowH = cells.map((row) => {
    let lines = 1;
    row.forEach((cell, c) => (lines = Math.max(lines, Math.ceil(cell.length / perLine[c]))));
    return lines * STEP + 2 * CELL_PAD;
  });
  const rowY = [];
  let y = 8;
  for (const h of rowH) {
    rowY.push(y);
    y += h;
  }
  const pos = new Map();
  cells.forEach((row, ri) =>
    row.forEach((cell, c) => {
      const k = perLine[c];
      cell.forEach((it, j) => {
        const line = Math.floor(j / k);
        const inLine = Math.min(k, cell.length - line * k);
        const x0 = colX[c] + (colW[c] - inLine * STEP) / 2 + STEP / 2;
        pos.set(it.key, [x0 + (j % k) * STEP, rowY[ri] + CELL_PAD + line * STEP + STEP / 2]);
      });
    }),
  );
  // Marks already placed, [x, y, width]: a supernode steps down until it covers none of them.
  const placed = [...pos.values()].map(([px, py]) => [px, py, STEP - 4]);
  for (const it of items)
    if (it.group) {
      const xs = it.members.map((i) => colX[g.nodes[i].position] + colW[g.nodes[i].position] / 2);
      const ys = it.members.map((i) => {
        const r = rowIndex.get(rowOf(g, g.nodes[i]));
        return rowY[r] + rowH[r] / 2;
      });
      const mean = (v) => v.reduce((a, b) => a + b, 0) / v.length;
      const [gx, w] = [mean(xs), pill(it).width];
      let gy = mean(ys);
      while (
        placed.some(([px, py, pw]) => Math.abs(px - gx) < (pw + w) / 2 && Math.abs(py - gy) < 20)
      )
        gy += 22;
      placed.push([gx, gy, w]);
      pos.set(it.key, [gx, gy]);
    }
  const byKey = new Map(items.map((it) => [it.key, it]));
  return {
    items,
    byKey,
    edges: keptEdges,
    allEdges: edges,
    edgeThr,
    shown,
    pos,
    rows: p.rows,
    rowY,
    rowH,
    colX,
    colW,
    width: x + 8,
    height: y + HEAD,
    maxWeight: keptEdges.reduce((m, e) => Math.max(m, Math.abs(e[2])), 1e-12),
  };
}

function itemTitle(it) {
  if (it.group) return `${it.group.name}`;
  const n = it.node;
  if (n.kind === 'token') return `token ${showToken(current().tokens[n.position] ?? '')}`;
  if (n.kind === 'logit') return n.clerp || `logit ${n.id}`;
  if (n.kind === 'error') return `error L${n.layer} @${n.position}`;
  return n.feature === null ? n.id : `L${n.layer} / ${n.feature}`;
}

/** A supernode's mark: its name, cut to fit, and the pill's width. */
function pill(it) {
  const label = it.group.name.length > 18 ? it.group.name.slice(0, 17) + '…' : it.group.name;
  return { label, width: Math.max(40, 6.2 * (label.length + 3) + 16) };
}

function mark(it, x, y) {
  const g = current();
  const sel = app.ag.selected === it.key ? ' selected' : '';
  const id = it.group ? '' : ` data-id="${esc(it.node.id)}"`;
  const attrs = `class="ag-node ${it.group ? 'supernode' : it.node.kind}${sel}" data-key="${it.key}"${id} transform="translate(${x.toFixed(1)},${y.toFixed(1)})"`;
  if (it.group) {
    const { label, width: w } = pill(it);
    return `<g ${attrs}><rect class="shape" x="${-w / 2}" y="-10" width="${w}" height="20" rx="10" fill="#fde68a" stroke="#9a6700"/><text text-anchor="middle" y="4" class="ag-text">${esc(label)} ×${it.members.length}</text></g>`;
  }
  const n = it.node;
  const r = radius(n);
  if (n.kind === 'token')
    return `<g ${attrs}><rect class="shape" x="-7" y="-7" width="14" height="14" fill="#d0d7de"/></g>`;
  if (n.kind === 'logit')
    return `<g ${attrs}><rect class="shape" x="-8" y="-6" width="16" height="12" rx="3" fill="#fff8c5" stroke="#9a6700"/></g>`;
  if (n.kind === 'error')
    return `<g ${attrs}><path class="shape" d="M0 ${-r}L${r} ${r * 0.8}L${-r} ${r * 0.8}Z" fill="#c7d9ec"/></g>`;
  const t = Math.min(1, Math.abs(n.activation ?? 0) / g.prepared.maxActivation);
  return `<g ${attrs}><circle class="shape" r="${r.toFixed(1)}" fill="${mix(ORANGE, 0.15 + 0.85 * Math.sqrt(t))}"/></g>`;
}

function drawAttribution() {
  const section = $('attribution');
  if (!app.data.graphs || app.data.graphs.length === 0) return;
  const g = current();
  const v = layout();
  app.ag.view = v;
  const parts = [
    `<svg xmlns="${SVG_NS}" id="ag-svg" viewBox="0 0 ${v.width} ${v.height}" width="${v.width}" height="${v.height}">`,
    '<style>.ag-edge{fill:none;stroke-opacity:.45}.ag-node{cursor:grab}.ag-node .shape{stroke:#57606a;stroke-width:.8}.ag-node.selected .shape{stroke:#111;stroke-width:2.5}.ag-text{font:600 10px system-ui,sans-serif;fill:#1f2328}.ag-row{font:600 12px system-ui,sans-serif;fill:#1f2328}.ag-col{font:12px ui-monospace,Menlo,Consolas,monospace;fill:#1f2328}svg.focus .ag-edge{stroke-opacity:.05}svg.focus .ag-edge.on{stroke-opacity:.95}svg.focus .ag-node{opacity:.25}svg.focus .ag-node.on{opacity:1}</style>',
    `<rect width="${v.width}" height="${v.height}" fill="#fff"/>`,
  ];
  v.rows.forEach((r, ri) => {
    if (ri % 2 === 1)
      parts.push(
        `<rect x="0" y="${v.rowY[ri]}" width="${v.width}" height="${v.rowH[ri]}" fill="#f6f8fa"/>`,
      );
    const label = r === g.logitLayer ? 'logits' : r === -1 ? 'embed' : `layer ${r}`;
    parts.push(
      `<text class="ag-row" x="8" y="${v.rowY[ri] + v.rowH[ri] / 2 + 4}">${esc(label)}</text>`,
    );
  });
  const headY = v.height - HEAD;
  v.colX.forEach((x, c) => {
    const head = showToken(g.tokens[c] ?? '');
    const fit = Math.max(4, Math.floor((v.colW[c] - 6) / 7.3));
    const short = head.length > fit ? head.slice(0, fit - 1) + '…' : head;
    parts.push(
      `<line x1="${x}" y1="8" x2="${x}" y2="${headY}" stroke="#eaeef2"/>`,
      `<text class="ag-col" x="${x + v.colW[c] / 2}" y="${headY + 18}" text-anchor="middle" xml:space="preserve">${esc(short)}</text>`,
      `<text class="ag-col" x="${x + v.colW[c] / 2}" y="${headY + 32}" text-anchor="middle" fill="#8c959f" font-size="10">${c}</text>`,
    );
  });
  parts.push('<g class="edges">');
  const order = v.edges.map((e, i) => [e, i]).sort((a, b) => Math.abs(a[0][2]) - Math.abs(b[0][2]));
  for (const [e, i] of order) {
    const [x1, y1] = v.pos.get(e[0]);
    const [x2, y2] = v.pos.get(e[1]);
    const m = (y1 + y2) / 2;
    const w = 0.5 + 4 * (Math.abs(e[2]) / v.maxWeight);
    parts.push(
      `<path class="ag-edge" data-i="${i}" d="M${x1.toFixed(1)} ${y1.toFixed(1)}C${x1.toFixed(1)} ${m.toFixed(1)} ${x2.toFixed(1)} ${m.toFixed(1)} ${x2.toFixed(1)} ${y2.toFixed(1)}" stroke="${e[2] >= 0 ? '#2166ac' : '#b2182b'}" stroke-width="${w.toFixed(2)}"/>`,
    );
  }
  parts.push('</g><g class="nodes">');
  // Supernodes last, on top.
  for (const it of [...v.items.filter((i) => i.node), ...v.items.filter((i) => i.group)]) {
    const [x, y] = v.pos.get(it.key);
    parts.push(mark(it, x, y));
  }
  parts.push('</g></svg>');
  $('ag-graph').innerHTML = parts.join('');
  v.svg = $('ag-svg');
  // Fit the pane's width; small graphs grow up to 1.6x so their marks are easy to hit.
  const zoom = Math.max(0.3, Math.min(1.6, ($('ag-graph').clientWidth - 16) / v.width));
  v.svg.setAttribute('width', String(Math.round(v.width * zoom)));
  v.svg.setAttribute('height', String(Math.round(v.height * zoom)));
  section.dataset.graph = g.slug;
  $('ag-title').textContent = app.data.graphs.length > 1 ? '' : `“${g.prompt}” · ${g.scan}`;
  $('ag-title').title = g.file;
  const total = g.nodes.length;
  const single = v.items.filter((it) => it.node).length;
  const inGroups = v.items.reduce((s, it) => s + (it.group ? it.members.length : 0), 0);
  $('ag-counts').textContent =
    `${single + inGroups} of ${total} nodes · ${v.edges.length} of ${v.allEdges.length} edges` +
    (groups().length ? ` · ${v.items.length - single} supernodes` : '');
  $('ag-edge-value').textContent = fmt(v.edgeThr);
  $('ag-node-value').textContent = (app.ag.nodeSlider / 100).toFixed(2);
  renderDetail();
}

/** The edges of an item in the drawn view, strongest first: [otherKey, weight, count]. */
function edgesOf(key) {
  const v = app.ag.view;
  const incoming = [];
  const outgoing = [];
  for (const e of v.allEdges) {
    if (e[1] === key) incoming.push([e[0], e[2], e[3]]);
    if (e[0] === key) outgoing.push([e[1], e[2], e[3]]);
  }
  const byAbs = (a, b) => Math.abs(b[1]) - Math.abs(a[1]);
  return { incoming: incoming.sort(byAbs), outgoing: outgoing.sort(byAbs) };
}

function describe(it) {
  if (it.group) {
    return `<b>${esc(it.group.name)}</b><br>supernode of ${it.members.length} shown features`;
  }
  const n = it.node;
  const g = current();
  const parts = [`<b>${esc(itemTitle(it))}</b> <span class="sub">${esc(n.id)}</span>`];
  parts.push(`at position ${n.position} (${esc(showToken(g.tokens[n.position] ?? ''))})`);
  if (n.clerp && n.kind !== 'logit') parts.push(`<span class="sub">${esc(n.clerp)}</span>`);
  const nums = [];
  if (n.activation !== null) nums.push(`activation ${fmt(n.activation)}`);
  if (n.influence !== null) nums.push(`cumulative influence ${fmt(n.influence)}`);
  if (nums.length) parts.push(nums.join(' · '));
  return parts.join('<br>');
}

function edgeList(title, list) {
  const v = app.ag.view;
  if (list.length === 0) return `<h3>${title}</h3><p class="muted">none shown</p>`;
  const rows = list
    .slice(0, 10)
    .map(([k, w, count]) => {
      const it = v.byKey.get(k);
      return `<tr><td><a href="#" data-key="${k}">${esc(itemTitle(it))}</a>${count > 1 ? ` <span class="muted">(${count} summed)</span>` : ''}</td><td style="color:${w >= 0 ? 'var(--blue)' : 'var(--red)'}">${fmt(w)}</td></tr>`;
    })
    .join('');
  return `<h3>${title} (${list.length})</h3><table class="ag-edges">${rows}</table>`;
}

function renderDetail() {
  const panel = $('ag-detail');
  const v = app.ag.view;
  const it = app.ag.selected ? v?.byKey.get(app.ag.selected) : null;
  if (!it) {
    panel.innerHTML =
      '<p class="muted">Circles are transcoder features (larger: more influence on the logits, darker: higher activation), triangles error nodes, grey squares token embeddings, yellow boxes the top logits; blue edges excite, red inhibit, wider is stronger. Hover a node for its numbers, click it for its top incoming and outgoing edges, drag a feature onto another to group them into a supernode (its edges are the sums of its members\').</p>';
    return;
  }
  const out = [`<div class="ag-desc">${describe(it)}</div>`];
  if (it.group) {
    out.push(
      `<button id="ag-ungroup" data-group="${it.key.slice(2)}">ungroup</button>`,
      `<h3>Members</h3><ul class="ag-members">${it.members
        .map((i) => {
          const n = current().nodes[i];
          return `<li>${esc(itemTitle({ node: n }))} @${n.position}${n.clerp ? ` · <span class="muted">${esc(n.clerp)}</span>` : ''}</li>`;
        })
        .join('')}</ul>`,
    );
  } else if (it.node.kind === 'feature') {
    // Dashboards (dashboards.json) are computed for SAE features; a transcoder feature has none.
    out.push(
      '<p class="muted ag-nodash">No dashboard for this feature: <code>sfc dashboards</code> computes dashboards for SAE features, and this is a transcoder feature of the graph.</p>',
    );
  }
  const { incoming, outgoing } = edgesOf(it.key);
  out.push(edgeList('Top incoming edges', incoming), edgeList('Top outgoing edges', outgoing));
  panel.innerHTML = out.join('');
}

function focusItem(key) {
  const v = app.ag.view;
  v.svg.classList.add('focus');
  v.svg.querySelector(`.ag-node[data-key="${key}"]`)?.classList.add('on');
  for (const el of v.svg.querySelectorAll('.ag-edge')) {
    const e = v.edges[Number(el.dataset.i)];
    if (e[0] !== key && e[1] !== key) continue;
    el.classList.add('on');
    const other = e[0] === key ? e[1] : e[0];
    v.svg.querySelector(`.ag-node[data-key="${other}"]`)?.classList.add('on');
  }
}
function unfocusItems() {
  const svg = app.ag.view?.svg;
  if (!svg) return;
  svg.classList.remove('focus');
  for (const el of svg.querySelectorAll('.on')) el.classList.remove('on');
}

/** Drops item `from` onto item `to`: both become one supernode (only features and supernodes). */
function groupItems(fromKey, toKey) {
  const v = app.ag.view;
  const a = v.byKey.get(fromKey);
  const b = v.byKey.get(toKey);
  if (!a || !b || a === b) return false;
  const groupable = (it) => it.group || it.node.kind === 'feature';
  if (!groupable(a) || !groupable(b)) return false;
  const list = groups();
  const idsOf = (it) => (it.group ? it.group.members : [it.node.id]);
  const members = [...new Set([...idsOf(b), ...idsOf(a)])];
  const name = b.group ? b.group.name : app.labelKey(b.node.clerp) || `${itemTitle(b)} group`;
  const next = list.filter((g) => g !== a.group && g !== b.group);
  next.push({ name, members });
  app.ag.groups[app.ag.index] = next;
  app.ag.selected = null;
  return true;
}

function regroup(fresh) {
  // A node belongs to one group: the new groups replace whatever held their members.
  const taken = new Set(fresh.flatMap((g) => g.members));
  const kept = groups().filter((g) => !g.members.some((m) => taken.has(m)));
  app.ag.groups[app.ag.index] = [...kept, ...fresh];
  app.ag.selected = null;
  drawAttribution();
}

/**
 * After (re)loading the data: the view buttons and the graph list. `sfc view` reloads when a
 * graph file appears, changes or goes; supernodes are kept per graph slug and prompt.
 */
function loadGraphs(previous) {
  const graphs = app.data.graphs ?? [];
  const name = (g) => `${g.slug}\u0000${g.prompt}`;
  if (previous) {
    const kept = new Map((previous.graphs ?? []).map((g, i) => [name(g), app.ag.groups[i]]));
    app.ag.groups = graphs.map((g) => kept.get(name(g)));
    const at = previous.graphs?.[app.ag.index];
    app.ag.index = Math.max(0, at ? graphs.findIndex((g) => name(g) === name(at)) : 0);
  }
  $('views').hidden = graphs.length === 0;
  const select = $('ag-select');
  select.innerHTML = graphs
    .map((g, i) => `<option value="${i}">${esc(g.prompt || g.slug)} (${esc(g.scan)})</option>`)
    .join('');
  select.value = String(app.ag.index);
  select.hidden = graphs.length < 2;
  if (graphs.length === 0) showView('circuit');
  else if (document.body.classList.contains('show-graph')) drawAttribution();
}

function wireAttribution() {
  const select = $('ag-select');
  select.addEventListener('change', () => {
    app.ag.index = Number(select.value);
    app.ag.selected = null;
    drawAttribution();
  });
  for (const b of document.querySelectorAll('#views button'))
    b.addEventListener('click', () => showView(b.dataset.view));
  $('ag-node').addEventListener('input', (e) => {
    app.ag.nodeSlider = Number(e.target.value);
    drawAttribution();
  });
  $('ag-edge').addEventListener('input', (e) => {
    app.ag.edgeSlider = Number(e.target.value);
    drawAttribution();
  });
  $('ag-group-label').addEventListener('click', () => regroup(app.groupByLabel(current().nodes)));
  $('ag-group-auto').addEventListener('click', () => {
    const g = current();
    const threshold = Number($('ag-cos').value);
    const band = Number($('ag-band').value);
    // Only the features the node threshold shows take part: pairs grow as their square.
    const nodes = g.nodes.map((n) => (nodeShown(n) ? n : { ...n, kind: 'hidden' }));
    const count = nodes.filter((n) => n.kind === 'feature').length;
    if (count > MAX_AUTO_GROUP) {
      $('ag-counts').textContent =
        `${count} features shown: automatic grouping takes at most ${MAX_AUTO_GROUP}; lower the node threshold`;
      return;
    }
    regroup(app.groupBySharedEdges(nodes, g.links, { threshold, band }));
  });
  $('ag-ungroup-all').addEventListener('click', () => {
    app.ag.groups[app.ag.index] = [];
    app.ag.selected = null;
    drawAttribution();
  });
  const pane = $('ag-graph');
  // Drag a node onto another to group them; a short press is a click (select).
  let drag = null;
  pane.addEventListener('mouseover', (e) => {
    const el = e.target.closest('.ag-node');
    if (!el || drag) return;
    unfocusItems();
    focusItem(el.dataset.key);
    const tip = $('tooltip');
    tip.innerHTML = describe(app.ag.view.byKey.get(el.dataset.key));
    tip.hidden = false;
    tip.style.left = `${Math.min(e.clientX + 14, window.innerWidth - tip.offsetWidth - 8)}px`;
    tip.style.top = `${Math.min(e.clientY + 14, window.innerHeight - tip.offsetHeight - 8)}px`;
  });
  pane.addEventListener('mouseout', (e) => {
    const el = e.target.closest('.ag-node');
    if (el && el.contains(e.relatedTarget)) return;
    unfocusItems();
    $('tooltip').hidden = true;
  });
  pane.addEventListener('mousedown', (e) => {
    const el = e.target.closest('.ag-node');
    if (!el || e.button !== 0) return;
    e.preventDefault();
    const [x, y] = app.ag.view.pos.get(el.dataset.key);
    drag = { el, key: el.dataset.key, x0: e.clientX, y0: e.clientY, x, y, moved: false };
  });
  window.addEventListener('mousemove', (e) => {
    if (!drag) return;
    const dx = e.clientX - drag.x0;
    const dy = e.clientY - drag.y0;
    if (!drag.moved && Math.abs(dx) + Math.abs(dy) < 4) return;
    drag.moved = true;
    $('tooltip').hidden = true;
    drag.el.style.pointerEvents = 'none';
    const scale = app.ag.view.svg.getBoundingClientRect().width / app.ag.view.width;
    drag.el.setAttribute('transform', `translate(${drag.x + dx / scale},${drag.y + dy / scale})`);
  });
  window.addEventListener('mouseup', (e) => {
    if (!drag) return;
    const d = drag;
    drag = null;
    if (!d.moved) {
      app.ag.selected = app.ag.selected === d.key ? null : d.key;
      drawAttribution();
      return;
    }
    const under = document.elementFromPoint(e.clientX, e.clientY)?.closest('.ag-node');
    if (under) groupItems(d.key, under.dataset.key);
    drawAttribution();
  });
  $('ag-detail').addEventListener('click', (e) => {
    const link = e.target.closest('a[data-key]');
    if (link) {
      e.preventDefault();
      app.ag.selected = link.dataset.key;
      drawAttribution();
      return;
    }
    if (e.target.id === 'ag-ungroup') {
      const k = Number(e.target.dataset.group);
      app.ag.groups[app.ag.index] = groups().filter((_, i) => i !== k);
      app.ag.selected = null;
      drawAttribution();
    }
  });
}

/** Switches between the SAE circuit and the attribution graph. */
function showView(which) {
  const graph = which === 'graph';
  document.body.classList.toggle('show-graph', graph);
  for (const b of document.querySelectorAll('#views button'))
    b.classList.toggle('active', b.dataset.view === which);
  if (graph) drawAttribution();
}

Object.assign(app, { drawAttribution, loadGraphs, wireAttribution, showView });
