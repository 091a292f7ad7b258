import assert from 'node:assert/strict';
import { type ChildProcess, fork } from 'node:child_process';
import { EventEmitter, once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { Writable } from 'node:stream';
import { describe, test } from 'node:test';
import { firstValueFrom, take, timeout, toArray } from 'rxjs';
import { pino } from 'pino';
import { Container } from 'inversify';
import { ManualClock, Clock } from '../../../../core/clock.js';
import { MAX_EVENT_BYTES, type EngineEvent } from '../../../../core/events/engine-event.js';
import { EventBus } from '../../../../core/ports/event-bus.js';
import { Logger } from '../../../../core/ports/logger.js';
import { ChildMetricsSink, MetricsTransport } from '../../../../core/ports/metrics-transport.js';
import { IpcMetricsTransport } from '../../../../adapters/transport/local/ipc-metrics-transport.js';
import { LocalEventBus } from '../../../../adapters/transport/local/local-event-bus.js';
import { LocalMetricsTransport } from '../../../../adapters/transport/local/local-metrics-transport.js';
import { LocalTransportConfig, localTransportModule } from '../../../../adapters/transport/local/local-module.js';
import { describeEventBusContract, statusEvent } from '../../../contracts/event-bus.contract.js';
import { describeMetricsTransportContract, sample } from '../../../contracts/metrics-transport.contract.js';

const silent = pino({ level: 'silent' });

function capture(): { log: pino.Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _e, cb) {
      for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return { log: pino({ level: 'debug' }, sink), lines };
}

describeMetricsTransportContract('local', async () => {
  const t = new LocalMetricsTransport(silent, new ManualClock(0));
  await t.start();
  const peer = new EventEmitter();
  t.attachChild(peer);
  return {
    publisher: t,
    subscriber: t,
    synced: async () => {},
    injectBad: async (kind, api) => {
      const bad =
        kind === 'malformed'
          ? 'not a sample'
          : kind === 'oversized'
            ? { ...sample(api, 99), monitoring: { modelType: 'classification', classes: Object.fromEntries(Array.from({ length: 256 }, (_, i) => [`${'😀'.repeat(120)}${i}`, 1])) } }
            : { ...sample(api, 99), seq: -1 };
      peer.emit('message', { type: 'myelin.metrics', sample: bad });
    },
    [Symbol.asyncDispose]: () => t.close(),
  };
});

describeEventBusContract('local', async () => {
  const bus = new LocalEventBus(silent, new ManualClock(0));
  await bus.start();
  return {
    publisher: bus,
    subscriber: bus,
    replay: true,
    synced: async () => {},
    stored: async () => {},
    // In-process there is no wire: a bad event can only come through publish, where it is refused.
    injectBad: async (kind, api) => {
      const bad = kind === 'malformed' ? 'not an event' : kind === 'oversized' ? { ...statusEvent(api, 5), message: 'x'.repeat(MAX_EVENT_BYTES) } : { ...statusEvent(api, 5), t: -1 };
      bus.publish(bad as unknown as EngineEvent);
    },
    [Symbol.asyncDispose]: () => bus.close(),
  };
});

describe('local event bus history', () => {
  const cases = [
    { name: 'keeps only the newest events beyond its capacity', capacity: 3, publish: [1, 2, 3, 4, 5], sinceMs: 0, want: [3, 4, 5] },
    { name: 'replays from sinceMs inclusive', capacity: 10, publish: [10, 20, 30], sinceMs: 20, want: [20, 30] },
    { name: 'replays nothing when everything is older', capacity: 10, publish: [10, 20], sinceMs: 21, want: [] },
    { name: 'capacity 1', capacity: 1, publish: [1, 2], sinceMs: 0, want: [2] },
  ];
  for (const c of cases) {
    test(c.name, async () => {
      await using bus = new LocalEventBus(silent, new ManualClock(0), c.capacity);
      for (const t of c.publish) bus.publish(statusEvent('iris', t));
      const got: number[] = [];
      const sub = bus.events$({ sinceMs: c.sinceMs }).subscribe((e) => got.push(e.t));
      sub.unsubscribe();
      assert.deepEqual(got, c.want);
    });
  }

  test('an event published by a subscriber during its replay comes after the replay', async () => {
    await using bus = new LocalEventBus(silent, new ManualClock(0));
    bus.publish(statusEvent('iris', 1));
    bus.publish(statusEvent('iris', 2));
    const got: number[] = [];
    bus.events$({ sinceMs: 0 }).subscribe((e) => {
      got.push(e.t);
      if (e.t === 1) bus.publish(statusEvent('iris', 3));
    });
    assert.deepEqual(got, [1, 2, 3]);
  });

  test('refuses a capacity below 1', () => {
    assert.throws(() => new LocalEventBus(silent, new ManualClock(0), 0), RangeError);
  });
});

describe('local transport module', () => {
  test('binds MetricsTransport and ChildMetricsSink to one local transport, and EventBus with the configured history', async () => {
    const c = new Container();
    c.bind(Logger).toConstantValue(silent);
    c.bind(Clock).toConstantValue(new ManualClock(0));
    c.bind(LocalTransportConfig).toConstantValue({ eventHistory: 2 });
    c.load(localTransportModule);
    const m = c.get<MetricsTransport>(MetricsTransport);
    assert.equal(m.kind, 'local');
    assert.equal(c.get<ChildMetricsSink>(ChildMetricsSink), m);
    const bus = c.get<EventBus>(EventBus);
    assert.equal(bus.kind, 'local');
    for (const t of [1, 2, 3]) bus.publish(statusEvent('iris', t));
    const got = await firstValueFrom(bus.events$({ sinceMs: 0 }).pipe(take(2), toArray()));
    assert.deepEqual(got.map((e) => e.t), [2, 3]);
  });
});

const childScript = fileURLToPath(new URL('./ipc-replica-child.ts', import.meta.url));

async function startChild(): Promise<ChildProcess & AsyncDisposable> {
  const child = fork(childScript, [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const ready = new Promise<void>((resolve, reject) => {
    child.on('message', (m: { type?: string }) => m.type === 'ready' && resolve());
    child.once('exit', (code) => reject(new Error(`child exited early (${code})`)));
  });
  await ready;
  return Object.assign(child, {
    [Symbol.asyncDispose]: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = once(child, 'exit');
        child.kill('SIGTERM');
        await exited;
      }
    },
  });
}

function askStats(child: ChildProcess): Promise<{ published: number; dropped: number; invalid: number }> {
  return new Promise((resolve) => {
    const on = (m: { type?: string; stats?: { published: number; dropped: number; invalid: number } }): void => {
      if (m.type !== 'stats' || !m.stats) return;
      child.off('message', on);
      resolve(m.stats);
    };
    child.on('message', on);
    child.send({ cmd: 'stats' });
  });
}

describe('local transport over IPC from a real child process', () => {
  test('samples a child publishes arrive validated, in order, on samples$', async () => {
    await using child = await startChild();
    const { log, lines } = capture();
    await using t = new LocalMetricsTransport(log, new ManualClock(0));
    t.attachChild(child);
    const got = firstValueFrom(t.samples$('iris').pipe(take(50), timeout(10_000), toArray()));
    child.send({ cmd: 'publish', api: 'iris', from: 1, to: 50 });
    assert.deepEqual((await got).map((s) => s.seq), Array.from({ length: 50 }, (_, i) => i + 1));
    assert.equal(t.stats().received, 50);
    const stats = await askStats(child);
    assert.equal(stats.published, 50);
    assert.equal(stats.dropped, 0);
    assert.equal(lines.filter((l) => l.msg === 'dropped an invalid message').length, 0);
  });

  test('bad samples from a child are counted and logged once; other IPC messages are left alone', async () => {
    await using child = await startChild();
    const { log, lines } = capture();
    await using t = new LocalMetricsTransport(log, new ManualClock(0));
    t.attachChild(child);
    const got = firstValueFrom(t.samples$('iris').pipe(take(1), timeout(10_000), toArray()));
    const bad = [{ type: 'myelin.metrics', sample: { v: 1 } }, { type: 'myelin.metrics' }, { type: 'myelin.metrics', sample: 'x' }];
    for (const message of bad) child.send({ cmd: 'raw', message });
    child.send({ cmd: 'raw', message: { type: 'something.else', sample: 1 } });
    child.send({ cmd: 'publish', api: 'iris', from: 7, to: 7 });
    assert.deepEqual((await got).map((s) => s.seq), [7]);
    assert.equal(t.stats().invalid, 3);
    const warnings = lines.filter((l) => l.msg === 'dropped an invalid message');
    assert.equal(warnings.length, 1, 'one warning within the rate-limit interval');
    assert.equal(warnings[0].source, `ipc:${child.pid}`);
  });

  test('detaching stops delivery', async () => {
    await using child = await startChild();
    await using t = new LocalMetricsTransport(silent, new ManualClock(0));
    const detach = t.attachChild(child);
    const first = firstValueFrom(t.samples$('iris').pipe(take(1), timeout(10_000)));
    child.send({ cmd: 'publish', api: 'iris', from: 1, to: 1 });
    await first;
    detach();
    child.send({ cmd: 'publish', api: 'iris', from: 2, to: 2 });
    await askStats(child); // a round trip: the sample was sent before the answer
    assert.equal(t.stats().received, 1);
    assert.equal(child.listenerCount('message'), 1, 'only startChild’s own listener remains');
  });
});

describe('IpcMetricsTransport', () => {
  test('drops (and counts) what exceeds the pending bound, sends the rest', async () => {
    await using child = await startChild();
    const { log, lines } = capture();
    // The parent's end of the channel has the same send/connected shape as process in a child.
    const t = new IpcMetricsTransport(log, new ManualClock(0), child, 10);
    for (let seq = 1; seq <= 100; seq++) t.publish(sample('iris', seq));
    assert.equal(t.stats().dropped, 90);
    const deadline = Date.now() + 10_000;
    while (t.stats().published < 10 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.equal(t.stats().published, 10);
    assert.equal(lines.filter((l) => l.msg === 'dropped metric samples: IPC channel unusable').length, 1);
  });

  test('drops (and counts) when the channel is closed, without throwing', async () => {
    const child = await startChild();
    const exited = once(child, 'exit');
    child.send({ cmd: 'exit' });
    await exited;
    const t = new IpcMetricsTransport(silent, new ManualClock(0), child);
    assert.doesNotThrow(() => t.publish(sample('iris', 1)));
    assert.equal(t.stats().dropped, 1);
    assert.equal(t.stats().published, 0);
  });

  test('counts an invalid sample as invalid, not as dropped', () => {
    const t = new IpcMetricsTransport(silent, new ManualClock(0), { connected: true, send: () => true });
    t.publish({ ...sample('iris', 1), seq: 1.5 });
    assert.deepEqual(t.stats(), { published: 0, received: 0, invalid: 1, dropped: 0 });
  });

  test('is available only where process.send exists', () => {
    assert.equal(IpcMetricsTransport.available({}), false);
    assert.equal(IpcMetricsTransport.available({ send: () => true }), true);
  });
});
