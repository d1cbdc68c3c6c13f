/* global app */
// Faithfulness and completeness curves from evaluation.json, with a marker at the number of
// nodes shown now; or evaluate's own plots as images when the file has no usable series.
const { SERIES_COLORS, $, esc, fmt } = app;

/** What inputs.ts makes of an SVG file; anything else is not shown. */
const SVG_DATA_URL = /^data:image\/svg\+xml;base64,[A-Za-z0-9+/]*=*$/;

function drawCurves() {
  const box = $('curves-body');
  const ev = app.data.evaluation;
  if (!ev || ev.series.length === 0) {
    // evaluate's own plots, only ever as images: an SVG in an <img> runs no script.
    const images = app.data.curveImages || {};
    const shown = ['faithfulness', 'completeness'].filter((k) => SVG_DATA_URL.test(images[k]));
    box.innerHTML = shown.length
      ? shown
          .map(
            (k) =>
              `<img class="curve-image" width="370" alt="${k} curve (${k}.svg)" src="${esc(images[k])}">`,
          )
          .join('')
      : '<p class="muted">No evaluation.json here: run <code>sfc evaluate</code> to draw the curves.</p>';
    return;
  }
  const { atStart } = app.shownCount();
  const out = [];
  if (ev.allLayers) out.push(scoreTable(ev));
  else if (ev.circuitScore)
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

/**
 * The saved circuit scored both ways: with its nodes at layers ≥ the start layer (the default,
 * the paper's choice) and with every layer, and how many nodes the default leaves out.
 */
function scoreTable(ev) {
  const S = ev.startLayer;
  const count = (v) => (Number.isInteger(v) ? String(v) : 'n/a');
  const row = (name, title, s) =>
    s
      ? `<tr title="${title}"><td>${name}</td><td class="v">${count(s.nodes)}</td><td class="v">${fmt(s.faithfulness)}</td><td class="v">${fmt(s.completeness)}</td></tr>`
      : '';
  const below = Number.isInteger(ev.nodesBelowStart) ? ev.nodesBelowStart : null;
  return [
    '<table class="scores"><thead><tr><th>circuit as saved</th><th>nodes</th><th>faithfulness</th><th>completeness</th></tr></thead><tbody>',
    row(
      `layers ≥ ${fmt(S)}`,
      'the default: nodes below the start layer are left out',
      ev.circuitScore,
    ),
    row('every layer', 'every node of the circuit, the early layers included', ev.allLayers),
    '</tbody></table>',
    below === null
      ? ''
      : `<div class="muted scores-note">${below} circuit node${below === 1 ? '' : 's'} below layer ${fmt(S)} ${below === 1 ? 'is' : 'are'} left out by the default</div>`,
  ].join('');
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
    out.push(`<text x="${sx(10 ** e)}" y="${H - Bt + 13}" text-anchor="middle">${10 ** e}</text>`);
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

Object.assign(app, { drawCurves });
