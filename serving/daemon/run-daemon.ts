import { readFile, rm, writeFile } from 'node:fs/promises';
import { ContainerModule, type Container } from 'inversify';
import type { Logger } from 'pino';
import { DEFAULT_GATEWAY_PORT } from '../../core/config/api-spec.js';
import { entryFile, linkPackageInto } from '../../adapters/fs/package-root.js';
import { nodeProjectFileSystem } from '../../adapters/fs/node-project-file-system.js';
import { loadApiSpecsFromFile } from '../../core/config/load-api-specs.js';
import { ScalingPolicyRegistry } from '../../core/contribution/scaling-policy-registry.js';
import { Clock } from '../../core/clock.js';
import { EngineError } from '../../core/errors.js';
import { DEFAULT_PYTHON, PYTHON_ENV } from '../../core/predictor/python-predictor.js';
import { EventBus } from '../../core/ports/event-bus.js';
import { ChildMetricsSink, MetricsTransport } from '../../core/ports/metrics-transport.js';
import { ModelProvider } from '../../core/ports/model-provider.js';
import { OrchestratorTarget } from '../../core/ports/orchestrator-target.js';
import { ReplicaSpawnSource } from '../../core/ports/replica-spawn-source.js';
import { computeModule } from '../../adapters/compute/compute-module.js';
import { kubernetesOrchestratorModule, KubernetesOrchestratorOptions } from '../../adapters/orchestrators/kubernetes/kubernetes-orchestrator-module.js';
import { LocalOrchestratorConfig, localOrchestratorModule, NodeEntryReplicaLauncher, ReplicaLauncher } from '../../adapters/orchestrators/local/local-orchestrator-module.js';
import { localTransportModule } from '../../adapters/transport/local/local-module.js';
import { NatsTransportConfig, natsTransportModule } from '../../adapters/transport/nats/nats-module.js';
import { scalingBurstModule } from '../../plugins/scaling-burst/scaling-burst-module.js';
import { scalingCortexModule } from '../../plugins/scaling-cortex/scaling-cortex-module.js';
import { scalingCpuModule } from '../../plugins/scaling-cpu/scaling-cpu-module.js';
import { createContainer } from '../composition/composition-root.js';
import { Gateway } from '../gateway/gateway.js';
import { GatewayConfig, gatewayModule } from '../gateway/gateway-module.js';
import { modelProviderModule, storageModules } from '../models/storage-modules.js';
import { ControlApi } from './control-api.js';
import { cleanLeftovers } from './leftovers.js';
import { Daemon, type DaemonGateway } from './daemon.js';
import { builtinPredictorModules } from '../replica/predictor-modules.js';
import { PythonEnvCache } from './python-env-cache.js';
import { ScalerAutoscalers } from './scaler-autoscalers.js';
import { StateStore } from './state-store.js';

export interface DaemonOptions {
  readonly stateDir: string;
  /** `local` (child processes, default) or `kubernetes`. */
  readonly target: 'local' | 'kubernetes';
  /** NATS server URL(s) for metrics and events; default: the embedded local transport. */
  readonly nats?: string;
  /** Control API. Default 127.0.0.1:8889; every request shows the bearer token in `<state>/token`. */
  readonly host: string;
  readonly port: number;
  /** Gateway. Default 127.0.0.1:8888. */
  readonly gatewayHost: string;
  readonly gatewayPort: number;
  /**
   * Client timeouts of the gateway and of the replicas (ms): a request head not received after
   * `headersTimeoutMs` (default 10 s) closes its connection; a head and body not received after
   * `requestTimeoutMs` (default 60 s; 0 = never) gets 408. Replicas get them as MYELIN_*_TIMEOUT_MS.
   */
  readonly headersTimeoutMs?: number;
  readonly requestTimeoutMs?: number;
  /**
   * Direct connections (docs/gateway.md; local target only): the gateway hands client connections to
   * replica processes over their IPC channel. Default true; false (`myelin up --no-direct-connections`,
   * or `MYELIN_DIRECT_CONNECTIONS=0`) keeps every request on the gateway's proxy path.
   */
  readonly directConnections?: boolean;
  readonly log: Logger;
  /** Overrides for the local orchestrator (tests shorten backoff and grace periods). */
  readonly local?: LocalOrchestratorConfig;
  readonly kubernetes?: KubernetesOrchestratorOptions;
  /** The host printed in API URLs (default: the gateway host, or 127.0.0.1 when it listens on every interface). */
  readonly publicHost?: string;
  /**
   * The Python interpreter (`myelin up --python`): creates the requirements.txt virtualenvs and is
   * `MYELIN_PYTHON` of the local replicas (an API with requirements.txt runs its virtualenv's instead).
   * Default: `$MYELIN_PYTHON`, else `python3` on PATH.
   */
  readonly python?: string;
}

