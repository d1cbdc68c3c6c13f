// The attribution graph view in headless Chromium, on a graph imported in circuit-tracer's layout
// (test/fixtures/viewer/graphs/the-dogs.json, hand-written: 3 tokens, 4 features, 1 error node,
// 2 logits, 12 links): every node and link is drawn, hover and click show a node's numbers and
// its strongest edges, the thresholds change the counts to hand-counted values, dragging one
// feature onto another forms a supernode whose edges are sums, and markup in labels stays text.
// A real circuit-tracer graph (test/fixtures/graphs/, Gemma-2-2B with a CLT) renders whole. Also
// the reader's bounds on hostile files, outside the browser.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { buildReport } from '../../src/viewer/report.ts';
import { serveReport } from '../../src/viewer/server.ts';
import { collectReportData } from '../../src/viewer/inputs.ts';
import { GRAPH_LIMITS, readGraphView } from '../../src/viewer/graph-input.ts';
import { browserSuiteSkip, launchChromium, openReport } from '../helpers/chromium.ts';

const CIRCUIT = 'test/fixtures/viewer/small';
const GRAPH = 'test/fixtures/viewer/graphs/the-dogs.json';
const REAL_GRAPH = 'test/fixtures/graphs/neuronpedia-123-gemma-2-2b-clt-hp.json';

function reportDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sfc-graph-view-'));
  for (const f of fs.readdirSync(CIRCUIT))
    fs.copyFileSync(path.join(CIRCUIT, f), path.join(dir, f));
  return dir;
}

test('the report reads DIR/graphs/*.json, leaves out *.graph.json, and --graph files', () => {
  const dir = reportDir();
  try {
    fs.mkdirSync(path.join(dir, 'graphs'));
    fs.copyFileSync(GRAPH, path.join(dir, 'graphs', 'the-dogs.json'));
    fs.writeFileSync(
      path.join(dir, 'graphs', 'the-dogs.graph.json'),
      '{"not": "a neuronpedia graph"}',
    );
    const data = collectReportData(dir);
    assert.deepEqual(
      data.graphs.map((g) => [g.slug, g.nodes.length, g.links.length, g.logitLayer]),
      [['the-dogs', 10, 12, 3]],
    );
    const kinds = data.graphs[0].nodes.map((n) => n.kind).join(' ');
    assert.equal(kinds, 'token token token feature feature feature feature error logit logit');
    assert.deepEqual(
      data.graphs[0].nodes.slice(2, 4).map((n) => [n.layer, n.position, n.feature]),
      [
        [-1, 2, null],
        [0, 2, 100],
      ],
    );
    assert.equal(collectReportData(dir, { graphs: [] }).graphs.length, 0);
  } finally {
    fs.rmSync(dir, { recursive: true });
  }
});

test("Neuronpedia's saved supernodes ([name, ...node ids]) become the starting groups", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sfc-graph-supernodes-'));
  try {
    const g = JSON.parse(fs.readFileSync(GRAPH, 'utf8'));
    g.qParams.supernodes = [
      ['plural', '0_100_2', '0_101_2', 'no_such_node'],
      ['not ids', 3, 4],
      ['one member', '0_100_2'],
    ];
    const file = path.join(dir, 'g.json');
    fs.writeFileSync(file, JSON.stringify(g));
    assert.deepEqual(readGraphView(file, () => {}).supernodes, [
      { name: 'plural', members: ['0_100_2', '0_101_2'] },
    ]);
  } finally {
    fs.rmSync(dir, { recursive: true });
  }
});

