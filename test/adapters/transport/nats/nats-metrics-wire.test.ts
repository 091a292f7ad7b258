/**
 * The metric sample's bytes on NATS (docs/transports.md, binary layout 1), against a real nats-server:
 * what a publisher puts on the wire in each encoding, that a receiver reads both (a rolling upgrade),
 * that a layout-1 message with another version byte or cut short is refused and counted, and that a
 * sample on a subject other than its API's is refused (compared on the raw subject bytes), and that
 * the samples of one turn travel as one batch frame per subject.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { firstValueFrom, take, timeout, toArray } from 'rxjs';
import { ManualClock } from '../../../../core/clock.js';
import {
  encodeMetricSampleBinary,
  METRIC_SAMPLE_BATCH_MAGIC,
  METRIC_SAMPLE_MAGIC,
  MetricSampleBatchEncoder,
} from '../../../../core/metrics/metric-sample-binary.js';
import { encodeMetricSample } from '../../../../core/metrics/metric-sample-validator.js';
import { subjectEndsWith } from '../../../../adapters/transport/nats/nats-link.js';
import { NatsMetricsTransport } from '../../../../adapters/transport/nats/nats-metrics-transport.js';
import { resolveNatsOptions, type NatsTransportOptions } from '../../../../adapters/transport/nats/nats-options.js';
import { NatsServer } from '../../../harness/nats-server.js';
import { sample } from '../../../contracts/metrics-transport.contract.js';
import { isolated, silent } from './nats-fixtures.js';

let server: NatsServer;
let raw: NatsConnection;
before(async () => {
  server = await NatsServer.start({ jetstream: false });
  raw = await connect({ servers: server.url });
});
after(async () => {
  await raw.close();
  await server[Symbol.asyncDispose]();
});

async function transport(o: NatsTransportOptions): Promise<NatsMetricsTransport> {
  const t = new NatsMetricsTransport(o, silent, new ManualClock(0));
  await t.start();
  await t.whenConnected();
  return t;
}

/** The raw messages on `subject` until `n` of them arrived. */
function rawMessages(subject: string, n: number): Promise<Uint8Array[]> {
  const got: Uint8Array[] = [];
  return new Promise((resolve) => {
    const sub = raw.subscribe(subject, {
      max: n,
      callback: (_err, m) => {
        got.push(new Uint8Array(m.data));
        if (got.length === n) resolve(got);
      },
    });
    void sub;
  });
}

/** The next raw message on `subject` (first bytes only matter here). */
function nextRaw(subject: string): Promise<Uint8Array> {
  return new Promise((resolve) => {
    const sub = raw.subscribe(subject, {
      max: 1,
      callback: (_err, m) => {
        resolve(new Uint8Array(m.data));
        sub.unsubscribe();
      },
    });
  });
}