export interface RunningDaemon {
  readonly controlUrl: string;
  /** The control API's bearer token (also in `<state>/token`, mode 0600). */
  readonly token: string;
  readonly gatewayUrl: string;
  readonly daemon: Daemon;
  readonly container: Container;
  /** Resolves once the daemon stopped (after `stop()` or a `myelin down`). */
  readonly stopped: Promise<void>;
  stop(): Promise<void>;
}

/** The pid written in `pidFile`, if it holds one. */
async function readPidFile(pidFile: string): Promise<number | undefined> {
  try {
    const pid = Number.parseInt(await readFile(pidFile, 'utf8'), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** The pid in `pidFile` when that process is alive and is a myelin daemon (not this process). */
async function daemonPidInUse(pidFile: string): Promise<number | undefined> {
  const pid = await readPidFile(pidFile);
  if (pid === undefined || pid === process.pid) return undefined;
  try {
    process.kill(pid, 0);
  } catch {
    return undefined; // gone: a stale pid file from a daemon that crashed
  }
  try {
    // A reused pid of an unrelated process is not a daemon.
    return (await readFile(`/proc/${pid}/cmdline`, 'utf8')).includes('myelin') ? pid : undefined;
  } catch {
    return pid;
  }
}

/** Predictor types of the predictor plugins a replica loads (`plugins/predictor-<kind>/`). */
function builtinPredictorKinds(): string[] {
  return builtinPredictorModules().map((u) => /predictor-([a-z0-9-]+)-module\.[jt]s$/.exec(u)?.[1] ?? '').filter((k) => k !== '');
}

/** The replica process entry the local orchestrator runs: compiled `replica-entry.js`, or from the sources the `replica-entry.mjs` shim (tsx). */
export const REPLICA_ENTRY = entryFile(import.meta.url, '../replica/replica-entry');

/**
 * Composition root of the daemon (`myelin up`): loads the ContainerModules of the chosen target and
 * transport, starts transports → orchestrator → gateway → daemon (restoring every stored API) →
 * control API, and stops them in the reverse order. Writes `<state>/daemon.pid` while it runs.
 */
export async function runDaemon(o: DaemonOptions): Promise<RunningDaemon> {
  const log = o.log;
  const store = new StateStore(o.stateDir);
  await store.init();
  // Predictors unpacked under the state folder import 'myelin' as this installation.
  linkPackageInto(o.stateDir);
  // One daemon per state folder: a second one would restore every API again and start duplicate replicas.
  const other = await daemonPidInUse(store.pidFile);
  if (other !== undefined) {
    throw new EngineError('ENG_DAEMON_RUNNING', `another myelin daemon (pid ${other}) is using the state folder ${o.stateDir}; stop it with \`myelin down\` or pick another --state-dir`);
  }
  if (o.target === 'local') {
    // A daemon that died (kill -9) may have left replicas and spec files: end and remove them first.
    const left = await cleanLeftovers({ runDir: store.runDir, deadDaemonPid: await readPidFile(store.pidFile) });
    if (left.killed.length > 0 || left.removed.length > 0) log.warn({ killed: left.killed, removed: left.removed }, 'cleaned up what a daemon that did not stop left behind');
  }
  await writeFile(store.pidFile, `${process.pid}\n`);
  // Every caller shows the token, loopback ones too: another local user must not drive this daemon.
  const token = await store.token();
  const python = o.python || process.env[PYTHON_ENV] || DEFAULT_PYTHON;
  // Pods are not children of the daemon: there is no channel to hand a connection over.
  const directConnections = o.target === 'local' && o.directConnections !== false && process.env.MYELIN_DIRECT_CONNECTIONS !== '0';

  // The replicas cut slow clients as the gateway does (straight callers, and a gateway's stalled stream).
  const timeoutEnv: Record<string, string> = {
    ...(o.headersTimeoutMs !== undefined ? { MYELIN_HEADERS_TIMEOUT_MS: String(o.headersTimeoutMs) } : {}),
    ...(o.requestTimeoutMs !== undefined ? { MYELIN_REQUEST_TIMEOUT_MS: String(o.requestTimeoutMs) } : {}),
  };
  const wiring = new ContainerModule(({ bind }) => {
    bind(GatewayConfig).toConstantValue({ host: o.gatewayHost, port: o.gatewayPort, headersTimeoutMs: o.headersTimeoutMs, requestTimeoutMs: o.requestTimeoutMs, directConnections });
    bind(ScalingPolicyRegistry).toSelf().inSingletonScope();
    if (o.nats) bind(NatsTransportConfig).toConstantValue({ servers: o.nats });
    if (o.target === 'local') {
      // Replicas read the models the daemon prefetched from the same machine cache.
      bind(LocalOrchestratorConfig).toConstantValue({ runDir: store.runDir, ...o.local, modelCacheDir: store.modelsDir });
      bind(ReplicaLauncher).toConstantValue(
        new NodeEntryReplicaLauncher({ entry: REPLICA_ENTRY, env: { [PYTHON_ENV]: python, ...timeoutEnv, ...(o.nats ? { MYELIN_NATS_URL: o.nats } : {}) } }),
      );
    } else {
      // Pods cannot reach the daemon over IPC: their samples travel over NATS when the daemon has it.
      // Nor its interpreter or virtualenvs: a pod runs the Python of its image.
      bind(KubernetesOrchestratorOptions).toConstantValue({ ...o.kubernetes, replicaEnv: { ...o.kubernetes?.replicaEnv, ...timeoutEnv, ...(o.nats ? { MYELIN_NATS_URL: o.nats } : {}) } });
    }
  });
  const modules = [
    wiring,
    o.nats ? natsTransportModule : localTransportModule,
    ...(o.target === 'local' ? [computeModule, localOrchestratorModule] : [kubernetesOrchestratorModule]),
    gatewayModule,
    scalingCortexModule,
    scalingBurstModule,
    scalingCpuModule,
    // Model stores and the machine cache (<state>/models): models are checked and prefetched at deploy.
    ...storageModules,
    modelProviderModule({ cacheRoot: store.modelsDir, log }),
  ];
  const container = createContainer({ logger: log, modules });
  const metrics = container.get<MetricsTransport>(MetricsTransport);
  const events = container.get<EventBus>(EventBus);
  const orchestrator = container.get<OrchestratorTarget>(OrchestratorTarget);
  const gateway = container.get(Gateway);
  const clock = container.get<Clock>(Clock);

  // Samples from local replica processes travel over their IPC channel into the local transport. Only
  // a target that runs local processes binds a spawn source (kubernetes does not), and only the local
  // transport a child sink (with NATS, replicas publish their samples there themselves).
  const detach = new Set<() => void>();
  if (directConnections && container.isBound(ReplicaSpawnSource)) {
    // Direct connections: the gateway hands client connections to replicas over the same channel.
    const sub = container.get<ReplicaSpawnSource>(ReplicaSpawnSource).spawns$().subscribe((s) => {
      const child = s.child;
      const send = child.send;
      if (send === undefined) return;
      const off = gateway.attachReplicaChannel(s.replica, {
        get connected() {
          return child.connected;
        },
        send: (message, handle, options, callback) => send.call(child, message, handle, options, callback),
        on: (event, listener) => child.on(event, listener),
        off: (event, listener) => child.off(event, listener),
      });
      detach.add(off);
      child.once('exit', () => {
        off();
        detach.delete(off);
      });
    });
    detach.add(() => sub.unsubscribe());
  }
  if (container.isBound(ReplicaSpawnSource) && container.isBound(ChildMetricsSink)) {
    const sink = container.get<ChildMetricsSink>(ChildMetricsSink);
    const sub = container.get<ReplicaSpawnSource>(ReplicaSpawnSource).spawns$().subscribe((s) => {
      const off = sink.attachChild(s.child);
      detach.add(off);
      s.child.once('exit', () => {
        off();
        detach.delete(off);
      });
    });
    detach.add(() => sub.unsubscribe());
  }

  let resolveStopped!: () => void;
  const stopped = new Promise<void>((r) => (resolveStopped = r));
  let stopping: Promise<void> | undefined;
  const publicHost = o.publicHost ?? (o.gatewayHost === '0.0.0.0' || o.gatewayHost === '::' ? '127.0.0.1' : o.gatewayHost);

  await metrics.start();
  await events.start();
  await orchestrator.start();
  // Until every stored API is routed again, an unknown path is 503 "starting", not 404 (issue 11, defect 9).
  gateway.setRestoring(true);
  try {
    await gateway.start();
  } catch (err) {
    await orchestrator.close();
    await events.close();
    await metrics.close();
    await rm(store.pidFile, { force: true });
    throw err;
  }
  const gatewayPort = gateway.sharedPort();
  const daemonGateway: DaemonGateway = {
    upsertApi: (spec, access) => gateway.upsertApi(spec, access),
    upsertSplitter: (spec, access) => gateway.upsertSplitter(spec, access),
    removeSplitter: (name) => gateway.removeSplitter(name),
    splitterStats: (name) => gateway.splitterStats(name),
    removeApi: (name) => gateway.removeApi(name),
    urlFor: (spec) => `http://${publicHost}:${spec.networking.localPort !== DEFAULT_GATEWAY_PORT ? spec.networking.localPort : gatewayPort}${spec.networking.endpoint}`,
  };
  const daemon = new Daemon({
    store,
    orchestrator,
    gateway: daemonGateway,
    metrics,
    events,
    autoscalers: new ScalerAutoscalers(metrics, container.get(ScalingPolicyRegistry), log),
    loadSpecs: (file) => loadApiSpecsFromFile(file, { files: nodeProjectFileSystem, target: o.target }),
    servedPredictorTypes: builtinPredictorKinds(),
    // Virtualenvs only where the replicas run: on this machine.
    pythonEnvs: o.target === 'local' ? new PythonEnvCache({ dir: store.pythonEnvsDir, python, log }) : undefined,
    models: container.get<ModelProvider>(ModelProvider),
    // Pods have no access to this machine's cache: their models are only checked at deploy.
    prefetchModels: o.target === 'local',
    clock,
    log,
    onShutdown: () => void stop(),
    // The project tokens pods download their API's project with derive from the control API's token.
    projectSecret: token,
  });
  // Requests held for an API at zero replicas poke its autoscaler and count as its in-flight load.
  gateway.setColdStartListener({ poke: (api, held) => daemon.poke(api, held), sample: (s) => metrics.publish(s) });
  await daemon.start().finally(() => gateway.setRestoring(false));
  const control = new ControlApi({ host: o.host, port: o.port, service: daemon, projects: daemon, log, token, tokenFile: store.tokenFile, extraMetrics: () => gateway.metrics() });
  let controlAddr;
  try {
    controlAddr = await control.start();
  } catch (err) {
    await daemon.close();
    await gateway.close();
    await orchestrator.close();
    await events.close();
    await metrics.close();
    await rm(store.pidFile, { force: true });
    throw new EngineError('ENG_DAEMON_LISTEN', `cannot listen on ${o.host}:${o.port} for the control API (${(err as NodeJS.ErrnoException).code ?? err}); is another daemon running?`, { cause: err });
  }

  /** Stops every part in reverse order; a part that fails to stop is logged and the others still stop. */
  function stop(): Promise<void> {
    stopping ??= (async () => {
      log.info('daemon stopping');
      const steps: Array<[string, () => unknown]> = [
        ['control api', () => control.close()],
        ['daemon', () => daemon.close()],
        ['gateway', () => gateway.close()],
        ['orchestrator', () => orchestrator.close()],
        ['replica metrics', () => detach.forEach((d) => d())],
        ['event bus', () => events.close()],
        ['metrics transport', () => metrics.close()],
        ['pid file', () => rm(store.pidFile, { force: true })],
      ];
      for (const [part, step] of steps) {
        try {
          await step();
        } catch (err) {
          log.error({ err, part }, 'could not stop cleanly');
        }
      }
      log.info('daemon stopped');
      resolveStopped();
    })();
    return stopping;
  }

  const controlHost = controlAddr.address.includes(':') ? `[${controlAddr.address}]` : controlAddr.address;
  return {
    controlUrl: `http://${controlHost}:${controlAddr.port}`,
    token,
    gatewayUrl: `http://${publicHost}:${gatewayPort}`,
    daemon,
    container,
    stopped,
    stop,
  };
}
