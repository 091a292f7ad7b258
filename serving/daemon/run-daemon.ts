import { mkdir, rm, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { ContainerModule, type Container } from 'inversify';
import type { Logger } from 'pino';
import { loadApiSpecsFromFile } from '../../core/config/load-api-specs.js';
import { ScalingPolicyRegistry } from '../../core/contribution/scaling-policy-registry.js';
import { Clock } from '../../core/clock.js';
import { EngineError } from '../../core/errors.js';
import { EventBus } from '../../core/ports/event-bus.js';
import { ChildMetricsSink, MetricsTransport } from '../../core/ports/metrics-transport.js';
import { OrchestratorTarget } from '../../core/ports/orchestrator-target.js';
import { computeModule } from '../../adapters/compute/compute-module.js';
import { kubernetesOrchestratorModule, KubernetesOrchestratorOptions } from '../../adapters/orchestrators/kubernetes/kubernetes-orchestrator-module.js';
import { LocalOrchestrator, LocalOrchestratorConfig, localOrchestratorModule, NodeEntryReplicaLauncher, ReplicaLauncher } from '../../adapters/orchestrators/local/local-orchestrator-module.js';
import { localTransportModule } from '../../adapters/transport/local/local-module.js';
import { NatsTransportConfig, natsTransportModule } from '../../adapters/transport/nats/nats-module.js';
import { scalingBurstModule } from '../../plugins/scaling-burst/scaling-burst-module.js';
import { scalingCortexModule } from '../../plugins/scaling-cortex/scaling-cortex-module.js';
import { scalingCpuModule } from '../../plugins/scaling-cpu/scaling-cpu-module.js';
import { createContainer } from '../composition/composition-root.js';
import { Gateway } from '../gateway/gateway.js';
import { GatewayConfig, gatewayModule } from '../gateway/gateway-module.js';
import { ControlApi, isLoopbackHost } from './control-api.js';
import { Daemon, type DaemonGateway } from './daemon.js';
import { builtinPredictorModules } from '../replica/predictor-modules.js';
import { ScalerAutoscalers } from './scaler-autoscalers.js';
import { StateStore } from './state-store.js';

export interface DaemonOptions {
  readonly stateDir: string;
  /** `local` (child processes, default) or `kubernetes`. */
  readonly target: 'local' | 'kubernetes';
  /** NATS server URL(s) for metrics and events; default: the embedded local transport. */
  readonly nats?: string;
  /** Control API. Default 127.0.0.1:8889; a non-loopback host requires the bearer token. */
  readonly host: string;
  readonly port: number;
  /** Gateway. Default 127.0.0.1:8888. */
  readonly gatewayHost: string;
  readonly gatewayPort: number;
  readonly log: Logger;
  /** Overrides for the local orchestrator (tests shorten backoff and grace periods). */
  readonly local?: LocalOrchestratorConfig;
  readonly kubernetes?: KubernetesOrchestratorOptions;
  /** The host printed in API URLs (default: the gateway host, or 127.0.0.1 when it listens on every interface). */
  readonly publicHost?: string;
}

export interface RunningDaemon {
  readonly controlUrl: string;
  readonly gatewayUrl: string;
  readonly daemon: Daemon;
  readonly container: Container;
  /** Resolves once the daemon stopped (after `stop()` or a `myelin down`). */
  readonly stopped: Promise<void>;
  stop(): Promise<void>;
}

/** Predictor types of the predictor plugins a replica loads (`plugins/predictor-<kind>/`). */
function builtinPredictorKinds(): string[] {
  return builtinPredictorModules().map((u) => /predictor-([a-z0-9-]+)-module\.ts$/.exec(u)?.[1] ?? '').filter((k) => k !== '');
}

/** The replica process entry the local orchestrator runs (serving/replica/replica-entry.mjs). */
export const REPLICA_ENTRY = fileURLToPath(new URL('../replica/replica-entry.mjs', import.meta.url));

/**
 * Composition root of the daemon (`myelin up`): loads the ContainerModules of the chosen target and
 * transport, starts transports → orchestrator → gateway → daemon (restoring every stored API) →
 * control API, and stops them in the reverse order. Writes `<state>/daemon.pid` while it runs.
 */
export async function runDaemon(o: DaemonOptions): Promise<RunningDaemon> {
  const log = o.log;
  const store = new StateStore(o.stateDir);
  await store.init();
  const token = isLoopbackHost(o.host) ? undefined : await store.token();

  const wiring = new ContainerModule(({ bind }) => {
    bind(GatewayConfig).toConstantValue({ host: o.gatewayHost, port: o.gatewayPort });
    bind(ScalingPolicyRegistry).toSelf().inSingletonScope();
    if (o.nats) bind(NatsTransportConfig).toConstantValue({ servers: o.nats });
    if (o.target === 'local') {
      bind(LocalOrchestratorConfig).toConstantValue({ ...o.local });
      bind(ReplicaLauncher).toConstantValue(
        new NodeEntryReplicaLauncher({ entry: REPLICA_ENTRY, env: o.nats ? { MYELIN_NATS_URL: o.nats } : undefined }),
      );
    } else {
      // Pods cannot reach the daemon over IPC: their samples travel over NATS when the daemon has it.
      bind(KubernetesOrchestratorOptions).toConstantValue({ ...o.kubernetes, replicaEnv: { ...o.kubernetes?.replicaEnv, ...(o.nats ? { MYELIN_NATS_URL: o.nats } : {}) } });
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
  ];
  const container = createContainer({ logger: log, modules });
  const metrics = container.get<MetricsTransport>(MetricsTransport);
  const events = container.get<EventBus>(EventBus);
  const orchestrator = container.get<OrchestratorTarget>(OrchestratorTarget);
  const gateway = container.get(Gateway);
  const clock = container.get<Clock>(Clock);

  // Samples from local replica processes travel over their IPC channel into the local transport.
  const detach: Array<() => void> = [];
  if (o.target === 'local' && !o.nats) {
    const sink = container.get<ChildMetricsSink>(ChildMetricsSink);
    const sub = container.get(LocalOrchestrator).spawns$().subscribe((s) => detach.push(sink.attachChild(s.child)));
    detach.push(() => sub.unsubscribe());
  }

  let resolveStopped!: () => void;
  const stopped = new Promise<void>((r) => (resolveStopped = r));
  let stopping: Promise<void> | undefined;
  const publicHost = o.publicHost ?? (o.gatewayHost === '0.0.0.0' || o.gatewayHost === '::' ? '127.0.0.1' : o.gatewayHost);

  await metrics.start();
  await events.start();
  await orchestrator.start();
  try {
    await gateway.start();
  } catch (err) {
    await orchestrator.close();
    await events.close();
    await metrics.close();
    throw err;
  }
  const gatewayPort = gateway.sharedPort();
  const daemonGateway: DaemonGateway = {
    upsertApi: (spec) => gateway.upsertApi(spec),
    removeApi: (name) => gateway.removeApi(name),
    urlFor: (spec) => `http://${publicHost}:${spec.networking.localPort !== 8888 ? spec.networking.localPort : gatewayPort}${spec.networking.endpoint}`,
  };
  const daemon = new Daemon({
    store,
    orchestrator,
    gateway: daemonGateway,
    metrics,
    events,
    autoscalers: new ScalerAutoscalers(metrics, container.get(ScalingPolicyRegistry), log),
    loadSpecs: (file) => loadApiSpecsFromFile(file, { target: o.target }),
    servedPredictorTypes: builtinPredictorKinds(),
    clock,
    log,
    onShutdown: () => void stop(),
  });
  await daemon.start();
  const control = new ControlApi({ host: o.host, port: o.port, service: daemon, log, token });
  let controlAddr;
  try {
    controlAddr = await control.start();
  } catch (err) {
    await daemon.close();
    await gateway.close();
    await orchestrator.close();
    await events.close();
    await metrics.close();
    throw new EngineError('ENG_DAEMON_LISTEN', `cannot listen on ${o.host}:${o.port} for the control API (${(err as NodeJS.ErrnoException).code ?? err}); is another daemon running?`, { cause: err });
  }
  await mkdir(o.stateDir, { recursive: true });
  await writeFile(store.pidFile, `${process.pid}\n`);

  function stop(): Promise<void> {
    stopping ??= (async () => {
      log.info('daemon stopping');
      await control.close();
      await daemon.close();
      await gateway.close();
      await orchestrator.close();
      for (const d of detach) d();
      await events.close();
      await metrics.close();
      await rm(store.pidFile, { force: true });
      log.info('daemon stopped');
      resolveStopped();
    })();
    return stopping;
  }

  const controlHost = controlAddr.address.includes(':') ? `[${controlAddr.address}]` : controlAddr.address;
  return {
    controlUrl: `http://${controlHost}:${controlAddr.port}`,
    gatewayUrl: `http://${publicHost}:${gatewayPort}`,
    daemon,
    container,
    stopped,
    stop,
  };
}
