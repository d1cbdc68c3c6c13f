// Running `sfc` commands inside the test process, as the CLI would, and reading what they print.

import { Command } from 'commander';

/**
 * Registers a command group (`register` of a src/cli/commands file), runs `args` (command name
 * first) and returns what was printed on stdout (console.log and process.stdout.write). Stderr,
 * where progress bars and notes go, is silenced. Errors are thrown as the command threw them.
 */
export async function runCommand(
  register: (program: Command) => void,
  args: string[],
): Promise<string> {
  return (await runCommandOutput(register, args)).stdout;
}

/** As runCommand, with what went to stderr (console.error and process.stderr.write) too. */
export async function runCommandOutput(
  register: (program: Command) => void,
  args: string[],
): Promise<{ stdout: string; stderr: string }> {
  const program = new Command().exitOverride();
  register(program);
  const out: string[] = [];
  const err: string[] = [];
  const log = console.log;
  const error = console.error;
  const write = process.stdout.write;
  const writeErr = process.stderr.write;
  console.log = (...parts: unknown[]) => void out.push(parts.join(' '));
  console.error = (...parts: unknown[]) => void err.push(`${parts.join(' ')}\n`);
  process.stdout.write = ((chunk: string) => out.push(String(chunk)) > 0) as typeof write;
  process.stderr.write = ((chunk: string) => err.push(String(chunk)) > 0) as typeof writeErr;
  try {
    await program.parseAsync(args, { from: 'user' });
  } finally {
    console.log = log;
    console.error = error;
    process.stdout.write = write;
    process.stderr.write = writeErr;
  }
  return { stdout: out.join('\n'), stderr: err.join('') };
}
