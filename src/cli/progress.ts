// Progress bars for long work. Library code reports through a plain callback
// (`OnProgress`, src/progress.ts) and never imports this; the CLI turns the callback into a bar on
// stderr.

import cliProgress from 'cli-progress';
import type { OnProgress } from '../progress.ts';

export type { OnProgress } from '../progress.ts';

export interface ProgressBar {
  update: OnProgress;
  stop(): void;
}

function formatInfo(info: Record<string, number | string> | undefined): string {
  if (!info) return '';
  return Object.entries(info)
    .map(([k, v]) => `${k} ${typeof v === 'number' ? Number(v.toPrecision(4)) : v}`)
    .join('  ');
}

/** A bar on stderr when it is a terminal; otherwise a line every 10% so logs stay readable. */
export function progressBar(label: string): ProgressBar {
  if (process.stderr.isTTY && !process.env.CI) {
    const bar = new cliProgress.SingleBar(
      {
        format: `${label} [{bar}] {percentage}% {value}/{total} eta {eta_formatted} {info}`,
        stream: process.stderr,
        hideCursor: true,
        etaBuffer: 50,
      },
      cliProgress.Presets.shades_classic,
    );
    let started = false;
    return {
      update(done, total, info) {
        if (!started) {
          bar.start(total, 0, { info: '' });
          started = true;
        }
        bar.setTotal(total);
        bar.update(done, { info: formatInfo(info) });
      },
      stop() {
        if (started) bar.stop();
      },
    };
  }
  let lastDecile = -1;
  return {
    update(done, total, info) {
      const decile = total > 0 ? Math.floor((10 * done) / total) : 10;
      if (decile !== lastDecile) {
        lastDecile = decile;
        process.stderr.write(`${label}: ${done}/${total} ${formatInfo(info)}\n`);
      }
    },
    stop() {},
  };
}