test('hostile graph files: bounded, and errors name the file and what was expected', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sfc-graph-hostile-'));
  try {
    const g = JSON.parse(fs.readFileSync(GRAPH, 'utf8'));
    const write = (name: string, value: unknown) => {
      const file = path.join(dir, name);
      fs.writeFileSync(file, JSON.stringify(value));
      return file;
    };
    const warnings: string[] = [];
    const tooMany = {
      ...g,
      nodes: Array.from({ length: GRAPH_LIMITS.nodes + 1 }, (_, i) => ({
        ...g.nodes[0],
        node_id: `E_${i}_0`,
      })),
      links: [],
    };
    assert.throws(
      () => readGraphView(write('many.json', tooMany), () => {}),
      /many\.json: 20001 nodes, more than 20000/,
    );
    const badLayer = {
      ...g,
      nodes: g.nodes.map((n: { layer: string }, i: number) => (i === 3 ? { ...n, layer: 'x' } : n)),
    };
    assert.throws(
      () => readGraphView(write('layer.json', badLayer), () => {}),
      /layer\.json: nodes\.3\.layer is "x", expected "E" or a layer number/,
    );
    const badCtx = {
      ...g,
      nodes: g.nodes.map((n: object, i: number) => (i === 3 ? { ...n, ctx_idx: 9 } : n)),
    };
    assert.throws(
      () => readGraphView(write('ctx.json', badCtx), () => {}),
      /ctx\.json: nodes\.3\.ctx_idx is 9, outside the 3 prompt tokens/,
    );
    const long = {
      ...g,
      nodes: g.nodes.map((n: object, i: number) =>
        i === 3 ? { ...n, clerp: 'x'.repeat(5000) } : n,
      ),
    };
    const view = readGraphView(write('long.json', long), (w) => warnings.push(w));
    assert.equal(view.nodes[3].clerp.length, GRAPH_LIMITS.text);
    assert.match(
      warnings.join('\n'),
      /long\.json: 1 labels or tokens longer than 400 characters were cut/,
    );
    // In the folder, a broken file is a warning; named with --graph, an error.
    const missing = path.join(dir, 'missing.json');
    assert.throws(
      () => collectReportData(CIRCUIT, { graphs: [missing] }),
      /missing\.json: no such file/,
    );
    const folder = reportDir();
    try {
      fs.mkdirSync(path.join(folder, 'graphs'));
      fs.writeFileSync(path.join(folder, 'graphs', 'broken.json'), '{"metadata": 1');
      const data = collectReportData(folder);
      assert.equal(data.graphs.length, 0);
      assert.match(data.warnings.join('\n'), /graph not shown: .*broken\.json: not valid JSON/);
    } finally {
      fs.rmSync(folder, { recursive: true });
    }
  } finally {
    fs.rmSync(dir, { recursive: true });
  }
});

