/**
 * Issue 11 regressions on the gateway: an oversized chunked upload is 413 (defect 5), a reused
 * keep-alive connection reset before any response byte is replayed (defect 11), unknown paths are 503
 * while the daemon restores its routes (defect 9), and a stalled request is closed (defect 3).
 * Real sockets on 127.0.0.1 and real `node:http` replicas (test/harness/gateway-replicas.ts).
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Agent, request } from 'node:http';
import { connect } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { pino } from 'pino';
import { BehaviorSubject } from 'rxjs';
import type { ReplicaInfo } from '../../../core/ports/orchestrator-target.js';
import { Gateway, type GatewayConfig } from '../../../serving/gateway/gateway.js';
import { TestReplica, gatewaySpec, httpRequest, replicaInfo, waitFor } from '../../harness/gateway-replicas.js';

const silent = pino({ level: 'silent' });

async function startGateway(
  config: Partial<GatewayConfig> = {},
): Promise<{ gw: Gateway; replicas$: BehaviorSubject<readonly ReplicaInfo[]>; port: number }> {
  const replicas$ = new BehaviorSubject<readonly ReplicaInfo[]>([]);
  const gw = new Gateway({ host: '127.0.0.1', port: 0, replicas$, closeGraceMs: 2000, ...config }, silent);
  await gw.start();
  return { gw, replicas$, port: gw.sharedPort() };
}

/**
 * A chunked upload of `chunks` × `chunkBytes` that stops sending once the response head arrives (as a
 * client reading its socket would); resolves with the status, headers and body of the answer.
 */
function chunkedUpload(
  port: number,
  path: string,
  chunks: number,
  chunkBytes: number,
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((resolve, reject) => {
    let answered = false;
    const req = request({ host: '127.0.0.1', port, method: 'POST', path, agent: false, headers: { 'content-type': 'application/octet-stream' } }, (res) => {
      answered = true;
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('error', reject);
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts).toString('utf8') }));
    });
    // A write failing after the answer arrived is the server closing the rest of the upload: expected.
    req.on('error', (err) => {
      if (!answered) reject(err);
    });
    void (async () => {
      const chunk = Buffer.alloc(chunkBytes, 7);
      for (let i = 0; i < chunks && !answered && !req.destroyed; i++) {
        if (!req.write(chunk)) await new Promise((r) => req.once('drain', r));
        // Let the answer, if any, be read before the next chunk.
        await new Promise((r) => setImmediate(r));
      }
      if (!answered && !req.destroyed) req.end();
    })();
  });
}

describe('gateway: oversized chunked upload (issue 11, defect 5)', () => {
  const limit = 64 * 1024;
  let g: Awaited<ReturnType<typeof startGateway>>;
  let replica: TestReplica;
  let maxSeen = 0;
  before(async () => {
    g = await startGateway();
    replica = await TestReplica.start('r0', 'hash');
    replica.onBodyBytes((b) => (maxSeen = Math.max(maxSeen, b)));
    g.replicas$.next([replicaInfo('api', 'r0', replica.port)]);
    await g.gw.upsertApi(gatewaySpec('api', { maxBodyBytes: limit }));
  });
  after(async () => {
    await g.gw.close();
    await replica.close();
  });

  test('a chunked body over max_body_size is answered 413 by the gateway, never 502', async () => {
    const before4xx = g.gw.stats('api')!.requests['4xx'];
    const before5xx = g.gw.stats('api')!.requests['5xx'];
    const got = await chunkedUpload(g.port, '/api', 64, 16 * 1024);
    assert.equal(got.status, 413, got.body);
    assert.deepEqual(JSON.parse(got.body), { error: `request body exceeds ${limit} bytes` });
    assert.equal(got.headers.connection, 'close');
    assert.ok(maxSeen <= limit, `the replica received ${maxSeen} bytes, more than the limit`);
    await waitFor('outstanding back to 0', () => g.gw.upstreams('api').every((u) => u.outstanding === 0));
    await waitFor('in-flight back to 0', () => g.gw.stats('api')!.inFlight === 0);
    assert.equal(g.gw.stats('api')!.requests['4xx'] - before4xx, 1);
    assert.equal(g.gw.stats('api')!.requests['5xx'], before5xx);
  });

  test('with a replica enforcing the same max_body_size (as the real one does), the client gets 413, never 502', async () => {
    const strict = await TestReplica.start('strict', 'refuse-large');
    strict.refuseAfterBytes = limit;
    const g2 = await startGateway();
    try {
      g2.replicas$.next([replicaInfo('api', 'strict', strict.port)]);
      await g2.gw.upsertApi(gatewaySpec('api', { maxBodyBytes: limit }));
      for (let i = 0; i < 5; i++) {
        const got = await chunkedUpload(g2.port, '/api', 256, 16 * 1024);
        assert.equal(got.status, 413, got.body);
        assert.deepEqual(JSON.parse(got.body), { error: `request body exceeds ${limit} bytes` });
      }
      await waitFor('in-flight back to 0', () => g2.gw.stats('api')!.inFlight === 0);
      assert.equal(g2.gw.stats('api')!.requests['5xx'], 0);
    } finally {
      await g2.gw.close();
      await strict.close();
    }
  });

  test('a chunked body within max_body_size still streams through', async () => {
    const body = randomBytes(limit);
    const got = await httpRequest(g.port, {
      method: 'POST',
      path: '/api',
      body: (async function* () {
        for (let i = 0; i < body.length; i += 8192) yield body.subarray(i, i + 8192);
      })(),
    });
    assert.equal(got.status, 200, got.body.toString());
    const seen = JSON.parse(got.body.toString()) as { bytes: number; sha256: string };
    assert.equal(seen.bytes, limit);
    assert.equal(seen.sha256, createHash('sha256').update(body).digest('hex'));
  });
});

