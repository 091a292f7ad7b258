// The replica over real HTTP on loopback, predictor in the replica's thread: routes, request rules,
// status codes, admission, timeouts, debug logging, monitoring, samples, /metrics, graceful close.
import assert from 'node:assert/strict';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { httpCall, postJson, rawExchange, waitFor, type HttpResult } from '../../harness/http-client.js';
import { startBehaviourReplica, type TestReplica } from './replica-test-kit.js';

describe('replica (in-thread predictor)', () => {
  let t: TestReplica;
  before(async () => {
    t = await startBehaviourReplica(
      { networking: { maxBodyBytes: 1024 }, predictor: { timeoutMs: 300 }, monitoring: { modelType: 'classification', key: 'label' } },
      { sampleIntervalMs: 50, maxJsonDepth: 64 },
    );
    await t.replica.ready;
  });
  after(async () => {
    await t[Symbol.asyncDispose]();
  });

  test('GET / and /predict give the Cortex summary with model metadata', async () => {
    for (const path of ['/', '/predict']) {
      const r = await httpCall(t.target, { path });
      assert.equal(r.status, 200);
      const got = r.json() as { message: string; model_metadata: Record<string, unknown> };
      assert.equal(got.message, 'make a prediction by sending a post request to this endpoint with a json payload');
      assert.deepEqual([got.model_metadata.backend, got.model_metadata.class], ['javascript', 'Predictor']);
    }
  });

  const routes = [
    { name: 'live', method: 'GET', path: '/healthz/live', want: 200 },
    { name: 'ready', method: 'GET', path: '/healthz/ready', want: 200 },
    { name: 'POST / predicts', method: 'POST', path: '/', want: 200 },
    { name: 'POST /predict/ predicts', method: 'POST', path: '/predict/', want: 200 },
    { name: 'unknown path', method: 'GET', path: '/nope', want: 404 },
    { name: 'DELETE on predict', method: 'DELETE', path: '/predict', want: 405 },
    { name: 'POST on health', method: 'POST', path: '/healthz/live', want: 405 },
    { name: 'CORS preflight', method: 'OPTIONS', path: '/predict', want: 204 },
    { name: 'HEAD summary', method: 'HEAD', path: '/', want: 200 },
  ];
  for (const c of routes) {
    test(`route: ${c.name} → ${c.want}, with an x-request-id`, async () => {
      const r = await httpCall(t.target, { method: c.method, path: c.path, headers: { 'content-type': 'application/json' }, body: c.method === 'POST' ? '{}' : undefined });
      assert.equal(r.status, c.want, r.text);
      assert.match(String(r.headers['x-request-id']), /^[0-9a-f]{16}-[0-9a-z]+$/);
    });
  }

  test('an incoming x-request-id is kept; an unusable one is replaced', async () => {
    const kept = await postJson(t.target, {}, '/predict', { 'x-request-id': 'trace-abc.123' });
    assert.equal(kept.headers['x-request-id'], 'trace-abc.123');
    const replaced = await postJson(t.target, {}, '/predict', { 'x-request-id': 'has space' });
    assert.match(String(replaced.headers['x-request-id']), /^[0-9a-f]{16}-[0-9a-z]+$/);
    const again = await postJson(t.target, {}, '/predict');
    assert.notEqual(again.headers['x-request-id'], replaced.headers['x-request-id'], 'a new id per request');
  });

  const multipart = [
    '--XyZ',
    'Content-Disposition: form-data; name="field"',
    '',
    'value',
    '--XyZ',
    'Content-Disposition: form-data; name="file"; filename="a.bin"',
    'Content-Type: image/png',
    '',
    '\u0000\u0001',
    '--XyZ--',
    '',
  ].join('\r\n');
  const payloads = [
    { name: 'JSON', type: 'application/json', body: '{"x":[1,2]}', want: { x: [1, 2] } },
    { name: 'JSON with charset param', type: 'application/json; charset=utf-8', body: '"é"', want: 'é' },
    { name: '+json media type', type: 'application/vnd.api+json', body: '[true]', want: [true] },
    { name: 'text/plain defaults to utf-8', type: 'text/plain', body: 'héllo', want: 'héllo' },
    { name: 'text/plain latin1', type: 'text/plain; charset=latin1', body: Buffer.from([0x68, 0xe9]), want: 'hé' },
    { name: 'form-urlencoded, repeated keys', type: 'application/x-www-form-urlencoded', body: 'a=1&a=2&b=%C3%A9', want: { a: ['1', '2'], b: 'é' } },
    {
      name: 'multipart with a file',
      type: 'multipart/form-data; boundary=XyZ',
      body: multipart,
      want: { field: 'value', file: { filename: 'a.bin', contentType: 'image/png', bytes: [0, 1] } },
    },
    { name: 'octet-stream stays bytes', type: 'application/octet-stream', body: Buffer.from([1, 2, 255]), want: { bytes: [1, 2, 255] } },
    { name: 'no content-type stays bytes', type: undefined, body: Buffer.from([7]), want: { bytes: [7] } },
  ];
  for (const c of payloads) {
    test(`payload by Content-Type: ${c.name}`, async () => {
      const headers: Record<string, string> = c.type ? { 'content-type': c.type } : {};
      const r = await httpCall(t.target, { method: 'POST', path: '/predict?behave=echo', headers, body: c.body });
      assert.equal(r.status, 200, r.text);
      assert.deepEqual((r.json() as { payload: unknown }).payload, c.want);
    });
  }

  test('query parameters reach the predictor, repeated keys as arrays', async () => {
    const r = await postJson(t.target, {}, '/predict?behave=echo&k=1&k=2&s=x%20y');
    assert.deepEqual((r.json() as { query: unknown }).query, { behave: 'echo', k: ['1', '2'], s: 'x y' });
  });

  const responses = [
    { behave: 'string', status: 200, type: 'text/plain; charset=utf-8', body: (r: HttpResult) => r.text, want: 'plain text ✓' },
    { behave: 'bytes', status: 200, type: 'application/octet-stream', body: (r: HttpResult) => [...r.body], want: [0, 1, 2, 255] },
    { behave: 'float32', status: 200, type: 'application/json', body: (r: HttpResult) => r.json(), want: [0.5, 1.5] },
    { behave: 'undefined', status: 200, type: 'application/json', body: (r: HttpResult) => r.json(), want: null },
    { behave: 'response', status: 201, type: 'application/json', body: (r: HttpResult) => [r.json(), r.headers['x-model']], want: [{ created: true }, 'v2'] },
  ];
  for (const c of responses) {
    test(`response by type: ${c.behave} → ${c.status} ${c.type}`, async () => {
      const r = await postJson(t.target, {}, `/predict?behave=${c.behave}`);
      assert.equal(r.status, c.status);
      assert.equal(r.headers['content-type'], c.type);
      assert.equal(r.headers['content-length'], String(r.body.length));
      assert.deepEqual(c.body(r), c.want);
    });
  }

  const deep = `${'['.repeat(100)}${']'.repeat(100)}`;
  const statuses = [
    { name: 'bad JSON', type: 'application/json', body: '{"a":', want: 400, error: /^invalid JSON/ },
    { name: 'empty JSON body', type: 'application/json', body: '', want: 400, error: /^invalid JSON/ },
    { name: 'invalid UTF-8 in JSON', type: 'application/json', body: Buffer.from([0x22, 0xc3, 0x28, 0x22]), want: 400, error: /not valid UTF-8/ },
    { name: 'invalid UTF-8 in text', type: 'text/plain', body: Buffer.from([0xff, 0xfe, 0xfd]), want: 400, error: /not valid UTF-8/ },
    { name: 'JSON deeper than the limit', type: 'application/json', body: deep, want: 400, error: /nested deeper than 64/ },
    { name: 'unknown charset', type: 'text/plain; charset=klingon', body: 'x', want: 415, error: /unsupported charset/ },
    { name: 'malformed multipart', type: 'multipart/form-data; boundary=nope', body: 'garbage', want: 400, error: /malformed multipart/ },
    { name: 'body over maxBodyBytes', type: 'application/json', body: `"${'x'.repeat(2000)}"`, want: 413, error: /larger than the limit of 1024 bytes/ },
    { name: 'HttpError keeps its status', path: '/predict?behave=http-error', want: 422, error: /^expected a list of 4 numbers$/ },
    { name: 'unknown behaviour is the predictor’s 400', path: '/predict?behave=nope', want: 400, error: /unknown behave=nope/ },
  ];
  for (const c of statuses) {
    test(`status: ${c.name} → ${c.want}`, async () => {
      const r = await httpCall(t.target, { method: 'POST', path: c.path ?? '/predict', headers: { 'content-type': c.type ?? 'application/json' }, body: c.body ?? '{}' });
      assert.equal(r.status, c.want, r.text);
      assert.equal(r.headers['content-type'], 'application/json');
      assert.match((r.json() as { error: string }).error, c.error);
    });
  }

  test('HttpError headers are sent', async () => {
    const r = await postJson(t.target, {}, '/predict?behave=http-error');
    assert.equal(r.headers['x-why'], 'shape');
  });

  for (const behave of ['throw', 'bigint', 'bad-header']) {
    test(`a predictor failure (${behave}) is a generic 500; the detail is logged under the request id`, async () => {
      const r = await postJson(t.target, {}, `/predict?behave=${behave}`);
      assert.equal(r.status, 500);
      const id = String(r.headers['x-request-id']);
      assert.deepEqual(r.json(), { error: 'internal server error', request_id: id });
      assert.doesNotMatch(r.text, /secret/);
      const logged = t.log.lines().find((l) => l.requestId === id && l.level === 50);
      assert.ok(logged, 'an error line with the request id');
      assert.ok(JSON.stringify(logged).length > 60, 'with detail');
      if (behave === 'throw') assert.match(JSON.stringify(logged), /secret detail that must stay in the log/);
    });
  }

  test('a chunked body over the limit is cut off with 413', async () => {
    const head = 'POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n';
    const chunk = `800\r\n${'x'.repeat(0x800)}\r\n`;
    const got = await rawExchange(t.target.port, head + chunk + chunk);
    assert.match(got, /^HTTP\/1\.1 413 /);
    assert.match(got, /connection: close/i);
  });

  test('a timed-out prediction is answered 504 and its slot comes back', async () => {
    const r = await postJson(t.target, {}, '/predict?behave=hang');
    assert.equal(r.status, 504);
    assert.match((r.json() as { error: string }).error, /timed out after 300 ms/);
    const next = await postJson(t.target, {}, '/predict?behave=echo');
    assert.equal(next.status, 200, 'the only slot was given back');
  });

  test('?debug=true logs the raw sample and the inference stage under the request id', async () => {
    const r = await postJson(t.target, { x: 1 }, '/predict?behave=string&debug=true');
    const id = r.headers['x-request-id'];
    const stages = t.log.lines().filter((l) => l.requestId === id && l.msg === 'debug stage');
    assert.deepEqual(
      stages.map((l) => [l.stage, l.value]),
      [
        ['raw sample', { x: 1 }],
        ['inference', 'plain text ✓'],
      ],
    );
  });

  test('postPredict runs after the response', async () => {
    await postJson(t.target, { p: 'post' }, '/predict?behave=echo');
    await waitFor('postPredict log', () => t.log.lines().some((l) => l.msg === 'postPredict ran' && JSON.stringify(l.response ?? null).includes('"p":"post"')));
  });

  test('samples carry requests by class, latency, readiness and monitoring class counts', async () => {
    const from = t.transport.published.length;
    for (const label of ['cat', 'cat', 'dog']) assert.equal((await postJson(t.target, {}, `/predict?behave=label&label=${label}`)).status, 200);
    await waitFor('a sample with the labels', () =>
      t.transport.published.slice(from).some((s) => s.monitoring?.modelType === 'classification' && s.monitoring.classes.dog === 1),
    );
    const got = t.transport.published.slice(from);
    const classes: Record<string, number> = {};
    let ok = 0;
    for (const s of got) {
      if (s.monitoring?.modelType === 'classification') for (const [k, v] of Object.entries(s.monitoring.classes)) classes[k] = (classes[k] ?? 0) + v;
      ok += s.requests['2xx'];
      assert.equal(s.ready, true);
      assert.equal(s.api, 'test-api');
      assert.ok(s.latencyMsSum >= 0 && s.intervalMs > 0);
    }
    assert.deepEqual(classes, { cat: 2, dog: 1 });
    assert.ok(ok >= 3, `2xx counted: ${ok}`);
    const seqs = t.transport.published.map((s) => s.seq);
    assert.deepEqual(seqs, seqs.map((_, i) => i + 1), 'seq counts up by one');
  });

  test('GET /metrics has requests by class, latency histogram, gauges and predictor errors', async () => {
    const r = await httpCall(t.target, { path: '/metrics' });
    assert.equal(r.status, 200);
    assert.match(String(r.headers['content-type']), /^text\/plain/);
    for (const want of [
      /myelin_replica_requests_total\{code_class="2xx",api="test-api",replica="[^"]+"\} [1-9]/,
      /myelin_replica_requests_total\{code_class="5xx",[^}]*\} [1-9]/,
      /myelin_replica_request_duration_seconds_bucket\{le="0\.005",/,
      /myelin_replica_requests_in_flight\{[^}]*\} 0/,
      /myelin_replica_requests_queued\{[^}]*\} 0/,
      /myelin_replica_predictor_errors_total\{kind="exception",[^}]*\} [1-9]/,
      /myelin_replica_predictor_errors_total\{kind="timeout",[^}]*\} 1/,
      /myelin_replica_ready\{[^}]*\} 1/,
    ]) {
      assert.match(r.text, want);
    }
  });

  test('a truncated upload does not hurt the replica', async () => {
    const head = 'POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"a":';
    const got = await rawExchange(t.target.port, head, { halfClose: true });
    assert.doesNotMatch(got, /^HTTP\/1\.1 200/);
    await waitFor('in flight back to 0', () => t.replica.counts().inFlight === 0);
    assert.equal((await postJson(t.target, { ok: 1 })).status, 200);
  });

  test('garbage instead of HTTP gets 400 and the replica keeps serving', async () => {
    const got = await rawExchange(t.target.port, 'NOT HTTP AT ALL\r\n\r\n');
    assert.match(got, /^HTTP\/1\.1 400/);
    assert.equal((await postJson(t.target, { ok: 1 })).status, 200);
  });
});

