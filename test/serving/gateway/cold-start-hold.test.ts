import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { pino } from 'pino';
import { BehaviorSubject } from 'rxjs';
import { explainInvalidMetricSample } from '../../../core/metrics/metric-sample-validator.js';
import type { MetricSample } from '../../../core/metrics/metric-sample.js';
import type { ReplicaInfo } from '../../../core/ports/orchestrator-target.js';
import { HELD_SAMPLE_REPLICA } from '../../../serving/gateway/cold-start-hold.js';
import { Gateway, type GatewayApiSpec } from '../../../serving/gateway/gateway.js';
import { TestReplica, gatewaySpec, replicaInfo, waitFor } from '../../harness/gateway-replicas.js';

// The gateway's cold-start hold (scale to zero) with a real gateway and real HTTP replicas on
// loopback: requests for an API with min_replicas 0 and no ready replica wait, poke, count as load,
// and are released in order to the first ready replica; or time out with a 503 naming the API.

const silent = pino({ level: 'silent' });

function zeroSpec(name: string, o: { maxHeldRequests?: number; holdTimeoutMs?: number; maxReplicaConcurrency?: number } = {}): GatewayApiSpec {
  const base = gatewaySpec(name);
  return { ...base, autoscaling: { ...base.autoscaling, minReplicas: 0, ...o } };
}

interface Harness {
  gw: Gateway;
  replicas$: BehaviorSubject<readonly ReplicaInfo[]>;
  url: (api: string) => string;
  pokes: Array<[string, number]>;
  samples: MetricSample[];
}

async function startGateway(): Promise<Harness> {
  const replicas$ = new BehaviorSubject<readonly ReplicaInfo[]>([]);
  const gw = new Gateway({ host: '127.0.0.1', port: 0, replicas$, closeGraceMs: 1000 }, silent);
  const pokes: Array<[string, number]> = [];
  const samples: MetricSample[] = [];
  gw.setColdStartListener({ poke: (api, held) => pokes.push([api, held]), sample: (s) => samples.push(s) });
  await gw.start();
  const port = gw.sharedPort();
  return { gw, replicas$, url: (api) => `http://127.0.0.1:${port}/${api}`, pokes, samples };
}

function post(url: string, body: string, signal?: AbortSignal): Promise<{ status: number; retryAfter: string | null; body: string }> {
  return fetch(url, { method: 'POST', headers: { 'content-type': 'text/plain' }, body, signal }).then(async (r) => ({
    status: r.status,
    retryAfter: r.headers.get('retry-after'),
    body: await r.text(),
  }));
}

