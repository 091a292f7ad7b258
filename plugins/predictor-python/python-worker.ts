import { spawn, type ChildProcess } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { PredictorError, WORKER_LOST_CODE } from '../../core/errors.js';
import type { Logger } from '../../core/ports/logger.js';
import { BRIDGE_PROTOCOL, BridgeProtocolError, FrameDecoder, encodeFrame, type BridgeFrame, type BridgeHeader } from './bridge-protocol.js';

/** The bridge script every worker runs (standard library only). */
export const BRIDGE_SCRIPT = fileURLToPath(new URL('./bridge/myelin_bridge.py', import.meta.url));

/** How one worker process is started. */
export interface PythonWorkerOptions {
  /** Interpreter (path or a name on PATH). */
  readonly python: string;
  /** The `init` frame (without `op`/`protocol`): predictor kind, path, config, threads, models… */
  readonly init: Record<string, unknown>;
  readonly cwd: string;
  readonly env: NodeJS.ProcessEnv;
  /** Bound to the API, replica and worker index. */
  readonly log: Logger;
  /**
   * Answers a request from Python, answered as `model_result` under its `cid`: `model_call` (the
   * onnx/tensorflow client proxied to the replica's runtime), `resolve_model` and `list_models`
   * (`python_client`'s models).
   */
  readonly onModelCall: (frame: BridgeFrame) => Promise<{ header: Record<string, unknown>; parts: Uint8Array[] }>;
  /** Python's `load_model` is done with the files of a `resolve_model` answer's `pin`. */
  readonly onUnpin?: (pin: unknown) => void;
}

/** A worker's `python_client` counters (since it started), as the bridge reports them. */
export interface WorkerModelStats {
  readonly hits: number;
  readonly misses: number;
  readonly evictions: number;
  readonly loads: number;
  readonly loadMs: number;
  /** Gauge: versions in this process's memory. */
  readonly inMemory: number;
}

/** A prediction's answer from Python: `result` (with its body part) or `error`. */
export type WorkerAnswer = BridgeFrame;

/** Why a worker is gone: its exit, and the start-up failure it reported, if any. */
export interface WorkerExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  /** The start-up failure the bridge reported (`init_failed`): message and the traceback's last lines. */
  readonly initFailure?: { readonly message: string; readonly traceback: string };
  /** Set when the process could not be spawned (ENOENT for a missing interpreter). */
  readonly spawnError?: Error;
}

interface Pending {
  resolve(a: WorkerAnswer): void;
  reject(err: Error): void;
}

/** After the process exited, how long to wait for the end of its frame pipe (ms). */
const OUTPUT_DRAIN_MS = 500;

const PY_LEVELS: Record<string, 'debug' | 'info' | 'warn' | 'error' | 'fatal'> = {
  debug: 'debug',
  info: 'info',
  warning: 'warn',
  error: 'error',
  critical: 'fatal',
};

/**
 * One Python worker process running the bridge script: the handshake (`hello` → `init` → `ready` or
 * `init_failed`), predictions multiplexed by id (any number in flight; the pool bounds them to the
 * worker's threads), model calls answered through `onModelCall`, and the user's output and Python
 * log records forwarded to pino. When the process exits every pending prediction is rejected with
 * `PredictorError(WORKER_LOST_CODE)`. The bridge exits by itself when its input pipe closes, so a
 * replica that dies (even by SIGKILL) never leaves workers behind.
 */
export class PythonWorker {
  readonly ready: Promise<Record<string, unknown>>;
  readonly exited: Promise<WorkerExit>;
  /** Predictions (and batches) sent and not answered yet. */
  inFlight = 0;
  /** The latest `python_client` counters the bridge sent (piggy-backed on `ready` and answers); absent before any. */
  modelStats: WorkerModelStats | undefined;
  private readonly child: ChildProcess;
  private readonly input: Writable;
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;
  private initFailure: WorkerExit['initFailure'];
  private exit: WorkerExit | undefined;
  private readyInfo: Record<string, unknown> | undefined;

