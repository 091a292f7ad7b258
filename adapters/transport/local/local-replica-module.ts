import { ContainerModule } from 'inversify';
import { Clock } from '../../../core/clock.js';
import { Logger } from '../../../core/ports/logger.js';
import { MetricsTransport } from '../../../core/ports/metrics-transport.js';
import { IpcMetricsTransport } from './ipc-metrics-transport.js';

/** Token for `LocalTransportConfig`; optional. */
export const LocalTransportConfig = Symbol('LocalTransportConfig');
/** Settings of the `local` transports (all optional). */
export interface LocalTransportConfig {
  /** Events kept for `events$({ sinceMs })` replay; default 10 000. */
  readonly eventHistory?: number;
  /** Replica side: samples waiting on the IPC channel before new ones are dropped; default 64. */
  readonly ipcMaxPending?: number;
}

/**
 * The `local` kind, replica side: a replica started by the local orchestrator (with an IPC channel) sends
 * its samples to the daemon over that channel (`IpcMetricsTransport`). Binds only `MetricsTransport`;
 * replicas publish no events. Its own module so a replica loads neither the daemon's side nor rxjs.
 */
export const localReplicaTransportModule = new ContainerModule(({ bind }) => {
  bind(MetricsTransport)
    .toDynamicValue((ctx) => {
      const config = ctx.get<LocalTransportConfig>(LocalTransportConfig, { optional: true }) ?? {};
      return new IpcMetricsTransport(ctx.get<Logger>(Logger), ctx.get<Clock>(Clock), process, config.ipcMaxPending);
    })
    .inSingletonScope();
});
