import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { Agent } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { pino } from 'pino';
import { BehaviorSubject } from 'rxjs';
import type { ReplicaInfo } from '../../../core/ports/orchestrator-target.js';
import { Gateway } from '../../../serving/gateway/gateway.js';
import {
  TestReplica,
  freePort,
  gatewaySpec,
  httpRequest,
  replicaInfo,
  waitFor,
} from '../../harness/gateway-replicas.js';

const silent = pino({ level: 'silent' });

/** A gateway on a random loopback port fed by a subject the test drives. */
async function startGateway(): Promise<{ gw: Gateway; replicas$: BehaviorSubject<readonly ReplicaInfo[]>; port: number }> {
  const replicas$ = new BehaviorSubject<readonly ReplicaInfo[]>([]);
  const gw = new Gateway({ host: '127.0.0.1', port: 0, replicas$, closeGraceMs: 2000 }, silent);
  await gw.start();
  return { gw, replicas$, port: gw.sharedPort() };
}

function json(body: Buffer): unknown {
  return JSON.parse(body.toString('utf8'));
}

describe('gateway routing', () => {
  let gw: Gateway;
  let port: number;
  let iris: TestReplica;
  let wine: TestReplica;

  before(async () => {
    ({ gw, port } = await startGateway().then(async (g) => {
      iris = await TestReplica.start('iris-0');
      wine = await TestReplica.start('wine-0');
      g.replicas$.next([replicaInfo('iris', 'iris-0', iris.port), replicaInfo('wine', 'wine-0', wine.port)]);
      await g.gw.upsertApi(gatewaySpec('iris'));
      await g.gw.upsertApi(gatewaySpec('wine', { endpoint: '/v1/wine' }));
      return g;
    }));
  });
  after(async () => {
    await gw.close();
    await iris.close();
    await wine.close();
  });

  const cases: ReadonlyArray<{
    name: string;
    method: string;
    path: string;
    wantStatus: number;
    wantReplica?: string;
    wantUpstreamUrl?: string;
  }> = [
    { name: 'POST endpoint → /predict', method: 'POST', path: '/iris', wantStatus: 200, wantReplica: 'iris-0', wantUpstreamUrl: '/predict' },
    { name: 'query string kept', method: 'POST', path: '/iris?debug=true&x=%20', wantStatus: 200, wantReplica: 'iris-0', wantUpstreamUrl: '/predict?debug=true&x=%20' },
    { name: 'GET endpoint → / (summary)', method: 'GET', path: '/v1/wine', wantStatus: 200, wantReplica: 'wine-0', wantUpstreamUrl: '/' },
    { name: 'GET with query → /?query', method: 'GET', path: '/v1/wine?debug=true', wantStatus: 200, wantReplica: 'wine-0', wantUpstreamUrl: '/?debug=true' },
    { name: 'HEAD endpoint → HEAD / (summary headers)', method: 'HEAD', path: '/v1/wine', wantStatus: 200, wantReplica: 'wine-0', wantUpstreamUrl: '/' },
    { name: 'sub-path is not routed (exact match)', method: 'POST', path: '/iris/predict', wantStatus: 404 },
    { name: 'trailing slash is not routed', method: 'POST', path: '/iris/', wantStatus: 404 },
    { name: 'unknown path', method: 'GET', path: '/nope', wantStatus: 404 },
    { name: 'other methods are refused', method: 'PUT', path: '/iris', wantStatus: 405 },
  ];
  for (const c of cases) {
    test(c.name, async () => {
      const before = (c.wantReplica === 'wine-0' ? wine : iris).hits;
      const got = await httpRequest(port, { method: c.method, path: c.path, body: c.method === 'POST' ? '{"a":1}' : undefined });
      assert.equal(got.status, c.wantStatus, `want ${c.wantStatus}, got ${got.status}: ${got.body.toString()}`);
      if (c.wantReplica !== undefined) {
        assert.equal(got.headers['x-replica'], c.wantReplica);
        assert.equal(got.headers['x-seen-url'], c.wantUpstreamUrl);
        const r = c.wantReplica === 'wine-0' ? wine : iris;
        assert.equal(r.hits, before + 1);
        assert.equal(r.seen[r.seen.length - 1].method, c.method);
      }
    });
  }

  test('404 lists the endpoints', async () => {
    const got = await httpRequest(port, { method: 'POST', path: '/predict', body: '{}' });
    assert.equal(got.status, 404);
    assert.equal(got.headers['content-type'], 'application/json');
    assert.deepEqual(json(got.body), { error: 'not found', endpoints: ['/iris', '/v1/wine'] });
  });

  test('GET /healthz answers 200', async () => {
    const got = await httpRequest(port, { path: '/healthz' });
    assert.equal(got.status, 200);
    assert.deepEqual(json(got.body), { status: 'ok' });
  });

  test('OPTIONS is a CORS preflight answered by the gateway', async () => {
    const got = await httpRequest(port, { method: 'OPTIONS', path: '/iris', headers: { 'access-control-request-headers': 'content-type' } });
    assert.equal(got.status, 204);
    assert.equal(got.headers['access-control-allow-origin'], '*');
    assert.equal(got.headers['access-control-allow-headers'], 'content-type');
  });

  test('a second api cannot take an endpoint in use', async () => {
    await assert.rejects(gw.upsertApi(gatewaySpec('other', { endpoint: '/iris' })), { code: 'ENG_GATEWAY_ENDPOINT_TAKEN' });
    const got = await httpRequest(port, { method: 'POST', path: '/iris', body: '{}' });
    assert.equal(got.headers['x-replica'], 'iris-0');
  });

  test('a declared body over max_body_bytes is answered 413 without reaching a replica', async () => {
    await gw.upsertApi(gatewaySpec('iris', { maxBodyBytes: 10 }));
    const before = iris.hits;
    const got = await httpRequest(port, { method: 'POST', path: '/iris', body: Buffer.alloc(11) });
    assert.equal(got.status, 413);
    assert.equal(iris.hits, before);
    await gw.upsertApi(gatewaySpec('iris'));
  });
});

