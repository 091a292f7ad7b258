import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { Container } from 'inversify';
import { pino } from 'pino';
import { firstValueFrom, take, timeout, toArray } from 'rxjs';
import { Clock, ManualClock } from '../../../../core/clock.js';
import { EventBus } from '../../../../core/ports/event-bus.js';
import { Logger } from '../../../../core/ports/logger.js';
import { MetricsTransport } from '../../../../core/ports/metrics-transport.js';
import { NatsEventBus } from '../../../../adapters/transport/nats/nats-event-bus.js';
import { NatsTransportConfig, natsTransportModule } from '../../../../adapters/transport/nats/nats-module.js';
import { resolveNatsOptions } from '../../../../adapters/transport/nats/nats-options.js';
import { NatsServer } from '../../../harness/nats-server.js';
import { describeEventBusContract, statusEvent } from '../../../contracts/event-bus.contract.js';
import { describeMetricsTransportContract, sample } from '../../../contracts/metrics-transport.contract.js';
import { eventsFixture, isolated, metricsFixture, silent } from './nats-fixtures.js';

// A server without JetStream: metrics work the same, events fall back to core pub/sub without replay.
let server: NatsServer;
before(async () => {
  server = await NatsServer.start({ jetstream: false });
});
after(async () => {
  await server[Symbol.asyncDispose]();
});

describeMetricsTransportContract('nats (core server)', () => metricsFixture(server.url));
describeEventBusContract('nats without JetStream', () => eventsFixture(server.url));

describe('nats event bus without JetStream', () => {
  test('says once in the log that events are live only, and replays nothing', async () => {
    const lines: Record<string, unknown>[] = [];
    const log = pino({ level: 'info' }, new Writable({ write: (c: Buffer, _e, cb) => (lines.push(...c.toString().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>)), cb()) }));
    await using bus = new NatsEventBus(isolated(server.url), log, new ManualClock(0));
    await bus.start();
    assert.equal(bus.replayAvailable, false);
    bus.publish(statusEvent('iris', 1));
    const got = firstValueFrom(bus.events$({ api: 'iris', sinceMs: 0 }).pipe(take(1), timeout(10_000), toArray()));
    await bus.synced();
    bus.publish(statusEvent('iris', 2));
    assert.deepEqual((await got).map((e) => e.t), [2]);
    assert.equal(lines.filter((l) => l.msg === 'NATS server has no JetStream: events are live only, no replay').length, 1);
  });
});

describe('nats transport module and options', () => {
  test('binds MetricsTransport and EventBus of kind nats, configured by NatsTransportConfig', async () => {
    const c = new Container();
    c.bind(Logger).toConstantValue(silent);
    c.bind(Clock).toConstantValue(new ManualClock(0));
    c.bind(NatsTransportConfig).toConstantValue(isolated(server.url));
    c.load(natsTransportModule);
    const m = c.get<MetricsTransport>(MetricsTransport);
    const bus = c.get<EventBus>(EventBus);
    assert.equal(m.kind, 'nats');
    assert.equal(bus.kind, 'nats');
    await m.start();
    try {
      const got = firstValueFrom(m.samples$('iris').pipe(take(1), timeout(10_000)));
      await (m as unknown as { flush(): Promise<void> }).flush();
      m.publish(sample('iris', 1));
      assert.equal((await got).seq, 1);
    } finally {
      await m.close();
      await bus.close();
    }
  });

  const bad = [
    { name: 'a prefix with a wildcard', o: { servers: 'x', subjectPrefix: 'a.*' } },
    { name: 'a prefix with an empty token', o: { servers: 'x', subjectPrefix: 'a..b' } },
    { name: 'a stream name with a dot', o: { servers: 'x', eventStream: 'A.B' } },
  ];
  for (const c of bad) {
    test(`rejects ${c.name}`, () => {
      assert.throws(() => resolveNatsOptions(c.o), RangeError);
    });
  }
});