describe('replica admission', () => {
  test('more than maxReplicaConcurrency in flight is answered 503 at once; queued requests count as in flight', async () => {
    await using t = await startBehaviourReplica({ autoscaling: { maxReplicaConcurrency: 2 } }, { sampleIntervalMs: 50 });
    await t.replica.ready;
    const gate = t.gate('go');
    const held = [1, 2].map(() => postJson(t.target, {}, `/predict?behave=waitfile&file=${encodeURIComponent(gate)}`));
    await waitFor('one running and one queued', () => t.replica.counts().inFlight === 2 && t.replica.counts().queued === 1);
    const refused = await postJson(t.target, {}, '/predict?behave=echo');
    assert.equal(refused.status, 503);
    assert.equal(refused.headers['retry-after'], '1');
    assert.match((refused.json() as { error: string }).error, /max_replica_concurrency is 2/);
    t.release('go');
    const done = await Promise.all(held);
    assert.deepEqual(done.map((r) => r.status), [200, 200]);
    await waitFor('a sample showing 2 in flight', () => t.transport.published.some((s) => s.inFlightMax === 2 && s.inFlight > 0));
  });

  test('while the predictor loads: 503 with Retry-After, not ready; then ready', async () => {
    const dir = await startBehaviourReplica({}, {});
    await dir[Symbol.asyncDispose]();
    await using t = await startBehaviourReplica({ predictor: { config: { readyWhenFileExists: `${dir.dir}-gate` } } });
    try {
      assert.equal(t.replica.state(), 'loading');
      const r = await postJson(t.target, {});
      assert.equal(r.status, 503);
      assert.equal(r.headers['retry-after'], '1');
      assert.match((r.json() as { error: string }).error, /still loading/);
      assert.equal((await httpCall(t.target, { path: '/healthz/ready' })).status, 503);
      assert.equal((await httpCall(t.target, { path: '/healthz/live' })).status, 200);
      assert.equal((await httpCall(t.target, { path: '/' })).status, 503);
      (await import('node:fs')).writeFileSync(`${dir.dir}-gate`, '');
      await t.replica.ready;
      assert.equal((await httpCall(t.target, { path: '/healthz/ready' })).status, 200);
      assert.equal((await postJson(t.target, {})).status, 200);
    } finally {
      (await import('node:fs')).rmSync(`${dir.dir}-gate`, { force: true });
    }
  });

  test('a predictor that fails to load fails the replica: ready rejects, onFatal runs, live turns 503', async () => {
    let fatal: Error | undefined;
    await using t = await startBehaviourReplica({ predictor: { config: { failInit: true } } }, { onFatal: (e) => (fatal = e) });
    await assert.rejects(t.replica.ready, /init failed on purpose/);
    assert.match(String(fatal?.message), /init failed on purpose/);
    assert.equal(t.replica.state(), 'failed');
    assert.equal((await httpCall(t.target, { path: '/healthz/live' })).status, 503);
    assert.equal((await postJson(t.target, {})).status, 503);
  });
});