describe('gateway passthrough', () => {
  let g: Awaited<ReturnType<typeof startGateway>>;
  let r: TestReplica;
  before(async () => {
    g = await startGateway();
    r = await TestReplica.start('r0');
    g.replicas$.next([replicaInfo('api', 'r0', r.port)]);
    await g.gw.upsertApi(gatewaySpec('api'));
  });
  after(async () => {
    await g.gw.close();
    await r.close();
  });

  test('headers: case, repeats and host kept; x-forwarded-for appended; x-request-id kept or assigned', async () => {
    const got = await httpRequest(g.port, {
      method: 'POST',
      path: '/api',
      headers: ['Host', 'models.example', 'X-Custom', 'one', 'X-Custom', 'two', 'X-Forwarded-For', '203.0.113.9', 'Content-Type', 'application/json'],
      body: '{}',
    });
    assert.equal(got.status, 200);
    const seen = r.seen[r.seen.length - 1];
    const pairs: string[][] = [];
    for (let i = 0; i < seen.rawHeaders.length; i += 2) pairs.push([seen.rawHeaders[i], seen.rawHeaders[i + 1]]);
    assert.deepEqual(pairs.filter(([k]) => k === 'X-Custom'), [['X-Custom', 'one'], ['X-Custom', 'two']]);
    assert.equal(seen.headers.host, 'models.example');
    assert.equal(seen.headers['x-forwarded-for'], '203.0.113.9, 127.0.0.1');
    assert.match(String(seen.headers['x-request-id']), /^[0-9a-f-]{36}$/);
    // Response headers pass through too, repeated ones included.
    assert.deepEqual(got.headers['x-custom-reply'], 'one, two');

    await httpRequest(g.port, { method: 'POST', path: '/api', headers: { 'x-request-id': 'req-42' }, body: '{}' });
    assert.equal(r.seen[r.seen.length - 1].headers['x-request-id'], 'req-42');
  });

  test('connections to a replica are kept alive and reused', async () => {
    const before = r.connections;
    for (let i = 0; i < 5; i++) {
      assert.equal((await httpRequest(g.port, { method: 'POST', path: '/api', body: '{}' })).status, 200);
    }
    assert.ok(r.connections - before <= 1, `want at most 1 new upstream connection for 5 sequential requests, got ${r.connections - before}`);
  });

  test('Expect: 100-continue is answered by the gateway and not forwarded', async () => {
    const got = await httpRequest(g.port, { method: 'POST', path: '/api', headers: { expect: '100-continue' }, body: 'payload' });
    assert.equal(got.status, 200);
    assert.equal(got.body.toString(), 'payload');
    assert.equal(r.seen[r.seen.length - 1].headers.expect, undefined);
  });

  test('binary body arrives byte for byte and comes back unchanged', async () => {
    const body = Buffer.from(Array.from({ length: 4096 }, (_, i) => i % 256));
    const got = await httpRequest(g.port, { method: 'POST', path: '/api', headers: { 'content-type': 'application/octet-stream' }, body });
    assert.equal(got.status, 200);
    assert.equal(got.headers['content-type'], 'application/octet-stream');
    assert.ok(got.body.equals(body), 'echoed body differs from the one sent');
  });

  test('status codes and bodies of the replica pass through', async () => {
    r.mode = 'status';
    try {
      for (const want of [201, 400, 429, 500, 504]) {
        const got = await httpRequest(g.port, { method: 'POST', path: '/api', headers: { 'x-want-status': String(want) }, body: '{}' });
        assert.equal(got.status, want);
        assert.deepEqual(json(got.body), { replica: 'r0' });
      }
    } finally {
      r.mode = 'echo';
    }
  });

  test('a large chunked body is streamed: the replica sees the first chunk before the client sends the rest', async () => {
    r.mode = 'hash';
    try {
      const chunk = randomBytes(256 * 1024);
      const chunks = 32; // 8 MiB
      let firstSeen = false;
      r.onBodyBytes(() => {
        firstSeen = true;
      });
      const want = createHash('sha256');
      async function* body(): AsyncIterable<Buffer> {
        yield chunk;
        want.update(chunk);
        // If the gateway buffered the whole body, the replica would never see a byte before the end.
        await waitFor('the replica to receive the first chunk', () => firstSeen);
        for (let i = 1; i < chunks; i++) {
          want.update(chunk);
          yield chunk;
        }
      }
      const got = await httpRequest(g.port, { method: 'POST', path: '/api', body: body() });
      assert.equal(got.status, 200);
      assert.deepEqual(json(got.body), { replica: 'r0', bytes: chunk.length * chunks, sha256: want.digest('hex') });
      assert.equal(r.seen[r.seen.length - 1].headers['transfer-encoding'], 'chunked');
    } finally {
      r.mode = 'echo';
    }
  });
});