  constructor(private readonly options: PythonWorkerOptions) {
    const log = options.log;
    this.child = spawn(options.python, ['-u', BRIDGE_SCRIPT], {
      cwd: options.cwd,
      env: options.env,
      stdio: ['ignore', 'pipe', 'pipe', 'pipe', 'pipe'],
      windowsHide: true,
    });
    this.input = this.child.stdio[3] as Writable;
    const output = this.child.stdio[4] as Readable;
    // A write to a worker that just died fails with EPIPE: the exit handler reports it.
    this.input.on('error', () => {});
    forwardLines(this.child.stdout!, (line) => log.info({ stream: 'stdout' }, line));
    forwardLines(this.child.stderr!, (line) => log.warn({ stream: 'stderr' }, line));

    let resolveReady!: (info: Record<string, unknown>) => void;
    let rejectReady!: (err: Error) => void;
    this.ready = new Promise((res, rej) => {
      resolveReady = res;
      rejectReady = rej;
    });
    this.ready.catch(() => {});
    let resolveExited!: (e: WorkerExit) => void;
    this.exited = new Promise((res) => (resolveExited = res));

    const decoder = new FrameDecoder((frame) => this.onFrame(frame, resolveReady));
    output.on('data', (chunk: Buffer) => {
      try {
        decoder.push(chunk);
      } catch (err) {
        log.error({ err }, 'python bridge protocol error; stopping the worker');
        this.kill('SIGKILL');
      }
    });
    output.on('error', () => {});

    let spawnError: Error | undefined;
    this.child.on('error', (err) => {
      if (this.child.pid === undefined) spawnError = err;
    });
    // The exit is taken from 'exit', not 'close': a process the user's code started keeps stdout and
    // stderr open after the worker died, and 'close' waits for them. The frame pipe (fd 4) is not
    // inherited by such processes (Python closes fds > 2 in subprocesses), so its end, or a short
    // wait, makes sure a last `init_failed` frame was read first.
    let outputEnded = false;
    output.once('close', () => (outputEnded = true));
    const onExit = (code: number | null, signal: NodeJS.Signals | null): void => {
      if (this.exit) return;
      if (outputEnded) return finish(code, signal);
      const timer = setTimeout(() => finish(code, signal), OUTPUT_DRAIN_MS);
      output.once('close', () => {
        clearTimeout(timer);
        finish(code, signal);
      });
    };
    this.child.on('exit', onExit);
    this.child.on('close', (code, signal) => finish(code, signal));
    const finish = (code: number | null, signal: NodeJS.Signals | null): void => {
      if (this.exit) return;
      this.exit = { code, signal, ...(this.initFailure ? { initFailure: this.initFailure } : {}), ...(spawnError ? { spawnError } : {}) };
      this.input.destroy();
      const why = describeWorkerExit(this.exit);
      for (const p of this.pending.values()) {
        p.reject(new PredictorError(`the Python worker running this request exited (${why}); retry`, { code: WORKER_LOST_CODE }));
      }
      this.pending.clear();
      this.inFlight = 0;
      if (!this.readyInfo) rejectReady(startupError(this.exit, options.python));
      resolveExited(this.exit);
    };
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** True until the process exited. */
  get alive(): boolean {
    return this.exit === undefined;
  }

  /** True once `ready` resolved and the process is still alive. */
  get serving(): boolean {
    return this.readyInfo !== undefined && this.exit === undefined;
  }

  /** Request parts the predictor reads besides the payload (`query_params`, `headers`), from `ready`. */
  get uses(): readonly string[] {
    return (this.readyInfo?.uses as string[] | undefined) ?? ['query_params', 'headers'];
  }

  /**
   * Sends one prediction; resolves with Python's answer frame. `header` is the `predict` frame without
   * its `id`, which is set here (the object is reused as the frame: no copy on this path).
   */
  predict(header: Record<string, unknown>, parts: readonly Uint8Array[]): Promise<WorkerAnswer> {
    if (!this.alive) return Promise.reject(new PredictorError('the Python worker is not running; retry', { code: WORKER_LOST_CODE }));
    const id = ++this.nextId;
    this.inFlight++;
    const answer = new Promise<WorkerAnswer>((resolve, reject) => this.pending.set(id, { resolve, reject }));
    header.id = id;
    this.write(header, parts);
    return answer;
  }

  /** Sends a notice that needs no answer (`models_changed`); dropped when the process is gone. */
  notify(header: Record<string, unknown>): void {
    if (this.alive) this.write(header);
  }

  /** Asks the bridge to finish its predictions and exit; SIGKILL after `graceMs`. Resolves on exit. */
  async stop(graceMs: number): Promise<WorkerExit> {
    if (!this.alive) return this.exit!;
    // The input stays open: a prediction Python is still finishing may call a model and needs its answer.
    this.write({ op: 'shutdown' });
    const timer = setTimeout(() => this.kill('SIGKILL'), graceMs);
    const e = await this.exited;
    clearTimeout(timer);
    return e;
  }

  kill(signal: NodeJS.Signals): void {
    if (this.alive && this.child.pid !== undefined) this.child.kill(signal);
  }

  private write(header: Record<string, unknown>, parts: readonly Uint8Array[] = []): void {
    if (!this.input.writable) return;
    // One write per frame: small frames are copied into one buffer, large parts go as they are.
    for (const b of encodeFrame(header, parts)) this.input.write(b);
  }

  private onFrame(frame: BridgeFrame, resolveReady: (info: Record<string, unknown>) => void): void {
    const h = frame.header;
    if (h.model_stats !== undefined) this.modelStats = modelStatsOf(h.model_stats);
    switch (h.op) {
      case 'hello':
        if (h.protocol !== BRIDGE_PROTOCOL) {
          // Kept as the start-up failure, so the user reads the mismatch rather than "killed by SIGKILL".
          this.initFailure = { message: `${BRIDGE_SCRIPT} speaks bridge protocol ${String(h.protocol)}, this replica ${BRIDGE_PROTOCOL}`, traceback: '' };
          throw new BridgeProtocolError(this.initFailure.message);
        }
        this.write({ ...this.options.init, op: 'init', protocol: BRIDGE_PROTOCOL });
        return;
      case 'ready':
        this.readyInfo = { pid: h.pid, python: h.python, executable: h.executable, predictor: h.predictor, uses: Array.isArray(h.uses) ? h.uses : undefined };
        resolveReady(this.readyInfo);
        return;
      case 'init_failed':
        this.initFailure = { message: String(h.message ?? ''), traceback: String(h.traceback ?? '') };
        return;
      case 'result':
      case 'batch_result':
      case 'error':
        return this.settle(h, frame);
      case 'model_stats':
        return;
      case 'unpin':
        this.options.onUnpin?.(h.pin);
        return;
      case 'model_call':
      case 'resolve_model':
      case 'list_models':
      case 'model_signature':
        void this.options.onModelCall(frame).then(
          ({ header, parts }) => this.write({ ...header, op: 'model_result', cid: h.cid }, parts),
          (err: unknown) => this.write({ op: 'model_result', cid: h.cid, ok: false, message: (err as Error)?.message ?? String(err) }),
        );
        return;
      case 'log': {
        const level = PY_LEVELS[String(h.level)] ?? 'info';
        this.options.log[level](typeof h.rid === 'string' ? { logger: h.logger, requestId: h.rid } : { logger: h.logger }, String(h.msg ?? ''));
        return;
      }
      default:
        throw new BridgeProtocolError(`unknown frame op "${h.op}"`);
    }
  }

  private settle(h: BridgeHeader, frame: BridgeFrame): void {
    const id = h.id as number;
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    this.inFlight--;
    p.resolve(frame);
  }
}

/** The bridge's `model_stats` object; a malformed one is a protocol violation. */
function modelStatsOf(raw: unknown): WorkerModelStats {
  const o = raw as Record<string, unknown>;
  const num = (k: string): number => {
    const v = o?.[k];
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new BridgeProtocolError(`model_stats.${k} must be a non-negative number (got ${JSON.stringify(v)})`);
    return v;
  };
  return { hits: num('hits'), misses: num('misses'), evictions: num('evictions'), loads: num('loads'), loadMs: num('load_ms'), inMemory: num('in_memory') };
}

/** Calls `onLine` for each line of a text stream (a last unterminated line included). */
function forwardLines(stream: Readable, onLine: (line: string) => void): void {
  let rest = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    const text = rest + chunk;
    const lines = text.split('\n');
    rest = lines.pop() ?? '';
    for (const l of lines) if (l.length > 0) onLine(l.replace(/\r$/, ''));
    if (rest.length > 64 * 1024) {
      onLine(rest);
      rest = '';
    }
  });
  stream.on('end', () => {
    if (rest.length > 0) onLine(rest);
  });
}

/** `exit code 1`, `killed by SIGKILL`, or why it could not start. */
export function describeWorkerExit(e: WorkerExit): string {
  if (e.spawnError) return `could not start: ${e.spawnError.message}`;
  if (e.signal) return `killed by ${e.signal}`;
  return `exit code ${e.code}`;
}

/** The error a worker that never became ready fails its start with: the bridge's message and traceback tail. */
function startupError(e: WorkerExit, python: string): PredictorError {
  if (e.initFailure) {
    const tb = e.initFailure.traceback.trim();
    return new PredictorError(tb ? `${e.initFailure.message}\n${tb}` : e.initFailure.message, { code: 'ENG_PREDICTOR_LOAD' });
  }
  if (e.spawnError) {
    return new PredictorError(`cannot run the Python interpreter "${python}": ${e.spawnError.message} (set MYELIN_PYTHON or myelin up --python)`, {
      code: 'ENG_PREDICTOR_PYTHON',
      cause: e.spawnError,
    });
  }
  return new PredictorError(`the Python worker exited before it was ready (${describeWorkerExit(e)}); see the log lines above`, { code: 'ENG_PREDICTOR_LOAD' });
}
