import { readFileSync } from 'node:fs';
import { ContainerModule } from 'inversify';
import type { Logger as PinoLogger } from 'pino';
import type { ApiSpec } from '../../core/config/api-spec.js';
import { PredictorError } from '../../core/errors.js';
import type { Logger } from '../../core/ports/logger.js';
import { MetricsTransport } from '../../core/ports/metrics-transport.js';
import { IpcMetricsTransport } from '../../adapters/transport/local/ipc-metrics-transport.js';
import type { NatsTransportOptions } from '../../adapters/transport/nats/nats-options.js';
import { createContainer } from '../composition/composition-root.js';
import { createRootLogger } from '../composition/logger.js';
import { onDirectMessage } from './direct-connections.js';
import { installProcessGuards } from './process-guards.js';
import { startReplica, type ExecutorChoice, type Replica } from './replica-server.js';

/** IPC message types a replica process sends to its parent (`process.send`). */
export const REPLICA_MESSAGES = {
  /** `{ type, port, host }` or `{ type, socketPath }`: listening (not yet ready). */
  listening: 'myelin.replica.listening',
  /** `{ type }`: every predictor instance is constructed; `/healthz/ready` answers 200. */
  ready: 'myelin.replica.ready',
  /** `{ type, message }`: the predictor cannot load; the process exits with code 1 next. */
  failed: 'myelin.replica.failed',
  /** Sent by `IpcMetricsTransport`: `{ type, sample }` every sample interval. */
  metrics: 'myelin.metrics',
} as const;
/** IPC message the parent may send instead of SIGTERM: `{ type: 'myelin.replica.shutdown' }`. */
export const REPLICA_SHUTDOWN_MESSAGE = 'myelin.replica.shutdown';

/**
 * What a replica process reads from its environment (the local orchestrator's contract in
 * adapters/orchestrators/local/replica-launcher.ts, and the Kubernetes pod's env):
 * - the spec: `MYELIN_SPEC_FILE` (path of a JSON `ApiSpec`) or `MYELIN_API_SPEC` (the JSON itself);
 * - `MYELIN_REPLICA_ID`, `MYELIN_REVISION` (defaults: generated, a hash of the spec);
 * - `MYELIN_HOST` (default 127.0.0.1) and `MYELIN_PORT` (default 0 = any free port), or `MYELIN_SOCKET_PATH`;
 * - optional: `MYELIN_SAMPLE_INTERVAL_MS` (1000), `MYELIN_SHUTDOWN_GRACE_MS` (30000),
 *   `MYELIN_HEADERS_TIMEOUT_MS` (10000), `MYELIN_REQUEST_TIMEOUT_MS` (60000, 0 = off),
 *   `MYELIN_EXECUTOR` (`auto` | `in-thread` | `worker-threads`), `MYELIN_PREDICTOR_MODULES` (JSON array of
 *   extra plugin module specifiers), `MYELIN_LOG_LEVEL`.
 */
export interface ReplicaProcessConfig {
  readonly spec: ApiSpec;
  readonly replicaId?: string;
  readonly revision?: string;
  readonly host: string;
  readonly port: number;
  readonly socketPath?: string;
  readonly sampleIntervalMs?: number;
  readonly shutdownGraceMs?: number;
  readonly headersTimeoutMs?: number;
  readonly requestTimeoutMs?: number;
  readonly executor?: ExecutorChoice;
  readonly extraPredictorModules: readonly string[];
}

