// `sfc report`: the circuit of a folder (circuit.json, evaluation.json, dashboards.json, labels)
// as one self-contained report.html.

import fs from 'node:fs';
import path from 'node:path';
import { renderReportHtml } from './html.ts';
import { collectReportData, type ReportOptions } from './inputs.ts';

const REPORT_FILE = 'report.html';

export interface BuildReportOptions extends ReportOptions {
  /** Where to write the page (default <dir>/report.html). */
  out?: string;
  /** Called with each warning (e.g. no dashboards yet). */
  onWarning?: (message: string) => void;
}

/** Builds the report of `dir` and returns the path written. */
export function buildReport(dir: string, options: BuildReportOptions = {}): string {
  const data = collectReportData(dir, options);
  for (const w of data.warnings) options.onWarning?.(w);
  const file = options.out ?? path.join(dir, REPORT_FILE);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, renderReportHtml(data));
  return file;
}
