// The dashboard's HTTP side on the real ControlApi: the token → cookie exchange, what a session may
// and may not do, the Origin refusal, the recording, the what-if and the metrics stream. The daemon
// behind it is scripted (as in test/serving/daemon/control-api.test.ts) with a real InFlightRecorder on
// a real state folder; the browser test drives the whole thing against a real daemon.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { pino } from 'pino';
import { EMPTY } from 'rxjs';
import type { ApiSpec } from '../../../core/config/api-spec.js';
import { ManualClock } from '../../../core/clock.js';
import { ControlApi, NotFoundError } from '../../../serving/daemon/control-api.js';
import type { ApiDetail, ApiSummary, DaemonService } from '../../../serving/daemon/daemon-service.js';
import { InFlightRecorder } from '../../../serving/daemon/in-flight-recorder.js';
import { StateStore } from '../../../serving/daemon/state-store.js';
import { SESSION_COOKIE, sessionValue, type DashboardSource } from '../../../serving/dashboard/dashboard-routes.js';
import { autoscalingSpec } from '../../harness/autoscaling-spec-fixture.js';

const TOKEN = 'sekret-token';
const T0 = 1_700_000_000_000;
const summary: ApiSummary = { name: 'a', status: 'live', endpoint: '/a', url: 'http://127.0.0.1:1/a', revision: 'r1', upToDate: 1, stale: 0, requested: 1, failed: 0, lastUpdated: T0, requests: { '2xx': 0, '4xx': 0, '5xx': 0, avgLatencyMs: null } };
const spec = { name: 'a', autoscaling: autoscalingSpec({ tickMs: 2000, windowMs: 10_000, upscaleStabilizationPeriodMs: 0, downscaleStabilizationPeriodMs: 20_000, targetReplicaConcurrency: 2, maxReplicas: 10 }) } as unknown as ApiSpec;
let deletes = 0;
const service: DaemonService = {
  deploy: async () => ({ results: [], warnings: [] }),
  list: async () => [summary],
  get: async (name) => {
    if (name !== 'a') throw new NotFoundError(`api ${name} is not deployed`);
    return { ...summary, spec: null, replicas: [{ id: 'a-0', revision: 'r1', state: 'ready', pid: 42 }], autoscaler: { policy: 'cortex', avgInFlight: 1, target: 2, raw: 0.5, recommendation: 1, lastDecision: null, lastTick: null }, lastLogLines: [] } satisfies ApiDetail;
  },
  delete: async () => {
    deletes++;
  },
  refresh: async () => ({ api: 'a', action: 'updated', revision: 'r2', endpoint: '/a', message: '' }),
  logs$: () => EMPTY,
  events$: () => EMPTY,
  recentEvents: () => [],
  metrics: async () => 'x 1\n',
  shutdown: () => undefined,
};

let dir: string;
let control: ControlApi;
let base: string;
let recorder: InFlightRecorder;
const clock = new ManualClock(T0);

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'myelin-dashboard-routes-'));
  const store = new StateStore(dir);
  await store.init();
  const log = pino({ level: 'silent' });
  recorder = new InFlightRecorder({ store, clock, log, apis: () => [{ name: 'a', replicas: 1, target: 2 }] });
  await recorder.start([]);
  // Two minutes: 2 in flight, then a step to 12 from the 60th second.
  for (let s = 0; s < 120; s++) {
    recorder.observe({ v: 1, api: 'a', replica: 'a-0', revision: 'r1', seq: s, t: clock.now() + 100, intervalMs: 1000, inFlight: s < 60 ? 2 : 12, inFlightMax: 12, requests: { '2xx': 3, '4xx': 0, '5xx': 0 }, latencyMsSum: 6, ready: true });
    clock.advance(1000);
    recorder.seal();
  }
  const source: DashboardSource = { recorder, recording: (api, sinceMs) => {
    if (api !== 'a') throw new NotFoundError(`api ${api} is not deployed`);
    return { spec, createdMs: T0 - 86_400_000, points: recorder.points(api, sinceMs) };
  } };
  control = new ControlApi({ host: '127.0.0.1', port: 0, service, log, token: TOKEN, dashboard: source });
  base = `http://127.0.0.1:${(await control.start()).port}`;
});
after(async () => {
  await control.close();
  await recorder.close();
  await rm(dir, { recursive: true, force: true });
});

