// A real `myelin up` as a child process, and the `myelin` CLI as a user runs it: the e2e tests drive the
// daemon over its control API, its gateway and the CLI binary only (issue 11).
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The CLI the tests and benchmarks run: bin/myelin.mjs (the sources, through tsx), or `$MYELIN_CLI`, e.g.
 * dist/serving/cli/bin.js for the compiled package (benchmarks/scale-reaction.bench.ts does so).
 */
export const MYELIN_BIN = process.env.MYELIN_CLI || fileURLToPath(new URL('../../bin/myelin.mjs', import.meta.url));

/**
 * The environment of the daemon and of the CLI: this one, without the variables that would point a
 * command at another daemon or state folder than the ones named on its command line.
 */
function childEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ONNXRUNTIME_NODE_INSTALL: process.env.ONNXRUNTIME_NODE_INSTALL ?? 'skip' };
  for (const k of ['MYELIN_URL', 'MYELIN_TOKEN', 'MYELIN_STATE_DIR']) delete env[k];
  return env;
}

export interface DaemonProcessOptions {
  readonly stateDir: string;
  /** The daemon's stderr (pino JSON lines, `--log-format json`). */
  readonly logFile: string;
  /** Its stdout (the `myelin daemon is up` banner with the URLs). */
  readonly outFile: string;
  /** More `myelin up` arguments (`--nats URL`, `--headers-timeout 1s`, ...). */
  readonly args?: readonly string[];
  /**
   * The control API's port (default 0: any free one). A test restarting a daemon passes the port it had,
   * so clients keep their URL.
   */
  readonly port?: number;
  /** How long `up` may take until its banner is printed (restoring APIs included). Default 90 s. */
  readonly startTimeoutMs?: number;
  /** The CLI to run (default `MYELIN_BIN`), e.g. an installed package's `dist/serving/cli/bin.js`. */
  readonly bin?: string;
}

export interface DaemonProcess {
  readonly pid: number;
  /** From the banner on stdout (`control api: …`), as a user reads it with `--port 0`. */
  readonly controlUrl: string;
  /** From the banner (`gateway: …`). */
  readonly gatewayUrl: string;
  /** `<state>/token`, where the CLI reads it. */
  readonly token: string;
  readonly stateDir: string;
  /** Resolves with the exit code (or signal) once the process has exited. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGTERM (a graceful stop: replicas drain), wait up to `graceMs`; SIGKILL only after that. */
  stop(graceMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function hasExited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

async function tail(file: string, lines = 15): Promise<string> {
  return (await readFile(file, 'utf8').catch(() => '')).trim().split('\n').slice(-lines).join('\n');
}

/**
 * Starts `node bin/myelin.mjs up --state-dir <dir> --port 0 --gateway-port 0 --log-format json …` and
 * resolves once its banner names the control API and the gateway and its token is on disk. A daemon
 * that exits or prints nothing in time is ended and the error carries the end of its log.
 */
export async function startDaemonProcess(o: DaemonProcessOptions): Promise<DaemonProcess> {
  const args = [o.bin ?? MYELIN_BIN, 'up', '--state-dir', o.stateDir, '--host', '127.0.0.1', '--port', String(o.port ?? 0), '--gateway-host', '127.0.0.1', '--gateway-port', '0', '--log-format', 'json', ...(o.args ?? [])];
  // Files, not pipes: the daemon never blocks on (or dies of) a reader that went away.
  const out = openSync(o.outFile, 'a');
  const err = openSync(o.logFile, 'a');
  let child: ChildProcess;
  try {
    child = spawn(process.execPath, args, { stdio: ['ignore', out, err], env: childEnv() });
  } finally {
    closeSync(out);
    closeSync(err);
  }
  let spawnError: Error | undefined;
  child.once('error', (e) => (spawnError = e));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    if (hasExited(child)) resolve({ code: child.exitCode, signal: child.signalCode });
    else child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  const pid = child.pid;
  const stop = async (graceMs = 60_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> => {
    if (!hasExited(child)) child.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const inTime = await Promise.race([exited.then(() => true), new Promise<boolean>((r) => (timer = setTimeout(() => r(false), graceMs)))]);
    clearTimeout(timer);
    if (!inTime && !hasExited(child)) child.kill('SIGKILL');
    return exited;
  };
  if (pid === undefined) {
    // Not started (no 'exit' follows): nothing to stop.
    await new Promise((r) => setImmediate(r));
    throw new Error(`could not start ${args.join(' ')}: ${spawnError?.message ?? 'no pid'}`);
  }

  try {
    const deadline = Date.now() + (o.startTimeoutMs ?? 90_000);
    for (;;) {
      if (hasExited(child)) {
        throw new Error(`myelin up exited at start (code ${child.exitCode}, signal ${child.signalCode}):\n${await tail(o.outFile)}\n${await tail(o.logFile)}`);
      }
      const banner = await readFile(o.outFile, 'utf8').catch(() => '');
      const controlUrl = /control api: (http:\/\/\S+)/.exec(banner)?.[1];
      const gatewayUrl = /gateway: +(http:\/\/\S+)/.exec(banner)?.[1];
      if (controlUrl && gatewayUrl) {
        const token = (await readFile(join(o.stateDir, 'token'), 'utf8')).trim();
        for (const u of [controlUrl, gatewayUrl]) if (!/^http:\/\/127\.0\.0\.1:\d+$/.test(u)) throw new Error(`the daemon listens off loopback: ${u}`);
        return { pid, controlUrl, gatewayUrl, token, stateDir: o.stateDir, exited, stop };
      }
      if (Date.now() > deadline) throw new Error(`myelin up printed no URLs within ${o.startTimeoutMs ?? 90_000} ms:\n${banner}\n${await tail(o.logFile)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  } catch (e) {
    await stop(10_000);
    throw e;
  }
}

export interface CliResult {
  /** The exit code; null when it was ended by a signal (its timeout). */
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs `node bin/myelin.mjs <args>` (asynchronously: load loops in the test keep running meanwhile),
 * in `cwd`; SIGKILLed after `timeoutMs` (default 120 s).
 */
export function runCli(args: readonly string[], options: { readonly cwd?: string; readonly timeoutMs?: number } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MYELIN_BIN, ...args], { cwd: options.cwd, env: childEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr!.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 120_000);
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}
