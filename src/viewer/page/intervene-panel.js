/* global app, fetch, document */
// `sfc view --live`: the intervention panel. Pick a circuit node (click it, or type SITE:FEATURE),
// zero, set or scale it (or steer along its decoder direction) with the slider, and run a prompt:
// the server's engine answers with the next-token probabilities before and after, the
// continuation with and without, and (a second request) every circuit node's activation without
// and with, shown on the graph. Present only when the server says it has an engine.
const { $, esc, fmt, showToken } = app;

const live = { acts: null, running: 0 };

function panelHtml() {
  const tokens = app.data.circuit.tokens || [];
  return `<h2>Intervene <span class="badge">model</span></h2>
<label class="iv-row">prompt <textarea id="iv-prompt" rows="2">${esc(tokens.join(''))}</textarea></label>
<div class="iv-row"><label>node <input id="iv-target" placeholder="SITE:FEATURE, e.g. resid_1:76" size="16"></label>
<label>at <input id="iv-pos" placeholder="all" size="6" title="position (0-based), a list 1,3, last, all or all+generated"></label></div>
<div class="iv-row"><label>op <select id="iv-op"><option value="zero">zero</option><option value="set">set (clamp)</option><option value="scale">scale</option><option value="steer">steer</option></select></label>
<input type="range" id="iv-amount" min="-20" max="20" step="0.1" value="0"><output id="iv-amount-value">0</output></div>
<div class="iv-row"><label>generate <input id="iv-generate" type="number" min="0" max="64" value="8" size="3"> tokens</label>
<button id="iv-run">run</button><span id="iv-busy" hidden><progress></progress> running…</span></div>
<div id="iv-error" class="warn" hidden></div>
<div id="iv-result"></div>`;
}

/** The --do text of the panel's intervention (empty target: no intervention, a plain run). */
function interventionText() {
  const target = $('iv-target').value.trim();
  if (target === '') return null;
  const pos = $('iv-pos').value.trim();
  const op = $('iv-op').value;
  const amount = Number($('iv-amount').value);
  const opText = op === 'zero' ? 'zero' : `${op}=${amount}`;
  return `${target}${pos ? '@' + pos : ''}=${opText}`;
}