describe('gateway balancing and limits', () => {
  let g: Awaited<ReturnType<typeof startGateway>>;
  let a: TestReplica;
  let b: TestReplica;
  before(async () => {
    g = await startGateway();
    a = await TestReplica.start('a');
    b = await TestReplica.start('b');
  });
  after(async () => {
    await g.gw.close();
    await a.close();
    await b.close();
  });

  async function reset(maxReplicaConcurrency: number, list: readonly ReplicaInfo[]): Promise<void> {
    a.mode = 'echo';
    b.mode = 'echo';
    a.release();
    b.release();
    await waitFor('replicas to drain', () => a.open === 0 && b.open === 0);
    g.replicas$.next(list);
    await g.gw.upsertApi(gatewaySpec('api', { maxReplicaConcurrency }));
  }

  const post = (): Promise<{ status: number; replica: string | undefined; body: Buffer; retryAfter: string | undefined }> =>
    httpRequest(g.port, { method: 'POST', path: '/api', body: '{}' }).then((res) => ({
      status: res.status,
      replica: res.headers['x-replica'] as string | undefined,
      body: res.body,
      retryAfter: res.headers['retry-after'] as string | undefined,
    }));

  test('equal replicas take turns (round-robin ties)', async () => {
    await reset(1024, [replicaInfo('api', 'a', a.port), replicaInfo('api', 'b', b.port)]);
    const got: string[] = [];
    for (let i = 0; i < 6; i++) got.push((await post()).replica ?? '?');
    const counts = { a: got.filter((x) => x === 'a').length, b: got.filter((x) => x === 'b').length };
    assert.deepEqual(counts, { a: 3, b: 3 }, `sequence ${got.join(',')}`);
    for (let i = 1; i < got.length; i++) assert.notEqual(got[i], got[i - 1], `sequence ${got.join(',')}`);
  });

  test('least outstanding: a slow replica holding a request gets no more while the fast one is idle', async () => {
    await reset(1024, [replicaInfo('api', 'a', a.port), replicaInfo('api', 'b', b.port)]);
    a.mode = 'hold';
    b.mode = 'hold';
    const slow = post();
    await waitFor('the first request to be held', () => a.heldCount + b.heldCount === 1);
    const slowReplica = a.heldCount === 1 ? a : b;
    const fast = slowReplica === a ? b : a;
    fast.mode = 'echo';
    const hitsBefore = slowReplica.hits;
    for (let i = 0; i < 8; i++) assert.equal((await post()).replica, fast.name);
    assert.equal(slowReplica.hits, hitsBefore);
    assert.deepEqual(
      g.gw.upstreams('api').map((u) => [u.id, u.outstanding]).sort(),
      [[slowReplica.name, 1], [fast.name, 0]].sort(),
    );
    slowReplica.release();
    assert.equal((await slow).status, 200);
  });

  test('max_replica_concurrency: a full replica is skipped; 503 only when every replica is full', async () => {
    await reset(2, [replicaInfo('api', 'a', a.port), replicaInfo('api', 'b', b.port)]);
    a.mode = 'hold';
    b.mode = 'hold';
    const hitsBefore = a.hits + b.hits;
    const held = [post(), post(), post()];
    await waitFor('3 requests held', () => a.heldCount + b.heldCount === 3);
    // One slot is left on one replica: the 4th request must take it, not get a 503.
    held.push(post());
    await waitFor('4 requests held', () => a.heldCount + b.heldCount === 4);
    assert.deepEqual([a.heldCount, b.heldCount], [2, 2]);
    const rejected = await post();
    assert.equal(rejected.status, 503);
    assert.equal(rejected.retryAfter, '1');
    assert.deepEqual(json(rejected.body), { error: 'every ready replica of api is at max_replica_concurrency (2)' });
    assert.equal(a.hits + b.hits - hitsBefore, 4, 'the rejected request reached no replica');
    assert.equal(a.open + b.open, 4);
    a.release();
    b.release();
    for (const p of held) assert.equal((await p).status, 200);
  });

  test('no ready replica → 503 naming the api; starting replicas take no traffic', async () => {
    await reset(1024, [replicaInfo('api', 'a', a.port, 'starting')]);
    const got = await post();
    assert.equal(got.status, 503);
    assert.equal(got.retryAfter, '1');
    assert.deepEqual(json(got.body), { error: 'no ready replicas for api' });
    assert.equal(a.open, 0);
  });

  test('replica list changes: new replicas take traffic at once, removed ones finish what they have', async () => {
    await reset(1024, [replicaInfo('api', 'a', a.port)]);
    assert.equal((await post()).replica, 'a');
    g.replicas$.next([replicaInfo('api', 'a', a.port), replicaInfo('api', 'b', b.port)]);
    const two = new Set([(await post()).replica, (await post()).replica]);
    assert.deepEqual([...two].sort(), ['a', 'b']);

    // a holds one request, then leaves the ready set (terminating): new requests go to b only.
    a.mode = 'hold';
    b.mode = 'hold';
    const inFlight = post();
    await waitFor('a request held', () => a.heldCount + b.heldCount === 1);
    const leaving = a.heldCount === 1 ? a : b;
    const staying = leaving === a ? b : a;
    staying.mode = 'echo';
    g.replicas$.next([replicaInfo('api', leaving.name, leaving.port, 'terminating'), replicaInfo('api', staying.name, staying.port)]);
    for (let i = 0; i < 4; i++) assert.equal((await post()).replica, staying.name);
    leaving.release();
    const done = await inFlight;
    assert.equal(done.status, 200);
    assert.equal(done.replica, leaving.name);

    g.replicas$.next([]);
    assert.equal((await post()).status, 503);
  });
});

