/**
 * Metric samples per second end to end over a real nats-server: `NatsMetricsTransport.publish(sample)`
 * → validated sample on `samples$`, against raw nats.js pub/sub of the same samples' encoded bytes
 * (the binary layout myelin sends, published as pre-encoded buffers, counted in a subscription
 * callback), in the same run, as a ratio. The publisher publishes in bursts (as many samples per turn as
 * the window allows, as a process relaying many replicas or an outbox draining would), so the transport
 * coalesces each turn's samples per subject into batch frames. Three more legs: "myelin-single" is the
 * transport with `sampleBatching: false` (one message per sample, the per-message cost of what
 * myelin adds to nats.js), "raw+json" is what a hand-rolled client pays (JSON.stringify on publish,
 * JSON.parse on receipt, no validation), and "myelin-json" is the transport with
 * `sampleEncoding: 'json'` (the wire format before the binary layout).
 *
 * One process holds the publishing and the subscribing connection (two connections, as a replica and
 * the daemon would have); the nats-server is a child on a random loopback port. Each leg publishes as
 * fast as the subscriber keeps up (at most `WINDOW` samples in flight), for `--seconds` after a warm-up;
 * `--rounds` rounds run the legs in rotating order and each side's rounds are merged; the headline
 * ratio is the median over rounds of the ratio within a round (robust to other processes' bursts).
 * Then the hot-path pieces are timed alone (encode, decode, fast check, ajv). Bounded: defaults
 * 5 rounds × 5 legs × 1.5 s; `--quick`: 1 round × 0.25 s.
 *
 *   node --import tsx benchmarks/nats-metrics.bench.ts [--seconds 1.5] [--rounds 5] [--quick]
 *
 * Prints tables and writes benchmarks/results/nats-metrics.json. Aim: myelin ≥ 0.8 of raw.
 */
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { pino } from 'pino';
import { ManualClock } from '../core/clock.js';
import type { MetricSample } from '../core/metrics/metric-sample.js';
import {
  decodeMetricSample,
  encodeMetricSample,
  isMetricSample,
  metricSampleSchemaValidator,
} from '../core/metrics/metric-sample-validator.js';
import {
  decodeMetricSampleMessage,
  encodeMetricSampleBinary,
  forEachMetricSample,
  MetricSampleBatchEncoder,
} from '../core/metrics/metric-sample-binary.js';
import { NatsMetricsTransport } from '../adapters/transport/nats/nats-metrics-transport.js';
import { NatsServer } from '../test/harness/nats-server.js';
import { QUICK, arg, median, writeResults, type Headline } from './harness/bench-util.js';

const WINDOW = 5_000;
const WARMUP_MS = QUICK ? 50 : 300;
const DISTINCT = 1_000;
const SECONDS = Number(arg('seconds', QUICK ? '0.25' : '1.5'));
const ROUNDS = Number(arg('rounds', QUICK ? '1' : '5'));
const HOT_MS = QUICK ? 20 : 400;

/** 1 000 distinct samples (100 replicas × 10 APIs), as replicas would send them. */
const samples: MetricSample[] = Array.from({ length: DISTINCT }, (_, i) => ({
  v: 1,
  api: `api-${i % 10}`,
  replica: `api-${i % 10}-7f9c2d-${Math.floor(i / 10)}`,
  revision: 'b3f1c9a2e4d5',
  seq: 100_000 + i,
  t: 1_763_900_000_000 + i,
  intervalMs: 1000,
  inFlight: (i % 17) / 3,
  inFlightMax: i % 17,
  cpuUtilization: (i % 100) / 100,
  requests: { '2xx': 120 + (i % 30), '4xx': i % 3, '5xx': 0 },
  latencyMsSum: 1234.5 + i,
  ready: true,
}));
const encoded = samples.map((s) => encodeMetricSampleBinary(s));
const encodedJson = samples.map((s) => encodeMetricSample(s));

interface LegRun {
  readonly received: number;
  readonly elapsedMs: number;
  readonly cpuUs: number;
}

/**
 * Runs one leg: `publish(i)` as long as fewer than WINDOW are in flight, `count()` read from the
 * receiving side, for warm-up + SECONDS; only the part after the warm-up is measured.
 */
