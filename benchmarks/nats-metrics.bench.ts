/**
 * Metric samples per second end to end over a real nats-server: `NatsMetricsTransport.publish(sample)`
 * → validated sample on `samples$`, against raw nats.js pub/sub of the same samples' encoded bytes
 * (published as pre-encoded buffers, counted in a subscription callback), in the same run, as a ratio.
 * A third leg, "raw + JSON", is what a hand-rolled client pays (JSON.stringify on publish, JSON.parse
 * on receipt, no validation): the ratio to it shows what the transport's own layers cost.
 *
 * One process holds the publishing and the subscribing connection (two connections, as a replica and
 * the daemon would have); the nats-server is a child on a random loopback port. Each leg publishes as
 * fast as the subscriber keeps up (at most `WINDOW` samples in flight), for `--seconds` after a warm-up;
 * `--rounds` rounds run the legs in rotating order and each side's rounds are merged. Then the hot-path
 * pieces are timed alone (encode, decode, fast check, ajv). Bounded: defaults 3 rounds × 3 legs × 2 s.
 *
 *   node --import tsx benchmarks/nats-metrics.bench.ts [--seconds 2] [--rounds 3]
 *
 * Prints tables and writes benchmarks/results/nats-metrics.json. Aim: myelin ≥ 0.8 of raw.
 */
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { ManualClock } from '../core/clock.js';
import type { MetricSample } from '../core/metrics/metric-sample.js';
import {
  decodeMetricSample,
  encodeMetricSample,
  isMetricSample,
  metricSampleSchemaValidator,
} from '../core/metrics/metric-sample-validator.js';
import { NatsMetricsTransport } from '../adapters/transport/nats/nats-metrics-transport.js';
import { NatsServer } from '../test/harness/nats-server.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const WINDOW = 5_000;
const WARMUP_MS = 300;
const DISTINCT = 1_000;

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : fallback;
}
const SECONDS = Number(arg('seconds', '2'));
const ROUNDS = Number(arg('rounds', '3'));

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
const encoded = samples.map((s) => encodeMetricSample(s));

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

async function myelinLeg(url: string, prefix: string): Promise<LegRun> {
  const log = pino({ level: 'silent' });
  const o = { servers: url, subjectPrefix: prefix };
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
function nsPerOp(f: (i: number) => unknown, ms = 400): number {
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

type Leg = 'raw' | 'raw+json' | 'myelin';

async function main(): Promise<void> {
  await using server = await NatsServer.start({ jetstream: false });
  const pubNc = await connect({ servers: server.url });
  const subNc = await connect({ servers: server.url });
  const merged: Record<Leg, { received: number; elapsedMs: number; cpuUs: number }> = {
    raw: { received: 0, elapsedMs: 0, cpuUs: 0 },
    'raw+json': { received: 0, elapsedMs: 0, cpuUs: 0 },
    myelin: { received: 0, elapsedMs: 0, cpuUs: 0 },
  };
  const legs: Leg[] = ['raw', 'myelin', 'raw+json'];
  const perRound: { round: number; leg: Leg; samplesPerSec: number }[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const order = legs.map((_, i) => legs[(i + round) % legs.length]);
    for (const leg of order) {
      const prefix = `bench${round}.${leg === 'raw+json' ? 'json' : leg}`;
      const r =
        leg === 'myelin'
          ? await myelinLeg(server.url, `bench${round}m`)
          : await rawLeg(pubNc, subNc, `${prefix}.metrics`, leg === 'raw+json');
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
  const rows = legs.map((l) => ({ leg: l, samplesPerSec: rate(l), processCpuNsPerSample: cpuNs(l), samples: merged[l].received }));
  const ratio = rate('myelin') / rate('raw');
  const ratioJson = rate('myelin') / rate('raw+json');

  const ajv = metricSampleSchemaValidator();
  const hot = {
    encodeNs: nsPerOp((i) => encodeMetricSample(samples[i])),
    jsonStringifyBufferNs: nsPerOp((i) => Buffer.from(JSON.stringify(samples[i]))),
    decodeAndValidateNs: nsPerOp((i) => decodeMetricSample(encoded[i]).ok),
    jsonParseNs: nsPerOp((i) => JSON.parse(new TextDecoder().decode(encoded[i])) as unknown),
    fastCheckNs: nsPerOp((i) => isMetricSample(samples[i])),
    ajvCheckNs: nsPerOp((i) => ajv(samples[i])),
  };

  console.log(`\nNATS metrics end to end (${ROUNDS} rounds × ${SECONDS} s per leg, window ${WINDOW}, nats-server ${server.url})`);
  console.log('leg        samples/s   process CPU ns/sample');
  for (const r of rows) console.log(`${r.leg.padEnd(10)} ${String(r.samplesPerSec).padStart(9)}   ${String(r.processCpuNsPerSample).padStart(8)}`);
  console.log(`myelin / raw        = ${ratio.toFixed(3)}   (aim ≥ 0.8)`);
  console.log(`myelin / raw+json   = ${ratioJson.toFixed(3)}`);
  console.log('\nhot path, CPU ns per sample');
  for (const [k, v] of Object.entries(hot)) console.log(`${k.padEnd(24)} ${v.toFixed(0).padStart(6)}`);

  const out = {
    benchmark: 'nats-metrics',
    date: new Date().toISOString(),
    node: process.version,
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    secondsPerLeg: SECONDS,
    rounds: ROUNDS,
    window: WINDOW,
    sampleBytes: Math.round(encoded.reduce((a, b) => a + b.byteLength, 0) / encoded.length),
    rows,
    ratioMyelinToRaw: Number(ratio.toFixed(3)),
    ratioMyelinToRawJson: Number(ratioJson.toFixed(3)),
    aimRatio: 0.8,
    perRound,
    hotPathNs: Object.fromEntries(Object.entries(hot).map(([k, v]) => [k, Math.round(v)])),
  };
  mkdirSync(join(ROOT, 'benchmarks/results'), { recursive: true });
  writeFileSync(join(ROOT, 'benchmarks/results/nats-metrics.json'), `${JSON.stringify(out, null, 2)}\n`);
  console.log('\nwrote benchmarks/results/nats-metrics.json');
}

await main();
