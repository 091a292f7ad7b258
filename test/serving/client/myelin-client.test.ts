import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { createParser, type EventSourceMessage } from 'eventsource-parser';
import type { Subscription } from 'rxjs';
import type { EngineEvent } from '../../../core/events/engine-event.js';
import { ConfigError } from '../../../core/errors.js';
import { ClientError, DEFAULT_CONTROL_URL, MyelinClient, NotFoundError, UnauthorizedError, type DeployProgress } from '../../../serving/client/index.js';
import { startDaemonProcess, type DaemonProcess } from '../../harness/daemon-process.js';

// The client against a real daemon (`myelin up` as a child process) and a real TypeScript API.

const API = 'echo';
const YAML = `- name: ${API}
  kind: RealtimeAPI
  predictor:
    type: typescript
    path: predictor.ts
  compute:
    cpu: 100m
`;
const PREDICTOR = `import { HttpError, type PredictArgs } from 'myelin';
export class Predictor {
  async predict({ payload, query, headers }: PredictArgs) {
    const p = (payload ?? {}) as { bad?: boolean; delay_ms?: number };
    if (p.bad) throw new HttpError(400, 'bad payload');
    await new Promise((r) => setTimeout(r, Number(p.delay_ms ?? 0)));
    console.log('predicted');
    return { pid: process.pid, payload, query, tag: headers['x-tag'] ?? null };
  }
}
`;

let dir: string;
let stateDir: string;
let project: string;
let daemon: DaemonProcess;
let client: MyelinClient;

async function start(port?: number): Promise<DaemonProcess> {
  const stamp = `${Date.now()}`;
  return startDaemonProcess({ stateDir, port, logFile: join(dir, `daemon-${stamp}.log`), outFile: join(dir, `daemon-${stamp}.out`) });
}

async function waitFor<T>(what: string, ms: number, check: () => T | undefined | false | Promise<T | undefined | false>): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The daemon's retained events of `API` (`GET /v1/events?follow=false`), straight over HTTP. */
async function history(sinceMs: number): Promise<EngineEvent[]> {
  const res = await fetch(`${daemon.controlUrl}/v1/events?follow=false&api=${API}&since=${sinceMs}`, { headers: { authorization: `Bearer ${daemon.token}` } });
  assert.equal(res.status, 200);
  return ((await res.json()) as { events: EngineEvent[] }).events;
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'myelin-client-'));
  stateDir = join(dir, 'state');
  project = join(dir, 'project');
  await mkdir(project, { recursive: true });
  await writeFile(join(project, 'predictor.ts'), PREDICTOR);
  await writeFile(join(project, 'myelin.yaml'), YAML);
  daemon = await start();
  // The token comes from <stateDir>/token: the URL is loopback.
  client = new MyelinClient({ url: daemon.controlUrl, stateDir });
});

