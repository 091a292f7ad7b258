/**
 * The gateway's Prometheus series, scraped from the control API's `GET /metrics` (the daemon appends
 * the gateway's text to its own): a real gateway on a random loopback port, real `node:http` replicas
 * (test/harness/gateway-replicas.ts) that answer, refuse, reset a reused connection or die.
 */
import assert from 'node:assert/strict';
import { Agent } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { pino } from 'pino';
import { BehaviorSubject, NEVER } from 'rxjs';
import type { ReplicaInfo } from '../../../core/ports/orchestrator-target.js';
import { ControlApi } from '../../../serving/daemon/control-api.js';
import type { DaemonService } from '../../../serving/daemon/daemon-service.js';
import { Gateway } from '../../../serving/gateway/gateway.js';
import { TestReplica, freePort, gatewaySpec, httpRequest, replicaInfo, waitFor } from '../../harness/gateway-replicas.js';

const silent = pino({ level: 'silent' });

/** `name{labels}` → value of every sample in a text exposition. */
function samples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const cut = line.lastIndexOf(' ');
    out.set(line.slice(0, cut), Number(line.slice(cut + 1)));
  }
  return out;
}

/** A service whose own series is one line, like the daemon's in shape. */
const service = {
  async metrics() {
    return '# HELP myelin_api_desired_replicas Replicas the autoscaler asks for\n# TYPE myelin_api_desired_replicas gauge\nmyelin_api_desired_replicas{api="st"} 1\n';
  },
  events$: () => NEVER,
} as unknown as DaemonService;

