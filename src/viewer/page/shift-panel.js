/* global app, Blob */
// SHIFT panel: the results table of `sfc shift` and its candidate features, which a person
// judges here (checked = spurious) and downloads as the {"features": [...]} file that
// `sfc shift --features FILE` reads.
const { $, esc, fmt } = app;

// Choices survive live reloads unless the file's candidates or judgement change.
const shiftState = { sig: null, checked: new Map() };

const pct = (v) =>
  v === null || v === undefined || !Number.isFinite(v) ? 'n/a' : `${(100 * v).toFixed(1)}%`;
/** A word for a POSIX shell: as is when plain, else single-quoted. */
const shellWord = (w) => (/^[\w./:@%+=,-]+$/.test(w) ? w : `'${w.replace(/'/g, "'\\''")}'`);

/** The candidates as listed: by |effect|, largest first (ties in file order). */
function shiftFeatures() {
  return app.data.shift.features
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
  for (const n of app.graph.nodes) if (n.key === id && (!best || n.abs > best.abs)) best = n;
  return best;
}
const shiftCommand = () =>
  `sfc shift --task ${shellWord(app.data.shift.task)} --features features.json --retrain`;

function renderShift() {
  const panel = $('shift');
  const s = app.data.shift;
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
      const label = app.data.labels[f.id];
      const idText = shiftNode(f.id)
        ? `<button class="shift-id" data-id="${esc(f.id)}" title="show in the app.graph">${esc(f.id)}</button>`
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
  const n = app.state.selected && app.graph ? app.graph.byId.get(app.state.selected) : null;
  for (const row of $('shift').querySelectorAll('.shift-feature'))
    row.classList.toggle('selected', Boolean(n && n.key === row.dataset.id));
}

function setAllShift(on) {
  for (const f of app.data.shift.features) shiftState.checked.set(f.id, on);
  for (const box of $('shift').querySelectorAll('input[type="checkbox"][data-id]'))
    box.checked = on;
  updateShiftCount();
}

function downloadShift() {
  const text = JSON.stringify({ features: shiftSelection() }, null, 2) + '\n';
  app.download(new Blob([text], { type: 'application/json' }), 'features.json');
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
    app.view.nodeEls.get(n.id)?.scrollIntoView({ block: 'center', inline: 'center' });
    app.select(n.id);
  });
  panel.addEventListener('focusin', (e) => {
    if (e.target.id === 'shift-command') e.target.select();
  });
}

Object.assign(app, { renderShift, markShiftSelection, wireShift });