const session = (): Record<string, string> => ({ cookie: `${SESSION_COOKIE}=${sessionValue(TOKEN)}` });

test('the token is exchanged for an HttpOnly SameSite=Strict session cookie; without it the page is refused', async () => {
  const none = await fetch(`${base}/`);
  assert.equal(none.status, 401);
  assert.match(await none.text(), /needs the daemon’s token/);
  const wrong = await fetch(`${base}/?token=nope`, { redirect: 'manual' });
  assert.equal(wrong.status, 401);
  assert.equal(wrong.headers.get('set-cookie'), null);
  const ok = await fetch(`${base}/?token=${TOKEN}`, { redirect: 'manual' });
  assert.equal(ok.status, 303);
  assert.equal(ok.headers.get('location'), '/');
  const cookie = ok.headers.get('set-cookie') ?? '';
  assert.match(cookie, new RegExp(`^${SESSION_COOKIE}=[A-Za-z0-9_-]+; HttpOnly; SameSite=Strict; Path=/$`));
  assert.ok(!cookie.includes(TOKEN), 'the cookie is not the token itself');
  const page = await fetch(`${base}/`, { headers: { cookie: cookie.split(';')[0] } });
  assert.equal(page.status, 200);
  assert.match(page.headers.get('content-security-policy') ?? '', /script-src 'self'/);
  assert.equal(page.headers.get('x-frame-options'), 'DENY');
  const html = await page.text();
  const js = /src="(\/dashboard\/app\.js\?v=[0-9a-f]{12})"/.exec(html)?.[1];
  assert.ok(js, html);
  const bundle = await fetch(base + js);
  assert.equal(bundle.status, 200);
  assert.match(bundle.headers.get('content-type') ?? '', /^text\/javascript/);
  assert.match(bundle.headers.get('cache-control') ?? '', /immutable/);
  assert.ok((await bundle.text()).length > 10_000, 'the bundle holds the page and uPlot');
  const forged = await fetch(`${base}/`, { headers: { cookie: `${SESSION_COOKIE}=${sessionValue('another-token')}` } });
  assert.equal(forged.status, 401);
});

test('a session may read and run what-ifs, never change the daemon; a foreign Origin is refused', async () => {
  const cases: Array<{ name: string; method: string; path: string; headers?: Record<string, string>; body?: unknown; want: number }> = [
    { name: 'list', method: 'GET', path: '/v1/apis', want: 200 },
    { name: 'detail', method: 'GET', path: '/v1/apis/a', want: 200 },
    { name: 'recording', method: 'GET', path: '/v1/dashboard/recording?api=a', want: 200 },
    { name: 'what-if', method: 'POST', path: '/v1/dashboard/what-if', body: { api: 'a', set: {} }, want: 200 },
    { name: 'delete needs the bearer token', method: 'DELETE', path: '/v1/apis/a', want: 401 },
    { name: 'deploy needs the bearer token', method: 'POST', path: '/v1/deploy', body: {}, want: 401 },
    { name: 'shutdown needs the bearer token', method: 'POST', path: '/v1/shutdown', body: {}, want: 401 },
    { name: 'prometheus needs the bearer token', method: 'GET', path: '/metrics', want: 401 },
    { name: 'logs need the bearer token', method: 'GET', path: '/v1/apis/a/logs', want: 401 },
    { name: 'foreign origin', method: 'GET', path: '/v1/apis', headers: { origin: 'http://evil.example' }, want: 403 },
    { name: 'foreign origin, page', method: 'GET', path: '/', headers: { origin: 'http://evil.example' }, want: 403 },
    { name: 'cross-site fetch without Origin', method: 'GET', path: '/v1/apis', headers: { 'sec-fetch-site': 'cross-site' }, want: 403 },
    { name: 'null origin (a sandboxed page)', method: 'POST', path: '/v1/dashboard/what-if', headers: { origin: 'null' }, body: { api: 'a' }, want: 403 },
  ];
  for (const c of cases) {
    const res = await fetch(base + c.path, {
      method: c.method,
      headers: { ...session(), 'content-type': 'application/json', ...c.headers },
      body: c.body === undefined ? undefined : JSON.stringify(c.body),
    });
    const text = await res.text();
    assert.equal(res.status, c.want, `${c.name}: want ${c.want}, got ${res.status} ${text}`);
  }
  assert.equal(deletes, 0);
  const own = await fetch(`${base}/v1/apis`, { headers: { ...session(), origin: base } });
  assert.equal(own.status, 200, 'the page’s own origin is fine');
  const bearer = await fetch(`${base}/v1/apis`, { headers: { authorization: `Bearer ${TOKEN}`, origin: 'http://evil.example' } });
  assert.equal(bearer.status, 403, 'the token does not open a foreign origin either');
});

