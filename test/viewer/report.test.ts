// The report's data and page without a browser: what is read from the folder, labels and
// annotations, self-containment of the HTML, and the live server's endpoints.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PAGE_SCRIPTS, pageScript } from '../../src/viewer/html.ts';
import { collectReportData, readFeatureLabels } from '../../src/viewer/inputs.ts';
import { buildReport } from '../../src/viewer/report.ts';
import http from 'node:http';
import { isLoopbackHost, serveReport } from '../../src/viewer/server.ts';

const FIXTURE = 'test/fixtures/viewer/small';

function copyFixture(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sfc-viewer-'));
  for (const f of fs.readdirSync(FIXTURE))
    fs.copyFileSync(path.join(FIXTURE, f), path.join(dir, f));
  return dir;
}

test('report data: circuit, labels of the circuit features, dashboards, curves', () => {
  const data = collectReportData(FIXTURE);
  assert.equal(data.circuit.nodes.length, 15);
  assert.equal(data.circuit.edges.length, 19);
  // labels.jsonl in the folder: only the circuit's features, never-firing (null) ones left out.
  assert.equal(data.labels['resid_1/0'].label, 'pending_sg');
  assert.equal(data.labels['resid_1/0'].source, 'ground truth');
  assert.match(data.labels['resid_1/0'].detail, /F1 0\.95/);
  assert.equal(data.labels['resid_1/2'], undefined, 'not in the circuit');
  assert.equal(data.labels['mlp_1/6'], undefined, 'label null');
  assert.equal(Object.keys(data.labels).length, 8);
  // Dashboards: only the circuit's features, with the vocabulary they use.
  assert.deepEqual(Object.keys(data.dashboards!.features).sort(), [
    'attn_1/4',
    'resid_0/7',
    'resid_1/0',
  ]);
  assert.equal(data.dashboards!.vocab['4'], ' guards');
  assert.ok(data.warnings.some((w) => /no dashboard for 9 of the circuit's 12 features/.test(w)));
  assert.equal(data.evaluation!.series.length, 2);
  assert.equal(data.evaluation!.series[0].points[2].faithfulness, 0.89);
  assert.equal(data.evaluation!.startLayer, 0);
});

test('annotations as the paper ships them override ground truth', () => {
  const data = collectReportData(FIXTURE, {
    annotations: [path.join(FIXTURE, 'annotations.jsonl')],
  });
  assert.equal(data.labels['resid_1/9'].label, 'plural subject still waiting for its verb');
  assert.equal(data.labels['resid_1/9'].source, 'annotation');
  assert.equal(data.labels['mlp_1/6'].label, "after 'that' in a relative clause");
  assert.equal(data.labels['resid_1/0'].label, 'pending_sg');
});

test('label files with mistakes name the file and line', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sfc-labels-'));
  const file = path.join(dir, 'a.jsonl');
  fs.writeFileSync(
    file,
    '{"Name":"resid_5/3036","Annotation":"ok"}\n{"Name":"resid five","Annotation":"x"}\n',
  );
  assert.throws(
    () => readFeatureLabels(file),
    /a\.jsonl:2: not an annotation \(Name: should look like "resid_5\/3036"\)/,
  );
  fs.writeFileSync(file, '\n{"site":"resid_0"}\n');
  assert.throws(() => readFeatureLabels(file), /a\.jsonl:2: not a feature label \(feature: /);
  fs.writeFileSync(file, 'nope\n');
  assert.throws(() => readFeatureLabels(file), /a\.jsonl:1: not valid JSON/);
  fs.rmSync(dir, { recursive: true });
});

test('report.html is one self-contained file', () => {
  const dir = copyFixture();
  const file = buildReport(dir);
  assert.equal(file, path.join(dir, 'report.html'));
  const html = fs.readFileSync(file, 'utf8');
  assert.doesNotMatch(html, /(src|href)\s*=\s*["']?(https?:)?\/\//i, 'no external resources');
  assert.doesNotMatch(html, /@import|url\(\s*["']?https?:/i);
  assert.equal(html.match(/<\/script>/g)!.length, 2, 'the data cannot close its script element');
  assert.match(html, /"id":"resid_1\/0@4"/);
  fs.rmSync(dir, { recursive: true });
});

test("the page's script: every file of src/viewer/page joined once, in a set order", () => {
  const files = fs.readdirSync('src/viewer/page').filter((f) => f.endsWith('.js'));
  assert.deepEqual([...PAGE_SCRIPTS].sort(), files.sort(), 'each file listed, none missing');
  assert.equal(PAGE_SCRIPTS[0], 'common.js', 'the shared data and helpers first');
  assert.equal(PAGE_SCRIPTS.at(-1), 'main.js', 'the start last');
  const script = pageScript();
  for (const f of PAGE_SCRIPTS) assert.equal(script.split(`// ---- ${f}\n`).length, 2, f);
  // One script that parses (each file in its own block: no name clashes between files).
  assert.doesNotThrow(() => new Function(script));
  assert.doesNotMatch(script, /<\/script/i);
});

test('a folder without circuit.json is a clear error', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sfc-empty-'));
  assert.throws(() => buildReport(dir), /circuit\.json: no such file/);
  fs.rmSync(dir, { recursive: true });
});

test('sfc view serves the page, its data and a stamp that follows the files', async () => {
  const dir = copyFixture();
  const server = await serveReport(dir, { port: 0 });
  try {
    assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
    const page = await fetch(server.url);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /id="report-data"/);
    const data = (await (await fetch(new URL('data.json', server.url))).json()) as {
      live: boolean;
      circuit: { nodes: unknown[] };
    };
    assert.equal(data.live, true);
    assert.equal(data.circuit.nodes.length, 15);
    const before = await (await fetch(new URL('version', server.url))).text();
    const circuit = JSON.parse(fs.readFileSync(path.join(dir, 'circuit.json'), 'utf8'));
    circuit.edges = [];
    fs.writeFileSync(path.join(dir, 'circuit.json'), JSON.stringify(circuit));
    const after = await (await fetch(new URL('version', server.url))).text();
    assert.notEqual(after, before);
    assert.equal((await fetch(new URL('nothing', server.url))).status, 404);
    fs.writeFileSync(path.join(dir, 'circuit.json'), '{');
    const broken = await fetch(server.url);
    assert.equal(broken.status, 500);
    assert.match(await broken.text(), /circuit\.json: not valid JSON/);
  } finally {
    await server.close();
    fs.rmSync(dir, { recursive: true });
  }
});

/** GET `pathname` from 127.0.0.1:port with a Host header of our choosing (fetch forbids setting it). */
function getWithHost(
  port: number,
  pathname: string,
  host: string | undefined,
  address = '127.0.0.1',
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: address,
        port,
        path: pathname,
        method: 'GET',
        // undefined: no Host header at all
        ...(host === undefined ? { setHost: false } : { headers: { host } }),
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

test('sfc view answers only its own loopback host and port (no DNS rebinding)', async () => {
  const dir = copyFixture();
  const server = await serveReport(dir, { port: 0 });
  const port = Number(new URL(server.url).port);
  try {
    for (const host of [
      `127.0.0.1:${port}`,
      `localhost:${port}`,
      `[::1]:${port}`,
      `LOCALHOST:${port}`,
    ]) {
      const ok = await getWithHost(port, '/data.json', host);
      assert.equal(ok.status, 200, host);
      assert.match(ok.body, /"nodes"/);
      assert.equal(ok.headers['access-control-allow-origin'], undefined);
    }
    for (const host of [
      `evil.example:${port}`, // a rebinding page keeps its own name
      'evil.example',
      `127.0.0.1:${port + 1}`, // another port
      '127.0.0.1',
      `localhost.evil.example:${port}`,
      `127.0.0.1:${port}.evil.example`,
    ]) {
      for (const pathname of ['/data.json', '/', '/version']) {
        const refused = await getWithHost(port, pathname, host);
        assert.equal(refused.status, 421, `${host} ${pathname}`);
        assert.match(refused.body, /^sfc view: refusing a request for host/);
        assert.doesNotMatch(refused.body, /"nodes"/);
      }
    }
    const noHost = await getWithHost(port, '/data.json', undefined);
    assert.ok(noHost.status >= 400 && noHost.status < 500, `no Host header: ${noHost.status}`);
  } finally {
    await server.close();
    fs.rmSync(dir, { recursive: true });
  }
});

test('sfc view with --host answers that host too; non-loopback hosts are recognised', async () => {
  const dir = copyFixture();
  const server = await serveReport(dir, { port: 0, host: '127.0.0.2' });
  const port = Number(new URL(server.url).port);
  try {
    const get = (host: string) => getWithHost(port, '/version', host, '127.0.0.2');
    assert.equal((await get(`127.0.0.2:${port}`)).status, 200);
    assert.equal((await get(`127.0.0.1:${port}`)).status, 200);
    assert.equal((await get(`10.0.0.1:${port}`)).status, 421);
  } finally {
    await server.close();
    fs.rmSync(dir, { recursive: true });
  }
  for (const h of ['127.0.0.1', '127.0.0.2', 'localhost', '::1', '[::1]'])
    assert.ok(isLoopbackHost(h), h);
  for (const h of [
    '0.0.0.0',
    '::',
    '192.168.1.2',
    '10.0.0.1',
    'example.com',
    '127.0.0.1.example.com',
  ])
    assert.ok(!isLoopbackHost(h), h);
});
