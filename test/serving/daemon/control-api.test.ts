import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { pino } from 'pino';
import { Subject, of, throwError } from 'rxjs';
import { ConfigError } from '../../../core/errors.js';
import type { EngineEvent } from '../../../core/events/engine-event.js';
import { ControlApi, NotFoundError, isLoopbackHost } from '../../../serving/daemon/control-api.js';
import type { DaemonService } from '../../../serving/daemon/daemon-service.js';

// The HTTP layer is tested against a scripted DaemonService; the real daemon is covered by the e2e tests.
const live = new Subject<EngineEvent>();
let shutdowns = 0;
const service: DaemonService = {
  async deploy(bundle) {
    if (bundle.configFile === 'bad.yaml') {
      throw new ConfigError([{ file: 'bad.yaml', line: 3, col: 5, api: 'a', field: 'kind', message: 'must be defined', severity: 'error' }]);
    }
    return { results: [{ api: 'a', action: 'created', revision: 'r', endpoint: '/a', message: 'creating a' }], warnings: [] };
  },
  async list() {
    return [];
  },
  async get(name) {
    throw new NotFoundError(`api ${name} is not deployed`);
  },
  async delete() {},
  async refresh() {
    throw new Error('boom with secret detail');
  },
  logs$(name, { follow }) {
    if (name !== 'a') return throwError(() => new NotFoundError(`api ${name} is not deployed`));
    return follow ? live.pipe() as never : of('line 1', 'line 2');
  },
  events$() {
    return live.asObservable();
  },
  recentEvents({ sinceMs }) {
    return [{ v: 1, type: 'api.status', api: 'a', t: sinceMs + 1, status: 'live' }];
  },
  async metrics() {
    return '# HELP x y\nx 1\n';
  },
  shutdown() {
    shutdowns++;
  },
};

let api: ControlApi;
let base: string;
let secured: ControlApi;
let securedBase: string;
before(async () => {
  const log = pino({ level: 'silent' });
  api = new ControlApi({ host: '127.0.0.1', port: 0, service, log });
  base = `http://127.0.0.1:${(await api.start()).port}`;
  secured = new ControlApi({ host: '127.0.0.1', port: 0, service, log, token: 'sekret' });
  securedBase = `http://127.0.0.1:${(await secured.start()).port}`;
});
after(async () => {
  await api.close();
  await secured.close();
});

test('routes answer with the right status codes and JSON bodies', async () => {
  const cases: Array<{ name: string; method: string; path: string; body?: unknown; want: number; match?: RegExp }> = [
    { name: 'health', method: 'GET', path: '/healthz', want: 200 },
    { name: 'deploy ok', method: 'POST', path: '/v1/deploy', body: { bundle: { configFile: 'myelin.yaml', files: [{ path: 'myelin.yaml', data: '' }] } }, want: 200, match: /creating a/ },
    { name: 'deploy invalid config', method: 'POST', path: '/v1/deploy', body: { bundle: { configFile: 'bad.yaml', files: [{ path: 'bad.yaml', data: '' }] } }, want: 400, match: /bad.yaml:3:5: a: kind: must be defined/ },
    { name: 'deploy malformed', method: 'POST', path: '/v1/deploy', body: { nope: 1 }, want: 400, match: /expected/ },
    { name: 'unknown api', method: 'GET', path: '/v1/apis/zzz', want: 404, match: /not deployed/ },
    { name: 'internal error hides detail', method: 'POST', path: '/v1/apis/a/refresh', want: 500, match: /internal error/ },
    { name: 'no route', method: 'GET', path: '/nope', want: 404 },
    { name: 'recent events', method: 'GET', path: '/v1/events?follow=false&since=41', want: 200, match: /"t":42/ },
    { name: 'bad since', method: 'GET', path: '/v1/events?since=abc', want: 400, match: /since must be/ },
    { name: 'metrics', method: 'GET', path: '/metrics', want: 200, match: /x 1/ },
  ];
  for (const c of cases) {
    const res = await fetch(base + c.path, { method: c.method, headers: { 'content-type': 'application/json' }, body: c.body === undefined ? undefined : JSON.stringify(c.body) });
    const text = await res.text();
    assert.equal(res.status, c.want, `${c.name}: ${text}`);
    if (c.match) assert.match(text, c.match, c.name);
    assert.doesNotMatch(text, /secret detail/, c.name);
  }
  const bad = await fetch(`${base}/v1/deploy`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{oops' });
  assert.equal(bad.status, 400);
  const escape = await fetch(`${base}/v1/deploy`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ bundle: { configFile: '../../etc/passwd', files: [] } }),
  });
  assert.equal(escape.status, 400);
  assert.match(await escape.text(), /unsafe config file name/);
});

