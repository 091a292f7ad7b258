import type { ApiSpec } from '../../../core/config/api-spec.js';
import type { MetricSample } from '../../../core/metrics/metric-sample.js';
import type { ReplicaAddress } from '../../../core/ports/orchestrator-target.js';

/**
 * The contract between the local orchestrator and a replica process.
 *
 * The orchestrator starts the process the launcher describes with
 * `spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe', 'ipc'], env, cwd })` and sets these
 * environment variables (on top of its own environment and `predictor.env` of the spec):
 * - `MYELIN_API`, `MYELIN_REVISION`, `MYELIN_REPLICA_ID`: who the replica is;
 * - `MYELIN_SPEC_FILE`: absolute path of a JSON file holding the resolved `ApiSpec`;
 * - `MYELIN_HOST` (`127.0.0.1`) and `MYELIN_PORT` (`0`): where to listen (0 = any free port);
 * - `MYELIN_CPU_MILLIS`, `MYELIN_MEM_BYTES` (only when memory is requested): the reservation;
 * - `CUDA_VISIBLE_DEVICES`: the GPU indexes reserved for it, comma-separated (`''` when it has none);
 * - `MYELIN_MODEL_CACHE` (when the orchestrator is given `modelCacheDir`): the machine's model cache,
 *   the one the daemon prefetched the API's models into.
 *
 * The replica then:
 * 1. listens on HTTP and sends `{ type: 'myelin.replica.listening', port }` over IPC
 *    (`process.send`), optionally with `host`, or `{ type: 'myelin.replica.listening', socketPath }`;
 * 2. answers GET `/healthz/ready` with 200 once it takes predictions (anything else = not ready);
 * 3. may send `{ type: 'myelin.metrics', sample }` (a `MetricSample`) over IPC; the orchestrator
 *    passes the child to whoever subscribes to `spawns$()` (the daemon's metrics transport);
 * 4. may send `{ type: 'myelin.replica.event', event }` (an `EngineEvent` of type `model.download` or
 *    `model.version`) over IPC; the orchestrator checks it against the event schema, overwrites its
 *    `api` and `replica` with its own names for the sender, and publishes it on `events$()` (others
 *    are dropped and counted);
 * 5. when its predictor cannot start, sends `{ type: 'myelin.replica.failed', message }` and exits
 *    with code 1: the message (e.g. the last lines of a Python traceback) becomes the crash reason,
 *    `predictor failed to start: <message>`, bounded by `boundFailureMessage`;
 * 6. on SIGTERM stops accepting, finishes requests in flight and exits (SIGKILL follows after the
 *    grace period); it exits by itself when the IPC channel closes (`process.on('disconnect')`),
 *    so a daemon that dies does not leave replicas behind.
 * stdout and stderr are kept as the replica's log lines.
 */
export const REPLICA_ENV = {
  api: 'MYELIN_API',
  revision: 'MYELIN_REVISION',
  replicaId: 'MYELIN_REPLICA_ID',
  specFile: 'MYELIN_SPEC_FILE',
  host: 'MYELIN_HOST',
  port: 'MYELIN_PORT',
  cpuMillis: 'MYELIN_CPU_MILLIS',
  memBytes: 'MYELIN_MEM_BYTES',
  cudaVisibleDevices: 'CUDA_VISIBLE_DEVICES',
  modelCache: 'MYELIN_MODEL_CACHE',
} as const;

/** IPC message type a replica sends once it listens. */
export const REPLICA_LISTENING = 'myelin.replica.listening';
/**
 * IPC message type a replica sends once its predictor is loaded: a hint to probe now rather than at the
 * next probe interval (the probe stays the judge of readiness).
 */
export const REPLICA_READY = 'myelin.replica.ready';
/** IPC message type of a metric sample from a replica. */
export const REPLICA_METRICS = 'myelin.metrics';
/** IPC message type a replica sends when its predictor cannot start, just before it exits with code 1. */
export const REPLICA_FAILED = 'myelin.replica.failed';
/** IPC message type of an event a replica reports about itself (`{ type, event }`). */
export const REPLICA_EVENT = 'myelin.replica.event';
/** Event types a replica may report; any other is dropped (a replica does not speak for the daemon). */
export const REPLICA_EVENT_TYPES: readonly string[] = ['model.download', 'model.version'];

