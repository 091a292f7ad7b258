/**
 * The server children of a serving benchmark: start the replica through its real entry, wait until a
 * server listens (and is ready, and answers a sample), read its CPU time from /proc, and end every process the bench
 * started by PID, also on failure or on a signal.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { request } from 'node:http';
import { fileURLToPath } from 'node:url';

const REPLICA_ENTRY = fileURLToPath(new URL('../../serving/replica/replica-entry.mjs', import.meta.url));
/** How long a server may take to listen, and then to be ready: 90 s each. */
const START_TIMEOUT_MS = 90_000;
/** How much of a server's last output an error about its start carries: 4000 characters. */
const TAIL_CHARS = 4000;

/** Fields of /proc/<pid>/stat after "(comm) ": field 3 (state) is index 0, so field n is index n − 3. */
function statFields(pid: number): string[] | undefined {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ').at(-1)!.split(' ');
  } catch {
    return undefined;
  }
}

/** `pid` and all its live descendants, parents first (Linux /proc; `[pid]` elsewhere). */
function processTree(pid: number): number[] {
  const children = new Map<number, number[]>();
  let entries: string[] = [];
  try {
    entries = readdirSync('/proc').filter((e) => /^\d+$/.test(e));
  } catch {
    return [pid];
  }
  for (const e of entries) {
    const f = statFields(Number(e));
    if (!f) continue;
    const ppid = Number(f[1]);
    const list = children.get(ppid) ?? [];
    list.push(Number(e));
    children.set(ppid, list);
  }
  const out: number[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    const p = queue.shift()!;
    out.push(p);
    queue.push(...(children.get(p) ?? []));
  }
  return out;
}

/**
 * The processes a bench started, to end them all by PID: its children (`add`), and the descendants
 * seen while their CPU time was read (`cpuUs`; the replica's Python workers), known by PID and start
 * time so that a PID reused by another process is never signalled.
 */
export class OwnedProcesses {
  private readonly children = new Set<ChildProcess>();
  /** pid → start time (field 22 of /proc/<pid>/stat, clock ticks since boot). */
  private readonly descendants = new Map<number, string>();

  /** Records `proc` as this bench's, and returns it. */
  add<P extends ChildProcess>(proc: P): P {
    this.children.add(proc);
    return proc;
  }

  /** The children not yet stopped. */
  list(): ChildProcess[] {
    return [...this.children];
  }

  /**
   * CPU time (user + system, µs) of `pid` and its live descendants, from /proc (Linux; 0 elsewhere).
   * A leg's server CPU is the difference of two readings: 1.2 s of ticks after, 0.9 s before ⇒ 300 000 µs.
   */
  cpuUs(pid: number | undefined): number {
    if (pid === undefined) return 0;
    let ticks = 0;
    for (const p of processTree(pid)) {
      const f = statFields(p);
      if (!f) continue;
      // utime and stime are fields 14 and 15, in clock ticks (100 per second on Linux); starttime is 22.
      ticks += Number(f[11]) + Number(f[12]);
      if (p !== pid) this.descendants.set(p, f[19]);
    }
    return (ticks / 100) * 1e6;
  }

  /**
   * Ends `procs` (default: every child): SIGTERM, then SIGKILL after `graceMs` (ms) for one still
   * running; then SIGKILL every descendant seen that is still the same process (the Python workers
   * exit when their pipe closes, so normally none).
   */
  async stop(procs: Iterable<ChildProcess> = this.list(), graceMs = 5_000): Promise<void> {
    await Promise.all(
      [...procs].map(async (p) => {
        if (p.exitCode === null && p.signalCode === null && p.pid !== undefined) {
          const exited = new Promise((r) => p.once('exit', r));
          p.kill('SIGTERM');
          const timer = setTimeout(() => p.kill('SIGKILL'), graceMs);
          await exited;
          clearTimeout(timer);
        }
        this.children.delete(p);
      }),
    );
    for (const [pid, startTime] of this.descendants) {
      const f = statFields(pid);
      if (f && f[19] === startTime) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // Gone in between.
        }
      }
      if (!f || f[19] === startTime) this.descendants.delete(pid);
    }
  }

  /** On SIGINT or SIGTERM: stop everything (1 s grace), then exit 130 or 143. */
  stopOnSignals(): void {
    const onSignal = (sig: NodeJS.Signals): void => {
      void this.stop(this.list(), 1_000).finally(() => process.exit(sig === 'SIGINT' ? 130 : 143));
    };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
  }
}

/**
 * Starts the serving replica through its real entry (serving/replica/replica-entry.mjs) on a free port,
 * with an IPC channel as the local orchestrator gives it and stdout piped (for `awaitServer`).
 * `executor` sets MYELIN_EXECUTOR (unset: the replica's own choice, e.g. the Python bridge's workers);
 * `entry` runs another entry, e.g. the compiled dist/serving/replica/replica-entry.js; `cwd` its working folder.
 */