describe('gateway retries', () => {
  let g: Awaited<ReturnType<typeof startGateway>>;
  let live: TestReplica;
  let other: TestReplica;
  before(async () => {
    g = await startGateway();
    live = await TestReplica.start('live');
    other = await TestReplica.start('other');
    await g.gw.upsertApi(gatewaySpec('api'));
  });
  after(async () => {
    await g.gw.close();
    await live.close();
    await other.close();
  });

  test('a refused connection is retried on another replica with the body intact', async () => {
    const deadPort = await freePort();
    g.replicas$.next([replicaInfo('api', 'dead', deadPort), replicaInfo('api', 'live', live.port)]);
    const before = g.gw.stats('api')!.retries;
    const body = randomBytes(64 * 1024);
    // Two requests in a row: whichever order the balancer picks, the dead replica gets tried once.
    for (let i = 0; i < 2; i++) {
      const got = await httpRequest(g.port, { method: 'POST', path: '/api', headers: { 'content-type': 'application/octet-stream' }, body });
      assert.equal(got.status, 200);
      assert.equal(got.headers['x-replica'], 'live');
      assert.ok(got.body.equals(body));
    }
    const dead = g.gw.upstreams('api').find((u) => u.id === 'dead')!;
    assert.equal(dead.attempts, 1, 'the refused replica is ejected after the first refusal');
    assert.equal(dead.ejected, true);
    assert.equal(g.gw.stats('api')!.retries - before, 1);
  });

  test('when every replica refuses, the answer is 503 (safe to retry)', async () => {
    const deadPort = await freePort();
    g.replicas$.next([replicaInfo('api', 'dead-only', deadPort)]);
    const got = await httpRequest(g.port, { method: 'POST', path: '/api', body: '{}' });
    assert.equal(got.status, 503);
    assert.deepEqual(json(got.body), { error: 'no replica of api accepted the connection (ECONNREFUSED)' });
  });

  test('no retry after the request was sent: socket destroyed mid-request → 502, one upstream attempt', async () => {
    live.mode = 'destroy';
    other.mode = 'echo';
    try {
      g.replicas$.next([]);
      g.replicas$.next([replicaInfo('api', 'live', live.port), replicaInfo('api', 'other', other.port)]);
      const liveBefore = live.hits;
      const otherBefore = other.hits;
      const got = await httpRequest(g.port, { method: 'POST', path: '/api', body: '{"x":1}' });
      const attempts = live.hits - liveBefore + (other.hits - otherBefore);
      if (live.hits - liveBefore === 1) {
        assert.equal(got.status, 502, got.body.toString());
        assert.match((json(got.body) as { error: string }).error, /^replica live of api failed while handling the request/);
      } else {
        // The balancer chose the healthy replica first; the destroying one must then take the next request.
        assert.equal(got.status, 200);
        const second = await httpRequest(g.port, { method: 'POST', path: '/api', body: '{"x":1}' });
        assert.equal(second.status, 502);
      }
      assert.equal(live.hits - liveBefore, 1, 'exactly one attempt reached the failing replica');
      assert.equal(attempts <= 2, true);
      assert.equal(other.hits - otherBefore, attempts - 1, 'the failed request was not replayed on the other replica');
    } finally {
      live.mode = 'echo';
    }
  });

  test('replica dies mid-response → the client sees a truncated response, not a complete one', async () => {
    live.mode = 'destroy-mid-response';
    try {
      g.replicas$.next([replicaInfo('api', 'live', live.port)]);
      await assert.rejects(httpRequest(g.port, { method: 'POST', path: '/api', body: '{}' }), (err: NodeJS.ErrnoException) => {
        assert.equal(err.code, 'ECONNRESET');
        return true;
      });
    } finally {
      live.mode = 'echo';
    }
    await waitFor('outstanding back to 0', () => g.gw.upstreams('api').every((u) => u.outstanding === 0));
  });

  test('a client that goes away aborts the upstream request', async () => {
    live.mode = 'hold';
    try {
      g.replicas$.next([replicaInfo('api', 'live', live.port)]);
      const ac = new AbortController();
      const p = httpRequest(g.port, { method: 'POST', path: '/api', body: '{}', signal: ac.signal });
      await waitFor('the request to be held', () => live.heldCount === 1);
      const abortedBefore = live.abortedByPeer;
      ac.abort();
      await assert.rejects(p);
      await waitFor('the replica to see the abort', () => live.abortedByPeer === abortedBefore + 1);
      await waitFor('outstanding back to 0', () => g.gw.upstreams('api')[0].outstanding === 0);
      await waitFor('in-flight back to 0', () => g.gw.stats('api')!.inFlight === 0);
    } finally {
      live.mode = 'echo';
      live.release();
    }
  });
});

