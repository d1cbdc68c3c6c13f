// How long work reports its progress: a plain callback that library code calls and the CLI turns
// into a bar (src/cli/progress.ts). A type only, so the engine never depends on the CLI.

/** done of total units; `info` is shown after the bar (e.g. loss). */
export type OnProgress = (
  done: number,
  total: number,
  info?: Record<string, number | string>,
) => void;