async function api(route, body) {
  const r = await fetch(route, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  let json = null;
  try {
    json = await r.json();
  } catch {
    // not JSON: reported below by status
  }
  if (!r.ok) throw new Error(json && json.error ? json.error : `${route}: HTTP ${r.status}`);
  return json;
}

function showError(message) {
  const el = $('iv-error');
  el.hidden = message === null;
  el.textContent = message ?? ''; // text, never HTML: messages echo what was typed
}

function busy(delta) {
  live.running += delta;
  $('iv-busy').hidden = live.running === 0;
}

function bar(p, colour) {
  return `<span class="iv-bar" style="width:${Math.round(100 * p)}px;background:${colour}"></span>`;
}

function renderResult(r) {
  const rows = r.top
    .map(
      (t) =>
        `<tr data-token-id="${t.id}" data-before="${t.before}" data-after="${t.after}"><td class="tok">${esc(JSON.stringify(showToken(t.token)))}</td>` +
        `<td>${bar(t.before, 'var(--muted)')}<span class="p-before">${t.before.toFixed(4)}</span></td>` +
        `<td>${bar(t.after, t.after >= t.before ? 'var(--blue)' : 'var(--red)')}<span class="p-after">${t.after.toFixed(4)}</span></td></tr>`,
    )
    .join('');
  const gen = r.generated
    ? `<h3>Continuation</h3><div class="iv-gen">without: <code id="iv-without">${esc(r.generated.without)}</code></div><div class="iv-gen">with: <code id="iv-with">${esc(r.generated.with)}</code></div>`
    : '';
  $('iv-result').innerHTML =
    `<div class="muted">${esc(r.interventions.join(' · ') || 'no intervention')} · tokens ${r.tokens.map((t, i) => `${i} ${esc(JSON.stringify(t))}`).join(' ')}</div>` +
    `<h3>Next token</h3><table class="iv-top"><tr><th>token</th><th>before</th><th>after</th></tr>${rows}</table>` +
    `<div>KL(before ‖ after) <b id="iv-kl">${fmt(r.kl)}</b> nats</div>${gen}<h3>Circuit nodes</h3><div id="iv-acts" class="muted">reading…</div>`;
}

/** Each circuit node's activation without and with, as a change shown on the graph. */
function markActivations() {
  if (!app.view || !app.view.nodeEls) return;
  for (const el of app.view.svg.querySelectorAll('.iv-delta')) el.remove();
  if (!live.acts) return;
  for (const [id, a] of live.acts) {
    const el = app.view.nodeEls.get(id);
    if (!el) continue;
    const change = a.after - a.before;
    if (Math.abs(change) < 1e-6 * Math.max(1, Math.abs(a.before))) continue;
    const t = document.createElementNS(app.SVG_NS, 'text');
    t.setAttribute('class', 'iv-delta');
    t.setAttribute('text-anchor', 'middle');
    t.setAttribute('y', String(-app.BOX_H / 2 - 3));
    t.setAttribute('fill', change >= 0 ? '#2166ac' : '#b2182b');
    t.dataset.before = String(a.before);
    t.dataset.after = String(a.after);
    t.textContent = `${fmt(a.before)}→${fmt(a.after)}`;
    el.appendChild(t);
  }
}

async function run() {
  showError(null);
  const iv = interventionText();
  const prompt = $('iv-prompt').value;
  const generate = Number($('iv-generate').value) || 0;
  busy(1);
  try {
    const r = await api('api/intervene', {
      prompt,
      interventions: iv ? [iv] : [],
      generate,
    });
    renderResult(r);
    const nodes = app.graph.nodes
      .filter((n) => n.position !== null && n.position < r.ids.length)
      .slice(0, 5000);
    if (nodes.length === 0) {
      $('iv-acts').textContent = 'no per-position circuit nodes to read';
      return;
    }
    const a = await api('api/activations', {
      ids: r.ids,
      interventions: iv ? [iv] : [],
      nodes: nodes.map((n) => ({ site: n.site, feature: n.feature, position: n.position })),
    });
    live.acts = new Map(nodes.map((n, k) => [n.id, { before: a.before[k], after: a.after[k] }]));
    const changed = [...live.acts.values()].filter((x) => x.after !== x.before).length;
    $('iv-acts').textContent =
      `${changed} of ${nodes.length} nodes change; the graph shows before→after above each.`;
    markActivations();
  } catch (e) {
    showError(e.message);
  } finally {
    busy(-1);
  }
}

/** The selected graph node becomes the panel's target. */
function onSelected() {
  const n = app.state.selected ? app.graph.byId.get(app.state.selected) : null;
  if (!n || !$('iv-target')) return;
  $('iv-target').value = `${n.site}:${n.kind === 'error' ? 'err' : n.feature}`;
  $('iv-pos').value = n.position === null ? 'all' : String(n.position);
}

function wireIntervene() {
  const panel = $('intervene');
  if (!app.data.engine) return;
  panel.hidden = false;
  panel.innerHTML = panelHtml();
  const amount = () => ($('iv-amount-value').textContent = $('iv-amount').value);
  $('iv-amount').addEventListener('input', amount);
  $('iv-amount').addEventListener('change', run);
  $('iv-op').addEventListener('change', () => {
    $('iv-amount').value = $('iv-op').value === 'scale' ? '1' : '0';
    amount();
  });
  $('iv-run').addEventListener('click', run);
  const renderDashboard = app.renderDashboard;
  app.renderDashboard = () => {
    renderDashboard();
    onSelected();
  };
  const draw = app.draw;
  app.draw = () => {
    draw();
    markActivations();
  };
}

Object.assign(app, { wireIntervene, runIntervene: run });