describe('replica graceful close', () => {
  test('stops accepting, answers the request in flight, closes the predictor and publishes a last not-ready sample', async () => {
    await using t = await startBehaviourReplica({}, { sampleIntervalMs: 10_000 });
    await t.replica.ready;
    const gate = t.gate('go');
    const inFlight = postJson(t.target, {}, `/predict?behave=waitfile&file=${encodeURIComponent(gate)}`);
    await waitFor('the request in flight', () => t.replica.counts().inFlight === 1);
    const closing = t.replica.close({ graceMs: 20_000 });
    await waitFor('draining', () => t.replica.state() === 'draining');
    await assert.rejects(httpCall(t.target, { path: '/healthz/live' }), /ECONNREFUSED/);
    t.release('go');
    const r = await inFlight;
    assert.equal(r.status, 200);
    assert.equal(r.headers.connection, 'close');
    await closing;
    assert.equal(t.replica.state(), 'closed');
    assert.ok(t.log.lines().some((l) => l.msg === 'predictor closed'));
    const last = t.transport.published.at(-1);
    assert.equal(last?.ready, false);
    assert.equal(last?.requests['2xx'], 1);
  });

  test('the grace period bounds the wait', async () => {
    await using t = await startBehaviourReplica({ predictor: { timeoutMs: 60_000 } });
    await t.replica.ready;
    const hung = postJson(t.target, {}, '/predict?behave=hang').catch((e: Error) => e);
    await waitFor('the request in flight', () => t.replica.counts().inFlight === 1);
    await t.replica.close({ graceMs: 50 });
    assert.equal(t.replica.state(), 'closed');
    assert.ok((await hung) instanceof Error, 'the hung request lost its connection');
  });
});