/** Reads the replica's configuration from `env`; throws `PredictorError` (code `ENG_REPLICA_ENV`) on a bad one. */
export function replicaConfigFromEnv(env: NodeJS.ProcessEnv): ReplicaProcessConfig {
  const bad = (message: string, cause?: unknown): PredictorError => new PredictorError(message, { code: 'ENG_REPLICA_ENV', cause });
  let specText: string;
  if (env.MYELIN_SPEC_FILE) {
    try {
      specText = readFileSync(env.MYELIN_SPEC_FILE, 'utf8');
    } catch (err) {
      throw bad(`cannot read MYELIN_SPEC_FILE ${env.MYELIN_SPEC_FILE}: ${(err as Error).message}`, err);
    }
  } else if (env.MYELIN_API_SPEC) specText = env.MYELIN_API_SPEC;
  else throw bad('no API spec: set MYELIN_SPEC_FILE (a JSON file) or MYELIN_API_SPEC (the JSON)');
  let spec: ApiSpec;
  try {
    spec = JSON.parse(specText) as ApiSpec;
  } catch (err) {
    throw bad(`the API spec is not valid JSON: ${(err as Error).message}`, err);
  }
  if (typeof spec?.name !== 'string' || typeof spec.predictor?.type !== 'string' || typeof spec.autoscaling?.maxReplicaConcurrency !== 'number') {
    throw bad('the API spec is not a resolved ApiSpec (name, predictor.type, autoscaling.maxReplicaConcurrency missing)');
  }
  const int = (name: string, min: number): number | undefined => {
    const v = env[name];
    if (v === undefined || v === '') return undefined;
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw bad(`${name} must be an integer >= ${min} (got "${v}")`);
    return n;
  };
  const executor = env.MYELIN_EXECUTOR;
  if (executor !== undefined && executor !== '' && !['auto', 'in-thread', 'worker-threads'].includes(executor)) {
    throw bad(`MYELIN_EXECUTOR must be auto, in-thread or worker-threads (got "${executor}")`);
  }
  let extra: string[] = [];
  if (env.MYELIN_PREDICTOR_MODULES) {
    try {
      extra = JSON.parse(env.MYELIN_PREDICTOR_MODULES) as string[];
    } catch (err) {
      throw bad('MYELIN_PREDICTOR_MODULES must be a JSON array of module specifiers', err);
    }
    if (!Array.isArray(extra) || !extra.every((s) => typeof s === 'string')) throw bad('MYELIN_PREDICTOR_MODULES must be a JSON array of strings');
  }
  return {
    spec,
    replicaId: env.MYELIN_REPLICA_ID || undefined,
    revision: env.MYELIN_REVISION || undefined,
    host: env.MYELIN_HOST || '127.0.0.1',
    port: int('MYELIN_PORT', 0) ?? 0,
    socketPath: env.MYELIN_SOCKET_PATH || undefined,
    sampleIntervalMs: int('MYELIN_SAMPLE_INTERVAL_MS', 1),
    shutdownGraceMs: int('MYELIN_SHUTDOWN_GRACE_MS', 0),
    headersTimeoutMs: int('MYELIN_HEADERS_TIMEOUT_MS', 1),
    requestTimeoutMs: int('MYELIN_REQUEST_TIMEOUT_MS', 0),
    executor: (executor || undefined) as ExecutorChoice | undefined,
    extraPredictorModules: extra,
  };
}

function send(message: Record<string, unknown>): void {
  if (typeof process.send === 'function' && process.connected) process.send(message, undefined, undefined, () => {});
}

/**
 * Runs a replica as the main work of this process (started by the local orchestrator, a Kubernetes
 * pod, or by hand): reads `replicaConfigFromEnv(env)`, serves, reports over IPC when there is a channel
 * (`REPLICA_MESSAGES`; samples through `IpcMetricsTransport`), else prints the listening message as one
 * JSON line on stdout. SIGTERM, SIGINT, `myelin.replica.shutdown` or the IPC channel closing start a
 * graceful stop, then the process exits 0; a predictor that cannot load makes it exit 1.
 */
