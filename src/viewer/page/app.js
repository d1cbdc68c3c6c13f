/* global document, window, Blob, URL, Image, XMLSerializer, requestAnimationFrame, fetch, setTimeout */
// The report page: draws a circuit as the paper does (rows by site, columns by token position),
// prunes it with sliders, highlights a node's edges on hover, searches, opens feature dashboards
// and exports the current view; with SHIFT's results (shift.json) a panel lets a person judge the
// candidate features and download their choice for `sfc shift --features`. Plain browser
// JavaScript, no libraries and no network: the data sits in the page (#report-data). Layout is a
// deterministic grid, recomputed only when the set of shown nodes changes (a slider moves), never
// per frame.
'use strict';

(function () {
  const SVG_NS = 'http://www.w3.org/2000/svg';
  const BOX_W = 64;
  const BOX_H = 30;
  const GAP = 6;
  const PAD = 10;
  const ROW_LABEL_W = 78;
  const HEAD_H = 44;
  const TOP_H = 24; // token strings above the graph too, for tall circuits
  const MIN_COL_W = 92;
  const BLUE = [33, 102, 172];
  const RED = [178, 24, 43];
  const SERIES_COLORS = ['#2166ac', '#e08214', '#1b7837', '#762a83', '#8c510a', '#01665e'];

  let data = JSON.parse(document.getElementById('report-data').textContent);
  let graph = null; // prepared from data: nodes, edges, rows, columns
  let view = null; // what is shown: visible flags, layout, elements
  const state = {
    nodeSlider: 0,
    edgeSlider: 0,
    showErrors: true,
    query: '',
    zoom: null, // null: fit to width on first draw
    selected: null,
  };

  const $ = (id) => document.getElementById(id);
  const esc = (s) =>
    String(s).replace(
      /[&<>"']/g,
      (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c],
    );
  const fmt = (v) => {
    if (v === null || v === undefined || !Number.isFinite(v)) return 'n/a';
    const a = Math.abs(v);
    if (a !== 0 && (a < 1e-3 || a >= 1e4)) return v.toExponential(2);
    return Number(v.toPrecision(3)).toString();
  };
  /** A token as shown: spaces kept visible, line breaks as ⏎. */
  const showToken = (s) => String(s).replace(/\n/g, '⏎').replace(/\t/g, '⇥');

  // ------------------------------------------------------------------------------------------
  // Data -> graph

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
    const nodeThr = sliderThreshold(state.nodeSlider, graph.nodeRange);
    const edgeThr = sliderThreshold(state.edgeSlider, graph.edgeRange);
    const shown = graph.nodes.map(
      (n) => n.abs >= nodeThr && (state.showErrors || n.kind !== 'error'),
    );
    const edgeShown = graph.edges.map(
      (e) => e.abs >= edgeThr && shown[e.s.i] && (e.t === 'y' || shown[e.t.i]),
    );
    return { nodeThr, edgeThr, shown, edgeShown };
  }

  function computeView() {
    const { nodeThr, edgeThr, shown, edgeShown } = visibility();
    // Cells: (row, column) -> shown nodes by |effect|, largest first.
    const rowIndex = new Map(graph.rows.map((r, i) => [r, i]));
    const cells = graph.rows.map(() => graph.columns.map(() => []));
    for (const n of graph.nodes) if (shown[n.i]) cells[rowIndex.get(n.site)][n.col].push(n);
    for (const row of cells)
      for (const cell of row)
        cell.sort((a, b) => b.abs - a.abs || (a.feature ?? -1) - (b.feature ?? -1));
    const cap = graph.perPosition ? (graph.columns.length > 8 ? 3 : 5) : 14;
    const perLine = graph.columns.map((_, c) =>
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
    const rowH = graph.rows.map((r, ri) => {
      if (r === 'y') return BOX_H + 2 * PAD;
      let lines = 1;
      cells[ri].forEach(
        (cell, c) => (lines = Math.max(lines, Math.ceil(cell.length / perLine[c]))),
      );
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
    const yPos = graph.hasY
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

  // ------------------------------------------------------------------------------------------
  // Drawing

  function mix(rgb, t) {
    return `rgb(${rgb.map((v) => Math.round(255 + (v - 255) * t)).join(',')})`;
  }
  function effectFill(effect) {
    const t = Math.min(1, Math.sqrt(Math.abs(effect) / graph.maxEffect));
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
    view = computeView();
    const v = view;
    const parts = [];
    parts.push(
      `<svg xmlns="${SVG_NS}" id="graph-svg" viewBox="0 0 ${v.width} ${v.height}" width="${v.width}" height="${v.height}">`,
      `<style>${SVG_STYLE}</style>`,
      `<rect x="0" y="0" width="${v.width}" height="${v.height}" fill="#ffffff"/>`,
    );
    // Row bands and labels.
    graph.rows.forEach((r, ri) => {
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
    graph.columns.forEach((col, c) => {
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
    const order = graph.edges.filter((e) => v.edgeShown[e.i]).sort((a, b) => a.abs - b.abs);
    for (const e of order) {
      const [x1, y1] = v.pos.get(e.s.i);
      const [x2, y2] = e.t === 'y' ? v.yPos : v.pos.get(e.t.i);
      const a = y1 - BOX_H / 2;
      const b = y2 + BOX_H / 2;
      const m = (a + b) / 2;
      const width = 0.6 + 5 * (e.abs / graph.maxWeight);
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
    for (const n of graph.nodes) {
      if (!v.shown[n.i]) continue;
      const [x, y] = v.pos.get(n.i);
      const { fill, dark } = effectFill(n.effect);
      const ink = dark ? '#ffffff' : '#1f2328';
      const cls = `node ${n.kind}${state.selected === n.id ? ' selected' : ''}`;
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
    view.svg = svg;
    view.nodeEls = new Map();
    for (const el of svg.querySelectorAll('.node')) view.nodeEls.set(el.dataset.id, el);
    view.edgeEls = new Map();
    for (const el of svg.querySelectorAll('.edge')) view.edgeEls.set(Number(el.dataset.i), el);
    applyZoom();
    applySearch();
    updateCounts();
    drawCurves();
  }

  function applyZoom() {
    if (!view) return;
    if (state.zoom === null) {
      const avail = $('graph-pane').clientWidth - 20;
      // Fit the width; small circuits grow up to 1.5x so their labels are easy to read.
      state.zoom = Math.max(0.25, Math.min(1.5, avail / view.width));
    }
    view.svg.setAttribute('width', String(Math.round(view.width * state.zoom)));
    view.svg.setAttribute('height', String(Math.round(view.height * state.zoom)));
  }

  function shownCount() {
    let nodes = 0;
    let atStart = 0;
    const start = data.evaluation ? data.evaluation.startLayer : 0;
    for (const n of graph.nodes)
      if (view.shown[n.i]) {
        nodes++;
        if (n.layer >= start) atStart++;
      }
    let edges = 0;
    for (const e of graph.edges) if (view.edgeShown[e.i]) edges++;
    return { nodes, atStart, edges };
  }

  function updateCounts() {
    const { nodes, edges } = shownCount();
    $('counts').textContent =
      `${nodes} of ${graph.nodes.length} nodes · ${edges} of ${graph.edges.length} edges`;
    $('node-value').textContent = fmt(view.nodeThr);
    $('edge-value').textContent = fmt(view.edgeThr);
  }

  // ------------------------------------------------------------------------------------------
  // Hover, search, selection

  function focusNode(n) {
    const svg = view.svg;
    svg.classList.add('focus');
    view.nodeEls.get(n.id)?.classList.add('on');
    for (const e of n.edges) {
      const el = view.edgeEls.get(e.i);
      if (!el) continue;
      el.classList.add('on');
      const other = e.s === n ? e.t : e.s;
      if (other !== 'y') view.nodeEls.get(other.id)?.classList.add('on');
    }
  }
  function unfocus() {
    if (!view) return;
    view.svg.classList.remove('focus');
    for (const el of view.svg.querySelectorAll('.on')) el.classList.remove('on');
  }

  function showTooltip(n, ev) {
    const tip = $('tooltip');
    const where =
      n.position === null
        ? ''
        : ` at position ${n.position} (${esc(showToken(graph.columns[n.col].head))})`;
    const label = n.key && data.labels[n.key];
    tip.innerHTML =
      `<b>${esc(n.id)}</b>${where}<br>effect ${fmt(n.effect)} · ${n.edges.length} edges` +
      (label ? `<br><span class="sub">${esc(label.label)}</span>` : '') +
      (n.kind === 'error' ? '<br><span class="sub">SAE error at this site</span>' : '');
    tip.hidden = false;
    moveTooltip(ev);
  }
  function moveTooltip(ev) {
    const tip = $('tooltip');
    const x = Math.min(ev.clientX + 14, window.innerWidth - tip.offsetWidth - 8);
    const y = Math.min(ev.clientY + 14, window.innerHeight - tip.offsetHeight - 8);
    tip.style.left = `${x}px`;
    tip.style.top = `${y}px`;
  }

  function applySearch() {
    const q = state.query.trim().toLowerCase();
    view.svg.classList.toggle('searching', q !== '');
    let matches = 0;
    for (const n of graph.nodes) {
      const el = view.nodeEls.get(n.id);
      if (!el) continue;
      const hit = q !== '' && n.search.includes(q);
      el.classList.toggle('match', hit);
      if (hit) matches++;
    }
    $('search-count').textContent = q === '' ? '' : `${matches} match${matches === 1 ? '' : 'es'}`;
  }

  function select(id) {
    state.selected = id;
    for (const el of view.svg.querySelectorAll('.node.selected')) el.classList.remove('selected');
    if (id) view.nodeEls.get(id)?.classList.add('selected');
    markShiftSelection();
    renderDashboard();
  }

  // ------------------------------------------------------------------------------------------
  // Dashboard panel

  function renderDashboard() {
    const panel = $('dashboard');
    const n = state.selected ? graph.byId.get(state.selected) : null;
    if (!n) {
      panel.hidden = true;
      return;
    }
    panel.hidden = false;
    const out = [];
    out.push(
      `<div class="dash-head"><h2>${esc(n.kind === 'error' ? `${n.site} / ε (error)` : `${n.site} / ${n.feature}`)}</h2><button id="dash-close" title="close">×</button></div>`,
    );
    if (n.kind === 'error') {
      out.push(
        `<p class="muted">The error node: what the SAE at ${esc(n.site)} fails to reconstruct (ε = x − x̂). It has no dashboard; a large effect says the features miss part of the computation here.</p>`,
      );
    }
    const label = n.key && data.labels[n.key];
    if (n.kind === 'feature') {
      out.push(
        label
          ? `<div class="label-box"><div class="label">${esc(label.label)}</div><div class="detail">${esc(label.source)}${label.detail ? ' · ' + esc(label.detail) : ''}</div></div>`
          : '<div class="label-box"><div class="detail">no label for this feature</div></div>',
      );
    }
    // Where this feature or error sits in the circuit (per-position circuits list each position).
    const same = graph.nodes.filter((m) => m.site === n.site && m.feature === n.feature);
    out.push(
      `<div class="occurrences">${same
        .map(
          (m) =>
            `<span>${m.position === null ? 'effect' : `@${m.position} ${esc(showToken(graph.columns[m.col].head))}`}: <b style="color:${m.effect >= 0 ? 'var(--blue)' : 'var(--red)'}">${fmt(m.effect)}</b></span>`,
        )
        .join('')}</div>`,
    );
    const dash = n.key && data.dashboards ? data.dashboards.features[n.key] : null;
    if (n.kind === 'feature' && !dash) {
      out.push(
        `<p class="muted">${data.dashboards ? 'No dashboard was computed for this feature.' : 'No dashboards.json: run <code>sfc dashboards</code> to see its contexts.'}</p>`,
      );
    }
    if (dash) {
      const vocab = data.dashboards.vocab;
      out.push(
        `<h3>Activations</h3><div>fires on <b>${fmt(100 * dash.frequency)}%</b> of ${data.dashboards.tokens.toLocaleString()} tokens · max <b>${fmt(dash.max_activation)}</b></div>`,
        histogramSvg(dash.histogram),
        '<h3>Logit effects</h3>',
        `<div class="muted" style="font-size:11px;margin-bottom:4px">${esc(data.dashboards.logitLens)}</div>`,
        `<div class="logits">${logitTable('promotes', dash.promoted, vocab, BLUE)}${logitTable('suppresses', dash.suppressed, vocab, RED)}</div>`,
        `<h3>Top contexts</h3><div class="contexts">`,
      );
      const scale = Math.max(1e-12, Math.abs(dash.max_activation));
      if (dash.contexts.length === 0)
        out.push('<p class="muted">It never fires on the corpus.</p>');
      for (const ctx of dash.contexts) {
        out.push(`<div class="ctx"><span class="act">${fmt(ctx.acts[ctx.at])}</span>`);
        ctx.ids.forEach((id, j) => {
          const a = ctx.acts[j];
          const t = Math.min(1, Math.abs(a) / scale);
          const bg = a === 0 ? 'transparent' : mix(a > 0 ? BLUE : RED, 0.12 + 0.75 * t);
          const ink = t > 0.6 ? '#fff' : 'inherit';
          out.push(
            `<span class="tok${j === ctx.at ? ' peak' : ''}" style="background:${bg};color:${ink}" title="${esc(fmt(a))}">${esc(showToken(vocab[id] ?? `<${id}>`))}</span>`,
          );
        });
        out.push('</div>');
      }
      out.push('</div>');
    }
    panel.innerHTML = out.join('');
    $('dash-close').addEventListener('click', () => select(null));
    panel.scrollIntoView({ block: 'start' });
  }

  function logitTable(title, list, vocab, rgb) {
    const max = Math.max(1e-12, ...list.map(([, v]) => Math.abs(v)));
    const rows = list
      .map(
        ([id, v]) =>
          `<tr><td class="tok">${esc(showToken(vocab[id] ?? `<${id}>`))}</td><td class="v">${fmt(v)}</td><td><span class="bar" style="width:${Math.round((40 * Math.abs(v)) / max)}px;background:${mix(rgb, 0.8)}"></span></td></tr>`,
      )
      .join('');
    return `<div><div class="muted">${title}</div><table>${rows}</table></div>`;
  }

  function histogramSvg(h) {
    const W = 360;
    const H = 90;
    const B = h.counts.length;
    const max = Math.max(1, ...h.counts);
    const bw = (W - 20) / Math.max(1, B);
    const bars = h.counts
      .map((c, b) => {
        const bh = (c / max) * (H - 28);
        const mid = h.lo + ((b + 0.5) * (h.hi - h.lo)) / B;
        return `<rect x="${10 + b * bw}" y="${H - 18 - bh}" width="${Math.max(1, bw - 1)}" height="${bh}" fill="${mix(mid >= 0 ? BLUE : RED, 0.75)}"><title>${fmt(mid)}: ${c}</title></rect>`;
      })
      .join('');
    return `<svg class="chart" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}">${bars}<line x1="10" x2="${W - 10}" y1="${H - 18}" y2="${H - 18}" stroke="#8c959f"/><text x="10" y="${H - 5}">${fmt(h.lo)}</text><text x="${W - 10}" y="${H - 5}" text-anchor="end">${fmt(h.hi)}</text><text x="${W / 2}" y="${H - 5}" text-anchor="middle">non-zero activations (max count ${max})</text></svg>`;
  }

  // ------------------------------------------------------------------------------------------
  // SHIFT panel: the results table of `sfc shift` and its candidate features, which a person
  // judges here (checked = spurious) and downloads as the {"features": [...]} file that
  // `sfc shift --features FILE` reads.

  // Choices survive live reloads unless the file's candidates or judgement change.
  const shiftState = { sig: null, checked: new Map() };

  const pct = (v) =>
    v === null || v === undefined || !Number.isFinite(v) ? 'n/a' : `${(100 * v).toFixed(1)}%`;
  /** A word for a POSIX shell: as is when plain, else single-quoted. */
  const shellWord = (w) => (/^[\w./:@%+=,-]+$/.test(w) ? w : `'${w.replace(/'/g, "'\\''")}'`);

  /** The candidates as listed: by |effect|, largest first (ties in file order). */
  function shiftFeatures() {
    return data.shift.features
      .map((f, i) => ({ f, i }))
      .sort((a, b) => Math.abs(b.f.effect) - Math.abs(a.f.effect) || a.i - b.i)
      .map((x) => x.f);
  }
  function shiftSelection() {
    return shiftFeatures()
      .filter((f) => shiftState.checked.get(f.id))
      .map((f) => f.id);
  }
  /** The graph node of a feature ("site/feature"): the one with the largest |effect|. */
  function shiftNode(id) {
    let best = null;
    for (const n of graph.nodes) if (n.key === id && (!best || n.abs > best.abs)) best = n;
    return best;
  }
  const shiftCommand = () =>
    `sfc shift --task ${shellWord(data.shift.task)} --features features.json --retrain`;

  function renderShift() {
    const panel = $('shift');
    const s = data.shift;
    if (!s) {
      panel.hidden = true;
      panel.innerHTML = '';
      return;
    }
    const sig = JSON.stringify(s.features.map((f) => [f.id, f.spurious]));
    if (sig !== shiftState.sig) {
      shiftState.sig = sig;
      shiftState.checked = new Map(s.features.map((f) => [f.id, f.spurious]));
    }
    const oldList = panel.querySelector('.shift-list');
    const scroll = oldList ? oldList.scrollTop : 0;
    panel.hidden = false;
    const meta = [
      ['task', s.task],
      ['probe at', s.site],
      ['labels', s.labels && s.labels.join(' / ')],
      ['cue', s.genders && s.genders.join(' / ')],
      ['judge', s.judge],
    ]
      .filter(([, v]) => v)
      .map(([k, v]) => `${k} <b>${esc(v)}</b>`);
    if (typeof s.seconds === 'number') meta.push(`${fmt(s.seconds)} s`);
    const out = [
      '<h2>SHIFT: ablating spurious features</h2>',
      `<div class="shift-meta"${s.command ? ` title="${esc(s.command)}"` : ''}>${meta.join(' · ')}</div>`,
      '<table class="shift-table"><thead><tr><th></th><th title="features ablated">ablated</th><th title="accuracy on the label">label</th><th title="accuracy on the gender (the spurious cue)">gender</th><th title="accuracy on the worst (label, gender) group">worst group</th></tr></thead><tbody>',
    ];
    for (const r of s.rows) {
      const retrained =
        r.retrained && !/retrain/i.test(r.name) ? ' <span class="muted">(retrained)</span>' : '';
      out.push(
        `<tr${r.description ? ` title="${esc(r.description)}"` : ''}><td class="name">${esc(r.name)}${retrained}</td><td class="v">${r.ablated}</td><td class="v">${pct(r.label)}</td><td class="v">${pct(r.gender)}</td><td class="v">${pct(r.worst_group)}</td></tr>`,
      );
    }
    out.push(
      '</tbody></table>',
      `<h3>Candidate features (${s.features.length})</h3>`,
      `<p class="muted shift-help">Checked: spurious, to be ablated. Checked at first: what the judge${s.judge ? ` (${esc(s.judge)})` : ''} chose. Click an id to see the feature.</p>`,
      '<div class="shift-tools"><span id="shift-count"></span><span class="group"><button id="shift-all">select all</button><button id="shift-none">none</button></span></div>',
    );
    const list = shiftFeatures();
    if (list.length === 0) out.push('<p class="muted">No candidate features in shift.json.</p>');
    else {
      out.push('<div class="shift-list"><table>');
      for (const f of list) {
        const label = data.labels[f.id];
        const idText = shiftNode(f.id)
          ? `<button class="shift-id" data-id="${esc(f.id)}" title="show in the graph">${esc(f.id)}</button>`
          : `<span class="shift-id-plain" title="not in this circuit">${esc(f.id)}</span>`;
        out.push(
          `<tr class="shift-feature" data-id="${esc(f.id)}"><td><input type="checkbox" data-id="${esc(f.id)}"${shiftState.checked.get(f.id) ? ' checked' : ''} aria-label="${esc(f.id)} is spurious"></td>`,
          `<td>${idText}${label ? `<div class="shift-label" title="${esc(label.source)}${label.detail ? ' · ' + esc(label.detail) : ''}">${esc(label.label)}</div>` : ''}</td>`,
          `<td class="v" style="color:${f.effect >= 0 ? 'var(--blue)' : 'var(--red)'}">${fmt(f.effect)}</td>`,
          `<td class="note">${f.note ? esc(f.note) : ''}</td></tr>`,
        );
      }
      out.push('</table></div>');
    }
    out.push(
      '<div class="shift-actions"><button id="shift-download">Download features.json</button></div>',
      '<div class="muted shift-help">then rerun SHIFT with this selection:</div>',
      `<textarea id="shift-command" rows="2" readonly spellcheck="false">${esc(shiftCommand())}</textarea>`,
    );
    panel.innerHTML = out.join('');
    const newList = panel.querySelector('.shift-list');
    if (newList) newList.scrollTop = scroll;
    updateShiftCount();
    markShiftSelection();
  }

  function updateShiftCount() {
    const el = $('shift-count');
    if (!el) return;
    const n = shiftSelection().length;
    el.textContent = `${n} feature${n === 1 ? '' : 's'} judged spurious`;
  }

  function markShiftSelection() {
    const n = state.selected && graph ? graph.byId.get(state.selected) : null;
    for (const row of $('shift').querySelectorAll('.shift-feature'))
      row.classList.toggle('selected', Boolean(n && n.key === row.dataset.id));
  }

  function setAllShift(on) {
    for (const f of data.shift.features) shiftState.checked.set(f.id, on);
    for (const box of $('shift').querySelectorAll('input[type="checkbox"][data-id]'))
      box.checked = on;
    updateShiftCount();
  }

  function downloadShift() {
    const text = JSON.stringify({ features: shiftSelection() }, null, 2) + '\n';
    download(new Blob([text], { type: 'application/json' }), 'features.json');
  }

  function wireShift() {
    const panel = $('shift');
    panel.addEventListener('change', (e) => {
      const box = e.target.closest('input[type="checkbox"][data-id]');
      if (!box) return;
      shiftState.checked.set(box.dataset.id, box.checked);
      updateShiftCount();
    });
    panel.addEventListener('click', (e) => {
      const t = e.target;
      if (t.closest('#shift-all')) return setAllShift(true);
      if (t.closest('#shift-none')) return setAllShift(false);
      if (t.closest('#shift-download')) return downloadShift();
      const idButton = t.closest('.shift-id');
      if (!idButton) return;
      const n = shiftNode(idButton.dataset.id);
      if (!n) return;
      view.nodeEls.get(n.id)?.scrollIntoView({ block: 'center', inline: 'center' });
      select(n.id);
    });
    panel.addEventListener('focusin', (e) => {
      if (e.target.id === 'shift-command') e.target.select();
    });
  }

  // ------------------------------------------------------------------------------------------
  // Faithfulness and completeness curves

  function drawCurves() {
    const box = $('curves-body');
    const ev = data.evaluation;
    if (!ev || ev.series.length === 0) {
      const svgs = data.curveSvgs || {};
      const inline = ['faithfulness', 'completeness'].filter((k) => svgs[k]);
      box.innerHTML = inline.length
        ? inline.map((k) => `<div class="inline-svg">${svgs[k]}</div>`).join('')
        : '<p class="muted">No evaluation.json here: run <code>sfc evaluate</code> to draw the curves.</p>';
      for (const svg of box.querySelectorAll('.inline-svg svg')) {
        svg.setAttribute('width', '370');
        svg.removeAttribute('height');
      }
      return;
    }
    const { atStart } = shownCount();
    const out = [];
    if (ev.circuitScore)
      out.push(
        `<div>circuit as saved: <b>${ev.circuitScore.nodes}</b> nodes · faithfulness <b>${fmt(ev.circuitScore.faithfulness)}</b> · completeness <b>${fmt(ev.circuitScore.completeness)}</b></div>`,
      );
    out.push(chartSvg(ev, 'faithfulness', atStart), chartSvg(ev, 'completeness', atStart));
    out.push(
      `<div class="legend">${ev.series.map((s, i) => `<span><svg width="14" height="8"><line x1="0" x2="14" y1="4" y2="4" stroke="${SERIES_COLORS[i % SERIES_COLORS.length]}" stroke-width="2.5"/></svg> ${esc(s.label)}</span>`).join('')}</div>`,
      `<div class="muted" style="font-size:11px;margin-top:4px">dashed line: nodes shown now at layers ≥ ${ev.startLayer} (${atStart}); ${esc(ev.ablation)} ablation</div>`,
    );
    box.innerHTML = out.join('');
  }

  function chartSvg(ev, kind, marker) {
    const W = 370;
    const H = 190;
    const L = 44;
    const R = 10;
    const Tp = 20;
    const Bt = 30;
    const pts = ev.series.map((s) =>
      s.points.filter((p) => p.nodes > 0 && p[kind] !== null).sort((a, b) => a.nodes - b.nodes),
    );
    const all = pts.flat();
    if (all.length === 0) return `<p class="muted">no ${kind} points</p>`;
    const xs = all.map((p) => p.nodes).concat(marker > 0 ? [marker] : []);
    const x0 = Math.log10(Math.min(...xs));
    const x1 = Math.max(x0 + 1, Math.log10(Math.max(...xs)));
    const ys = all.map((p) => p[kind]);
    const y0 = Math.min(0, Math.floor(10 * Math.min(...ys)) / 10);
    const y1 = Math.max(1, Math.ceil(10 * Math.max(...ys)) / 10);
    const sx = (n) => L + ((Math.log10(n) - x0) / (x1 - x0)) * (W - L - R);
    const sy = (v) => Tp + (1 - (v - y0) / (y1 - y0)) * (H - Tp - Bt);
    const out = [
      `<svg class="chart" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}"><text class="title" x="${L}" y="13">${kind === 'faithfulness' ? 'Faithfulness' : 'Completeness'}</text>`,
    ];
    // 0, 0.5 and 1, plus the range's ends when they lie well outside.
    const ticks = [0, 0.5, 1];
    if (y0 <= -0.15) ticks.unshift(y0);
    if (y1 >= 1.15) ticks.push(y1);
    for (const v of ticks)
      out.push(
        `<line x1="${L}" x2="${W - R}" y1="${sy(v)}" y2="${sy(v)}" stroke="#eaeef2"/><text x="${L - 4}" y="${sy(v) + 3}" text-anchor="end">${fmt(v)}</text>`,
      );
    for (let e = Math.ceil(x0); e <= Math.floor(x1); e++)
      out.push(
        `<text x="${sx(10 ** e)}" y="${H - Bt + 13}" text-anchor="middle">${10 ** e}</text>`,
      );
    out.push(
      `<text x="${(L + W - R) / 2}" y="${H - 4}" text-anchor="middle">nodes in the circuit (log)</text>`,
      `<line x1="${L}" x2="${W - R}" y1="${sy(kind === 'faithfulness' ? 1 : 0)}" y2="${sy(kind === 'faithfulness' ? 1 : 0)}" stroke="#8c959f" stroke-dasharray="2 3"/>`,
    );
    pts.forEach((p, i) => {
      if (p.length === 0) return;
      const color = SERIES_COLORS[i % SERIES_COLORS.length];
      out.push(
        `<polyline fill="none" stroke="${color}" stroke-width="2" points="${p.map((q) => `${sx(q.nodes).toFixed(1)},${sy(q[kind]).toFixed(1)}`).join(' ')}"/>`,
      );
      for (const q of p)
        out.push(
          `<circle cx="${sx(q.nodes).toFixed(1)}" cy="${sy(q[kind]).toFixed(1)}" r="2.5" fill="${color}"><title>${esc(ev.series[i].label)}: ${q.nodes} nodes, ${kind} ${fmt(q[kind])} (threshold ${fmt(q.threshold)})</title></circle>`,
        );
    });
    if (marker > 0)
      out.push(
        `<line x1="${sx(marker)}" x2="${sx(marker)}" y1="${Tp}" y2="${H - Bt}" stroke="#1f2328" stroke-dasharray="4 3"/>`,
      );
    out.push('</svg>');
    return out.join('');
  }

  // ------------------------------------------------------------------------------------------
  // Export

  function currentSvgText() {
    const clone = view.svg.cloneNode(true);
    clone.classList.remove('focus');
    for (const el of clone.querySelectorAll('.on')) el.classList.remove('on');
    clone.setAttribute('width', String(view.width));
    clone.setAttribute('height', String(view.height));
    return (
      '<?xml version="1.0" encoding="UTF-8"?>\n' + new XMLSerializer().serializeToString(clone)
    );
  }
  function download(blob, name) {
    const url = URL.createObjectURL(blob);
    const a = document.createElement('a');
    a.href = url;
    a.download = name;
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  }
  function exportSvg() {
    download(new Blob([currentSvgText()], { type: 'image/svg+xml' }), 'circuit.svg');
  }
  function exportPng() {
    const img = new Image();
    const scale = Math.min(2, 16000 / view.width, 16000 / view.height);
    const w = view.width;
    const h = view.height;
    img.onload = () => {
      const canvas = document.createElement('canvas');
      canvas.width = Math.round(w * scale);
      canvas.height = Math.round(h * scale);
      const ctx = canvas.getContext('2d');
      ctx.fillStyle = '#ffffff';
      ctx.fillRect(0, 0, canvas.width, canvas.height);
      ctx.scale(scale, scale);
      ctx.drawImage(img, 0, 0, w, h);
      canvas.toBlob((blob) => download(blob, 'circuit.png'), 'image/png');
    };
    img.src = 'data:image/svg+xml;charset=utf-8,' + encodeURIComponent(currentSvgText());
  }

  // ------------------------------------------------------------------------------------------
  // Page

  function header() {
    const c = data.circuit;
    $('title').innerHTML = esc(data.title) + (data.live ? '<span class="badge">live</span>' : '');
    const metric =
      c.metric.patch === null
        ? `m(clean) ${fmt(c.metric.clean)}`
        : `m(clean) ${fmt(c.metric.clean)} · m(patch) ${fmt(c.metric.patch)}`;
    $('meta').innerHTML = [
      ['model', c.model],
      ['SAEs', c.saes],
      ['data', c.data],
      ['method', `${c.method}${c.method === 'ig' ? ` (${c.steps} steps)` : ''}`],
      ['aggregation', c.aggregation],
      ['examples', c.examples],
      ['thresholds', `node ${c.node_threshold} · edge ${c.edge_threshold}`],
      ['metric', metric],
    ]
      .map(([k, v]) => `${k} <b>${esc(v)}</b>`)
      .join(' · ');
    $('warnings').innerHTML = data.warnings
      .map((w) => `<div class="warn">${esc(w)}</div>`)
      .join('');
  }

  /**
   * While a slider is dragged towards stricter thresholds, only hide what drops out (the drawn
   * layout holds every node still shown); a full layout follows when the slider is released.
   */
  function prune() {
    const next = visibility();
    const drawn = view.drawn;
    const subset = next.shown.every((v, i) => !v || drawn[i]);
    if (!subset) return redraw();
    for (const n of graph.nodes)
      if (drawn[n.i]) view.nodeEls.get(n.id)?.classList.toggle('gone', !next.shown[n.i]);
    for (const e of graph.edges) {
      const el = view.edgeEls.get(e.i);
      if (el) el.classList.toggle('gone', !next.edgeShown[e.i]);
      else if (next.edgeShown[e.i]) return redraw(); // an edge the layout did not draw
    }
    Object.assign(view, next);
    updateCounts();
    drawCurves();
  }

  let pending = false;
  function redraw() {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => {
      pending = false;
      draw();
    });
  }

  function load(d) {
    data = d;
    graph = prepare(d);
    if (state.selected && !graph.byId.has(state.selected)) state.selected = null;
    header();
    draw();
    renderShift();
    renderDashboard();
  }

  function wire() {
    for (const [id, key] of [
      ['node-slider', 'nodeSlider'],
      ['edge-slider', 'edgeSlider'],
    ]) {
      $(id).addEventListener('input', (e) => {
        state[key] = Number(e.target.value);
        prune();
      });
      $(id).addEventListener('change', redraw);
    }
    $('show-errors').addEventListener('change', (e) => {
      state.showErrors = e.target.checked;
      redraw();
    });
    $('search').addEventListener('input', (e) => {
      state.query = e.target.value;
      applySearch();
    });
    $('search').addEventListener('keydown', (e) => {
      if (e.key !== 'Enter') return;
      const first = view.svg.querySelector('.node.match');
      if (first) {
        first.scrollIntoView({ block: 'center', inline: 'center' });
        select(first.dataset.id);
      }
    });
    $('zoom-in').addEventListener('click', () => {
      state.zoom = Math.min(4, state.zoom * 1.25);
      applyZoom();
    });
    $('zoom-out').addEventListener('click', () => {
      state.zoom = Math.max(0.1, state.zoom / 1.25);
      applyZoom();
    });
    $('zoom-fit').addEventListener('click', () => {
      state.zoom = null;
      applyZoom();
    });
    document.addEventListener('keydown', (e) => {
      if (e.key === 'Escape' && state.selected) select(null);
    });
    $('export-svg').addEventListener('click', exportSvg);
    $('export-png').addEventListener('click', exportPng);
    const g = $('graph');
    g.addEventListener('mouseover', (e) => {
      const el = e.target.closest('.node');
      if (!el) return;
      const n = graph.byId.get(el.dataset.id);
      unfocus();
      focusNode(n);
      showTooltip(n, e);
    });
    g.addEventListener('mousemove', (e) => {
      if (!$('tooltip').hidden) moveTooltip(e);
    });
    g.addEventListener('mouseout', (e) => {
      const el = e.target.closest('.node');
      if (el && el.contains(e.relatedTarget)) return;
      unfocus();
      $('tooltip').hidden = true;
    });
    g.addEventListener('click', (e) => {
      const el = e.target.closest('.node');
      if (el && !dragged) select(el.dataset.id);
    });
    // Drag the background to pan; ctrl + wheel zooms.
    const pane = $('graph-pane');
    let drag = null;
    let dragged = false;
    pane.addEventListener('mousedown', (e) => {
      if (e.button !== 0 || e.target.closest('.node')) return;
      drag = { x: e.clientX, y: e.clientY, left: pane.scrollLeft, top: pane.scrollTop };
      dragged = false;
    });
    window.addEventListener('mousemove', (e) => {
      if (!drag) return;
      const dx = e.clientX - drag.x;
      const dy = e.clientY - drag.y;
      if (Math.abs(dx) + Math.abs(dy) > 3) dragged = true;
      pane.scrollLeft = drag.left - dx;
      pane.scrollTop = drag.top - dy;
    });
    window.addEventListener('mouseup', () => {
      drag = null;
      setTimeout(() => (dragged = false), 0);
    });
    pane.addEventListener(
      'wheel',
      (e) => {
        if (!e.ctrlKey) return;
        e.preventDefault();
        state.zoom = Math.min(4, Math.max(0.1, state.zoom * (e.deltaY < 0 ? 1.1 : 1 / 1.1)));
        applyZoom();
      },
      { passive: false },
    );
  }

  /** `sfc view`: reload the data when the files on disk change. */
  function poll(stamp) {
    setTimeout(async () => {
      try {
        const now = await (await fetch('version')).text();
        if (now !== stamp) {
          load(await (await fetch('data.json')).json());
          stamp = now;
        }
      } catch {
        // The server stopped: stay on the last data.
      }
      poll(stamp);
    }, 2000);
  }

  wire();
  wireShift();
  load(data);
  document.body.dataset.ready = '1';
  if (data.live && data.stamp !== undefined) poll(data.stamp);
})();
