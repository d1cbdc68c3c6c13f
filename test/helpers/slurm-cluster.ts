// A real single-node Slurm cluster for one test run, from Debian's packages (munge, slurmctld,
// slurmd): its own munge key and socket, slurm.conf, ports, state and logs in a temporary folder,
// no cgroups (proctrack/linuxproc, task/none). Every failure to start throws the reason with the
// daemons' logs: a machine that cannot run the cluster fails the test rather than skipping it.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export interface SlurmCluster {
  dir: string;
  /** The environment for sbatch, squeue, scontrol (SLURM_CONF). */
  env: NodeJS.ProcessEnv;
  /** The daemons' logs, for failure messages. */
  logs(): string;
  stop(): Promise<void>;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function tail(file: string, lines = 30): string {
  if (!fs.existsSync(file)) return `${path.basename(file)}: (none)`;
  const text = fs.readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  return `--- ${path.basename(file)} ---\n${text}`;
}

/** Runs a Slurm or munge client command; throws its stderr on failure. */
export function slurmCommand(env: NodeJS.ProcessEnv, cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { env, encoding: 'utf8' });
  if (r.error)
    throw new Error(
      `${cmd}: ${(r.error as NodeJS.ErrnoException).code === 'ENOENT' ? 'not installed (apt-get install slurm-client)' : r.error.message}`,
    );
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: exit ${r.status}: ${r.stderr}`);
  return r.stdout;
}

export async function startSlurmCluster(): Promise<SlurmCluster> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sfc-slurm-'));
  for (const d of ['state', 'spool']) fs.mkdirSync(path.join(dir, d));
  const key = path.join(dir, 'munge.key');
  fs.writeFileSync(key, crypto.randomBytes(1024), { mode: 0o400 });
  const socket = path.join(dir, 'munge.socket');
  const host = os.hostname().split('.')[0];
  const user = os.userInfo().username;
  const [ctldPort, dPort] = [await freePort(), await freePort()];
  // Slurm drains a node that claims more than it has: the real CPU count, 90% of the memory.
  const memory = Math.floor((os.totalmem() / 2 ** 20) * 0.9);
  const conf = path.join(dir, 'slurm.conf');
  fs.writeFileSync(
    conf,
    [
      'ClusterName=sfctest',
      `SlurmctldHost=${host}(127.0.0.1)`,
      `SlurmUser=${user}`,
      `SlurmctldPort=${ctldPort}`,
      `SlurmdPort=${dPort}`,
      'AuthType=auth/munge',
      'CredType=cred/munge',
      `AuthInfo=socket=${socket}`,
      `StateSaveLocation=${dir}/state`,
      `SlurmdSpoolDir=${dir}/spool`,
      `SlurmctldPidFile=${dir}/slurmctld.pid`,
      `SlurmdPidFile=${dir}/slurmd.pid`,
      `SlurmctldLogFile=${dir}/slurmctld.log`,
      `SlurmdLogFile=${dir}/slurmd.log`,
      'ProctrackType=proctrack/linuxproc',
      'TaskPlugin=task/none',
      'JobAcctGatherType=jobacct_gather/none',
      'AccountingStorageType=accounting_storage/none',
      // FIFO: a job whose dependency is met starts on the next event, not the next backfill cycle.
      'SchedulerType=sched/builtin',
      // A job after a failed one is cancelled (and so every job after it), not left pending.
      'SchedulerParameters=kill_invalid_depend',
      'SelectType=select/cons_tres',
      'SelectTypeParameters=CR_Core',
      'MpiDefault=none',
      'ReturnToService=2',
      `NodeName=${host} NodeAddr=127.0.0.1 CPUs=${os.cpus().length} RealMemory=${memory} State=UNKNOWN`,
      'PartitionName=test Nodes=ALL Default=YES MaxTime=INFINITE State=UP',
      '',
    ].join('\n'),
  );
  const env = { ...process.env, SLURM_CONF: conf };
  const children: ChildProcess[] = [];
  const logs = () =>
    ['munged.log', 'slurmctld.log', 'slurmd.log', 'daemons.out']
      .map((f) => tail(path.join(dir, f)))
      .join('\n');
  const out = fs.openSync(path.join(dir, 'daemons.out'), 'a');
  const start = async (cmd: string, args: string[]) => {
    const child = spawn(cmd, args, { env, stdio: ['ignore', out, out] });
    const failed = await new Promise<Error | null>((resolve) => {
      child.once('error', resolve);
      child.once('spawn', () => resolve(null));
    });
    if (failed)
      throw new Error(
        `cannot start ${cmd} (${(failed as NodeJS.ErrnoException).code === 'ENOENT' ? 'not installed: apt-get install munge slurmctld slurmd slurm-client' : failed.message})`,
      );
    children.push(child);
  };
  const stop = async () => {
    for (const child of children.reverse()) {
      if (child.exitCode !== null || child.signalCode !== null) continue;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await Promise.race([exited, sleep(5000)]);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
    fs.closeSync(out);
  };
  try {
    await start('munged', [
      '--foreground',
      '--force', // the socket lives in a temporary folder, not /run/munge
      `--key-file=${key}`,
      `--socket=${socket}`,
      `--log-file=${dir}/munged.log`,
      `--pid-file=${dir}/munged.pid`,
      `--seed-file=${dir}/munged.seed`,
    ]);
    for (let i = 0; !fs.existsSync(socket); i++) {
      if (i > 100) throw new Error(`munged did not create its socket ${socket} within 10 s`);
      await sleep(100);
    }
    await start('slurmctld', ['-D', '-i', '-f', conf]);
    await start('slurmd', ['-D', '-N', host, '-f', conf]);
    // Up when the node reports idle.
    let state = '';
    for (let i = 0; i < 60; i++) {
      await sleep(500);
      const dead = children.find((c) => c.exitCode !== null || c.signalCode !== null);
      if (dead)
        throw new Error(`${dead.spawnargs[0]} exited (${dead.exitCode ?? dead.signalCode})`);
      const r = spawnSync('sinfo', ['-h', '-o', '%T'], { env, encoding: 'utf8' });
      state = (r.stdout ?? '').trim() || (r.stderr ?? '').trim();
      if (state === 'idle') return { dir, env, logs, stop };
    }
    throw new Error(`the node did not become idle within 30 s (sinfo: ${state || 'nothing'})`);
  } catch (e) {
    await stop();
    throw new Error(`Slurm test cluster did not start: ${(e as Error).message}\n${logs()}`, {
      cause: e,
    });
  }
}

const DONE = ['COMPLETED'];
const FAILED = [
  'FAILED',
  'CANCELLED',
  'TIMEOUT',
  'NODE_FAIL',
  'OUT_OF_MEMORY',
  'BOOT_FAIL',
  'DEADLINE',
  'PREEMPTED',
];

/**
 * Waits until job `id` (and every task of it, for an array) completes; throws with the jobs'
 * states when any job of the cluster (the test's own) fails, or after `timeoutMs`.
 */
export async function waitForJob(
  cluster: SlurmCluster,
  id: string,
  timeoutMs: number,
): Promise<void> {
  const t0 = Date.now();
  let last = '';
  while (Date.now() - t0 < timeoutMs) {
    const all = slurmCommand(cluster.env, 'scontrol', ['show', 'job', '-o']);
    last = all.trim();
    const failed = all
      .split('\n')
      .filter((line) => FAILED.some((s) => line.includes(`JobState=${s} `)));
    if (failed.length > 0 || /DependencyNeverSatisfied/.test(all))
      throw new Error(`Slurm jobs failed:\n${failed.join('\n') || last}\n${cluster.logs()}`);
    const text = slurmCommand(cluster.env, 'scontrol', ['show', 'job', '-o', id]);
    const states = [...text.matchAll(/JobState=(\S+)/g)].map((m) => m[1]);
    if (states.length > 0 && states.every((s) => DONE.includes(s))) return;
    await sleep(500);
  }
  throw new Error(
    `Slurm job ${id} not done after ${timeoutMs / 1000} s: ${last}\n${cluster.logs()}`,
  );
}
