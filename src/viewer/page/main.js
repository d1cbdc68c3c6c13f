/* global app, document */
// The page's start: the header, loading (or reloading) the data into every panel, and wiring.
// Runs last, when every other part has added its functions to `app`.
const { $, esc, fmt } = app;

function header() {
  const c = app.data.circuit;
  $('title').innerHTML =
    esc(app.data.title) + (app.data.live ? '<span class="badge">live</span>' : '');
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
  $('warnings').innerHTML = app.data.warnings
    .map((w) => `<div class="warn">${esc(w)}</div>`)
    .join('');
}

/** Shows `d` (the page's own data at start, new data from the server when files change). */
function load(d) {
  const previous = app.graph ? app.data : null;
  app.data = d;
  app.graph = app.prepare(d);
  if (app.state.selected && !app.graph.byId.has(app.state.selected)) app.state.selected = null;
  header();
  app.draw();
  app.renderShift();
  app.renderDashboard();
  app.loadGraphs(previous);
}

Object.assign(app, { load });

app.wire();
app.wireShift();
app.wireIntervene();
app.wireAttribution();
load(app.data);
document.body.dataset.ready = '1';
if (app.data.live && app.data.stamp !== undefined) app.poll(app.data.stamp);