describe(
  'attribution graph view in headless Chromium',
  { skip: browserSuiteSkip('graph view') },
  () => {
    let browser: Browser;
    let dir: string;
    let page: Page;
    const problems: string[] = [];
    const requests: string[] = [];
    before(async () => {
      browser = await launchChromium();
      dir = reportDir();
      const file = buildReport(dir, { graphs: [GRAPH] });
      page = await openReport(browser, file, problems, requests);
      await page.click('#view-graph');
    });
    after(async () => {
      await browser?.close();
      if (dir) fs.rmSync(dir, { recursive: true });
    });

    const marks = () => page.locator('#ag-svg .ag-node').count();
    const edges = () => page.locator('#ag-svg .ag-edge').count();
    const node = (id: string) => page.locator(`#ag-svg .ag-node[data-id="${id}"]`);
    async function setRange(id: string, value: number) {
      await page.locator(id).fill(String(value));
    }

    test('every node and link of the imported graph is drawn, in its row and column', async () => {
      assert.equal(await marks(), 10);
      assert.equal(await edges(), 12);
      assert.match(
        await page.locator('#ag-counts').innerText(),
        /^10 of 10 nodes · 12 of 12 edges$/,
      );
      const text = await page.locator('#ag-svg').textContent();
      for (const s of ['logits', 'layer 1', 'layer 0', 'embed', '<bos>', 'The', 'dogs'])
        assert.ok(text!.includes(s), s);
      // Rows: logits above layer 1 above layer 0 above the embeddings; columns by position.
      const y = async (id: string) => (await node(id).boundingBox())!.y;
      const x = async (id: string) => (await node(id).boundingBox())!.x;
      assert.ok((await y('3_1000_2')) < (await y('1_200_2')));
      assert.ok((await y('1_200_2')) < (await y('0_100_2')));
      assert.ok((await y('0_100_2')) < (await y('E_1234_2')));
      assert.ok((await x('E_2_0')) < (await x('E_651_1')));
      assert.ok((await x('E_651_1')) < (await x('E_1234_2')));
    });

    test('hover shows the label, activation and influence; click lists the strongest edges', async () => {
      await node('0_100_2').hover();
      const tip = await page.locator('#tooltip').innerText();
      assert.match(tip, /L0 \/ 100/);
      assert.match(tip, /plural noun/);
      assert.match(tip, /activation 5 · cumulative influence 0\.3/);
      await page.mouse.move(2, 2);
      await node('0_100_2').click();
      const detail = await page.locator('#ag-detail').innerText();
      assert.match(detail, /No dashboard for this feature/);
      // Incoming: " dogs" 2, "The" 0.1. Outgoing: L1/200 1.5, the " are" logit 0.5.
      assert.match(detail, /Top incoming edges \(2\)\s+token dogs\s+2\s+token The\s+0\.1/i);
      assert.match(
        detail,
        /Top outgoing edges \(2\)\s+L1 \/ 200\s+1\.5\s+Output " are" \(p=0\.700\)\s+0\.5/i,
      );
    });

    test('markup in a label is shown as text', async () => {
      await node('1_200_2').click();
      assert.match(await page.locator('#ag-detail').innerText(), /<b>number<\/b> & <img src=x/);
      assert.equal(
        await page.locator('#attribution img, #attribution b:has-text("number")').count(),
        0,
      );
      assert.equal(
        await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned),
        undefined,
      );
    });

    test('the node and edge thresholds change the counts to the hand-counted ones', async () => {
      // Influence ≤ 0.5: 0_100 (0.30) and 1_200 (0.45) stay, with the 3 tokens and 2 logits; the
      // 6 links among them stay.
      await setRange('#ag-node', 50);
      assert.equal(await marks(), 7);
      assert.equal(await edges(), 6);
      assert.equal(await node('0_101_2').count(), 0);
      await setRange('#ag-node', 100);
      // The rightmost edge slider keeps only the largest |weight|, 1_200 -> " are" (3).
      await setRange('#ag-edge', 1000);
      assert.equal(await edges(), 1);
      await setRange('#ag-edge', 0);
      assert.equal(await edges(), 12);
    });

    test("dragging a feature onto another forms a supernode whose edges are its members' sums", async () => {
      const a = (await node('0_101_2').boundingBox())!;
      const b = (await node('0_100_2').boundingBox())!;
      await page.mouse.move(a.x + a.width / 2, a.y + a.height / 2);
      await page.mouse.down();
      await page.mouse.move(b.x + b.width / 2, b.y + b.height / 2, { steps: 6 });
      await page.mouse.up();
      const group = page.locator('#ag-svg .ag-node.supernode');
      assert.equal(await group.count(), 1);
      assert.match((await group.textContent()) ?? '', /plural noun ×2/);
      // 10 marks become 9; the three pairs of parallel links into and out of the pair become one each.
      assert.equal(await marks(), 9);
      assert.equal(await edges(), 9);
      await group.click();
      const detail = await page.locator('#ag-detail').innerText();
      assert.match(detail, /token dogs \(2 summed\)\s+3\b/);
      assert.match(detail, /L1 \/ 200 \(2 summed\)\s+2\.25/);
      await page.click('#ag-ungroup');
      assert.equal(await marks(), 10);
      // The automatic rule finds the same pair: their edge vectors are nearly proportional.
      await page.click('#ag-group-auto');
      assert.equal(await page.locator('#ag-svg .ag-node.supernode').count(), 1);
      assert.equal(await marks(), 9);
      await page.click('#ag-ungroup-all');
      await page.click('#ag-group-label');
      assert.match(
        (await page.locator('#ag-svg .ag-node.supernode').textContent()) ?? '',
        /plural noun ×2/,
      );
      assert.deepEqual(problems, []);
      assert.ok(
        requests.every((u) => u.startsWith('file:') || u.startsWith('data:')),
        requests.join(' '),
      );
    });
  },
);

/** A circuit-tracer-layout graph of `features` features over 8 layers and 16 tokens, `links` random links. */
function bigGraph(features: number, links: number) {
  const T = 16;
  const nodes: Record<string, unknown>[] = [];
  for (let p = 0; p < T; p++)
    nodes.push({
      node_id: `E_${p}_${p}`,
      feature: p,
      layer: 'E',
      ctx_idx: p,
      feature_type: 'embedding',
      jsNodeId: `E_${p}-${p}`,
      clerp: '',
    });
  for (let i = 0; i < features; i++) {
    const layer = i % 8;
    const p = Math.floor(i / 8) % T;
    nodes.push({
      node_id: `${layer}_${i}_${p}`,
      feature: i,
      layer: String(layer),
      ctx_idx: p,
      feature_type: 'cross layer transcoder',
      jsNodeId: `${layer}_${i}-0`,
      clerp: `f${i % 50}`,
      influence: (i + 1) / (features + 1),
      activation: 1 + (i % 7),
    });
  }
  nodes.push({
    node_id: '9_5_15',
    feature: 5,
    layer: '9',
    ctx_idx: T - 1,
    feature_type: 'logit',
    jsNodeId: 'L_5-15',
    clerp: 'Output "x"',
  });
  let seed = 7;
  const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2147483648), seed % n);
  const out: { source: string; target: string; weight: number }[] = [];
  for (let k = 0; k < links; k++) {
    const s = nodes[rand(nodes.length)].node_id as string;
    const t = nodes[T + rand(nodes.length - T)].node_id as string;
    out.push({ source: s, target: t, weight: (rand(2000) - 1000) / 997 });
  }
  return {
    metadata: {
      slug: 'big',
      scan: 'synthetic',
      prompt_tokens: Array.from({ length: T }, (_, p) => `t${p}`),
      prompt: 'big',
    },
    qParams: {},
    nodes,
    links: out,
  };
}

