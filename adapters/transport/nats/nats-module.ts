import { ContainerModule } from 'inversify';
import { Clock } from '../../../core/clock.js';
import { EventBus } from '../../../core/ports/event-bus.js';
import { Logger } from '../../../core/ports/logger.js';
import { MetricsTransport } from '../../../core/ports/metrics-transport.js';
import { NatsEventBus } from './nats-event-bus.js';
import { NatsMetricsTransport } from './nats-metrics-transport.js';
import type { NatsTransportOptions } from './nats-options.js';

export type { NatsTransportOptions } from './nats-options.js';
/** Token for `NatsTransportOptions` (required: at least `servers`, from the daemon's `--nats URL`). */
export const NatsTransportConfig = Symbol('NatsTransportConfig');

/**
 * The `nats` kind (SG 1.1): `MetricsTransport` is a `NatsMetricsTransport` and `EventBus` a
 * `NatsEventBus`, each with its own connection, both configured by the `NatsTransportConfig` binding.
 */
export const natsTransportModule = new ContainerModule(({ bind }) => {
  bind(NatsMetricsTransport)
    .toDynamicValue((ctx) => new NatsMetricsTransport(ctx.get<NatsTransportOptions>(NatsTransportConfig), ctx.get<Logger>(Logger), ctx.get<Clock>(Clock)))
    .inSingletonScope();
  bind(MetricsTransport).toService(NatsMetricsTransport);
  bind(NatsEventBus)
    .toDynamicValue((ctx) => new NatsEventBus(ctx.get<NatsTransportOptions>(NatsTransportConfig), ctx.get<Logger>(Logger), ctx.get<Clock>(Clock)))
    .inSingletonScope();
  bind(EventBus).toService(NatsEventBus);
});

/**
 * The `nats` kind, replica side (a replica started with `MYELIN_NATS_URL`, local or in a pod): binds
 * only `MetricsTransport`, a `NatsMetricsTransport` configured by `NatsTransportConfig`; replicas
 * publish no events.
 */
export const natsReplicaTransportModule = new ContainerModule(({ bind }) => {
  bind(MetricsTransport)
    .toDynamicValue((ctx) => new NatsMetricsTransport(ctx.get<NatsTransportOptions>(NatsTransportConfig), ctx.get<Logger>(Logger), ctx.get<Clock>(Clock)))
    .inSingletonScope();
});