describe('gateway: reused keep-alive connection reset before any response byte (issue 11, defect 11)', () => {
  test('one replica: the request is replayed on a fresh connection with its body intact', async () => {
    const g = await startGateway();
    const r = await TestReplica.start('solo');
    try {
      g.replicas$.next([replicaInfo('api', 'solo', r.port)]);
      await g.gw.upsertApi(gatewaySpec('api'));
      const first = await httpRequest(g.port, { method: 'POST', path: '/api', body: 'warm' });
      assert.equal(first.status, 200);
      assert.equal(r.connections, 1);
      r.mode = 'reset-reused';
      const retriesBefore = g.gw.stats('api')!.retries;
      const body = randomBytes(32 * 1024);
      const got = await httpRequest(g.port, { method: 'POST', path: '/api', headers: { 'content-type': 'application/octet-stream' }, body });
      assert.equal(got.status, 200, got.body.toString());
      assert.ok(got.body.equals(body), 'the replayed body arrives unchanged');
      assert.equal(r.resets, 1, 'the first attempt hit the reset keep-alive connection');
      assert.equal(r.connections, 2, 'the replay went out on a new connection');
      assert.equal(g.gw.stats('api')!.retries - retriesBefore, 1);
      await waitFor('outstanding back to 0', () => g.gw.upstreams('api')[0].outstanding === 0);
      await waitFor('in-flight back to 0', () => g.gw.stats('api')!.inFlight === 0);
    } finally {
      await g.gw.close();
      await r.close();
    }
  });

  test('two replicas: the replay goes to the other replica', async () => {
    const g = await startGateway();
    const a = await TestReplica.start('a');
    const b = await TestReplica.start('b');
    try {
      g.replicas$.next([replicaInfo('api', 'a', a.port), replicaInfo('api', 'b', b.port)]);
      await g.gw.upsertApi(gatewaySpec('api'));
      // Round-robin: one warm-up request each, so both have an idle pooled connection.
      for (let i = 0; i < 2; i++) assert.equal((await httpRequest(g.port, { method: 'POST', path: '/api', body: 'warm' })).status, 200);
      assert.equal(a.connections + b.connections, 2);
      a.mode = 'reset-reused';
      b.mode = 'reset-reused';
      const got = await httpRequest(g.port, { method: 'POST', path: '/api', body: '{"x":1}' });
      assert.equal(got.status, 200, got.body.toString());
      assert.equal(a.resets + b.resets, 1);
      const resetOne = a.resets === 1 ? 'a' : 'b';
      assert.notEqual(got.headers['x-replica'], resetOne, 'replayed on the other replica');
      assert.equal(got.body.toString(), '{"x":1}');
    } finally {
      await g.gw.close();
      await a.close();
      await b.close();
    }
  });

  test('a body larger than the replay buffer is not replayed: 502, one attempt', async () => {
    const g = await startGateway({ replayBodyBytes: 1024 });
    const r = await TestReplica.start('solo');
    try {
      g.replicas$.next([replicaInfo('api', 'solo', r.port)]);
      await g.gw.upsertApi(gatewaySpec('api'));
      assert.equal((await httpRequest(g.port, { method: 'POST', path: '/api', body: 'warm' })).status, 200);
      r.mode = 'reset-reused';
      const hitsBefore = r.hits;
      const got = await httpRequest(g.port, {
        method: 'POST',
        path: '/api',
        body: (async function* () {
          for (let i = 0; i < 8; i++) yield Buffer.alloc(1024, i);
        })(),
      }).catch((err: NodeJS.ErrnoException) => ({ status: -1, body: Buffer.from(err.code ?? '') }));
      // 502 when the gateway answers before the client finished sending; a reset client socket otherwise.
      assert.ok(got.status === 502 || got.status === -1, `status ${got.status}`);
      assert.equal(r.hits - hitsBefore, 1, 'no replay');
      assert.equal(r.connections, 1);
      await waitFor('in-flight back to 0', () => g.gw.stats('api')!.inFlight === 0);
    } finally {
      await g.gw.close();
      await r.close();
    }
  });

  test('a reset on a connection that already replayed once is 502 (the replay is bounded)', async () => {
    const g = await startGateway();
    const r = await TestReplica.start('solo', 'destroy');
    try {
      g.replicas$.next([replicaInfo('api', 'solo', r.port)]);
      await g.gw.upsertApi(gatewaySpec('api'));
      const got = await httpRequest(g.port, { method: 'POST', path: '/api', body: '{}' });
      assert.equal(got.status, 502, got.body.toString());
      assert.equal(r.hits, 1, 'a fresh connection that resets is a failed request, not the keep-alive race');
      // Reused connection: the first attempt resets, the fresh replay resets too → 502 after two attempts.
      r.mode = 'echo';
      assert.equal((await httpRequest(g.port, { method: 'POST', path: '/api', body: 'warm' })).status, 200);
      r.mode = 'destroy';
      const hitsBefore = r.hits;
      const again = await httpRequest(g.port, { method: 'POST', path: '/api', body: '{}' });
      assert.equal(again.status, 502);
      assert.equal(r.hits - hitsBefore, 2);
      await waitFor('outstanding back to 0', () => g.gw.upstreams('api')[0].outstanding === 0);
    } finally {
      await g.gw.close();
      await r.close();
    }
  });
});