describe('gateway long requests', () => {
  test('a request outlasting the idle-socket timeout is not cut (the timeout only closes idle sockets)', async () => {
    const replicas$ = new BehaviorSubject<readonly ReplicaInfo[]>([]);
    const gw = new Gateway({ host: '127.0.0.1', port: 0, replicas$, agent: { freeSocketTimeoutMs: 50 } }, silent);
    const r = await TestReplica.start('slow', 'hold');
    try {
      await gw.start();
      replicas$.next([replicaInfo('api', 'slow', r.port)]);
      await gw.upsertApi(gatewaySpec('api'));
      const p = httpRequest(gw.sharedPort(), { method: 'POST', path: '/api', body: 'late' });
      await waitFor('the request to be held', () => r.heldCount === 1);
      // Hold well past the 50 ms socket timeout, then answer.
      const heldUntil = Date.now() + 300;
      await waitFor('300 ms to pass', () => Date.now() >= heldUntil);
      r.release();
      const got = await p;
      assert.equal(got.status, 200);
      assert.equal(got.body.toString(), 'late');
    } finally {
      await gw.close();
      await r.close();
    }
  });
});

describe('gateway setRoutes', () => {
  test('apis can swap endpoints in one call; clashing specs are refused before any change', async () => {
    const g = await startGateway();
    const a = await TestReplica.start('a');
    const b = await TestReplica.start('b');
    try {
      g.replicas$.next([replicaInfo('a', 'a', a.port), replicaInfo('b', 'b', b.port)]);
      await g.gw.setRoutes([gatewaySpec('a', { endpoint: '/x' }), gatewaySpec('b', { endpoint: '/y' })]);
      await g.gw.setRoutes([gatewaySpec('a', { endpoint: '/y' }), gatewaySpec('b', { endpoint: '/x' })]);
      const cases = [
        { path: '/x', want: 'b' },
        { path: '/y', want: 'a' },
      ];
      for (const c of cases) {
        const got = await httpRequest(g.port, { method: 'POST', path: c.path, body: '{}' });
        assert.equal(got.headers['x-replica'], c.want, `${c.path}: want ${c.want}`);
      }
      await assert.rejects(
        g.gw.setRoutes([gatewaySpec('a', { endpoint: '/z' }), gatewaySpec('b', { endpoint: '/z' })]),
        { code: 'ENG_GATEWAY_ENDPOINT_TAKEN' },
      );
      assert.equal((await httpRequest(g.port, { method: 'POST', path: '/y', body: '{}' })).headers['x-replica'], 'a');
      await g.gw.setRoutes([gatewaySpec('b', { endpoint: '/x' })]);
      assert.equal((await httpRequest(g.port, { method: 'POST', path: '/y', body: '{}' })).status, 404);
      assert.equal(g.gw.stats('a'), undefined);
    } finally {
      await g.gw.close();
      await a.close();
      await b.close();
    }
  });
});