/** A failure message keeps at most this many lines (the last ones: a traceback ends with the exception) … */
export const MAX_FAILURE_LINES = 20;
/** … and at most this many UTF-8 bytes. */
export const MAX_FAILURE_BYTES = 4096;

export interface ReplicaListeningMessage {
  readonly type: typeof REPLICA_LISTENING;
  readonly port?: number;
  /** Default `127.0.0.1`. */
  readonly host?: string;
  readonly socketPath?: string;
}

export interface ReplicaFailedMessage {
  readonly type: typeof REPLICA_FAILED;
  /** Why the predictor could not start; may be several lines. */
  readonly message: string;
}

export interface ReplicaMetricsMessage {
  readonly type: typeof REPLICA_METRICS;
  readonly sample: MetricSample;
}

/** The address in a `myelin.replica.listening` message, or null when `msg` is not a valid one. */
export function listeningAddressOf(msg: unknown): ReplicaAddress | null {
  if (typeof msg !== 'object' || msg === null) return null;
  const m = msg as Record<string, unknown>;
  if (m.type !== REPLICA_LISTENING) return null;
  if (typeof m.socketPath === 'string' && m.socketPath.length > 0) return { socketPath: m.socketPath };
  const port = m.port;
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) return null;
  const host = typeof m.host === 'string' && m.host.length > 0 ? m.host : '127.0.0.1';
  return { host, port };
}

/** The sample in a `myelin.metrics` message, or null when `msg` is not one (the sample itself is validated by the transport). */
export function metricSampleOf(msg: unknown): unknown {
  if (typeof msg !== 'object' || msg === null) return null;
  const m = msg as Record<string, unknown>;
  return m.type === REPLICA_METRICS && typeof m.sample === 'object' && m.sample !== null ? m.sample : null;
}

/** The event in a `myelin.replica.event` message (unchecked), or null when `msg` is not one. */
/** True for a replica's `myelin.replica.ready` message. */
export function isReadyMessage(msg: unknown): boolean {
  return typeof msg === 'object' && msg !== null && (msg as Record<string, unknown>).type === REPLICA_READY;
}

export function replicaEventOf(msg: unknown): unknown {
  if (typeof msg !== 'object' || msg === null) return null;
  const m = msg as Record<string, unknown>;
  return m.type === REPLICA_EVENT && 'event' in m ? (m.event ?? null) : null;
}

/**
 * The message of a `myelin.replica.failed` message, bounded by `boundFailureMessage`, or null when
 * `msg` is not one (or its message is empty).
 */
export function failureMessageOf(msg: unknown): string | null {
  if (typeof msg !== 'object' || msg === null) return null;
  const m = msg as Record<string, unknown>;
  if (m.type !== REPLICA_FAILED || typeof m.message !== 'string') return null;
  const bounded = boundFailureMessage(m.message);
  return bounded === '' ? null : bounded;
}

/**
 * A failure message kept whole when small (`MAX_FAILURE_LINES` lines, `MAX_FAILURE_BYTES` bytes),
 * else its first line (the summary, clipped to `MAX_FAILURE_HEAD_BYTES`), a `…` line, and as many of
 * its last lines as fit (a traceback ends with the exception). Line ends are normalized to `\n`;
 * leading and trailing blank lines are dropped. Pure.
 * Example: a 60-line traceback keeps line 1, `…`, and lines 43–60, down to `ImportError: …`.
 */
