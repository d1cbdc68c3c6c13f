// The report page as one self-contained HTML document: the page's CSS and script (./page/) and
// the report data are inlined, so it opens from disk with no server and no network.
//
// The page's script is several plain browser files joined here, in PAGE_SCRIPTS order, into one
// <script>: each file runs in its own block scope inside one strict-mode function, and the parts
// meet through a shared object `app` (common.js puts the data, the page state and the helpers on
// it; each later file adds the functions the others call, and calls theirs as `app.name()` at run
// time, so the order only matters for what a file reads when it starts). No bundler, no modules.

import fs from 'node:fs';
import type { ReportData } from './inputs.ts';

const PAGE = new URL('./page/', import.meta.url);

function pageFile(name: string): string {
  return fs.readFileSync(new URL(name, PAGE), 'utf8');
}

/** The page's script files, in the order they run; main.js starts the page. */
export const PAGE_SCRIPTS = [
  'common.js', // data, state, colours, geometry, esc/fmt
  'graph.js', // circuit -> graph; visibility and layout
  'draw.js', // the graph as SVG, zoom, counts
  'interaction.js', // hover, tooltip, search, selection, sliders, pan and zoom
  'dashboard.js', // the feature dashboard panel
  'shift-panel.js', // SHIFT's results and the judging of its candidate features
  'curves.js', // faithfulness and completeness curves
  'export.js', // SVG and PNG downloads
  'supernodes.js', // attribution graphs: grouping features, collapsing groups
  'attribution.js', // the attribution graph view
  'intervene-panel.js', // `sfc view --live`: interventions run by the server's engine
  'live.js', // `sfc view`: reload when the files change
  'main.js', // header, load, start
] as const;

/** The page's script: PAGE_SCRIPTS joined, each in its own block, sharing `app`. */
export function pageScript(): string {
  const parts = PAGE_SCRIPTS.map((name) => {
    const text = pageFile(name);
    if (/<\/script/i.test(text))
      throw new Error(`viewer page script ${name} must not contain "</script"`);
    return `// ---- ${name}\n{\n${text}}\n`;
  });
  return `(function () {\n'use strict';\nconst app = {};\n${parts.join('\n')}})();\n`;
}

/** JSON that is safe inside a <script> element (no "</script>", no HTML comment openers). */
export function scriptJson(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, '\\u003c')
    .replace(/>/g, '\\u003e')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

const escapeHtml = (s: string) =>
  s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);

/** The whole page; `extra` is added to the data (e.g. the live server's file stamp). */
export function renderReportHtml(data: ReportData, extra: Record<string, unknown> = {}): string {
  const script = pageScript();
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(data.title)}</title>
<style>
${pageFile('style.css')}
</style>
</head>
<body>
<header>
  <h1 id="title"></h1>
  <div class="meta" id="meta"></div>
  <nav id="views" hidden><button data-view="circuit" class="active">SAE circuit</button><button data-view="graph" id="view-graph">Attribution graph</button></nav>
</header>
<div class="toolbar">
  <label title="Hide nodes whose |effect| is below this (log scale; leftmost shows every node in the file)">nodes |effect| ≥
    <input type="range" id="node-slider" min="0" max="1000" step="1" value="0"><output id="node-value"></output></label>
  <label title="Hide edges whose |weight| is below this (log scale)">edges |weight| ≥
    <input type="range" id="edge-slider" min="0" max="1000" step="1" value="0"><output id="edge-value"></output></label>
  <label><input type="checkbox" id="show-errors" checked> error nodes</label>
  <span class="group"><input type="search" id="search" placeholder="search site, feature or label"><span id="search-count" class="muted"></span></span>
  <span id="counts"></span>
  <span class="group">zoom <button id="zoom-out" title="zoom out">−</button><button id="zoom-in" title="zoom in">+</button><button id="zoom-fit" title="fit to width">fit</button></span>
  <span class="group">export <button id="export-svg">SVG</button><button id="export-png">PNG</button></span>
</div>
<main>
  <section id="graph-pane"><div id="graph"></div></section>
  <aside>
    <section id="intervene" hidden></section>
    <section id="shift" hidden></section>
    <section id="dashboard" hidden></section>
    <section id="curves"><h2>Faithfulness and completeness</h2><div id="curves-body"></div></section>
    <section id="about">
      <h2>Reading the graph</h2>
      <div class="legend">
        <span><svg width="22" height="14"><rect x="1" y="1" width="20" height="12" rx="3" fill="#6a9bc9" stroke="#57606a"/></svg> feature, positive effect</span>
        <span><svg width="22" height="14"><rect x="1" y="1" width="20" height="12" rx="3" fill="#d4707d" stroke="#57606a"/></svg> negative effect</span>
        <span><svg width="18" height="14"><path d="M9 1L17 13L1 13Z" fill="#c7d9ec" stroke="#57606a"/></svg> SAE error node</span>
        <span><svg width="22" height="10"><line x1="0" x2="22" y1="5" y2="5" stroke="#2166ac" stroke-width="3"/></svg> / <svg width="22" height="10"><line x1="0" x2="22" y1="5" y2="5" stroke="#b2182b" stroke-width="3"/></svg> edge weight sign</span>
      </div>
      <p class="muted" style="font-size:12px">Rows are sites (the embedding at the bottom, the metric y at the top), columns are token positions. Colour intensity and edge width grow with |effect| and |weight|. Hover a node to see its edges; click a feature for its dashboard.</p>
      <div id="warnings"></div>
    </section>
  </aside>
</main>
<section id="attribution">
  <div class="toolbar">
    <select id="ag-select" title="which graph"></select><span id="ag-title"></span>
    <label title="Show features and error nodes whose cumulative influence (0: most influential) is at most this; tokens and logits always show">nodes influence ≤
      <input type="range" id="ag-node" min="0" max="100" step="1" value="100"><output id="ag-node-value"></output></label>
    <label title="Hide edges (supernode edges: the sum of their members') whose |weight| is below this (log scale)">edges |weight| ≥
      <input type="range" id="ag-edge" min="0" max="1000" step="1" value="0"><output id="ag-edge-value"></output></label>
    <span class="group">supernodes <button id="ag-group-label" title="group features with the same label">by label</button><button id="ag-group-auto" title="group features at nearby layers whose incoming and outgoing edge weights point the same way (docs/graphs.md)">by shared edges</button>
      <label title="cosine similarity of the edge vectors">cos ≥ <input type="number" id="ag-cos" min="0" max="1" step="0.05" value="0.9"></label>
      <label title="largest layer span of a group">layers ± <input type="number" id="ag-band" min="0" max="64" step="1" value="1"></label>
      <button id="ag-ungroup-all">ungroup all</button></span>
    <span id="ag-counts"></span>
  </div>
  <div class="ag-main">
    <div id="ag-graph"></div>
    <aside id="ag-detail"></aside>
  </div>
</section>
<div id="tooltip" hidden></div>
<script id="report-data" type="application/json">${scriptJson({ ...data, ...extra })}</script>
<script>
${script}
</script>
</body>
</html>
`;
}
