/**
 * Fixtures that run the transport contracts on the `nats` kind: a publishing and a subscribing
 * transport with their own connections to one real nats-server, a unique subject prefix (and stream)
 * per test, and a raw nats.js connection to put bad messages on the wire.
 */
import { connect } from '@nats-io/transport-node';
import { pino } from 'pino';
import { ManualClock } from '../../../../core/clock.js';
import { MAX_EVENT_BYTES } from '../../../../core/events/engine-event.js';
import { MAX_METRIC_SAMPLE_BYTES } from '../../../../core/metrics/metric-sample.js';
import { NatsEventBus } from '../../../../adapters/transport/nats/nats-event-bus.js';
import { NatsMetricsTransport } from '../../../../adapters/transport/nats/nats-metrics-transport.js';
import type { NatsTransportOptions } from '../../../../adapters/transport/nats/nats-options.js';
import type { EventBusFixture } from '../../../contracts/event-bus.contract.js';
import { sample, type MetricsTransportFixture } from '../../../contracts/metrics-transport.contract.js';
import { statusEvent } from '../../../contracts/event-bus.contract.js';

let counter = 0;
/** Options isolating one test: its own subject prefix and stream. */
export function isolated(url: string, over: Partial<NatsTransportOptions> = {}): NatsTransportOptions {
  counter++;
  const id = `${process.pid}x${counter}`;
  return { servers: url, subjectPrefix: `t${id}`, eventStream: `T${id}_EVENTS`, reconnectMinWaitMs: 50, reconnectMaxWaitMs: 500, ...over };
}

export const silent = pino({ level: process.env.MYELIN_TEST_LOG ?? 'silent' });

function badPayload(kind: 'malformed' | 'oversized' | 'invalid', maxBytes: number, invalidJson: string): Uint8Array {
  if (kind === 'malformed') return Buffer.from('{"v":1,"api":');
  if (kind === 'oversized') return Buffer.from(`{"pad":"${'x'.repeat(maxBytes)}"}`);
  return Buffer.from(invalidJson);
}

export async function metricsFixture(url: string): Promise<MetricsTransportFixture> {
  const o = isolated(url);
  const publisher = new NatsMetricsTransport(o, silent, new ManualClock(0));
  const subscriber = new NatsMetricsTransport(o, silent, new ManualClock(0));
  await publisher.start();
  await subscriber.start();
  const raw = await connect({ servers: url });
  return {
    publisher,
    subscriber,
    synced: async () => {
      await subscriber.flush();
    },
    injectBad: async (kind, api) => {
      raw.publish(`${o.subjectPrefix}.metrics.${api}`, badPayload(kind, MAX_METRIC_SAMPLE_BYTES, JSON.stringify({ ...sample(api, 5), seq: -1 })));
      await raw.flush();
      await publisher.flush();
    },
    [Symbol.asyncDispose]: async () => {
      await publisher.close();
      await subscriber.close();
      await raw.close();
    },
  };
}

export async function eventsFixture(url: string): Promise<EventBusFixture> {
  const o = isolated(url);
  const publisher = new NatsEventBus(o, silent, new ManualClock(0));
  const subscriber = new NatsEventBus(o, silent, new ManualClock(0));
  await publisher.start();
  await subscriber.start();
  const raw = await connect({ servers: url });
  return {
    publisher,
    subscriber,
    replay: subscriber.replayAvailable,
    synced: () => subscriber.synced(),
    stored: () => publisher.stored(),
    injectBad: async (kind, api) => {
      raw.publish(`${o.subjectPrefix}.events.${api}`, badPayload(kind, MAX_EVENT_BYTES, JSON.stringify({ ...statusEvent(api, 5), t: -1 })));
      await raw.flush();
    },
    [Symbol.asyncDispose]: async () => {
      await publisher.close();
      await subscriber.close();
      await raw.close();
    },
  };
}
