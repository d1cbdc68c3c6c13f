/* global app, document, window, requestAnimationFrame, setTimeout */
// Hover (a node's edges and a tooltip), search, selection, the sliders (prune in place while
// dragging, lay out anew on release), pan and zoom: the page's event wiring.
const { $, esc, fmt, showToken } = app;

function focusNode(n) {
  const svg = app.view.svg;
  svg.classList.add('focus');
  app.view.nodeEls.get(n.id)?.classList.add('on');
  for (const e of n.edges) {
    const el = app.view.edgeEls.get(e.i);
    if (!el) continue;
    el.classList.add('on');
    const other = e.s === n ? e.t : e.s;
    if (other !== 'y') app.view.nodeEls.get(other.id)?.classList.add('on');
  }
}
function unfocus() {
  if (!app.view) return;
  app.view.svg.classList.remove('focus');
  for (const el of app.view.svg.querySelectorAll('.on')) el.classList.remove('on');
}

function showTooltip(n, ev) {
  const tip = $('tooltip');
  const where =
    n.position === null
      ? ''
      : ` at position ${n.position} (${esc(showToken(app.graph.columns[n.col].head))})`;
  const label = n.key && app.data.labels[n.key];
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
  const q = app.state.query.trim().toLowerCase();
  app.view.svg.classList.toggle('searching', q !== '');
  let matches = 0;
  for (const n of app.graph.nodes) {
    const el = app.view.nodeEls.get(n.id);
    if (!el) continue;
    const hit = q !== '' && n.search.includes(q);
    el.classList.toggle('match', hit);
    if (hit) matches++;
  }
  $('search-count').textContent = q === '' ? '' : `${matches} match${matches === 1 ? '' : 'es'}`;
}

function select(id) {
  app.state.selected = id;
  for (const el of app.view.svg.querySelectorAll('.node.selected')) el.classList.remove('selected');
  if (id) app.view.nodeEls.get(id)?.classList.add('selected');
  app.markShiftSelection();
  app.renderDashboard();
}

/**
 * While a slider is dragged towards stricter thresholds, only hide what drops out (the drawn
 * layout holds every node still shown); a full layout follows when the slider is released.
 */
function prune() {
  const next = app.visibility();
  const drawn = app.view.drawn;
  const subset = next.shown.every((v, i) => !v || drawn[i]);
  if (!subset) return redraw();
  for (const n of app.graph.nodes)
    if (drawn[n.i]) app.view.nodeEls.get(n.id)?.classList.toggle('gone', !next.shown[n.i]);
  for (const e of app.graph.edges) {
    const el = app.view.edgeEls.get(e.i);
    if (el) el.classList.toggle('gone', !next.edgeShown[e.i]);
    else if (next.edgeShown[e.i]) return redraw(); // an edge the layout did not draw
  }
  Object.assign(app.view, next);
  app.updateCounts();
  app.drawCurves();
}

let pending = false;
function redraw() {
  if (pending) return;
  pending = true;
  requestAnimationFrame(() => {
    pending = false;
    app.draw();
  });
}

function wire() {
  for (const [id, key] of [
    ['node-slider', 'nodeSlider'],
    ['edge-slider', 'edgeSlider'],
  ]) {
    $(id).addEventListener('input', (e) => {
      app.state[key] = Number(e.target.value);
      prune();
    });
    $(id).addEventListener('change', redraw);
  }
  $('show-errors').addEventListener('change', (e) => {
    app.state.showErrors = e.target.checked;
    redraw();
  });
  $('search').addEventListener('input', (e) => {
    app.state.query = e.target.value;
    applySearch();
  });
  $('search').addEventListener('keydown', (e) => {
    if (e.key !== 'Enter') return;
    const first = app.view.svg.querySelector('.node.match');
    if (first) {
      first.scrollIntoView({ block: 'center', inline: 'center' });
      select(first.dataset.id);
    }
  });
  $('zoom-in').addEventListener('click', () => {
    app.state.zoom = Math.min(4, app.state.zoom * 1.25);
    app.applyZoom();
  });
  $('zoom-out').addEventListener('click', () => {
    app.state.zoom = Math.max(0.1, app.state.zoom / 1.25);
    app.applyZoom();
  });
  $('zoom-fit').addEventListener('click', () => {
    app.state.zoom = null;
    app.applyZoom();
  });
  document.addEventListener('keydown', (e) => {
    if (e.key === 'Escape' && app.state.selected) select(null);
  });
  $('export-svg').addEventListener('click', app.exportSvg);
  $('export-png').addEventListener('click', app.exportPng);
  const g = $('graph');
  g.addEventListener('mouseover', (e) => {
    const el = e.target.closest('.node');
    if (!el) return;
    const n = app.graph.byId.get(el.dataset.id);
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
      app.state.zoom = Math.min(4, Math.max(0.1, app.state.zoom * (e.deltaY < 0 ? 1.1 : 1 / 1.1)));
      app.applyZoom();
    },
    { passive: false },
  );
}

Object.assign(app, { applySearch, select, wire });
