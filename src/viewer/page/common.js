/* global app, document */
// The report page draws a circuit as the paper does (rows by site, columns by token position),
// prunes it with sliders, highlights a node's edges on hover, searches, opens feature dashboards,
// judges SHIFT's candidate features and exports the current view. Plain browser JavaScript, no
// libraries and no network: the data sits in the page (#report-data). src/viewer/html.ts joins
// the files of this folder into the page's one script, this one first.
//
// What every part of the page shares: the report data and the page's state (on `app`, so that
// every part sees the current ones), colours, the graph's geometry and small text helpers.

app.data = JSON.parse(document.getElementById('report-data').textContent);
app.graph = null; // prepared from the data: nodes, edges, rows, columns
app.view = null; // what is shown: visible flags, layout, elements
app.state = {
  nodeSlider: 0,
  edgeSlider: 0,
  showErrors: true,
  query: '',
  zoom: null, // null: fit to width on first draw
  selected: null,
};

const $ = (id) => document.getElementById(id);
/** Every string from a file goes through this before it reaches innerHTML. */
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

const BLUE = [33, 102, 172];
const RED = [178, 24, 43];
/** `rgb` faded towards white: t = 0 is white, 1 the colour itself. */
function mix(rgb, t) {
  return `rgb(${rgb.map((v) => Math.round(255 + (v - 255) * t)).join(',')})`;
}

Object.assign(app, {
  $,
  esc,
  fmt,
  showToken,
  mix,
  BLUE,
  RED,
  SERIES_COLORS: ['#2166ac', '#e08214', '#1b7837', '#762a83', '#8c510a', '#01665e'],
  // The graph's geometry, in SVG units.
  SVG_NS: 'http://www.w3.org/2000/svg',
  BOX_W: 64,
  BOX_H: 30,
  GAP: 6,
  PAD: 10,
  ROW_LABEL_W: 78,
  HEAD_H: 44,
  TOP_H: 24, // token strings above the graph too, for tall circuits
  MIN_COL_W: 92,
});
