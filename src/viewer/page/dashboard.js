/* global app */
// The dashboard panel of the selected node: its label, its effects at each position, and from
// dashboards.json its activation histogram, logit effects and top contexts.
const { BLUE, RED, $, esc, fmt, showToken, mix } = app;

function renderDashboard() {
  const panel = $('dashboard');
  const n = app.state.selected ? app.graph.byId.get(app.state.selected) : null;
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
  const label = n.key && app.data.labels[n.key];
  if (n.kind === 'feature') {
    out.push(
      label
        ? `<div class="label-box"><div class="label">${esc(label.label)}</div><div class="detail">${esc(label.source)}${label.detail ? ' · ' + esc(label.detail) : ''}</div></div>`
        : '<div class="label-box"><div class="detail">no label for this feature</div></div>',
    );
  }
  // Where this feature or error sits in the circuit (per-position circuits list each position).
  const same = app.graph.nodes.filter((m) => m.site === n.site && m.feature === n.feature);
  out.push(
    `<div class="occurrences">${same
      .map(
        (m) =>
          `<span>${m.position === null ? 'effect' : `@${m.position} ${esc(showToken(app.graph.columns[m.col].head))}`}: <b style="color:${m.effect >= 0 ? 'var(--blue)' : 'var(--red)'}">${fmt(m.effect)}</b></span>`,
      )
      .join('')}</div>`,
  );
  const dash = n.key && app.data.dashboards ? app.data.dashboards.features[n.key] : null;
  if (n.kind === 'feature' && !dash) {
    out.push(
      `<p class="muted">${app.data.dashboards ? 'No dashboard was computed for this feature.' : 'No dashboards.json: run <code>sfc dashboards</code> to see its contexts.'}</p>`,
    );
  }
  if (dash) {
    const vocab = app.data.dashboards.vocab;
    out.push(
      `<h3>Activations</h3><div>fires on <b>${fmt(100 * dash.frequency)}%</b> of ${app.data.dashboards.tokens.toLocaleString()} tokens · max <b>${fmt(dash.max_activation)}</b></div>`,
      histogramSvg(dash.histogram),
      '<h3>Logit effects</h3>',
      `<div class="muted" style="font-size:11px;margin-bottom:4px">${esc(app.data.dashboards.logitLens)}</div>`,
      `<div class="logits">${logitTable('promotes', dash.promoted, vocab, BLUE)}${logitTable('suppresses', dash.suppressed, vocab, RED)}</div>`,
      `<h3>Top contexts</h3><div class="contexts">`,
    );
    const scale = Math.max(1e-12, Math.abs(dash.max_activation));
    if (dash.contexts.length === 0) out.push('<p class="muted">It never fires on the corpus.</p>');
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
  $('dash-close').addEventListener('click', () => app.select(null));
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

Object.assign(app, { renderDashboard });