describe('gateway close', () => {
  test('close stops accepting at once and lets an in-flight request finish', async () => {
    const replicas$ = new BehaviorSubject<readonly ReplicaInfo[]>([]);
    const gw = new Gateway({ host: '127.0.0.1', port: 0, replicas$, closeGraceMs: 5000 }, silent);
    const r = await TestReplica.start('r', 'hold');
    try {
      await gw.start();
      const port = gw.sharedPort();
      replicas$.next([replicaInfo('api', 'r', r.port)]);
      await gw.upsertApi(gatewaySpec('api'));
      const inFlight = httpRequest(port, { method: 'POST', path: '/api', body: 'x' });
      await waitFor('the request to be held', () => r.heldCount === 1);
      const closed = gw.close();
      await waitFor('the listener to close', () => gw.ports().length === 0);
      await assert.rejects(httpRequest(port, { path: '/healthz' }), { code: 'ECONNREFUSED' });
      r.release();
      assert.equal((await inFlight).status, 200);
      await closed;
      await assert.rejects(gw.upsertApi(gatewaySpec('late')), { code: 'ENG_GATEWAY_CLOSED' });
    } finally {
      await gw.close();
      await r.close();
    }
  });
});

describe('gateway unix-socket replicas', () => {
  test('a replica on a unix socket is served; a missing socket counts as refused and is retried', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'myelin-gw-'));
    const g = await startGateway();
    const r = await TestReplica.start('sock', 'echo', join(dir, 'r.sock'));
    try {
      await g.gw.upsertApi(gatewaySpec('api'));
      const info = (id: string, socketPath: string): ReplicaInfo => ({ id, api: 'api', revision: 'r1', state: 'ready', address: { socketPath }, createdAt: 0 });
      g.replicas$.next([info('missing', join(dir, 'nobody.sock')), info('sock', join(dir, 'r.sock'))]);
      for (let i = 0; i < 2; i++) {
        const got = await httpRequest(g.port, { method: 'POST', path: '/api?x=1', body: 'abc' });
        assert.equal(got.status, 200);
        assert.equal(got.headers['x-replica'], 'sock');
        assert.equal(got.headers['x-seen-url'], '/predict?x=1');
        assert.equal(got.body.toString(), 'abc');
      }
      assert.equal(g.gw.upstreams('api').find((u) => u.id === 'missing')!.attempts, 1);
    } finally {
      await g.gw.close();
      await r.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('gateway ports', () => {
  test('each distinct local_port gets a listener; several apis may share one; ports close when unused', async () => {
    const g = await startGateway();
    const r = await TestReplica.start('r');
    try {
      const p1 = await freePort();
      const p2 = await freePort();
      g.replicas$.next(['shared', 'own', 'c', 'd'].map((api) => replicaInfo(api, `${api}-0`, r.port)));
      await g.gw.setRoutes([
        gatewaySpec('shared'),
        gatewaySpec('own', { localPort: p1 }),
        gatewaySpec('c', { localPort: p2 }),
        gatewaySpec('d', { localPort: p2 }),
      ]);
      assert.deepEqual(g.gw.ports(), [g.port, ...[p1, p2].sort((x, y) => x - y)]);

      const cases: ReadonlyArray<{ port: number; path: string; want: number }> = [
        { port: g.port, path: '/shared', want: 200 },
        { port: g.port, path: '/own', want: 200 },
        { port: g.port, path: '/c', want: 200 },
        { port: p1, path: '/own', want: 200 },
        { port: p1, path: '/', want: 200 }, // the only api on its port answers at the root too
        { port: p1, path: '/shared', want: 404 },
        { port: p2, path: '/c', want: 200 },
        { port: p2, path: '/d', want: 200 },
        { port: p2, path: '/', want: 404 },
      ];
      for (const c of cases) {
        const got = await httpRequest(c.port, { method: 'POST', path: c.path, body: '{}' });
        assert.equal(got.status, c.want, `POST :${c.port === g.port ? 'shared' : c.port}${c.path}: want ${c.want}, got ${got.status}`);
      }
      const notFound = await httpRequest(p2, { path: '/x' });
      assert.deepEqual(json(notFound.body), { error: 'not found', endpoints: ['/c', '/d'] });

      await g.gw.removeApi('own');
      await assert.rejects(httpRequest(p1, { method: 'POST', path: '/own', body: '{}' }), { code: 'ECONNREFUSED' });
      assert.equal((await httpRequest(g.port, { method: 'POST', path: '/own', body: '{}' })).status, 404);
      await g.gw.removeApi('c');
      assert.equal((await httpRequest(p2, { method: 'POST', path: '/d', body: '{}' })).status, 200);
      assert.equal(g.gw.stats('c'), undefined);

      // Moving an api to the shared port closes its own port.
      await g.gw.upsertApi(gatewaySpec('d'));
      await assert.rejects(httpRequest(p2, { method: 'POST', path: '/d', body: '{}' }), { code: 'ECONNREFUSED' });
      assert.deepEqual(g.gw.ports(), [g.port]);
    } finally {
      await g.gw.close();
      await r.close();
    }
  });

  test('a port that cannot be opened rejects the route and leaves the rest serving', async () => {
    const g = await startGateway();
    const taken = await TestReplica.start('squatter');
    try {
      await assert.rejects(g.gw.upsertApi(gatewaySpec('x', { localPort: taken.port })), { code: 'ENG_GATEWAY_LISTEN' });
      assert.equal(g.gw.stats('x'), undefined);
      assert.deepEqual(g.gw.ports(), [g.port]);
    } finally {
      await g.gw.close();
      await taken.close();
    }
  });
});

describe('gateway stats', () => {
  test('counts 2xx/4xx/5xx and latency per api, including the gateway’s own 503s', async () => {
    const g = await startGateway();
    const r = await TestReplica.start('r', 'status');
    const agent = new Agent({ keepAlive: true });
    try {
      g.replicas$.next([replicaInfo('api', 'r0', r.port)]);
      await g.gw.upsertApi(gatewaySpec('api'));
      await g.gw.upsertApi(gatewaySpec('idle'));
      for (const s of [200, 200, 201, 404, 500]) {
        await httpRequest(g.port, { method: 'POST', path: '/api', headers: { 'x-want-status': String(s) }, body: '{}', agent });
      }
      await httpRequest(g.port, { method: 'POST', path: '/idle', body: '{}', agent }); // 503: no replica
      await waitFor('stats to settle', () => g.gw.stats('api')!.count === 5 && g.gw.stats('idle')!.count === 1);
      const got = g.gw.stats('api')!;
      assert.deepEqual(got.requests, { '2xx': 3, '3xx': 0, '4xx': 1, '5xx': 1 });
      assert.equal(got.inFlight, 0);
      assert.equal(got.readyReplicas, 1);
      assert.ok(got.latencyMsSum > 0 && got.avgLatencyMs! > 0, `latency ${got.latencyMsSum}`);
      assert.deepEqual(g.gw.stats('idle')!.requests, { '2xx': 0, '3xx': 0, '4xx': 0, '5xx': 1 });
      assert.equal(g.gw.stats('unknown'), undefined);
    } finally {
      agent.destroy();
      await g.gw.close();
      await r.close();
    }
  });
});
