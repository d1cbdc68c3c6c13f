// `sfc view --live`'s API in-process with a fake engine: validation (400 with the message, an
// oversized body refused), the Host check (421), one request at a time on the engine, timeouts,
// and 404 without --live.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { serveReport, type ViewOptions } from '../../src/viewer/server.ts';
import {
  MAX_BODY_BYTES,
  type ActivationsRequest,
  type InterveneRequest,
  type LiveEngine,
} from '../../src/viewer/live-api.ts';

const FIXTURE = 'test/fixtures/viewer/small';

/** A fake engine that records what it ran and when; each run takes `ms`. */
function fakeEngine(ms = 0) {
  const log: string[] = [];
  const seen: InterveneRequest[] = [];
  const wait = () => new Promise((r) => setTimeout(r, ms));
  const engine: LiveEngine = {
    async intervene(request) {
      const tag = request.prompt ?? request.ids!.join(',');
      log.push(`start ${tag}`);
      seen.push(request);
      await wait();
      if (request.prompt === 'fail') throw new Error('resid_9: the model has no such site');
      log.push(`end ${tag}`);
      return { ids: [1], tokens: ['a'], interventions: [], top: [], kl: 0, generated: null };
    },
    async activations(request: ActivationsRequest) {
      await wait();
      return {
        ids: [1],
        tokens: ['a'],
        before: request.nodes.map(() => 1),
        after: request.nodes.map(() => 0),
      };
    },
  };
  return { engine, log, seen };
}

async function withServer(options: ViewOptions, body: (url: string) => Promise<void>) {
  const server = await serveReport(FIXTURE, { port: 0, ...options });
  try {
    await body(server.url);
  } finally {
    await server.close();
  }
}

const post = (url: string, route: string, body: unknown, headers: Record<string, string> = {}) =>
  fetch(new URL(route, url), {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });

const errorOf = async (r: Response) => ((await r.json()) as { error: string }).error;

test('a valid request reaches the engine with defaults filled in', async () => {
  const { engine, seen } = fakeEngine();
  await withServer({ engine }, async (url) => {
    const r = await post(url, 'api/intervene', {
      prompt: 'The teacher',
      interventions: ['resid_1:76@1=zero'],
    });
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('access-control-allow-origin'), null);
    assert.deepEqual(((await r.json()) as { tokens: string[] }).tokens, ['a']);
    assert.deepEqual(seen[0], {
      prompt: 'The teacher',
      interventions: ['resid_1:76@1=zero'],
      top: 10,
      generate: 0,
      temperature: 0,
      seed: 1,
    });
    const a = await post(url, 'api/activations', {
      ids: [1, 2],
      interventions: [],
      nodes: [{ site: 'resid_0', feature: 3, position: 1 }],
    });
    assert.equal(a.status, 200);
    assert.deepEqual(((await a.json()) as { after: number[] }).after, [0]);
  });
});

test('malformed bodies get 400 with the validation message', async () => {
  const { engine, seen } = fakeEngine();
  await withServer({ engine }, async (url) => {
    const cases: [unknown, RegExp][] = [
      ['{not json', /not JSON/],
      [{ interventions: [] }, /exactly one of "prompt".*"ids"/],
      [{ prompt: 'a', ids: [1], interventions: [] }, /exactly one of/],
      [{ prompt: 'a', interventions: [], top: 0 }, /top: /],
      [{ prompt: 'a', interventions: [], generate: 1000 }, /generate: /],
      [{ prompt: 'a', interventions: [], extra: 1 }, /extra/],
      [{ prompt: 'a', interventions: [{ site: 'resid_0' }] }, /interventions\.0/],
      [{ prompt: 'a', interventions: [], temperature: -1 }, /temperature: /],
    ];
    for (const [body, message] of cases) {
      const r = await post(url, 'api/intervene', body);
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.match(await errorOf(r), message);
    }
    const nodes = await post(url, 'api/activations', { prompt: 'a', interventions: [] });
    assert.equal(nodes.status, 400);
    assert.match(await errorOf(nodes), /nodes: /);
    assert.equal(seen.length, 0, 'no malformed request reached the engine');
    // The engine's own errors (a site the model lacks) are the requester's: 400 with the text.
    const failed = await post(url, 'api/intervene', { prompt: 'fail', interventions: [] });
    assert.equal(failed.status, 400);
    assert.equal(await errorOf(failed), 'resid_9: the model has no such site');
    // Not JSON as content type: a cross-site "simple" POST cannot reach the engine.
    const plain = await fetch(new URL('api/intervene', url), {
      method: 'POST',
      headers: { 'content-type': 'text/plain' },
      body: JSON.stringify({ prompt: 'a', interventions: [] }),
    });
    assert.equal(plain.status, 415);
    const foreign = await post(
      url,
      'api/intervene',
      { prompt: 'a', interventions: [] },
      { origin: 'http://evil.example' },
    );
    assert.equal(foreign.status, 403);
    assert.equal((await fetch(new URL('api/intervene', url))).status, 405);
    assert.equal(seen.length, 1);
  });
});

