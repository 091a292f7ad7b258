import { ContainerModule } from 'inversify';
import { Clock } from '../../../core/clock.js';
import { EventBus } from '../../../core/ports/event-bus.js';
import { Logger } from '../../../core/ports/logger.js';
import { ChildMetricsSink, MetricsTransport } from '../../../core/ports/metrics-transport.js';
import { DEFAULT_EVENT_HISTORY, LocalEventBus } from './local-event-bus.js';
import { LocalMetricsTransport } from './local-metrics-transport.js';
import { LocalTransportConfig } from './local-replica-module.js';

// The replica side lives in its own module (a replica must not load rxjs or the daemon's side).
export { LocalTransportConfig, localReplicaTransportModule } from './local-replica-module.js';

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
