/**
 * `natsEvents$` against a real nats-server with JetStream: events published through a `NatsEventBus`
 * (as the daemon does) are read live and replayed from `since`, filtered by API; an invalid message on
 * the wire is dropped (and logged); unsubscribing closes the connection.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { pino, type Logger } from 'pino';
import { firstValueFrom, take, timeout, toArray, type Observable } from 'rxjs';
import { ManualClock } from '../../../core/clock.js';
import type { EngineEvent } from '../../../core/events/engine-event.js';
import { NatsEventBus } from '../../../adapters/transport/nats/nats-event-bus.js';
import type { NatsTransportOptions } from '../../../adapters/transport/nats/nats-options.js';
import { natsEvents$ } from '../../../serving/client/index.js';
import { NatsServer, natsServerAvailable } from '../../harness/nats-server.js';
import { isolated, silent } from '../../adapters/transport/nats/nats-fixtures.js';

const skip = natsServerAvailable() ? false : 'nats-server is not installed';
const DEADLINE_MS = 10_000;

function statusEvent(api: string, t: number): EngineEvent {
  return { v: 1, type: 'api.status', api, t, status: `s${t}` };
}
function collect(o: Observable<EngineEvent>, n: number): Promise<EngineEvent[]> {
  return firstValueFrom(o.pipe(take(n), timeout({ first: DEADLINE_MS, each: DEADLINE_MS }), toArray()));
}
const ts = (es: readonly EngineEvent[]): string[] => es.map((e) => `${e.api}@${e.t}`);

/** A logger that keeps its JSON lines, to see what was logged. */
function capturingLogger(): { log: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const log: Logger = pino({ level: 'warn' }, { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) });
  return { log, lines };
}

describe('natsEvents$', { skip }, () => {
  let server: NatsServer;
  let monitorUrl: string;
  let raw: NatsConnection;
  before(async () => {
    server = await NatsServer.start({ jetstream: true, extraArgs: ['-m', '-1'] });
    const ports = JSON.parse(await readFile(join(server.directory, `nats-server_${server.pid}.ports`), 'utf8')) as { monitoring?: string[] };
    monitorUrl = ports.monitoring?.[0] ?? '';
    raw = await connect({ servers: server.url });
  });
  after(async () => {
    await raw?.close();
    await server?.[Symbol.asyncDispose]();
  });

  async function publisherFor(o: NatsTransportOptions): Promise<NatsEventBus> {
    const bus = new NatsEventBus(o, silent, new ManualClock(0));
    await bus.start();
    await bus.whenConnected();
    return bus;
  }
  const readOptions = (o: NatsTransportOptions) => ({ servers: server.url, subjectPrefix: o.subjectPrefix, eventStream: o.eventStream });

  it('replays from since, only the asked API, dropping an invalid message', async () => {
    const o = isolated(server.url);
    await using publisher = await publisherFor(o);
    publisher.publish(statusEvent('iris', 100));
    publisher.publish(statusEvent('other', 250));
    publisher.publish(statusEvent('iris', 200));
    raw.publish(`${o.subjectPrefix}.events.iris`, Buffer.from(JSON.stringify({ v: 1, type: 'api.status', api: 'iris', t: -1 })));
    raw.publish(`${o.subjectPrefix}.events.iris`, Buffer.from('{"v":1,"api":'));
    await raw.flush();
    publisher.publish(statusEvent('iris', 300));
    await publisher.stored();

    const { log, lines } = capturingLogger();
    const got = await collect(natsEvents$({ ...readOptions(o), api: 'iris', since: 200, log }), 2);
    assert.deepEqual(ts(got), ['iris@200', 'iris@300']);
    assert.ok(lines.some((l) => l.msg === 'dropped an invalid message'), `logged: ${JSON.stringify(lines)}`);

    const all = await collect(natsEvents$({ ...readOptions(o), since: 0, log: silent }), 4);
    assert.deepEqual(ts(all), ['iris@100', 'other@250', 'iris@200', 'iris@300']);
  });

  it('reads live events of one API, and closes its connection on unsubscribe', async () => {
    const o = isolated(server.url);
    await using publisher = await publisherFor(o);
    publisher.publish(statusEvent('iris', 1)); // before subscribing: not seen live
    await publisher.stored();
    const clientName = `reader${process.pid}`;
    const seen: EngineEvent[] = [];
    let threeSeen!: () => void;
    const three = new Promise<void>((resolve) => (threeSeen = resolve));
    const sub = natsEvents$({ ...readOptions(o), api: 'iris', log: silent, clientName }).subscribe((e) => {
      seen.push(e);
      if (seen.length === 3) threeSeen();
    });
    // The reader attaches asynchronously: publish until it has seen three.
    let t = 1000;
    const pump = setInterval(() => {
      t++;
      publisher.publish(statusEvent('other', t));
      publisher.publish(statusEvent('iris', t));
      raw.publish(`${o.subjectPrefix}.events.iris`, Buffer.from('not json'));
    }, 50);
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([three, new Promise((_, reject) => (timer = setTimeout(() => reject(new Error('no live events')), DEADLINE_MS)))]);
    } finally {
      clearInterval(pump);
      clearTimeout(timer);
    }
    assert.ok(seen.every((e) => e.api === 'iris' && e.t > 1000), ts(seen).join(','));
    const order = seen.map((e) => e.t);
    assert.deepEqual(order, [...order].sort((a, b) => a - b));

    // Unsubscribing closes the reader's connection: the server's monitoring endpoint lists it no more.
    assert.notEqual(monitorUrl, '', 'nats-server wrote no monitoring port');
    const open = async (): Promise<number> => {
      const connz = (await (await fetch(`${monitorUrl}/connz`)).json()) as { connections?: Array<{ name?: string }> };
      return (connz.connections ?? []).filter((c) => c.name === `${clientName}-events`).length;
    };
    assert.equal(await open(), 1);
    sub.unsubscribe();
    const deadline = Date.now() + DEADLINE_MS;
    while ((await open()) > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.equal(await open(), 0, 'the reader connection is still open after unsubscribe');
  });
});
