// `sfc view`: the report served on localhost. Every request re-reads the folder's files, and the
// page polls /version, so rerunning discover, evaluate or dashboards updates an open page.
// Only requests addressed to the served loopback name and port are answered: a page elsewhere
// that rebinds its own DNS name to 127.0.0.1 sends its own Host header and gets 421, so it cannot
// read /data.json (circuits, labels, absolute paths). No CORS headers are ever sent.
// With an engine (`sfc view --live`, injected by the CLI: the viewer never imports the model),
// POST /api/intervene and /api/activations take JSON only (a cross-site page cannot send it
// without a preflight this server never approves), bounded and validated (live-api.ts), and run
// one at a time.

import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { renderReportHtml, scriptJson } from './html.ts';
import { collectReportData, inputStamp, type ReportOptions } from './inputs.ts';
import {
  EngineQueue,
  MAX_BODY_BYTES,
  QueueError,
  activationsRequestSchema,
  interveneRequestSchema,
  validationMessage,
  type LiveEngine,
} from './live-api.ts';

export interface ViewOptions extends ReportOptions {
  /** Default 8642; 0 picks a free port. */
  port?: number;
  /** Default 127.0.0.1 (this machine only). */
  host?: string;
  /** `--live`: the engine that answers POST /api/intervene and /api/activations. */
  engine?: LiveEngine;
  /** How long one API request may take, queueing included (default 60 s). */
  engineTimeoutMs?: number;
}

export interface ViewServer {
  url: string;
  close(): Promise<void>;
}

/** True for addresses that only this machine can reach (127.0.0.0/8, ::1, localhost). */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[(.*)\]$/, '$1');
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/** Host header values that name this server: the loopback names and `host`, with the port. */
function allowedHosts(host: string, port: number): Set<string> {
  const bare = host.toLowerCase().replace(/^\[(.*)\]$/, '$1');
  const names = ['127.0.0.1', 'localhost', '[::1]', bare.includes(':') ? `[${bare}]` : bare];
  const allowed = new Set(names.map((n) => `${n}:${port}`));
  // Browsers leave out the default port.
  if (port === 80) for (const n of names) allowed.add(n);
  return allowed;
}

/** Starts serving the report of `dir`; resolves once listening. */
export function serveReport(dir: string, options: ViewOptions = {}): Promise<ViewServer> {
  const host = options.host ?? '127.0.0.1';
  let allowed = new Set<string>();
  const queue = new EngineQueue(options.engineTimeoutMs ?? 60_000);
  const extra = { engine: options.engine !== undefined };
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const send = (status: number, type: string, body: string) => {
      res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
      res.end(body);
    };
    try {
      const hostHeader = (req.headers.host ?? '').toLowerCase();
      if (!allowed.has(hostHeader))
        return send(
          421,
          'text/plain',
          `sfc view: refusing a request for host "${req.headers.host ?? ''}"; open ${[...allowed][0]} instead`,
        );
      if (url.pathname.startsWith('/api/')) return void api(req, res, url.pathname);
      if (req.method !== 'GET') return send(405, 'text/plain', 'only GET');
      if (url.pathname === '/' || url.pathname === '/report.html') {
        const stamp = inputStamp(dir, options);
        return send(
          200,
          'text/html; charset=utf-8',
          renderReportHtml(collectReportData(dir, options, true), { stamp, ...extra }),
        );
      }
      if (url.pathname === '/data.json')
        return send(
          200,
          'application/json',
          scriptJson({
            ...collectReportData(dir, options, true),
            stamp: inputStamp(dir, options),
            ...extra,
          }),
        );
      if (url.pathname === '/version') return send(200, 'text/plain', inputStamp(dir, options));
      return send(404, 'text/plain', `not found: ${url.pathname}`);
    } catch (e) {
      return send(500, 'text/plain', `sfc view: ${(e as Error).message}`);
    }
  });
  /** POST /api/intervene and /api/activations: validated, then queued on the one engine. */
  async function api(req: http.IncomingMessage, res: http.ServerResponse, route: string) {
    const reply = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      res.end(JSON.stringify(body));
    };
    const fail = (status: number, error: string) => reply(status, { error });
    const schema =
      route === '/api/intervene'
        ? interveneRequestSchema
        : route === '/api/activations'
          ? activationsRequestSchema
          : null;
    if (!schema) return fail(404, `not found: ${route}`);
    const engine = options.engine;
    if (!engine)
      return fail(
        404,
        `${route} needs the model: start the viewer with sfc view DIR --live [--model DIR] [--saes DIR]`,
      );
    if (req.method !== 'POST') return fail(405, `${route} takes POST with a JSON body`);
    // A cross-site form or fetch cannot send application/json without a CORS preflight, which
    // this server never approves; a page elsewhere that sends an Origin is refused outright.
    const origin = req.headers.origin;
    if (origin !== undefined && !allowed.has(origin.replace(/^https?:\/\//, '').toLowerCase()))
      return fail(403, `refusing a request from origin ${origin}`);
    if (!/^application\/json\b/i.test(req.headers['content-type'] ?? ''))
      return fail(415, 'send the body as content-type: application/json');
    let text: string;
    try {
      text = await readBody(req, MAX_BODY_BYTES);
    } catch (e) {
      res.setHeader('connection', 'close');
      return fail(400, (e as Error).message);
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (e) {
      return fail(400, `the body is not JSON: ${(e as Error).message}`);
    }
    const parsed = schema.safeParse(json);
    if (!parsed.success) return fail(400, `bad request: ${validationMessage(parsed.error)}`);
    try {
      const body = parsed.data;
      const answer = await queue.run(() =>
        route === '/api/intervene'
          ? engine.intervene(body as typeof interveneRequestSchema._output)
          : engine.activations(body as typeof activationsRequestSchema._output),
      );
      return reply(200, answer);
    } catch (e) {
      if (e instanceof QueueError) return fail(e.status, e.message);
      return fail(400, (e as Error).message);
    }
  }

  return new Promise((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) =>
      reject(
        new Error(
          e.code === 'EADDRINUSE'
            ? `port ${options.port} on ${host} is in use; pass another --port`
            : `cannot listen on ${host}:${options.port}: ${e.message}`,
          { cause: e },
        ),
      ),
    );
    server.listen(options.port ?? 8642, host, () => {
      const { port } = server.address() as AddressInfo;
      allowed = allowedHosts(host, port);
      resolve({
        url: `http://${host}:${port}/`,
        close: () =>
          new Promise<void>((done) => {
            server.closeAllConnections();
            server.close(() => done());
          }),
      });
    });
  });
}

/** The request's body as text, refused once it passes `limit` bytes (declared or sent). */
function readBody(req: http.IncomingMessage, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const tooLarge = () =>
      new Error(`the body is larger than ${limit} bytes; send a shorter prompt or fewer nodes`);
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > limit) {
      req.resume();
      return reject(tooLarge());
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.removeAllListeners('data');
        req.resume();
        reject(tooLarge());
      } else chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}