describe('cold-start hold', () => {
  let h: Harness;
  const replicas: TestReplica[] = [];
  beforeEach(async () => {
    h = await startGateway();
  });
  afterEach(async () => {
    await h.gw.close();
    for (const r of replicas.splice(0)) await r.close();
  });

  test('held in order until a replica is ready, poked at once, counted as in-flight load', async () => {
    await h.gw.upsertApi(zeroSpec('zero'));
    const answers: Array<Promise<{ status: number; body: string }>> = [];
    for (let i = 0; i < 5; i++) {
      answers.push(post(`${h.url('zero')}?n=${i}`, `req-${i}`));
      // One at a time, so the arrival order is known.
      await waitFor(`request ${i} held`, () => h.gw.stats('zero')?.inFlight === i + 1);
    }
    await waitFor('a poke for 5', () => h.pokes.some(([, n]) => n === 5));
    assert.match(await h.gw.metrics(), /myelin_gateway_held_requests\{api="zero"\} 5/);
    assert.deepEqual(h.pokes[0], ['zero', 1], 'the first held request pokes at once');
    const first = h.samples[0];
    assert.ok(first, 'a sample at once');
    assert.equal(explainInvalidMetricSample(first), '', 'the held sample fits metric-sample.schema.json');
    assert.deepEqual([first.api, first.replica, first.inFlight, first.ready], ['zero', HELD_SAMPLE_REPLICA, 1, false]);

    const r0 = await TestReplica.start('zero-0');
    replicas.push(r0);
    h.replicas$.next([replicaInfo('zero', 'zero-0', r0.port)]);
    const got = await Promise.all(answers);
    assert.deepEqual(got.map((g) => g.status), [200, 200, 200, 200, 200]);
    assert.deepEqual(got.map((g) => g.body), ['req-0', 'req-1', 'req-2', 'req-3', 'req-4'], 'each answer is its own request');
    assert.equal(r0.seen.length, 5, 'all five reached the first ready replica');
    assert.deepEqual(r0.seen.map((x) => x.url), [0, 1, 2, 3, 4].map((i) => `/predict?n=${i}`), 'released in arrival order');
    assert.equal(h.gw.stats('zero')?.inFlight, 0);
    // The load ends with a 0 sample, then the samples stop (the autoscaler drops the pseudo-replica).
    await waitFor('a closing 0 sample', () => h.samples.length > 1 && h.samples.at(-1)!.inFlight === 0, 5000);
    const sampled = Math.max(...h.samples.map((s) => s.inFlightMax));
    assert.equal(sampled, 5, `the samples saw 5 held (max ${sampled})`);
  });

  test('a request held past hold_timeout is 503 naming the API, with Retry-After', async () => {
    await h.gw.upsertApi(zeroSpec('sleepy', { holdTimeoutMs: 300 }));
    const answer = post(h.url('sleepy'), 'x');
    await waitFor('held', () => h.gw.stats('sleepy')?.held === 1);
    const r = await answer;
    assert.equal(r.status, 503);
    assert.equal(r.retryAfter, '1');
    assert.match(JSON.parse(r.body).error, /^no replica of sleepy could take the request within 300ms .*hold_timeout/);
    assert.equal(h.gw.stats('sleepy')?.held, 0, 'out of the hold');
    assert.match(await h.gw.metrics(), /myelin_gateway_unavailable_total\{api="sleepy",reason="hold_timeout"\} 1/);
  });

  test('a held burst larger than max_replica_concurrency: released as slots free up, in order, none refused', async () => {
    await h.gw.upsertApi(zeroSpec('narrow', { maxReplicaConcurrency: 2 }));
    const answers: Array<Promise<{ status: number; body: string }>> = [];
    for (let i = 0; i < 6; i++) {
      answers.push(post(`${h.url('narrow')}?n=${i}`, `req-${i}`));
      await waitFor(`request ${i} held`, () => h.gw.stats('narrow')?.inFlight === i + 1);
    }
    const r0 = await TestReplica.start('narrow-0', 'hold');
    replicas.push(r0);
    h.replicas$.next([replicaInfo('narrow', 'narrow-0', r0.port)]);
    await waitFor('two at the replica', () => r0.heldCount === 2);
    assert.equal(h.gw.stats('narrow')?.held, 4, 'the other four still held, not refused');
    // Another replicas$ update (e.g. a status change) releases nobody while the replica is full.
    h.replicas$.next([replicaInfo('narrow', 'narrow-0', r0.port)]);
    // A request arriving now queues behind the held ones instead of a 503 'full'.
    answers.push(post(`${h.url('narrow')}?n=6`, 'req-6'));
    await waitFor('the late one held too', () => h.gw.stats('narrow')?.held === 5);
    // Each answer frees a slot, which the next held request takes: 2 + 2 + 2 + 1.
    for (const [seen, open] of [[4, 2], [6, 2], [7, 1]]) {
      r0.release();
      await waitFor(`${seen} reached the replica, ${open} open there`, () => r0.seen.length === seen && r0.heldCount === open);
      assert.ok(r0.open <= 2, `never more than max_replica_concurrency at the replica (${r0.open})`);
    }
    r0.release();
    const got = await Promise.all(answers);
    assert.deepEqual(got.map((g) => g.status), [200, 200, 200, 200, 200, 200, 200]);
    assert.deepEqual(got.map((g) => g.body), [0, 1, 2, 3, 4, 5, 6].map((i) => `req-${i}`));
    assert.deepEqual(r0.seen.map((x) => x.url), [0, 1, 2, 3, 4, 5, 6].map((i) => `/predict?n=${i}`), 'in arrival order');
    assert.doesNotMatch(await h.gw.metrics(), /myelin_gateway_unavailable_total\{api="narrow",reason="saturated"\} [1-9]/);
  });

  test('over max_held_requests: 503 at once, the others stay held', async () => {
    await h.gw.upsertApi(zeroSpec('small', { maxHeldRequests: 2 }));
    const held = [post(h.url('small'), 'a'), post(h.url('small'), 'b')];
    await waitFor('two held', () => h.gw.stats('small')?.inFlight === 2);
    const third = await post(h.url('small'), 'c');
    assert.equal(third.status, 503);
    assert.match(JSON.parse(third.body).error, /small has no ready replica and already holds 2 requests .*max_held_requests/);
    const r0 = await TestReplica.start('small-0');
    replicas.push(r0);
    h.replicas$.next([replicaInfo('small', 'small-0', r0.port)]);
    assert.deepEqual((await Promise.all(held)).map((x) => x.status), [200, 200]);
    assert.match(await h.gw.metrics(), /myelin_gateway_unavailable_total\{api="small",reason="hold_full"\} 1/);
  });

  test('a client that leaves while held is withdrawn: it never reaches a replica', async () => {
    await h.gw.upsertApi(zeroSpec('gone'));
    const abort = new AbortController();
    const leaving = post(h.url('gone'), 'leaving', abort.signal).catch((err: unknown) => err);
    await waitFor('held', () => h.gw.stats('gone')?.inFlight === 1);
    abort.abort();
    await leaving;
    await waitFor('withdrawn', () => h.gw.stats('gone')?.inFlight === 0);
    const staying = post(h.url('gone'), 'staying');
    await waitFor('the next one held', () => h.gw.stats('gone')?.inFlight === 1);
    const r0 = await TestReplica.start('gone-0');
    replicas.push(r0);
    h.replicas$.next([replicaInfo('gone', 'gone-0', r0.port)]);
    assert.equal((await staying).status, 200);
    assert.deepEqual(r0.seen.length, 1, 'only the request whose client stayed was forwarded');
  });

  test('an API with min_replicas 1 is not held: 503 no ready replicas at once', async () => {
    await h.gw.upsertApi(gatewaySpec('plain'));
    const r = await post(h.url('plain'), 'x');
    assert.equal(r.status, 503);
    assert.match(JSON.parse(r.body).error, /no ready replicas for plain/);
    assert.deepEqual(h.pokes, []);
  });

  test('closing the gateway answers what it holds at once, not at hold_timeout', async () => {
    await h.gw.upsertApi(zeroSpec('closing', { holdTimeoutMs: 60_000 }));
    const held = post(h.url('closing'), 'x');
    await waitFor('held', () => h.gw.stats('closing')?.inFlight === 1);
    const t0 = performance.now();
    await h.gw.close();
    const r = await held;
    assert.equal(r.status, 503);
    assert.ok(performance.now() - t0 < 5000, 'well before the 60 s hold_timeout');
  });

  test('redeployed with min_replicas 1 or removed: what was held is answered as any request', async () => {
    await h.gw.upsertApi(zeroSpec('flip'));
    const held = post(h.url('flip'), 'x');
    await waitFor('held', () => h.gw.stats('flip')?.inFlight === 1);
    await h.gw.upsertApi(gatewaySpec('flip'));
    const r = await held;
    assert.equal(r.status, 503);
    assert.match(JSON.parse(r.body).error, /no ready replicas for flip/);

    await h.gw.upsertApi(zeroSpec('bye'));
    const held2 = post(h.url('bye'), 'y');
    await waitFor('held', () => h.gw.stats('bye')?.inFlight === 1);
    await h.gw.removeApi('bye');
    assert.equal((await held2).status, 503);
  });
});