describe('gateway counters on the control API /metrics', () => {
  let gw: Gateway;
  let port: number;
  let control: ControlApi;
  let controlBase: string;
  const replicas$ = new BehaviorSubject<readonly ReplicaInfo[]>([]);
  const replicas: TestReplica[] = [];
  let held: TestReplica;
  const agent = new Agent({ keepAlive: true });

  before(async () => {
    gw = new Gateway({ host: '127.0.0.1', port: 0, replicas$, closeGraceMs: 2000 }, silent);
    await gw.start();
    port = gw.sharedPort();
    control = new ControlApi({ host: '127.0.0.1', port: 0, service, log: silent, extraMetrics: () => gw.metrics() });
    controlBase = `http://127.0.0.1:${(await control.start()).port}`;

    const st = await TestReplica.start('st-0', 'status');
    const live = await TestReplica.start('ref-live');
    const ka = await TestReplica.start('ka-0');
    const boom = await TestReplica.start('boom-0', 'destroy');
    held = await TestReplica.start('sat-0', 'hold');
    replicas.push(st, live, ka, boom, held);
    const dead = await freePort();
    replicas$.next([
      replicaInfo('st', 'st-0', st.port),
      replicaInfo('ref', 'ref-dead', dead),
      replicaInfo('ref', 'ref-live', live.port),
      replicaInfo('ka', 'ka-0', ka.port),
      replicaInfo('boom', 'boom-0', boom.port),
      replicaInfo('sat', 'sat-0', held.port),
      replicaInfo('unreach', 'unreach-0', dead),
    ]);
    for (const name of ['st', 'ref', 'ka', 'boom', 'idle', 'unreach']) await gw.upsertApi(gatewaySpec(name));
    await gw.upsertApi(gatewaySpec('sat', { maxReplicaConcurrency: 1 }));

    // st: answers with the status asked for.
    for (const s of [200, 200, 201, 404, 500]) {
      await httpRequest(port, { method: 'POST', path: '/st', headers: { 'x-want-status': String(s) }, body: '{}', agent });
    }
    // ref: one replica refuses; whichever it picks first, two requests try the refusing one once.
    for (let i = 0; i < 2; i++) assert.equal((await httpRequest(port, { method: 'POST', path: '/ref', body: '{}' })).status, 200);
    // ka: a warm-up opens the gateway's keep-alive connection, then the replica resets it when reused.
    assert.equal((await httpRequest(port, { method: 'POST', path: '/ka', body: 'warm' })).status, 200);
    ka.mode = 'reset-reused';
    assert.equal((await httpRequest(port, { method: 'POST', path: '/ka', body: 'again' })).status, 200);
    // boom: the replica dies after the request was sent.
    assert.equal((await httpRequest(port, { method: 'POST', path: '/boom', body: '{}' })).status, 502);
    // idle: no replica at all; unreach: its only replica refuses.
    assert.equal((await httpRequest(port, { method: 'POST', path: '/idle', body: '{}' })).status, 503);
    assert.equal((await httpRequest(port, { method: 'POST', path: '/unreach', body: '{}' })).status, 503);
    // sat: one request held at max_replica_concurrency 1, the next one is refused.
    const first = httpRequest(port, { method: 'POST', path: '/sat', body: '{}' });
    await waitFor('the first request to be held', () => held.heldCount === 1);
    assert.equal((await httpRequest(port, { method: 'POST', path: '/sat', body: '{}' })).status, 503);
    await waitFor('sat counted', () => gw.stats('sat')!.count === 1);
    // Left in flight on purpose (the gauge); released in after().
    void first.catch(() => undefined);
    await waitFor('every answered request counted', () => gw.stats('st')!.count === 5 && gw.stats('boom')!.count === 1 && gw.stats('ka')!.count === 2);
  });

  after(async () => {
    held.release();
    agent.destroy();
    await control.close();
    await gw.close();
    for (const r of replicas) await r.close();
  });

  test('the daemon\'s own series come first, then the gateway\'s, each with HELP and TYPE', async () => {
    const res = await fetch(`${controlBase}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    assert.ok(text.startsWith('# HELP myelin_api_desired_replicas '), text.slice(0, 200));
    for (const name of [
      'myelin_gateway_requests_total',
      'myelin_gateway_requests_aborted_total',
      'myelin_gateway_retries_total',
      'myelin_gateway_upstream_errors_total',
      'myelin_gateway_unavailable_total',
    ]) {
      assert.match(text, new RegExp(`^# TYPE ${name} counter$`, 'm'), name);
    }
    for (const name of ['myelin_gateway_in_flight_requests', 'myelin_gateway_ready_upstreams']) assert.match(text, new RegExp(`^# TYPE ${name} gauge$`, 'm'), name);
  });

  test('each counter says what happened to each api', async () => {
    const got = samples(await (await fetch(`${controlBase}/metrics`)).text());
    const want: ReadonlyArray<[string, number]> = [
      ['myelin_api_desired_replicas{api="st"}', 1],
      ['myelin_gateway_requests_total{api="st",code="2xx"}', 3],
      ['myelin_gateway_requests_total{api="st",code="3xx"}', 0],
      ['myelin_gateway_requests_total{api="st",code="4xx"}', 1],
      ['myelin_gateway_requests_total{api="st",code="5xx"}', 1],
      ['myelin_gateway_retries_total{api="st",reason="connect_failed"}', 0],
      ['myelin_gateway_upstream_errors_total{api="st",kind="failed"}', 0],
      ['myelin_gateway_ready_upstreams{api="st"}', 1],
      ['myelin_gateway_in_flight_requests{api="st"}', 0],
      // A refused connection, retried on the other replica.
      ['myelin_gateway_requests_total{api="ref",code="2xx"}', 2],
      ['myelin_gateway_retries_total{api="ref",reason="connect_failed"}', 1],
      ['myelin_gateway_upstream_errors_total{api="ref",kind="connect_refused"}', 1],
      ['myelin_gateway_ready_upstreams{api="ref"}', 2],
      // The keep-alive race: replayed on a fresh connection.
      ['myelin_gateway_requests_total{api="ka",code="2xx"}', 2],
      ['myelin_gateway_retries_total{api="ka",reason="keepalive_reset"}', 1],
      ['myelin_gateway_retries_total{api="ka",reason="connect_failed"}', 0],
      ['myelin_gateway_upstream_errors_total{api="ka",kind="keepalive_reset"}', 1],
      // A replica that fails after the request was sent: 502, no retry.
      ['myelin_gateway_requests_total{api="boom",code="5xx"}', 1],
      ['myelin_gateway_upstream_errors_total{api="boom",kind="failed"}', 1],
      ['myelin_gateway_retries_total{api="boom",reason="connect_failed"}', 0],
      ['myelin_gateway_retries_total{api="boom",reason="keepalive_reset"}', 0],
      // The gateway's own 503s.
      ['myelin_gateway_unavailable_total{api="idle",reason="no_ready"}', 1],
      ['myelin_gateway_requests_total{api="idle",code="5xx"}', 1],
      ['myelin_gateway_ready_upstreams{api="idle"}', 0],
      ['myelin_gateway_unavailable_total{api="unreach",reason="unreachable"}', 1],
      ['myelin_gateway_upstream_errors_total{api="unreach",kind="connect_refused"}', 1],
      ['myelin_gateway_unavailable_total{api="sat",reason="saturated"}', 1],
      ['myelin_gateway_in_flight_requests{api="sat"}', 1],
    ];
    for (const [series, value] of want) assert.equal(got.get(series), value, `${series}: want ${value}, got ${got.get(series)}`);
  });

  test('an api that is no longer routed has no series', async () => {
    await gw.removeApi('idle');
    const text = await (await fetch(`${controlBase}/metrics`)).text();
    assert.doesNotMatch(text, /api="idle"/);
    assert.match(text, /api="st"/);
  });
});

test('Gateway.metrics() alone: the same series, with nothing routed only HELP and TYPE', async () => {
  const replicas$ = new BehaviorSubject<readonly ReplicaInfo[]>([]);
  await using gw = new Gateway({ host: '127.0.0.1', port: 0, replicas$ }, silent);
  await gw.start();
  const text = await gw.metrics();
  assert.match(text, /^# TYPE myelin_gateway_retries_total counter$/m);
  assert.deepEqual([...samples(text).keys()], []);
  assert.ok(text.endsWith('\n'));
});