/** Sends `size` bytes in chunks without a content-length, so the server must count as it reads. */
function postChunked(url: string, size: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(new URL('api/intervene', url), {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked' },
    });
    req.on('response', (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.on('error', reject);
    const chunk = Buffer.alloc(16 * 1024, 0x20);
    let sent = 0;
    const more = () => {
      while (sent < size) {
        sent += chunk.length;
        if (!req.write(chunk)) return void req.once('drain', more);
      }
      req.end();
    };
    more();
  });
}

test('an oversized body is refused with 400 (declared or streamed)', async () => {
  const { engine, seen } = fakeEngine();
  await withServer({ engine }, async (url) => {
    const big = JSON.stringify({ prompt: 'x'.repeat(MAX_BODY_BYTES), interventions: [] });
    const r = await post(url, 'api/intervene', big);
    assert.equal(r.status, 400);
    assert.match(await errorOf(r), new RegExp(`larger than ${MAX_BODY_BYTES} bytes`));
    const streamed = await postChunked(url, 4 * MAX_BODY_BYTES);
    assert.equal(streamed.status, 400);
    assert.match(streamed.body, /larger than/);
    assert.equal(seen.length, 0);
  });
});

test('a request for another Host gets 421 and never reaches the engine', async () => {
  const { engine, seen } = fakeEngine();
  await withServer({ engine }, async (url) => {
    const status = await new Promise<number>((resolve, reject) => {
      const req = http.request(new URL('api/intervene', url), {
        method: 'POST',
        headers: { host: 'attacker.example:80', 'content-type': 'application/json' },
      });
      req.on('response', (res) => {
        res.resume();
        resolve(res.statusCode!);
      });
      req.on('error', reject);
      req.end(JSON.stringify({ prompt: 'a', interventions: [] }));
    });
    assert.equal(status, 421);
    assert.equal(seen.length, 0);
  });
});

test('concurrent requests run one after the other on the engine', async () => {
  const { engine, log } = fakeEngine(80);
  await withServer({ engine }, async (url) => {
    const answers = await Promise.all(
      ['one', 'two', 'three'].map((prompt) =>
        post(url, 'api/intervene', { prompt, interventions: [] }),
      ),
    );
    assert.deepEqual(
      answers.map((r) => r.status),
      [200, 200, 200],
    );
    // Never two starts in a row: each run ends before the next starts.
    assert.equal(log.length, 6);
    for (let i = 0; i < log.length; i += 2) {
      assert.match(log[i], /^start /);
      assert.equal(log[i + 1], log[i].replace('start', 'end'));
    }
  });
});

test('a request that takes too long is answered 504 with a message', async () => {
  const { engine } = fakeEngine(400);
  await withServer({ engine, engineTimeoutMs: 100 }, async (url) => {
    const r = await post(url, 'api/intervene', { prompt: 'slow', interventions: [] });
    assert.equal(r.status, 504);
    assert.match(await errorOf(r), /did not answer within 0\.1 s/);
  });
});

test('without --live the API answers 404 saying to start with --live', async () => {
  await withServer({}, async (url) => {
    for (const route of ['api/intervene', 'api/activations']) {
      const r = await post(url, route, { prompt: 'a', interventions: [] });
      assert.equal(r.status, 404);
      assert.match(await errorOf(r), /--live/);
    }
    const page = await (await fetch(new URL('data.json', url))).json();
    assert.equal((page as { engine: boolean }).engine, false);
  });
});

test('a request that timed out while queued is dropped, not run late', async () => {
  const { engine, seen } = fakeEngine(300);
  await withServer({ engine, engineTimeoutMs: 150 }, async (url) => {
    const answers = await Promise.all(
      ['first', 'second'].map((prompt) =>
        post(url, 'api/intervene', { prompt, interventions: [] }),
      ),
    );
    assert.deepEqual(
      answers.map((r) => r.status),
      [504, 504],
    );
    await new Promise((r) => setTimeout(r, 400));
    assert.deepEqual(
      seen.map((r) => r.prompt),
      ['first'],
    );
  });
});