test('a browser page cannot change anything: JSON only, loopback Host only', async () => {
  // A cross-origin page can POST text/plain or a form without a preflight; those are refused.
  const simple = await fetch(`${base}/v1/shutdown`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'x' });
  assert.equal(simple.status, 415);
  assert.equal(shutdowns, 0);
  // DNS rebinding: a page on evil.example resolving to 127.0.0.1 sends its own Host.
  const { request } = await import('node:http');
  const status = await new Promise<number>((resolve, reject) => {
    const r = request(`${base}/v1/apis`, { headers: { host: 'evil.example:8889' } }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    r.on('error', reject);
    r.end();
  });
  assert.equal(status, 403);
});

test('a bearer token is required when configured', async () => {
  assert.equal((await fetch(`${securedBase}/v1/apis`)).status, 401);
  assert.equal((await fetch(`${securedBase}/v1/apis`, { headers: { authorization: 'Bearer wrong!' } })).status, 401);
  assert.equal((await fetch(`${securedBase}/v1/apis`, { headers: { authorization: 'Bearer sekret' } })).status, 200);
  assert.equal((await fetch(`${securedBase}/healthz`)).status, 200, 'health needs no token');
  // Bound to loopback, a foreign Host is refused even with the right token (DNS rebinding).
  const { request } = await import('node:http');
  const rebound = await new Promise<number>((resolve, reject) => {
    const r = request(`${securedBase}/v1/apis`, { headers: { host: 'evil.example:8889', authorization: 'Bearer sekret' } }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    r.on('error', reject);
    r.end();
  });
  assert.equal(rebound, 403);
  assert.ok(isLoopbackHost('127.0.0.1') && isLoopbackHost('::1') && !isLoopbackHost('0.0.0.0'));
});

test('logs stream as text; an unknown API is 404 before streaming', async () => {
  const res = await fetch(`${base}/v1/apis/a/logs`);
  assert.equal(res.status, 200);
  assert.equal(await res.text(), 'line 1\nline 2\n');
  assert.equal((await fetch(`${base}/v1/apis/b/logs`)).status, 404);
});

test('events arrive as server-sent events while the client listens', async () => {
  const ac = new AbortController();
  const res = await fetch(`${base}/v1/events`, { signal: ac.signal });
  assert.equal(res.headers.get('content-type'), 'text/event-stream');
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let text = '';
  const e: EngineEvent = { v: 1, type: 'api.status', api: 'a', t: 1, status: 'live' };
  const deadline = Date.now() + 5000;
  while (!text.includes('"status":"live"') && Date.now() < deadline) {
    live.next(e);
    const { value } = await reader.read();
    text += decoder.decode(value);
  }
  assert.match(text, /event: api.status\ndata: \{"v":1,"type":"api.status","api":"a","t":1,"status":"live"\}\n\n/);
  ac.abort();
});

test('a stream client that stops reading is disconnected instead of filling the memory of the daemon', async () => {
  const { request } = await import('node:http');
  const closed = new Promise<void>((resolve, reject) => {
    const r = request(`${base}/v1/events`, (res) => {
      res.pause(); // never reads
      res.on('close', () => resolve());
      const big = 'x'.repeat(60_000);
      // Bounded: at most 400 events of 60 KB (24 MB), far past the 8 MiB limit.
      for (let i = 0; i < 400 && live.observed; i++) live.next({ v: 1, type: 'api.status', api: 'a', t: i, status: 'live', message: big });
    });
    r.on('error', reject);
    r.end();
  });
  await closed;
  assert.equal(live.observed, false, 'the subscription was released');
});

test('shutdown asks the service to stop', async () => {
  const res = await fetch(`${base}/v1/shutdown`, { method: 'POST', headers: { 'content-type': 'application/json' } });
  assert.equal(res.status, 202);
  assert.equal(shutdowns, 1);
});

test('a bundle that is not a writable tree is 400 ENG_BAD_BUNDLE before the service sees it', async () => {
  const x = Buffer.from('x').toString('base64');
  const res = await fetch(`${base}/v1/deploy`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ bundle: { configFile: 'myelin.yaml', files: [{ path: 'myelin.yaml', data: x }, { path: 'm', data: x }, { path: 'm/p.ts', data: x }] } }),
  });
  assert.equal(res.status, 400);
  const body = (await res.json()) as { code: string; error: string };
  assert.equal(body.code, 'ENG_BAD_BUNDLE');
  assert.match(body.error, /a file and a folder with the same name: "m"/);
});
