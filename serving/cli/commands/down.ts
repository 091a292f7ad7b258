import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Writable } from 'node:stream';
import { isLoopbackHost } from '../../daemon/control-api.js';
import { defaultStateDir } from '../../daemon/state-store.js';
import { daemonClient, type ClientOptions } from '../daemon-client.js';
import { ExitError } from '../exit-error.js';

export interface DownOptions extends ClientOptions {
  readonly stdout: Writable;
  /** How long to wait for the daemon to exit (ms). */
  readonly timeoutMs?: number;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * `myelin down`: asks the daemon to stop gracefully (it drains and stops every replica) and waits
 * for its process to exit. Uses the control API; the pid file in the state folder tells which process to wait for.
 */
export async function down(options: DownOptions): Promise<void> {
  const stateDir = options.stateDir ?? defaultStateDir();
  // The pid file names the local daemon: it is not used when --url points to another host, nor when the pid
  // now belongs to another program (a stale file from a daemon that crashed).
  let pid: number | undefined;
  const client = daemonClient({ ...options, stateDir });
  if (isLoopbackHost(new URL(client.url).hostname.replace(/^\[|\]$/g, ''))) {
    try {
      pid = Number.parseInt(await readFile(join(stateDir, 'daemon.pid'), 'utf8'), 10) || undefined;
      if (pid !== undefined && !(await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => 'myelin')).includes('myelin')) pid = undefined;
    } catch {
      pid = undefined;
    }
  }
  try {
    await client.shutdown();
  } catch (err) {
    if (pid === undefined || !alive(pid)) throw new ExitError(1, `error: no myelin daemon is running (${client.url} does not answer and ${join(stateDir, 'daemon.pid')} names no live process)`);
    // The control API does not answer but the process lives: ask it by signal.
    process.kill(pid, 'SIGTERM');
    void err;
  }
  const deadline = Date.now() + (options.timeoutMs ?? 60_000);
  if (pid !== undefined) {
    while (alive(pid)) {
      if (Date.now() > deadline) throw new ExitError(1, `error: the daemon (pid ${pid}) did not stop within ${(options.timeoutMs ?? 60_000) / 1000}s`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  options.stdout.write('myelin daemon stopped\n');
}