test('the recording and the what-if: the recorded step, and another target that would not have scaled', async () => {
  const rec = (await (await fetch(`${base}/v1/dashboard/recording?api=a&since=${T0 + 100_000}`, { headers: session() })).json()) as { points: { t: number; inFlight: number }[]; autoscaling: { windowMs: number } };
  assert.equal(rec.points.length, 21);
  assert.ok(rec.points.every((p) => p.inFlight === 12));
  assert.equal(rec.autoscaling.windowMs, 10_000);
  const run = async (set: Record<string, string>) => {
    const res = await fetch(`${base}/v1/dashboard/what-if`, { method: 'POST', headers: { ...session(), 'content-type': 'application/json' }, body: JSON.stringify({ api: 'a', sinceMs: T0, set }) });
    return { status: res.status, body: (await res.json()) as { ticks: { replicas: number; reason: string }[]; error?: string; startReplicas: number } };
  };
  const same = await run({});
  assert.equal(same.status, 200);
  assert.ok(Math.max(...same.body.ticks.map((t) => t.replicas)) >= 6, '12 in flight at target 2: 6 replicas');
  const calm = await run({ target: '20' });
  assert.ok(calm.body.ticks.every((t) => t.replicas === 1), 'target 20: one replica throughout');
  const bad = await run({ window: '3s' });
  assert.equal(bad.status, 400);
  assert.match(bad.body.error ?? '', /window 3s is not a multiple of the tick, 2s/);
  const unknown = await fetch(`${base}/v1/dashboard/what-if`, { method: 'POST', headers: { ...session(), 'content-type': 'application/json' }, body: JSON.stringify({ api: 'zzz' }) });
  assert.equal(unknown.status, 404);
});

test('the metrics stream sends every API and the focused detail after each recorded second', async () => {
  const abort = new AbortController();
  const res = await fetch(`${base}/v1/dashboard/metrics?api=a`, { headers: session(), signal: abort.signal });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /text\/event-stream/);
  const reader = res.body!.getReader();
  let text = '';
  const decoder = new TextDecoder();
  const messages = (): unknown[] => [...text.matchAll(/event: metrics\ndata: (.*)\n\n/g)].map((m) => JSON.parse(m[1]));
  while (messages().length < 1) text += decoder.decode((await reader.read()).value);
  recorder.observe({ v: 1, api: 'a', replica: 'a-0', revision: 'r1', seq: 999, t: clock.now() + 100, intervalMs: 1000, inFlight: 7, inFlightMax: 7, requests: { '2xx': 1, '4xx': 0, '5xx': 0 }, latencyMsSum: 2, ready: true });
  clock.advance(1000);
  recorder.seal();
  while (messages().length < 2) text += decoder.decode((await reader.read()).value);
  abort.abort();
  const [first, second] = messages() as { apis: ApiSummary[]; points: Record<string, { inFlight: number }>; detail: ApiDetail | null }[];
  assert.deepEqual(first.apis.map((a) => a.name), ['a']);
  assert.equal(first.detail?.replicas[0].pid, 42);
  assert.equal(second.points.a.inFlight, 7);
});