describe('replica on a unix socket, with regression monitoring', () => {
  test('serves over the socket and sums regression values into samples', async () => {
    const dir = (await import('node:fs')).mkdtempSync(join(tmpdir(), 'myelin-sock-'));
    const socketPath = join(dir, 'replica.sock');
    try {
      await using t = await startBehaviourReplica({ monitoring: { modelType: 'regression' } }, { socketPath, sampleIntervalMs: 50 });
      await t.replica.ready;
      assert.deepEqual(t.replica.address, { socketPath, url: 'http://localhost' });
      const target = { socketPath };
      assert.equal((await httpCall(target, { path: '/healthz/ready' })).status, 200);
      for (const v of [2, -1, 5]) assert.equal((await httpCall(target, { method: 'POST', path: `/predict?behave=value&v=${v}`, body: '' })).text, String(v));
      await waitFor('a regression sample', () => t.transport.published.some((s) => s.monitoring?.modelType === 'regression'));
      let count = 0;
      let sum = 0;
      let min = Infinity;
      let max = -Infinity;
      await waitFor('all three values', () => {
        count = sum = 0;
        min = Infinity;
        max = -Infinity;
        for (const s of t.transport.published) {
          if (s.monitoring?.modelType !== 'regression') continue;
          count += s.monitoring.count;
          sum += s.monitoring.sum;
          min = Math.min(min, s.monitoring.min);
          max = Math.max(max, s.monitoring.max);
        }
        return count === 3;
      });
      assert.deepEqual({ count, sum, min, max }, { count: 3, sum: 6, min: -1, max: 5 });
    } finally {
      (await import('node:fs')).rmSync(dir, { recursive: true, force: true });
    }
  });
});
