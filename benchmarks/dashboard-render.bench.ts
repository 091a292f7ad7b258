/**
 * The dashboard with 50 APIs and 200 replicas in headless Chromium: how long each second's update
 * takes in the page (API table + detail with the 200-row replica table: `myelinStats.samples`) and
 * each chart redraw (`chartSamples`), how many long tasks (> 50 ms) the page had, and how long the
 * first full render took. Against one 60 Hz frame (16.7 ms): an update under it cannot cause jank.
 *
 * The control API is the real one (`ControlApi`, session cookie, metrics stream) with the real
 * `InFlightRecorder` sealing every second; the daemon behind it is scripted (50 APIs are not started
 * as 50 real API processes on a 2-core machine). Loopback only; bounded (default 20 s, `--seconds`).
 *
 *   node --import tsx benchmarks/dashboard-render.bench.ts [--seconds 20] [--quick]
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { EMPTY } from 'rxjs';
import { chromium } from 'playwright-core';
import type { ApiSpec } from '../core/config/api-spec.js';
import { SystemClock } from '../serving/composition/system-clock.js';
import { ControlApi, NotFoundError } from '../serving/daemon/control-api.js';
import type { ApiDetail, ApiSummary, DaemonService } from '../serving/daemon/daemon-service.js';
import { InFlightRecorder } from '../serving/daemon/in-flight-recorder.js';
import { StateStore } from '../serving/daemon/state-store.js';
import { dashboardUrl } from '../serving/dashboard/dashboard-url.js';
import { autoscalingSpec } from '../test/harness/autoscaling-spec-fixture.js';
import { arg, percentile, QUICK, table, writeResults } from './harness/bench-util.js';

const APIS = 50;
const REPLICAS = 200;
const SECONDS = QUICK ? 3 : Number(arg('seconds', '20'));
const CHROMIUM = process.env.MYELIN_CHROMIUM ?? '/usr/bin/chromium';
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const FRAME_MS = 1000 / 60;

const names = Array.from({ length: APIS }, (_, i) => `api-${String(i).padStart(2, '0')}`);
let tick = 0;
const summary = (name: string, i: number): ApiSummary => ({
  name,
  status: (tick + i) % 17 === 0 ? 'updating' : 'live',
  endpoint: `/${name}`,
  url: `http://127.0.0.1:8888/${name}`,
  revision: 'r1',
  upToDate: name === names[0] ? REPLICAS : 1 + (i % 3),
  stale: 0,
  requested: name === names[0] ? REPLICAS : 1 + (i % 3),
  failed: 0,
  lastUpdated: 0,
  requests: { '2xx': tick * 10, '4xx': tick, '5xx': 0, avgLatencyMs: 3 + (i % 5) },
});
const service: DaemonService = {
  deploy: async () => ({ results: [], warnings: [] }),
  list: async () => names.map(summary),
  get: async (name) => {
    const i = names.indexOf(name);
    if (i < 0) throw new NotFoundError(`api ${name} is not deployed`);
    const n = name === names[0] ? REPLICAS : 1 + (i % 3);
    // A few replicas change state every second, so the replica table really is rewritten.
    const replicas = Array.from({ length: n }, (_, k) => ({ id: `${name}-${k}`, revision: 'r1', state: (k + tick) % 40 === 0 ? 'starting' : 'ready', pid: 10_000 + k }));
    return { ...summary(name, i), spec: null, replicas, autoscaler: { policy: 'cortex', avgInFlight: n, target: 1, raw: 1, recommendation: n, lastDecision: null, lastTick: { t: Date.now(), reason: 'recommendation equals current' } }, lastLogLines: [] } satisfies ApiDetail;
  },
  delete: async () => undefined,
  refresh: async () => ({ api: '', action: 'updated', revision: '', endpoint: '', message: '' }),
  logs$: () => EMPTY,
  events$: () => EMPTY,
  recentEvents: () => [],
  metrics: async () => '',
  shutdown: () => undefined,
};

async function main(): Promise<void> {
  if (!existsSync(CHROMIUM)) {
    console.log(`dashboard-render: no chromium at ${CHROMIUM} (bash scripts/system-deps.sh installs it); nothing measured`);
    writeResults('dashboard-render', { skipped: `no chromium at ${CHROMIUM}`, headline: [] });
    return;
  }
  const dir = await mkdtemp(join(tmpdir(), 'myelin-dashboard-bench-'));
  const store = new StateStore(dir);
  await store.init();
  const log = pino({ level: 'silent' });
  const clock = new SystemClock();
  const recorder = new InFlightRecorder({ store, clock, log, apis: () => names.map((name, i) => ({ name, replicas: name === names[0] ? REPLICAS : 1 + (i % 3), target: 1 })) });
  await recorder.start([]);
  const feed = setInterval(() => {
    tick++;
    names.forEach((api, i) => recorder.observe({ v: 1, api, replica: `${api}-0`, revision: 'r1', seq: tick, t: Date.now(), intervalMs: 1000, inFlight: (i + tick) % 7, inFlightMax: 7, requests: { '2xx': 10, '4xx': 1, '5xx': 0 }, latencyMsSum: 30, ready: true }));
  }, 1000);
  const token = 'bench-token';
  const sources = { recorder, recording: (api: string, sinceMs?: number) => ({ spec: { name: api, autoscaling: autoscalingSpec() } as unknown as ApiSpec, createdMs: 0, points: recorder.points(api, sinceMs) }) };
  const control = new ControlApi({ host: '127.0.0.1', port: 0, service, log, token, dashboard: sources });
  const base = `http://127.0.0.1:${(await control.start()).port}`;
  const profile = join(dir, 'profile');
  await mkdir(profile);
  const context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: FLAGS, viewport: { width: 1280, height: 900 } });
  try {
    await context.addInitScript(`window.longTasks = [];
      new PerformanceObserver((l) => { for (const e of l.getEntries()) window.longTasks.push(e.duration); }).observe({ type: 'longtask', buffered: true });`);
    const page = context.pages()[0] ?? (await context.newPage());
    const t0 = Date.now();
    await page.goto(dashboardUrl(base, token));
    await page.evaluate(`location.hash = 'api=${names[0]}'`);
    await page.locator(`tr[data-api="${names[APIS - 1]}"]`).waitFor({ timeout: 30_000 });
    await page.waitForFunction(`document.querySelectorAll('#replicas tbody tr').length === ${REPLICAS}`, undefined, { timeout: 30_000 });
    const firstRenderMs = Date.now() - t0;
    await page.evaluate('window.myelinStats.samples.length = 0; window.myelinStats.chartSamples.length = 0; window.longTasks.length = 0');
    await page.waitForTimeout(SECONDS * 1000);
    const s = (await page.evaluate('({ samples: window.myelinStats.samples, chart: window.myelinStats.chartSamples, longTasks: window.longTasks })')) as { samples: number[]; chart: number[]; longTasks: number[] };
    const up = [...s.samples].sort((a, b) => a - b);
    const ch = [...s.chart].sort((a, b) => a - b);
    const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : Number.NaN);
    const f = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : '-');
    console.log(`dashboard: ${APIS} APIs, ${REPLICAS} replicas on the focused one, ${SECONDS} s of one update a second${QUICK ? ' (quick: not a measurement)' : ''}`);
    console.log(
      table(
        ['what', 'n', 'mean ms', 'p95 ms', 'max ms'],
        [
          ['update (tables, detail)', String(up.length), f(mean(up)), f(percentile(up, 95)), f(up[up.length - 1] ?? Number.NaN)],
          ['chart redraw', String(ch.length), f(mean(ch)), f(percentile(ch, 95)), f(ch[ch.length - 1] ?? Number.NaN)],
        ],
      ),
    );
    console.log(`long tasks (> 50 ms) while updating: ${s.longTasks.length}; first full render: ${firstRenderMs} ms`);
    const p95 = percentile(up, 95) + percentile(ch, 95);
    const file = writeResults('dashboard-render', {
      apis: APIS,
      replicas: REPLICAS,
      seconds: SECONDS,
      update: { n: up.length, meanMs: mean(up), p95Ms: percentile(up, 95), maxMs: up[up.length - 1] ?? null },
      chart: { n: ch.length, meanMs: mean(ch), p95Ms: percentile(ch, 95), maxMs: ch[ch.length - 1] ?? null },
      longTasks: s.longTasks,
      firstRenderMs,
      headline: [{ metric: `dashboard update + redraw p95, ${APIS} APIs / ${REPLICAS} replicas (ms)`, ratio: p95 / FRAME_MS, baseline: 'one 60 Hz frame (16.7 ms)', aim: 1, higherIsBetter: false }],
    });
    console.log(`results: ${file}`);
  } finally {
    clearInterval(feed);
    await context.close();
    await control.close();
    await recorder.close();
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