export async function runReplicaProcess(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const base: Record<string, string> = {};
  if (env.MYELIN_API) base.api = env.MYELIN_API;
  if (env.MYELIN_REPLICA_ID) base.replica = env.MYELIN_REPLICA_ID;
  const log: Logger = createRootLogger({ base });
  installProcessGuards(log);
  let config: ReplicaProcessConfig;
  try {
    config = replicaConfigFromEnv(env);
  } catch (err) {
    log.fatal({ err }, 'replica cannot start');
    return exitAfterFlush(log, 1);
  }
  // `predictor.log_level` (Cortex's values) wins over MYELIN_LOG_LEVEL for this replica and its workers.
  const level = config.spec.predictor.logLevel;
  if (level !== undefined) log.level = level === 'warning' ? 'warn' : level;
  const ipc = IpcMetricsTransport.available(process);
  const transport = await replicaTransport(env, log, ipc);
  await transport?.start();

  let replica: Replica | undefined;
  let stopping: Promise<void> | undefined;
  const stop = (code: number, reason: string): Promise<void> => {
    if (stopping) {
      // A second SIGTERM/SIGINT while draining: stop now.
      if (reason === 'SIGTERM' || reason === 'SIGINT') process.exit(code);
      return stopping;
    }
    // A drain that never ends (a hung close) must not keep the process alive. When the daemon is gone
    // (its IPC channel closed: killed, even with -9) nobody waits for answers or an exit code, and a
    // normal exit can hang in native teardown (seen with tsx's loader thread and its esbuild service
    // children once their parent died): the process then ends itself with SIGKILL after a short close.
    const parentGone = reason === 'IPC channel closed';
    const end = (): void => {
      if (parentGone) process.kill(process.pid, 'SIGKILL');
      else process.exit(code);
    };
    const graceMs = config?.shutdownGraceMs ?? 30_000;
    setTimeout(end, parentGone ? 3000 : graceMs + 5000);
    stopping ??= (async () => {
      log.info({ reason }, 'replica process stopping');
      try {
        await replica?.close();
      } catch (err) {
        log.error({ err }, 'replica close failed');
      }
      await transport?.close();
      if (parentGone) {
        const kill = setTimeout(end, 1000);
        log.flush(() => {
          clearTimeout(kill);
          end();
        });
      } else exitAfterFlush(log, code);
    })();
    return stopping;
  };
  process.on('SIGTERM', () => void stop(0, 'SIGTERM'));
  process.on('SIGINT', () => void stop(0, 'SIGINT'));
  if (ipc) {
    process.once('disconnect', () => void stop(0, 'IPC channel closed'));
    process.on('message', (m: unknown, handle: unknown) => {
      if ((m as { type?: unknown } | null)?.type === REPLICA_SHUTDOWN_MESSAGE) void stop(0, REPLICA_SHUTDOWN_MESSAGE);
      // Direct connections (docs/gateway.md): a client connection handed over by the gateway, or a shed request.
      else onDirectMessage(replica, m, handle);
    });
  }

  try {
    replica = await startReplica({
      spec: config.spec,
      log,
      host: config.host,
      port: config.port,
      socketPath: config.socketPath,
      transport,
      replicaId: config.replicaId,
      revision: config.revision,
      sampleIntervalMs: config.sampleIntervalMs,
      shutdownGraceMs: config.shutdownGraceMs,
      headersTimeoutMs: config.headersTimeoutMs,
      requestTimeoutMs: config.requestTimeoutMs,
      executor: config.executor,
      extraPredictorModules: config.extraPredictorModules,
      reportDirect: (message) => send({ ...message }),
      onFatal: (err) => {
        send({ type: REPLICA_MESSAGES.failed, message: err.message });
        void stop(1, 'predictor failed to load');
      },
    });
  } catch (err) {
    log.fatal({ err }, 'replica cannot listen');
    return exitAfterFlush(log, 1);
  }
  const a = replica.address;
  const listening = a.socketPath ? { type: REPLICA_MESSAGES.listening, socketPath: a.socketPath } : { type: REPLICA_MESSAGES.listening, host: a.host, port: a.port };
  if (ipc) send(listening);
  else process.stdout.write(`${JSON.stringify(listening)}\n`);
  replica.ready.then(
    () => send({ type: REPLICA_MESSAGES.ready }),
    () => {},
  );
}

/**
 * The replica's composition root: with a NATS URL (`myelin up --nats`, or a pod's env) samples go
 * straight to NATS; else over the IPC channel to the daemon; a replica run by hand has no transport.
 * The transport comes from its kind's ContainerModule, as in the daemon.
 */
async function replicaTransport(env: NodeJS.ProcessEnv, log: Logger, ipc: boolean): Promise<MetricsTransport | undefined> {
  const natsUrl = env.MYELIN_NATS_URL;
  if (!natsUrl && !ipc) return undefined;
  // Only the chosen kind is imported: a replica on the local transport never loads the NATS client.
  let transportModule: ContainerModule;
  const modules: ContainerModule[] = [];
  if (natsUrl) {
    const { NatsTransportConfig, natsReplicaTransportModule } = await import('../../adapters/transport/nats/nats-module.js');
    const nats: NatsTransportOptions = {
      servers: natsUrl.split(','),
      ...(env.MYELIN_NATS_PREFIX ? { subjectPrefix: env.MYELIN_NATS_PREFIX } : {}),
      // A rolling upgrade with a daemon older than the binary sample layout: MYELIN_METRICS_ENCODING=json.
      ...(env.MYELIN_METRICS_ENCODING === 'json' ? { sampleEncoding: 'json' as const } : {}),
    };
    modules.push(new ContainerModule(({ bind }) => void bind(NatsTransportConfig).toConstantValue(nats)));
    transportModule = natsReplicaTransportModule;
  } else transportModule = (await import('../../adapters/transport/local/local-replica-module.js')).localReplicaTransportModule;
  const container = createContainer({ logger: log as PinoLogger, modules: [...modules, transportModule] });
  return container.get<MetricsTransport>(MetricsTransport);
}

/** Ends the process once the log lines written so far are flushed (bounded: 2 s). */
function exitAfterFlush(log: Logger, code: number): void {
  const timer = setTimeout(() => process.exit(code), 2000);
  log.flush(() => {
    clearTimeout(timer);
    process.exit(code);
  });
}