export function spawnReplica(specFile: string, options: { readonly executor?: string; readonly env?: NodeJS.ProcessEnv; readonly entry?: string; readonly cwd?: string } = {}): ChildProcess {
  const env: NodeJS.ProcessEnv = { ...process.env, MYELIN_PORT: '0', ...options.env, MYELIN_SPEC_FILE: specFile, MYELIN_LOG_LEVEL: 'warn' };
  if (options.executor) env.MYELIN_EXECUTOR = options.executor;
  else delete env.MYELIN_EXECUTOR;
  const proc = spawn(process.execPath, [...profileArgs('replica'), options.entry ?? REPLICA_ENTRY], { stdio: ['ignore', 'pipe', 'inherit', 'ipc'], env, ...(options.cwd ? { cwd: options.cwd } : {}) });
  // The IPC metric samples are read and dropped, as the daemon would read them.
  proc.on('message', () => {});
  return proc;
}

/**
 * Node flags for a server child from `MYELIN_BENCH_PROFILE=<dir>`: `--cpu-prof` into `<dir>/<role>`
 * (NODE_OPTIONS may not carry --cpu-prof), so that a bench run can profile its servers, e.g.
 * `MYELIN_BENCH_PROFILE=/tmp/prof node --import tsx benchmarks/serving.bench.ts`. Empty when unset.
 */
export function profileArgs(role: string): string[] {
  const dir = process.env.MYELIN_BENCH_PROFILE;
  return dir ? ['--cpu-prof', `--cpu-prof-dir=${dir}/${role}`] : [];
}

/** Where a server listens, and what it said about itself then (the listening message's fields). */
export interface Listening {
  readonly port: number;
  readonly info: Record<string, unknown>;
}

/** A started server: where it listens, and its answer to the sample request when one was given. */
export interface StartedServer extends Listening {
  readonly sample?: string;
}

function firstListening(proc: ChildProcess, what: string): Promise<Listening> {
  return new Promise((resolve, reject) => {
    let out = '';
    let done = false;
    const timer = setTimeout(() => finish(new Error(`${what} did not listen within ${START_TIMEOUT_MS / 1000} s`)), START_TIMEOUT_MS);
    const finish = (err: Error | undefined, port?: number, info: Record<string, unknown> = {}): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (err) reject(err);
      else resolve({ port: port!, info });
    };
    proc.on('message', (m: { type?: string; port?: number }) => {
      if (m?.type === 'myelin.replica.listening' && m.port) finish(undefined, m.port, m);
    });
    proc.stdout?.setEncoding('utf8').on('data', (c: string) => {
      // Read to the end (a pipe left unread would block the child); look for the line only until found.
      if (done) return;
      out += c;
      const line = out.split('\n').find((l) => l.includes('"myelin.replica.listening"'));
      if (line) {
        const info = JSON.parse(line) as Record<string, unknown> & { port: number };
        finish(undefined, info.port, info);
      }
    });
    proc.on('exit', (code, signal) => finish(new Error(`${what} exited early (${signal ?? `code ${code}`})`)));
    proc.on('error', (err) => finish(new Error(`${what} could not start: ${err.message}`)));
  });
}

/** The status of GET `path` on 127.0.0.1:`port`, a fresh connection; 0 when it fails. */
function httpStatus(port: number, path: string): Promise<number> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', () => resolve(0));
    req.end();
  });
}

/** POST /predict with `body` on 127.0.0.1:`port`, a fresh connection: the status and the whole answer. */
function post(port: number, body: string, contentType: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, path: '/predict', method: 'POST', agent: false, headers: { 'content-type': contentType, 'content-length': Buffer.byteLength(body) } },
      (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** Polls GET /healthz/ready every 50 ms until 200; fails when `proc` exits or after 90 s. */
async function waitReady(port: number, proc: ChildProcess, what: string): Promise<void> {
  const end = Date.now() + START_TIMEOUT_MS;
  while ((await httpStatus(port, '/healthz/ready')) !== 200) {
    if (proc.exitCode !== null) throw new Error(`${what} exited before it was ready`);
    if (Date.now() > end) throw new Error(`${what} not ready within ${START_TIMEOUT_MS / 1000} s`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Waits until the server child `proc` (stdout piped, called right after it was spawned) listens: an
 * IPC message or a stdout line `{"type":"myelin.replica.listening","port":…}`; with `ready` (the
 * replica, which loads its predictor after it listens), also until GET /healthz/ready answers 200
 * (90 s at most for each); with `sample`, POSTs it once to /predict and requires a 200. An error ends
 * with the last 4000 characters the server printed.
 */
export async function awaitServer(
  proc: ChildProcess,
  what: string,
  options: { readonly ready: boolean; readonly sample?: { readonly body: string; readonly contentType: string } },
): Promise<StartedServer> {
  let tail = '';
  proc.stdout?.on('data', (c: string | Buffer) => (tail = (tail + String(c)).slice(-TAIL_CHARS)));
  try {
    const listening = await firstListening(proc, what);
    if (options.ready) await waitReady(listening.port, proc, what);
    if (!options.sample) return listening;
    const answer = await post(listening.port, options.sample.body, options.sample.contentType);
    if (answer.status !== 200) throw new Error(`${what} answered ${answer.status} to the sample: ${answer.text.slice(0, 500)}`);
    return { ...listening, sample: answer.text };
  } catch (err) {
    throw new Error(`${(err as Error).message}\n--- last output of ${what}:\n${tail.trim()}`, { cause: err });
  }
}
