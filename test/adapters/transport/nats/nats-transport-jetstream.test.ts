import { after, before } from 'node:test';
import { NatsServer } from '../../../harness/nats-server.js';
import { describeEventBusContract } from '../../../contracts/event-bus.contract.js';
import { describeMetricsTransportContract } from '../../../contracts/metrics-transport.contract.js';
import { eventsFixture, metricsFixture } from './nats-fixtures.js';

let server: NatsServer;
before(async () => {
  server = await NatsServer.start({ jetstream: true });
});
after(async () => {
  await server[Symbol.asyncDispose]();
});

describeMetricsTransportContract('nats (JetStream server)', () => metricsFixture(server.url));
describeEventBusContract('nats with JetStream replay', () => eventsFixture(server.url));
