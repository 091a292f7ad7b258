import { readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, sep } from 'node:path';

/**
 * What a daemon that died (kill -9, OOM, power loss) left in its state folder, found and removed by
 * the next `myelin up` on that folder before it starts anything.
 *
 * Replicas end themselves when their daemon's IPC channel closes (replica-main.ts), so usually
 * nothing is left running; one wedged in native code, or a Python worker it started, may be. Such a
 * process is proven to be this folder's own when all of these hold:
 * - it runs as this user (the owner of `/proc/<pid>`),
 * - its environment names a spec file inside `<state>/run/` (`MYELIN_SPEC_FILE`, set by the local
 *   orchestrator on every replica and inherited by the workers a replica starts),
 * - and no daemon is alive on the folder (the caller checked `daemon.pid` first).
 * Nothing else is touched: no process is chosen by name alone.
 */
export interface LeftoverReport {
  /** Pids that were still running and were ended (SIGTERM, then SIGKILL after the grace period). */
  readonly killed: readonly number[];
  /** Folders removed: `<state>/run` and the dead daemon's `/tmp/myelin-local-<pid>` of older versions. */
  readonly removed: readonly string[];
}

export interface LeftoverOptions {
  /** The folder replicas' spec files are written under (`<state>/run`). */
  readonly runDir: string;
  /** The pid of the daemon that died, from its `daemon.pid` (for its old temp folder). */
  readonly deadDaemonPid?: number;
  /** How long a leftover gets to exit after SIGTERM (ms, default 3 000). */
  readonly graceMs?: number;
}

/** Finds this folder's leftover processes (see the module comment). Linux only; elsewhere it finds none. */
export async function findLeftoverProcesses(runDir: string, procDir = '/proc'): Promise<number[]> {
  let entries: string[];
  try {
    entries = await readdir(procDir);
  } catch {
    return [];
  }
  const uid = process.getuid?.();
  const prefix = runDir.endsWith(sep) ? runDir : runDir + sep;
  const found: number[] = [];
  for (const name of entries) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    if (pid === process.pid) continue;
    try {
      if (uid !== undefined && (await stat(join(procDir, name))).uid !== uid) continue;
      const environ = await readFile(join(procDir, name, 'environ'), 'utf8');
      const spec = environ.split('\0').find((kv) => kv.startsWith('MYELIN_SPEC_FILE='));
      if (spec?.slice('MYELIN_SPEC_FILE='.length).startsWith(prefix)) found.push(pid);
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  return found;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function waitGone(pids: readonly number[], ms: number): Promise<number[]> {
  const deadline = Date.now() + ms;
  let left = pids.filter(alive);
  while (left.length > 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
    left = left.filter(alive);
  }
  return left;
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // exited meanwhile
  }
}

/** Ends this folder's leftover processes and removes the dead daemon's run folders. */
export async function cleanLeftovers(o: LeftoverOptions): Promise<LeftoverReport> {
  const pids = await findLeftoverProcesses(o.runDir);
  for (const pid of pids) signal(pid, 'SIGTERM');
  const stubborn = await waitGone(pids, o.graceMs ?? 3_000);
  for (const pid of stubborn) signal(pid, 'SIGKILL');
  await waitGone(stubborn, 2_000);

  const removed: string[] = [];
  const dirs = [o.runDir, ...(o.deadDaemonPid !== undefined ? [join(tmpdir(), `myelin-local-${o.deadDaemonPid}`)] : [])];
  for (const dir of dirs) {
    try {
      const s = await stat(dir);
      if (!s.isDirectory() || (process.getuid && s.uid !== process.getuid())) continue;
      await rm(dir, { recursive: true, force: true });
      removed.push(dir);
    } catch {
      // not there
    }
  }
  return { killed: pids, removed };
}
