// `sfc view`: the report served on localhost. Every request re-reads the folder's files, and the
// page polls /version, so rerunning discover, evaluate or dashboards updates an open page.
// Only requests addressed to the served loopback name and port are answered: a page elsewhere
// that rebinds its own DNS name to 127.0.0.1 sends its own Host header and gets 421, so it cannot
// read /data.json (circuits, labels, absolute paths). No CORS headers are ever sent.

import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { renderReportHtml, scriptJson } from './html.ts';
import { collectReportData, inputStamp, type ReportOptions } from './inputs.ts';

export interface ViewOptions extends ReportOptions {
  /** Default 8642; 0 picks a free port. */
  port?: number;
  /** Default 127.0.0.1 (this machine only). */
  host?: string;
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
      if (req.method !== 'GET') return send(405, 'text/plain', 'only GET');
      if (url.pathname === '/' || url.pathname === '/report.html') {
        const stamp = inputStamp(dir, options);
        return send(
          200,
          'text/html; charset=utf-8',
          renderReportHtml(collectReportData(dir, options, true), { stamp }),
        );
      }
      if (url.pathname === '/data.json')
        return send(
          200,
          'application/json',
          scriptJson({ ...collectReportData(dir, options, true), stamp: inputStamp(dir, options) }),
        );
      if (url.pathname === '/version') return send(200, 'text/plain', inputStamp(dir, options));
      return send(404, 'text/plain', `not found: ${url.pathname}`);
    } catch (e) {
      return send(500, 'text/plain', `sfc view: ${(e as Error).message}`);
    }
  });
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