export function boundFailureMessage(message: string): string {
  const lines = message.replace(/\r\n?/g, '\n').trimEnd().split('\n');
  while (lines.length > 0 && lines[0].trim() === '') lines.shift();
  const text = lines.join('\n');
  if (lines.length <= MAX_FAILURE_LINES && Buffer.byteLength(text) <= MAX_FAILURE_BYTES) return text;
  if (lines.length === 1) return `${clipBytes(text, MAX_FAILURE_BYTES - 4)}…`;
  const head = lines[0].length > MAX_FAILURE_HEAD_BYTES ? `${clipBytes(lines[0], MAX_FAILURE_HEAD_BYTES - 4)}…` : lines[0];
  let budget = MAX_FAILURE_BYTES - Buffer.byteLength(head) - Buffer.byteLength('\n…');
  const tail: string[] = [];
  for (let i = lines.length - 1; i >= 1 && tail.length < MAX_FAILURE_LINES - 2; i--) {
    const bytes = Buffer.byteLength(lines[i]) + 1;
    if (bytes > budget) {
      // Even the last line alone is too long: its end, where the exception's text is.
      if (tail.length === 0) tail.push(`…${clipBytesFromEnd(lines[i], budget - 5)}`);
      break;
    }
    budget -= bytes;
    tail.unshift(lines[i]);
  }
  return tail.length === lines.length - 1 ? [head, ...tail].join('\n') : [head, '…', ...tail].join('\n');
}

/** The first line of a long failure message keeps at most this many bytes. */
const MAX_FAILURE_HEAD_BYTES = 512;

/** At most `n` bytes of `s` from its start, never half a character. */
function clipBytes(s: string, n: number): string {
  return Buffer.from(s, 'utf8').subarray(0, Math.max(0, n)).toString('utf8').replace(/\uFFFD+$/, '');
}

/** At most `n` bytes of `s` from its end, never half a character. */
function clipBytesFromEnd(s: string, n: number): string {
  const b = Buffer.from(s, 'utf8');
  return b.subarray(Math.max(0, b.length - Math.max(0, n))).toString('utf8').replace(/^\uFFFD+/, '');
}

/** What the launcher is told about the replica to start. */
export interface ReplicaLaunchContext {
  readonly spec: ApiSpec;
  readonly revision: string;
  readonly replicaId: string;
  /** Absolute path of the spec JSON (also in `MYELIN_SPEC_FILE`). */
  readonly specFile: string;
  /** The contract variables above, as the orchestrator will set them. */
  readonly env: Readonly<Record<string, string>>;
}

/** The process to start. */
export interface ReplicaLaunch {
  readonly command: string;
  readonly args: readonly string[];
  /** Added to the environment; the spec's `predictor.env` and the contract variables win over these. */
  readonly env?: Readonly<Record<string, string>>;
  /** Working directory; default the API's project folder. */
  readonly cwd?: string;
}

/**
 * Says which process runs a replica. The daemon binds the real replica entry; tests bind a small
 * replica script (test/harness/fake-replica.mjs).
 */
export const ReplicaLauncher = Symbol('ReplicaLauncher');
export interface ReplicaLauncher {
  launch(ctx: ReplicaLaunchContext): ReplicaLaunch;
}

export interface NodeEntryLauncherOptions {
  /** Absolute path of the replica's entry module (`.mjs`/`.js`, or `.ts` run through tsx). */
  readonly entry: string;
  /** Node flags before the entry; default `--import <tsx>` for a `.ts` entry, none otherwise. */
  readonly execArgv?: readonly string[];
  /** Arguments after the entry. */
  readonly args?: readonly string[];
  readonly env?: Readonly<Record<string, string>>;
}

/** Runs a replica entry module with this Node binary (`process.execPath`). */
export class NodeEntryReplicaLauncher implements ReplicaLauncher {
  private readonly execArgv: readonly string[];

  constructor(private readonly options: NodeEntryLauncherOptions) {
    // tsx is resolved here, not by the child: the child's working folder is the user's project,
    // where `--import tsx` would not be found.
    this.execArgv = options.execArgv ?? (options.entry.endsWith('.ts') ? ['--import', import.meta.resolve('tsx')] : []);
  }

  launch(): ReplicaLaunch {
    return {
      command: process.execPath,
      args: [...this.execArgv, this.options.entry, ...(this.options.args ?? [])],
      ...(this.options.env ? { env: this.options.env } : {}),
    };
  }
}