after(async () => {
  await daemon?.stop(30_000);
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('deploy (folder) waits until live and reports progress; get lists and details it', { timeout: 90_000 }, async () => {
  const progress: DeployProgress[] = [];
  const out = await client.deploy(project, { wait: true, onProgress: (p) => progress.push(p) });
  assert.equal(out.results[0].api, API);
  assert.equal(out.results[0].action, 'created');
  assert.equal(out.apis?.[0].status, 'live');
  const statuses = progress.flatMap((p) => (p.type === 'status' ? [p.api.status] : []));
  assert.equal(statuses.at(-1), 'live', JSON.stringify(statuses));
  // The upload's answer is reported before the wait's first status.
  assert.equal(progress.filter((p) => p.type === 'deployed').length, 1);
  assert.ok(progress.findIndex((p) => p.type === 'deployed') < progress.findIndex((p) => p.type === 'status'));
  const deployed = progress.find((p) => p.type === 'deployed');
  assert.deepEqual(deployed?.type === 'deployed' ? deployed.response.results : undefined, out.results);
  const list = await client.get();
  assert.deepEqual(list.map((a) => a.name), [API]);
  const detail = await client.get(API);
  assert.equal(detail.name, API);
  assert.ok(detail.replicas.length >= 1);
  // The same file again, named as a file: nothing changes.
  const again = await client.deploy(join(project, 'myelin.yaml'));
  assert.equal(again.results[0].action, 'up to date');
});

test('deploy of an invalid file rejects with ConfigError; of a missing folder with a coded error', { timeout: 30_000 }, async () => {
  const bad = join(dir, 'bad');
  await mkdir(bad, { recursive: true });
  await writeFile(join(bad, 'myelin.yaml'), '- name: Not_Valid\n  kind: RealtimeAPI\n');
  await assert.rejects(client.deploy(bad), (e: unknown) => e instanceof ConfigError && e.code === 'ENG_CONFIG_INVALID' && e.problems.length > 0);
  await assert.rejects(client.deploy(join(dir, 'nowhere')), (e: unknown) => e instanceof ClientError && e.code === 'ENG_CONFIG_NOT_FOUND');
});

test('predict posts JSON with query and headers and returns status and parsed body', { timeout: 30_000 }, async () => {
  const ok = await client.predict<{ payload: unknown; query: Record<string, string>; tag: string | null }>(API, { x: [1, 2] }, { query: { q: '1' }, headers: { 'x-tag': 'abc' } });
  assert.equal(ok.status, 200);
  assert.deepEqual(ok.body.payload, { x: [1, 2] });
  assert.equal(ok.body.query.q, '1');
  assert.equal(ok.body.tag, 'abc');
  const bad = await client.predict(API, { bad: true });
  assert.equal(bad.status, 400);
  assert.match(JSON.stringify(bad.body), /bad payload/);
});

test('predict with an AbortSignal that aborts rejects with the abort and does not wait for the answer', { timeout: 30_000 }, async () => {
  const abort = new AbortController();
  const started = Date.now();
  setTimeout(() => abort.abort(), 300);
  await assert.rejects(client.predict(API, { delay_ms: 5_000 }, { signal: abort.signal }), (e: unknown) => (e as Error).name === 'AbortError');
  assert.ok(Date.now() - started < 4_000, 'aborted well before the answer');
  // An already aborted signal fails at once, before any request.
  await assert.rejects(client.predict(API, {}, { signal: AbortSignal.abort() }), (e: unknown) => (e as Error).name === 'AbortError');
});

test('logs: the last lines, and following until the loop leaves', { timeout: 30_000 }, async () => {
  await client.predict(API, {});
  const lines = await waitFor('a log line', 10_000, async () => {
    const got: string[] = [];
    for await (const l of client.logs(API, { tail: 50 })) got.push(l);
    return got.some((l) => l.includes('predicted')) && got;
  });
  assert.ok(lines.length <= 50 * Math.max(1, (await client.get(API)).replicas.length));
  const followed: string[] = [];
  const loop = (async () => {
    for await (const l of client.logs(API, { follow: true, tail: 0 })) {
      followed.push(l);
      if (l.includes('predicted')) break;
    }
  })();
  await new Promise((r) => setTimeout(r, 500));
  await client.predict(API, {});
  await loop;
  assert.ok(followed.some((l) => l.includes('predicted')));
  // A signal ends a follow too.
  const abort = new AbortController();
  setTimeout(() => abort.abort(), 300);
  await assert.rejects(
    (async () => {
      for await (const _ of client.logs(API, { follow: true, tail: 0, signal: abort.signal })) {
        // lines until aborted
      }
    })(),
    (e: unknown) => (e as Error).name === 'AbortError',
  );
});

test('a wrong token gives UnauthorizedError (ENG_UNAUTHORIZED), for requests and for events$', { timeout: 30_000 }, async () => {
  const wrong = new MyelinClient({ url: daemon.controlUrl, token: 'not-the-token' });
  await assert.rejects(wrong.get(), (e: unknown) => e instanceof UnauthorizedError && e.code === 'ENG_UNAUTHORIZED' && e.status === 401);
  await assert.rejects(wrong.predict(API, {}), (e: unknown) => e instanceof UnauthorizedError);
  const err = await new Promise<unknown>((resolve) => wrong.events$().subscribe({ error: resolve }));
  assert.ok(err instanceof UnauthorizedError);
  // Nobody listening: a coded error, not a fetch TypeError.
  const nowhere = new MyelinClient({ url: 'http://127.0.0.1:9', token: 'x' });
  await assert.rejects(nowhere.get(), (e: unknown) => e instanceof ClientError && e.code === 'ENG_DAEMON_UNREACHABLE');
  await assert.rejects(client.get('no-such-api'), (e: unknown) => e instanceof NotFoundError && (e as NotFoundError).code === 'ENG_NOT_FOUND');
});

test('events$ follows a refresh and a daemon restart on the same port with no event lost and none duplicated', { timeout: 150_000 }, async () => {
  const seen: EngineEvent[] = [];
  let failed: unknown;
  const subscribedAt = Date.now();
  const sub: Subscription = client.events$({ api: API, since: subscribedAt, maxReconnectDelayMs: 1_000 }).subscribe({ next: (e) => seen.push(e), error: (e) => (failed = e) });
  try {
    const r = await client.refresh(API);
    assert.equal(r.api, API);
    await waitFor('the refresh rolled out', 60_000, async () => {
      const a = await client.get(API);
      return a.revision === r.revision && a.status === 'live' && a.stale === 0 && a.upToDate >= 1;
    });
    // Every event the old daemon holds since the subscription arrived, in order, once.
    const old = await history(subscribedAt);
    assert.ok(old.some((e) => e.type === 'replica.ready'), 'the refresh made events');
    await waitFor('the old events', 10_000, () => seen.length >= old.length);
    assert.deepEqual(seen.slice(0, old.length), old);

    // SIGTERM by PID (the harness's stop), then the same state folder and the same control port.
    const port = Number(new URL(daemon.controlUrl).port);
    const stoppedAt = Date.now();
    assert.deepEqual(await daemon.stop(30_000), { code: 0, signal: null });
    daemon = await start(port);
    assert.equal(daemon.controlUrl, client.url);
    await waitFor('the restored API live', 60_000, async () => (await client.get(API)).status === 'live');
    const fresh = await history(0);
    assert.ok(fresh.length > 0, 'the new daemon recorded events (restoring the API) before its control API listened');
    await waitFor("the new daemon's events", 20_000, () => seen.length >= old.length + fresh.length);
    // A moment more: nothing may come twice (no second replay).
    await new Promise((r) => setTimeout(r, 1_500));
    const now = await history(0);
    assert.deepEqual(seen.slice(seen.length - now.length), now, "after the restart: exactly the new daemon's history, in order");
    // Between them only what the old daemon sent after `old` was read, before it stopped.
    const between = seen.slice(old.length, seen.length - now.length);
    assert.ok(between.every((e) => e.t <= stoppedAt), JSON.stringify(between));
    const keys = seen.map((e) => JSON.stringify(e));
    assert.equal(new Set(keys).size, keys.length, 'no event twice');
    assert.equal(failed, undefined);
    // Still working after the restart.
    assert.equal((await client.predict(API, {})).status, 200);
  } finally {
    sub.unsubscribe();
  }
});

/** The first `n` messages (and comments) of `GET /v1/events?<query>` as server-sent events, with `headers`. */
async function sseMessages(query: string, headers: Record<string, string>, n: number): Promise<{ messages: EventSourceMessage[]; comments: string[] }> {
  const abort = new AbortController();
  const messages: EventSourceMessage[] = [];
  const comments: string[] = [];
  const parser = createParser({ onEvent: (m) => messages.push(m), onComment: (c) => comments.push(c.trim()) });
  const res = await fetch(`${daemon.controlUrl}/v1/events?${query}`, { headers: { authorization: `Bearer ${daemon.token}`, ...headers }, signal: abort.signal });
  assert.equal(res.status, 200);
  const timer = setTimeout(() => abort.abort(), 2_000);
  try {
    const decoder = new TextDecoder();
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      parser.feed(decoder.decode(chunk, { stream: true }));
      if (messages.length >= n && comments.length > 0) break;
    }
  } catch (err) {
    if (!abort.signal.aborted) throw err;
  } finally {
    clearTimeout(timer);
    abort.abort();
  }
  return { messages, comments };
}

test('the SSE stream carries ids; Last-Event-ID replays exactly what follows, an id of another boot everything', { timeout: 30_000 }, async () => {
  const all = await history(0);
  assert.ok(all.length >= 3);
  const { messages } = await sseMessages(`api=${API}&since=0`, {}, all.length);
  assert.deepEqual(messages.map((m) => JSON.parse(m.data) as unknown), all);
  assert.ok(messages.every((m) => m.id !== undefined && m.event === (JSON.parse(m.data) as EngineEvent).type));
  const k = 1;
  const resumed = await sseMessages(`api=${API}&since=0`, { 'last-event-id': messages[k].id! }, all.length - k - 1);
  assert.deepEqual(resumed.messages.map((m) => m.id), messages.slice(k + 1).map((m) => m.id));
  const otherBoot = await sseMessages(`api=${API}&since=${Date.now() + 60_000}`, { 'last-event-id': 'zzzz00-7' }, all.length);
  assert.deepEqual(otherBoot.messages.map((m) => m.id), messages.map((m) => m.id));
  // A live-only stream says where it starts.
  const live = await sseMessages(`api=${API}`, {}, 0);
  assert.ok(live.comments.some((c) => /^position \S+-\d+$/.test(c)), JSON.stringify(live.comments));
});

test('eventHistory is the retained events; without reconnect, events$ errors on a daemon that is not there', { timeout: 30_000 }, async () => {
  assert.deepEqual(await client.eventHistory({ api: API, since: 0 }), await history(0));
  const later = Date.now() + 60_000;
  assert.deepEqual(await client.eventHistory({ api: API, since: later }), []);
  const nowhere = new MyelinClient({ url: 'http://127.0.0.1:9', token: 'x' });
  const err = await new Promise<unknown>((resolve) => nowhere.events$({ reconnect: false }).subscribe({ error: resolve }));
  assert.ok(err instanceof ClientError && err.code === 'ENG_DAEMON_UNREACHABLE', String(err));
  // No url: MYELIN_URL, else the default address.
  const saved = process.env.MYELIN_URL;
  process.env.MYELIN_URL = `${daemon.controlUrl}/`;
  try {
    assert.equal(new MyelinClient({ stateDir }).url, daemon.controlUrl);
    assert.deepEqual((await new MyelinClient({ stateDir }).get()).map((a) => a.name), [API]);
    delete process.env.MYELIN_URL;
    assert.equal(new MyelinClient().url, DEFAULT_CONTROL_URL);
  } finally {
    if (saved === undefined) delete process.env.MYELIN_URL;
    else process.env.MYELIN_URL = saved;
  }
});

test('refresh and delete; a deleted API is NotFoundError', { timeout: 60_000 }, async () => {
  assert.deepEqual(await client.delete(API), { deleted: API });
  await assert.rejects(client.get(API), (e: unknown) => e instanceof NotFoundError);
  await assert.rejects(client.refresh(API), (e: unknown) => e instanceof NotFoundError);
  await assert.rejects(client.delete(API), (e: unknown) => e instanceof NotFoundError);
});

test('shutdown stops the daemon; a stream without reconnect completes when it ends', { timeout: 60_000 }, async () => {
  let completed = false;
  let failed: unknown;
  const sub = client.events$({ reconnect: false }).subscribe({ complete: () => (completed = true), error: (e) => (failed = e) });
  try {
    await new Promise((r) => setTimeout(r, 300));
    await client.shutdown();
    assert.deepEqual(await daemon.exited, { code: 0, signal: null });
    await waitFor('the stream to complete', 10_000, () => completed || failed !== undefined);
    assert.equal(failed, undefined);
    await assert.rejects(client.get(), (e: unknown) => e instanceof ClientError && e.code === 'ENG_DAEMON_UNREACHABLE');
  } finally {
    sub.unsubscribe();
  }
});