describe('metric samples on the NATS wire', () => {
  for (const c of [
    { name: 'binary layout 1 (the default)', encoding: undefined, firstByte: METRIC_SAMPLE_MAGIC },
    { name: 'JSON (sampleEncoding: json, for daemons before layout 1)', encoding: 'json' as const, firstByte: 0x7b },
  ]) {
    test(`publishes ${c.name} and a receiver reads it`, async () => {
      const o = isolated(server.url, c.encoding ? { sampleEncoding: c.encoding } : {});
      await using pub = await transport(o);
      await using sub = await transport(isolated(server.url, { subjectPrefix: o.subjectPrefix }));
      const got = firstValueFrom(sub.samples$('iris').pipe(take(1), timeout(10_000)));
      const wire = nextRaw(`${o.subjectPrefix}.metrics.iris`);
      await raw.flush();
      await sub.flush();
      pub.publish(sample('iris', 4, { cpuUtilization: 0.5 }));
      assert.equal((await wire)[0], c.firstByte);
      assert.deepEqual(await got, sample('iris', 4, { cpuUtilization: 0.5 }));
    });
  }

  test('a receiver reads JSON from an old replica and layout 1 from a new one, in order', async () => {
    const o = isolated(server.url);
    await using sub = await transport(o);
    const got = firstValueFrom(sub.samples$('iris').pipe(take(2), timeout(10_000), toArray()));
    await sub.flush();
    raw.publish(`${o.subjectPrefix}.metrics.iris`, encodeMetricSample(sample('iris', 1)));
    raw.publish(`${o.subjectPrefix}.metrics.iris`, encodeMetricSampleBinary(sample('iris', 2)));
    await raw.flush();
    assert.deepEqual(
      (await got).map((s) => s.seq),
      [1, 2],
    );
    assert.equal(sub.stats().invalid, 0);
  });

  const good = encodeMetricSampleBinary(sample('iris', 9));
  for (const c of [
    { name: 'a wrong layout version byte', bytes: Buffer.from([good[0], 7, ...good.subarray(2)]) },
    { name: 'a layout-1 message cut short', bytes: good.subarray(0, good.length - 3) },
    { name: 'a layout-1 message with a negative seq', bytes: encodeMetricSampleBinary(sample('iris', -1)) },
  ]) {
    test(`refuses ${c.name}: counted as invalid, the stream goes on`, async () => {
      const o = isolated(server.url);
      await using pub = await transport(o);
      await using sub = await transport(isolated(server.url, { subjectPrefix: o.subjectPrefix }));
      const got = firstValueFrom(sub.samples$('iris').pipe(take(1), timeout(10_000)));
      await sub.flush();
      raw.publish(`${o.subjectPrefix}.metrics.iris`, c.bytes);
      await raw.flush();
      pub.publish(sample('iris', 10));
      assert.equal((await got).seq, 10);
      assert.equal(sub.stats().invalid, 1);
    });
  }

  test('refuses an unknown sampleEncoding', () => {
    assert.throws(() => resolveNatsOptions({ servers: 'x', sampleEncoding: 'xml' as never }), /binary or json/);
  });

  test("refuses a sample on a subject other than its API's, on the wildcard and the per-API subscription", async () => {
    const o = isolated(server.url);
    await using sub = await transport(o);
    const all = firstValueFrom(sub.samples$().pipe(take(1), timeout(10_000)));
    const other = firstValueFrom(sub.samples$('irisx').pipe(take(1), timeout(10_000)));
    await sub.flush();
    const p = `${o.subjectPrefix}.metrics.`;
    const iris = encodeMetricSampleBinary(sample('iris', 1));
    for (const subject of [`${p}irisx`, `${p}iri`, `${p}sirI`, `${p}iriz`]) raw.publish(subject, iris);
    raw.publish(`${p}irisx`, encodeMetricSampleBinary(sample('irisx', 2)));
    await raw.flush();
    assert.equal((await all).seq, 2);
    assert.equal((await other).seq, 2);
    // Four wrong subjects, each seen by the wildcard and, for irisx, by the per-API subscription too.
    assert.equal(sub.stats().invalid, 5);
  });

  test('samples published in one turn leave as one batch frame per subject; a receiver gets each, in order, counted one by one', async () => {
    const o = isolated(server.url);
    await using pub = await transport(o);
    await using sub = await transport(isolated(server.url, { subjectPrefix: o.subjectPrefix }));
    const p = `${o.subjectPrefix}.metrics.`;
    const got = firstValueFrom(sub.samples$().pipe(take(7), timeout(10_000), toArray()));
    const wireIris = rawMessages(`${p}iris`, 1);
    const wireOther = rawMessages(`${p}other`, 1);
    await raw.flush();
    await sub.flush();
    for (const seq of [1, 2, 3, 4, 5]) pub.publish(sample('iris', seq));
    pub.publish(sample('other', 1));
    pub.publish(sample('other', 2));
    const [iris] = await wireIris;
    const [other] = await wireOther;
    assert.deepEqual([iris[0], Buffer.from(iris).readUInt16LE(2)], [METRIC_SAMPLE_BATCH_MAGIC, 5]);
    assert.deepEqual([other[0], Buffer.from(other).readUInt16LE(2)], [METRIC_SAMPLE_BATCH_MAGIC, 2]);
    const all = await got;
    assert.deepEqual(all.filter((s) => s.api === 'iris').map((s) => s.seq), [1, 2, 3, 4, 5]);
    assert.deepEqual(all.filter((s) => s.api === 'other'), [sample('other', 1), sample('other', 2)]);
    assert.equal(pub.stats().published, 7);
    assert.deepEqual(sub.stats(), { published: 0, received: 7, invalid: 0, dropped: 0 });
    // A sample alone in its turn is plain layout 1, as before batching.
    const lone = nextRaw(`${p}iris`);
    await raw.flush();
    pub.publish(sample('iris', 6));
    assert.equal((await lone)[0], METRIC_SAMPLE_MAGIC);
  });

  test('sampleBatching: false sends one layout-1 message per sample', async () => {
    const o = isolated(server.url, { sampleBatching: false });
    await using pub = await transport(o);
    const wire = rawMessages(`${o.subjectPrefix}.metrics.iris`, 3);
    await raw.flush();
    for (const seq of [1, 2, 3]) pub.publish(sample('iris', seq));
    assert.deepEqual((await wire).map((m) => m[0]), [METRIC_SAMPLE_MAGIC, METRIC_SAMPLE_MAGIC, METRIC_SAMPLE_MAGIC]);
    assert.equal(resolveNatsOptions({ servers: 'x', sampleEncoding: 'json' }).sampleBatching, false, 'JSON is never batched');
  });

  test("a frame's off-schema sample and its sample of another API are refused alone and counted; the rest are delivered", async () => {
    const o = isolated(server.url);
    await using sub = await transport(o);
    const got = firstValueFrom(sub.samples$('iris').pipe(take(2), timeout(10_000), toArray()));
    await sub.flush();
    const frames: Buffer[] = [];
    const enc = new MetricSampleBatchEncoder((m) => frames.push(m));
    for (const s of [sample('iris', 1), sample('iris', -1), sample('other', 2), sample('iris', 3)]) enc.add(s);
    enc.flush();
    // First a frame whose count is wrong: one malformed message, nothing delivered.
    const broken = Buffer.from(frames[0]);
    broken.writeUInt16LE(9, 2);
    raw.publish(`${o.subjectPrefix}.metrics.iris`, broken);
    raw.publish(`${o.subjectPrefix}.metrics.iris`, frames[0]);
    await raw.flush();
    assert.deepEqual((await got).map((s) => s.seq), [1, 3]);
    assert.deepEqual(sub.stats(), { published: 0, received: 5, invalid: 3, dropped: 0 });
  });

  test('subjectEndsWith: compares the raw subject bytes, or the decoded text when nats.js keeps none', () => {
    const head = 'myelin.metrics.';
    const rawMsg = (subject: string) => ({ _msg: { subject: Buffer.from(subject) }, get subject(): string { throw new Error('decoded'); } });
    assert.equal(subjectEndsWith(rawMsg(`${head}iris`), head.length, 'iris'), true);
    assert.equal(subjectEndsWith(rawMsg(`${head}iri`), head.length, 'iris'), false);
    assert.equal(subjectEndsWith(rawMsg(`${head}irisx`), head.length, 'iris'), false);
    assert.equal(subjectEndsWith(rawMsg(`${head}irix`), head.length, 'iris'), false);
    const headU = 'mÿelin.metrics.';
    assert.equal(subjectEndsWith(rawMsg(`${headU}iris`), Buffer.byteLength(headU), 'iris'), true);
    assert.equal(subjectEndsWith({ subject: `${headU}iris` }, Buffer.byteLength(headU), 'iris'), true);
    assert.equal(subjectEndsWith({ subject: `${headU}iri` }, Buffer.byteLength(headU), 'iris'), false);
    assert.equal(subjectEndsWith({ subject: `${head}xiris` }, head.length, 'iris'), false);
  });
});
