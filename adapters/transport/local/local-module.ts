import { ContainerModule } from 'inversify';
import { Clock } from '../../../core/clock.js';
import { EventBus } from '../../../core/ports/event-bus.js';
import { Logger } from '../../../core/ports/logger.js';
import { ChildMetricsSink, MetricsTransport } from '../../../core/ports/metrics-transport.js';
import { IpcMetricsTransport } from './ipc-metrics-transport.js';
import { DEFAULT_EVENT_HISTORY, LocalEventBus } from './local-event-bus.js';
import { LocalMetricsTransport } from './local-metrics-transport.js';

/** Settings of the `local` transports (all optional). */
export interface LocalTransportConfig {
  /** Events kept for `events$({ sinceMs })` replay; default 10 000. */
  readonly eventHistory?: number;
  /** Replica side: samples waiting on the IPC channel before new ones are dropped; default 64. */
  readonly ipcMaxPending?: number;
}
/** Token for `LocalTransportConfig`; optional. */
export const LocalTransportConfig = Symbol('LocalTransportConfig');

/**
 * The `local` kind, daemon side (the embedded default, SG 1.1): `MetricsTransport` and `ChildMetricsSink`
 * are one `LocalMetricsTransport` (in-process samples plus IPC from attached child replicas);
 * `EventBus` is a `LocalEventBus` with a bounded history.
 */
export const localTransportModule = new ContainerModule(({ bind }) => {
  bind(LocalMetricsTransport)
    .toDynamicValue((ctx) => new LocalMetricsTransport(ctx.get<Logger>(Logger), ctx.get<Clock>(Clock)))
    .inSingletonScope();
  bind(MetricsTransport).toService(LocalMetricsTransport);
  bind(ChildMetricsSink).toService(LocalMetricsTransport);
  bind(LocalEventBus)
    .toDynamicValue((ctx) => {
      const config = ctx.get<LocalTransportConfig>(LocalTransportConfig, { optional: true }) ?? {};
      return new LocalEventBus(ctx.get<Logger>(Logger), ctx.get<Clock>(Clock), config.eventHistory ?? DEFAULT_EVENT_HISTORY);
    })
    .inSingletonScope();
  bind(EventBus).toService(LocalEventBus);
});

/**
 * The `local` kind, replica side: a replica process started by the daemon with an IPC channel publishes
 * its samples to the daemon over that channel (`IpcMetricsTransport`). Binds only `MetricsTransport`;
 * replicas publish no events.
 */
export const localReplicaTransportModule = new ContainerModule(({ bind }) => {
  bind(MetricsTransport)
    .toDynamicValue((ctx) => {
      const config = ctx.get<LocalTransportConfig>(LocalTransportConfig, { optional: true }) ?? {};
      return new IpcMetricsTransport(ctx.get<Logger>(Logger), ctx.get<Clock>(Clock), process, config.ipcMaxPending);
    })
    .inSingletonScope();
});