async function runLeg(publish: (i: number) => void, received: () => number): Promise<LegRun> {
  let sent = 0;
  const pump = async (untilMs: number): Promise<void> => {
    while (performance.now() < untilMs) {
      const room = WINDOW - (sent - received());
      for (let k = 0; k < room; k++) publish(sent++ % DISTINCT);
      await new Promise((r) => setImmediate(r));
    }
  };
  await pump(performance.now() + WARMUP_MS);
  const r0 = received();
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  await pump(t0 + SECONDS * 1000);
  const elapsedMs = performance.now() - t0;
  const cpu = process.cpuUsage(c0);
  const got = received() - r0;
  // Let the window drain so the next leg starts from quiet.
  const deadline = performance.now() + 10_000;
  while (received() < sent && performance.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  return { received: got, elapsedMs, cpuUs: cpu.user + cpu.system };
}

async function rawLeg(pub: NatsConnection, sub: NatsConnection, prefix: string, json: boolean): Promise<LegRun> {
  let count = 0;
  const td = new TextDecoder();
  const s = sub.subscribe(`${prefix}.*`, {
    callback: json
      ? (_e, m) => {
          if ((JSON.parse(td.decode(m.data)) as { v?: number }).v === 1) count++;
        }
      : () => {
          count++;
        },
  });
  await sub.flush();
  const subjects = samples.map((x) => `${prefix}.${x.api}`);
  const r = await runLeg(
    json ? (i) => pub.publish(subjects[i], Buffer.from(JSON.stringify(samples[i]))) : (i) => pub.publish(subjects[i], encoded[i]),
    () => count,
  );
  s.unsubscribe();
  return r;
}

async function myelinLeg(url: string, prefix: string, sampleEncoding: 'binary' | 'json', sampleBatching = true): Promise<LegRun> {
  const log = pino({ level: 'silent' });
  const o = { servers: url, subjectPrefix: prefix, sampleEncoding, sampleBatching };
  const pub = new NatsMetricsTransport(o, log, new ManualClock(0));
  const sub = new NatsMetricsTransport(o, log, new ManualClock(0));
  await pub.start();
  await sub.start();
  let count = 0;
  const s = sub.samples$().subscribe(() => count++);
  await sub.flush();
  const r = await runLeg((i) => pub.publish(samples[i]), () => count);
  s.unsubscribe();
  if (sub.stats().invalid !== 0 || pub.stats().invalid !== 0) throw new Error('invalid samples in the benchmark');
  await pub.close();
  await sub.close();
  return r;
}

/** CPU ns per call of `f`, over about `ms` milliseconds (CPU time: steadier than wall time on a shared machine). */
function nsPerOp(f: (i: number) => unknown, ms = HOT_MS): number {
  let n = 0;
  let sink = 0;
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  while (performance.now() - t0 < ms) {
    for (let k = 0; k < 1000; k++) if (f(n++ % DISTINCT)) sink++;
  }
  const c = process.cpuUsage(c0);
  if (sink < 0) console.log(sink);
  return ((c.user + c.system) * 1000) / n;
}

type Leg = 'raw' | 'raw+json' | 'myelin' | 'myelin-single' | 'myelin-json';

async function main(): Promise<void> {
  await using server = await NatsServer.start({ jetstream: false });
  const pubNc = await connect({ servers: server.url });
  const subNc = await connect({ servers: server.url });
  const legs: Leg[] = ['raw', 'myelin', 'myelin-single', 'raw+json', 'myelin-json'];
  // --legs myelin: only that one (for a CPU profile); ratios then read NaN.
  const only = arg('legs', '');
  const run = only ? legs.filter((l) => only.split(',').includes(l)) : legs;
  const merged = Object.fromEntries(legs.map((l) => [l, { received: 0, elapsedMs: 0, cpuUs: 0 }])) as Record<Leg, { received: number; elapsedMs: number; cpuUs: number }>;
  const perRound: { round: number; leg: Leg; samplesPerSec: number }[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const order = run.map((_, i) => run[(i + round) % run.length]);
    for (const leg of order) {
      const tag = leg.replace('+', '-');
      const r =
        leg.startsWith('myelin')
          ? await myelinLeg(server.url, `bench${round}${tag}`, leg === 'myelin-json' ? 'json' : 'binary', leg === 'myelin')
          : await rawLeg(pubNc, subNc, `bench${round}.${tag}.metrics`, leg === 'raw+json');
      merged[leg].received += r.received;
      merged[leg].elapsedMs += r.elapsedMs;
      merged[leg].cpuUs += r.cpuUs;
      perRound.push({ round, leg, samplesPerSec: Math.round((r.received / r.elapsedMs) * 1000) });
    }
  }
  await pubNc.close();
  await subNc.close();

  const rate = (l: Leg): number => Math.round((merged[l].received / merged[l].elapsedMs) * 1000);
  const cpuNs = (l: Leg): number => Math.round((merged[l].cpuUs * 1000) / merged[l].received);
  /** Median over rounds of a ÷ b within each round (both legs of a round ran back to back). */
  const paired = (a: Leg, b: Leg): number =>
    median(
      Array.from({ length: ROUNDS }, (_, round) => {
        const x = perRound.find((p) => p.round === round && p.leg === a)?.samplesPerSec ?? Number.NaN;
        const y = perRound.find((p) => p.round === round && p.leg === b)?.samplesPerSec ?? Number.NaN;
        return x / y;
      }),
    );
  const rows = run.map((l) => ({ leg: l, samplesPerSec: rate(l), processCpuNsPerSample: cpuNs(l), samples: merged[l].received }));
  const ratio = paired('myelin', 'raw');
  const ratioSingle = paired('myelin-single', 'raw');
  const ratioJson = paired('myelin', 'raw+json');
  const ratioBefore = paired('myelin-json', 'raw');

  const ajv = metricSampleSchemaValidator();
  // Batch frames of 100 samples (what one turn of 100 replicas' samples to one subject makes).
  const frames: Buffer[] = [];
  const framer = new MetricSampleBatchEncoder((m) => frames.push(m));
  for (let i = 0; i < DISTINCT; i++) {
    framer.add(samples[i]);
    if (i % 100 === 99) framer.flush();
  }
  const batchSink = new MetricSampleBatchEncoder(() => undefined);
  let decodedOk = 0;
  const countOk = (r: { ok: boolean }): void => {
    if (r.ok) decodedOk++;
  };
  // With --legs (a profiling run) the hot-path timings are skipped: they would fill the profile.
  const hot = only ? {} : {
    encodeBinaryNs: nsPerOp((i) => encodeMetricSampleBinary(samples[i])),
    encodeJsonNs: nsPerOp((i) => encodeMetricSample(samples[i])),
    jsonStringifyBufferNs: nsPerOp((i) => Buffer.from(JSON.stringify(samples[i]))),
    decodeBinaryAndValidateNs: nsPerOp((i) => decodeMetricSampleMessage(encoded[i]).ok),
    batchEncodeNs: nsPerOp((i) => {
      batchSink.add(samples[i]);
      if (i % 100 === 99) batchSink.flush();
    }),
    batchDecodeAndValidateNs: nsPerOp((i) => (i % 100 === 0 ? forEachMetricSample(frames[i / 100], countOk) : 0)),
    decodeJsonAndValidateNs: nsPerOp((i) => decodeMetricSample(encodedJson[i]).ok),
    jsonParseNs: nsPerOp((i) => JSON.parse(new TextDecoder().decode(encodedJson[i])) as unknown),
    fastCheckNs: nsPerOp((i) => isMetricSample(samples[i])),
    ajvCheckNs: nsPerOp((i) => ajv(samples[i])),
  };

  console.log(`\nNATS metrics end to end (${ROUNDS} rounds × ${SECONDS} s per leg, window ${WINDOW}, nats-server ${server.url})`);
  console.log('leg             samples/s   process CPU ns/sample');
  for (const r of rows) console.log(`${r.leg.padEnd(14)} ${String(r.samplesPerSec).padStart(9)}   ${String(r.processCpuNsPerSample).padStart(8)}`);
  console.log(`myelin / raw        = ${ratio.toFixed(3)}   (median of rounds; aim ≥ 0.8)`);
  console.log(`myelin-single / raw = ${ratioSingle.toFixed(3)}   (one message per sample: no batching)`);
  console.log(`myelin / raw+json   = ${ratioJson.toFixed(3)}`);
  console.log(`myelin-json / raw   = ${ratioBefore.toFixed(3)}   (the JSON wire format, before the binary layout)`);
  console.log('\nhot path, CPU ns per sample');
  for (const [k, v] of Object.entries(hot)) console.log(`${k.padEnd(26)} ${v.toFixed(0).padStart(6)}`);

  const sampleBytes = (list: readonly Uint8Array[]): number => Math.round(list.reduce((a, b) => a + b.byteLength, 0) / list.length);
  const headline: Headline[] = [
    { metric: 'samples/s end to end, binary layout, batched per subject per turn', ratio, baseline: 'raw nats.js pub/sub of the same bytes', aim: 0.8 },
    { metric: 'samples/s end to end, binary layout, one message per sample', ratio: ratioSingle, baseline: 'raw nats.js pub/sub of the same bytes' },
    { metric: 'samples/s end to end, JSON wire format (before)', ratio: ratioBefore, baseline: 'raw nats.js pub/sub of the binary bytes' },
    { metric: 'samples/s end to end, binary layout', ratio: ratioJson, baseline: 'hand-rolled JSON client (stringify + parse)' },
  ];
  const out = writeResults('nats-metrics', {
    secondsPerLeg: SECONDS,
    rounds: ROUNDS,
    window: WINDOW,
    sampleBytes: sampleBytes(encoded),
    sampleBytesJson: sampleBytes(encodedJson),
    rows,
    ratioMyelinToRaw: Number(ratio.toFixed(3)),
    ratioMyelinSingleToRaw: Number(ratioSingle.toFixed(3)),
    ratioMyelinToRawJson: Number(ratioJson.toFixed(3)),
    ratioMyelinJsonToRaw: Number(ratioBefore.toFixed(3)),
    aimRatio: 0.8,
    headline,
    perRound,
    batchFrameBytes: Math.round(frames.reduce((a, b) => a + b.byteLength, 0) / frames.length),
    hotPathNs: Object.fromEntries(Object.entries(hot).map(([k, v]) => [k, Math.round(v)])),
  });
  if (!only && decodedOk === 0) throw new Error('no batch sample decoded');
  console.log(`\nwrote ${out}`);
}

await main();