describe('gateway: restoring routes after a daemon restart (issue 11, defect 9)', () => {
  test('while restoring, an unknown path is 503 with Retry-After; after, 404', async () => {
    const g = await startGateway();
    const r = await TestReplica.start('r0');
    try {
      g.gw.setRestoring(true);
      g.replicas$.next([replicaInfo('iris', 'r0', r.port)]);
      const early = await httpRequest(g.port, { method: 'POST', path: '/iris', body: '{}' });
      assert.equal(early.status, 503);
      assert.equal(early.headers['retry-after'], '1');
      assert.deepEqual(JSON.parse(early.body.toString()), { error: 'myelin is starting; retry' });
      await g.gw.upsertApi(gatewaySpec('iris'));
      assert.equal((await httpRequest(g.port, { method: 'POST', path: '/iris', body: '{}' })).status, 200, 'routed apis serve at once');
      assert.equal((await httpRequest(g.port, { path: '/wine' })).status, 503, 'not yet restored');
      assert.equal((await httpRequest(g.port, { path: '/healthz' })).status, 200);
      g.gw.setRestoring(false);
      const late = await httpRequest(g.port, { path: '/wine' });
      assert.equal(late.status, 404);
      assert.deepEqual(JSON.parse(late.body.toString()), { error: 'not found', endpoints: ['/iris'] });
    } finally {
      await g.gw.close();
      await r.close();
    }
  });
});

/** Sends `head` (and `partialBody`) on a raw socket, then nothing more; resolves with what came back once the gateway closed it. */
function stall(port: number, head: string, partialBody = ''): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1');
    const got: Buffer[] = [];
    s.on('connect', () => s.write(head + partialBody));
    s.on('data', (c: Buffer) => got.push(c));
    s.on('error', (err: NodeJS.ErrnoException) => (err.code === 'ECONNRESET' ? undefined : reject(err)));
    s.on('close', () => resolve(Buffer.concat(got).toString('latin1')));
  });
}

describe('gateway: stalled requests are closed (issue 11, defect 3)', () => {
  let g: Awaited<ReturnType<typeof startGateway>>;
  let r: TestReplica;
  before(async () => {
    g = await startGateway({ headersTimeoutMs: 200, requestTimeoutMs: 300, timeoutCheckIntervalMs: 50 });
    r = await TestReplica.start('r0');
    g.replicas$.next([replicaInfo('api', 'r0', r.port)]);
    await g.gw.upsertApi(gatewaySpec('api'));
  });
  after(async () => {
    await g.gw.close();
    await r.close();
  });

  test('headers, then half a body: answered 408 (or closed), the upstream request aborted', async () => {
    const abortedBefore = r.abortedByPeer;
    const out = await stall(g.port, 'POST /api HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n', 'x'.repeat(500));
    assert.ok(out === '' || out.startsWith('HTTP/1.1 408'), out);
    await waitFor('in-flight back to 0', () => g.gw.stats('api')!.inFlight === 0);
    await waitFor('outstanding back to 0', () => g.gw.upstreams('api')[0].outstanding === 0);
    await waitFor('the replica to see the abort', () => r.abortedByPeer === abortedBefore + 1);
  });

  test('half a request head: the connection is closed', async () => {
    const out = await stall(g.port, 'POST /api HTTP/1.1\r\nHost: x\r\n');
    assert.ok(out === '' || out.startsWith('HTTP/1.1 408'), out);
  });

  test('a prompt request on a kept-alive connection is unaffected', async () => {
    const agent = new Agent({ keepAlive: true });
    try {
      for (let i = 0; i < 2; i++) assert.equal((await httpRequest(g.port, { method: 'POST', path: '/api', body: '{}', agent })).status, 200);
    } finally {
      agent.destroy();
    }
  });
});