test(
  'a large imported graph (2,000 features, 200,000 links) renders and its thresholds prune',
  { skip: browserSuiteSkip('graph view (large)') },
  async () => {
    const browser = await launchChromium();
    const dir = reportDir();
    try {
      const file = path.join(dir, 'big.json');
      fs.writeFileSync(file, JSON.stringify(bigGraph(2000, 200_000)));
      const report = buildReport(dir, { graphs: [file] });
      const problems: string[] = [];
      const page = await openReport(browser, report, problems, []);
      await page.click('#view-graph');
      assert.match(
        await page.locator('#ag-counts').innerText(),
        /^2017 of 2017 nodes · \d+ of \d+ edges$/,
      );
      // Feature i has influence (i + 1) / 2001: at most 0.10 keeps features 0..199.
      await page.locator('#ag-node').fill('10');
      assert.equal(await page.locator('#ag-svg .ag-node.feature').count(), 200);
      await page.locator('#ag-edge').fill('900');
      const edges = await page.locator('#ag-svg .ag-edge').count();
      assert.ok(edges > 0 && edges < 1000, `${edges} edges at the strict edge threshold`);
      await page.click('#ag-group-label');
      assert.ok((await page.locator('#ag-svg .ag-node.supernode').count()) > 0);
      assert.deepEqual(problems, []);
    } finally {
      await browser.close();
      fs.rmSync(dir, { recursive: true });
    }
  },
);

test(
  "a real circuit-tracer graph (Neuronpedia's fixture: Gemma-2-2B, a CLT) renders: every node and link, in its layer row",
  { skip: browserSuiteSkip('graph view (real graph)') },
  async () => {
    // test/fixtures/graphs/README.md: 13 cross-layer-transcoder features at layers 0-24, 2 MLP
    // reconstruction errors (layers 24, 25), 4 embeddings, 5 logits (layer 27), 75 links.
    const browser = await launchChromium();
    const dir = reportDir();
    try {
      const report = buildReport(dir, { graphs: [REAL_GRAPH] });
      const problems: string[] = [];
      const page = await openReport(browser, report, problems, []);
      await page.click('#view-graph');
      assert.match(
        await page.locator('#ag-counts').innerText(),
        /^24 of 24 nodes · 75 of 75 edges$/,
      );
      assert.equal(await page.locator('#ag-svg .ag-node.feature').count(), 13);
      assert.equal(await page.locator('#ag-svg .ag-edge').count(), 75);
      const text = (await page.locator('#ag-svg').textContent()) ?? '';
      for (const s of ['logits', 'layer 0', 'layer 13', 'layer 24', 'layer 25', 'embed', '<bos>'])
        assert.ok(text.includes(s), `${s} is drawn`);
      await page.locator('#ag-svg .ag-node[data-id="13_82873_3"]').click();
      assert.match(await page.locator('#ag-detail').innerText(), /L13 \/ 82873/);
      assert.deepEqual(problems, []);
    } finally {
      await browser.close();
      fs.rmSync(dir, { recursive: true });
    }
  },
);

describe(
  'attribution graphs in sfc view',
  { skip: browserSuiteSkip('graph view (served)') },
  () => {
    test('a graph written into DIR/graphs while the page is open appears without a reload', async () => {
      const browser = await launchChromium();
      const dir = reportDir();
      const server = await serveReport(dir, { port: 0 });
      try {
        const page = await browser.newPage();
        const problems: string[] = [];
        page.on('pageerror', (e) => problems.push(e.message));
        await page.goto(server.url);
        await page.waitForSelector('body[data-ready="1"]');
        assert.equal(await page.locator('#views').isHidden(), true, 'no graphs: no view buttons');
        fs.mkdirSync(path.join(dir, 'graphs'));
        fs.copyFileSync(GRAPH, path.join(dir, 'graphs', 'the-dogs.json'));
        // The page polls every 2 s.
        await page.waitForSelector('#views:not([hidden])', { timeout: 10000 });
        await page.click('#view-graph');
        assert.equal(await page.locator('#ag-svg .ag-node').count(), 10);
        assert.deepEqual(problems, []);
      } finally {
        await server.close();
        await browser.close();
        fs.rmSync(dir, { recursive: true });
      }
    });
  },
);
