// Server-side batching in a real replica over loopback HTTP: an onnx model (tensor batching in the
// model client) and a TypeScript predictor with predictBatch (request batching), in the replica's
// thread and in worker threads; batch sizes seen in /metrics (myelin_batch_size) and by the predictor,
// one failing request of a batch answered alone, a request waiting for its batch still timed out.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { httpCall, postJson, waitFor, type HttpResult } from '../../harness/http-client.js';
import { apiSpecFixture } from '../../harness/api-spec-fixture.js';
import { irisLogits, irisModel, writeOnnxModel } from '../../harness/model-builders.js';
import { startReplica, type ExecutorChoice, type Replica } from '../../../serving/replica/replica-server.js';
import { captureLog, type CapturedLog } from './replica-test-kit.js';

const BATCH_PREDICTOR = fileURLToPath(new URL('./fixtures/batch-predictor.ts', import.meta.url));
const NO_BATCH_PREDICTOR = fileURLToPath(new URL('./fixtures/no-batch-predictor.ts', import.meta.url));

/** `myelin_batch_size` from /metrics: batches run and the requests they carried. */
async function batchMetrics(port: number): Promise<{ count: number; sum: number; text: string }> {
  const r = await httpCall({ port }, { path: '/metrics' });
  assert.equal(r.status, 200);
  const read = (suffix: string): number => Number(new RegExp(`^myelin_batch_size_${suffix}\\{[^}]*\\} (\\S+)$`, 'm').exec(r.text)?.[1] ?? NaN);
  return { count: read('count'), sum: read('sum'), text: r.text };
}

function argmax(v: readonly number[]): number {
  return v.indexOf(Math.max(...v));
}

const IRIS_ROWS = [
  [5.1, 3.5, 1.4, 0.2],
  [6.3, 3.3, 6.0, 2.5],
  [5.9, 3.0, 4.2, 1.5],
  [4.9, 3.0, 1.4, 0.2],
];

async function start(spec: Parameters<typeof apiSpecFixture>[0], executor: ExecutorChoice, log: CapturedLog = captureLog()): Promise<{ replica: Replica; port: number; log: CapturedLog }> {
  const replica = await startReplica({ spec: apiSpecFixture(spec), log: log.log, executor });
  return { replica, port: replica.address.port!, log };
}

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'myelin-batching-'));
  await writeOnnxModel(join(dir, 'iris.onnx'), irisModel());
});
after(() => rm(dir, { recursive: true, force: true }));

// In-thread: one instance takes max_batch_size at once, so 8 requests are one full batch (a long
// interval: it runs because it is full, never by time). Worker threads: 2 workers × 1 thread with
// max_batch_size 2, each worker's slots raised to 2; the pool's balancer may split the 4 requests 2/2
// or 3/1, so 2 or 3 batches (a short interval runs a lone remainder), never 4 batches of one.
const layouts = [
  { executor: 'in-thread' as const, processes: 1, threads: 8, maxBatchSize: 8, intervalMs: 30_000, requests: 8, batches: [1, 1] },
  { executor: 'worker-threads' as const, processes: 2, threads: 1, maxBatchSize: 2, intervalMs: 200, requests: 4, batches: [2, 3] },
];

for (const l of layouts) {
  describe(`server-side batching, onnx (${l.executor})`, () => {
    let r: Awaited<ReturnType<typeof start>>;
    before(async () => {
      r = await start(
        {
          name: 'iris-batched',
          projectDir: dir,
          predictor: {
            type: 'onnx',
            modelPath: join(dir, 'iris.onnx'),
            processesPerReplica: l.processes,
            threadsPerProcess: l.threads,
            serverSideBatching: { maxBatchSize: l.maxBatchSize, batchIntervalMs: l.intervalMs },
          },
        },
        l.executor,
      );
      await r.replica.ready;
    });
    after(() => r.replica.close({ graceMs: 1000 }));

    test(`${l.requests} concurrent requests run as ${l.batches.join('–')} batch(es), each with its own answer`, async () => {
      const rows = Array.from({ length: l.requests }, (_, i) => IRIS_ROWS[i % IRIS_ROWS.length]);
      const got = await Promise.all(rows.map((row) => postJson({ port: r.port }, [row])));
      got.forEach((res, i) => {
        assert.equal(res.status, 200, res.text);
        assert.deepEqual((res.json() as { label: number[] }).label, [argmax(irisLogits(rows[i]))], `request ${i}: its own row's label`);
      });
      // Worker threads report batch sizes by message, which may land just after the answers.
      await waitFor('every request in /metrics', async () => (await batchMetrics(r.port)).sum >= l.requests);
      const m = await batchMetrics(r.port);
      assert.equal(m.sum, l.requests, 'every request ran in one batch');
      assert.ok(m.count >= l.batches[0] && m.count <= l.batches[1], `want ${l.batches.join('–')} batches, got ${m.count}`);
      if (l.executor === 'in-thread') assert.match(m.text, /myelin_batch_size_bucket\{le="4",[^}]*\} 0/, 'no batch smaller than 8');
      const summary = JSON.stringify((await httpCall({ port: r.port }, { path: '/' })).json());
      assert.match(summary, new RegExp(`"serverSideBatching":\\{"maxBatchSize":${l.maxBatchSize},"batchIntervalMs":${l.intervalMs}\\}`));
    });
  });
}

test('onnx: a model whose batch dimension is fixed at 1 fails to load, naming the input and its shape', async () => {
  const { encodeOnnxModel } = await import('../../harness/onnx-proto.js');
  const fixed = join(dir, 'fixed.onnx');
  await writeOnnxModel(
    fixed,
    encodeOnnxModel({
      graphName: 'fixed',
      inputs: [{ name: 'x', elemType: 'float32', shape: [1, 3] }],
      outputs: [{ name: 'y', elemType: 'float32', shape: [1, 3] }],
      nodes: [{ opType: 'Relu', inputs: ['x'], outputs: ['y'] }],
    }),
  );
  const failed: Error[] = [];
  const r = await start({ projectDir: dir, predictor: { type: 'onnx', modelPath: fixed, threadsPerProcess: 4, serverSideBatching: { maxBatchSize: 4, batchIntervalMs: 5 } } }, 'in-thread');
  try {
    await assert.rejects(r.replica.ready, (err: Error) => (failed.push(err), true));
    assert.match(failed[0].message, /server_side_batching: input "x" has shape \[1, 3\]: its first \(batch\) dimension is fixed at 1, below max_batch_size 4/);
    assert.equal((failed[0] as Error & { code?: string }).code, 'ENG_PREDICTOR_LOAD');
  } finally {
    await r.replica.close({ graceMs: 0 });
  }
});

describe('server-side batching, TypeScript predictBatch (in-thread)', () => {
  let r: Awaited<ReturnType<typeof start>>;
  before(async () => {
    r = await start(
      {
        predictor: {
          path: BATCH_PREDICTOR,
          threadsPerProcess: 4,
          timeoutMs: 200,
          // Long enough that the batches of 4 below run because they are full; the lone request of
          // the timeout test waits past its 200 ms timeout.
          serverSideBatching: { maxBatchSize: 4, batchIntervalMs: 1500 },
        },
      },
      'in-thread',
    );
    await r.replica.ready;
  });
  after(() => r.replica.close({ graceMs: 1000 }));

  const send = (bodies: unknown[]): Promise<HttpResult[]> => Promise.all(bodies.map((b) => postJson({ port: r.port }, b)));

  test('4 requests are one call of predictBatch; a failing entry gets its own 422, the others 200', async () => {
    const before = await batchMetrics(r.port);
    const got = await send([{ id: 0 }, { id: 1, fail: true }, { id: 2 }, { id: 3 }]);
    assert.deepEqual(got.map((g) => g.status), [200, 422, 200, 200]);
    assert.deepEqual((got[1].json() as { error: string }).error, 'request 1 failed on purpose');
    for (const i of [0, 2, 3]) {
      const body = got[i].json() as { id: number; batchSize: number };
      assert.deepEqual([body.id, body.batchSize], [i, 4], `request ${i}: its own answer, from a batch of 4`);
    }
    const m = await batchMetrics(r.port);
    assert.deepEqual([m.count - before.count, m.sum - before.sum], [1, 4]);
  });

  const whole = [
    { name: 'predictBatch throws', bad: { failBatch: true }, log: /the whole batch failed on purpose/ },
    { name: 'predictBatch returns one result too few', bad: { wrongLength: true }, log: /predictBatch got 4 requests and returned a list of 3; it must return a list with one entry/ },
  ];
  for (const c of whole) {
    test(`${c.name}: every request of the batch gets 500, the reason in the log`, async () => {
      const got = await send([{ id: 0 }, { id: 1, ...c.bad }, { id: 2 }, { id: 3 }]);
      assert.deepEqual(got.map((g) => g.status), [500, 500, 500, 500]);
      assert.ok(r.log.lines().some((l) => l.msg === 'predictor failed' && c.log.test(JSON.stringify(l.err))), 'the cause is logged');
    });
  }

  test('a request waiting for its batch still times out with 504', async () => {
    const res = await postJson({ port: r.port }, { id: 'lonely' });
    assert.equal(res.status, 504, res.text);
    await waitFor('the slot back', () => r.replica.counts().inFlight === 0);
  });
});

// 2 workers × 4 slots (threads 2 raised to max_batch_size 4): a worker given 4 of the 8 requests runs
// them as one batch at once; the balancer may split 4/4, 5/3, … so the rest run at the interval.
test('TypeScript predictBatch in worker threads: 8 requests ⇒ a full batch of 4 and at most 3 batches, batch sizes reported by message', async () => {
  const r = await start(
    { predictor: { path: BATCH_PREDICTOR, processesPerReplica: 2, threadsPerProcess: 2, serverSideBatching: { maxBatchSize: 4, batchIntervalMs: 200 } } },
    'worker-threads',
  );
  try {
    await r.replica.ready;
    const got = await Promise.all(Array.from({ length: 8 }, (_, i) => postJson({ port: r.port }, { id: i })));
    const bodies = got.map((g) => (assert.equal(g.status, 200, g.text), g.json() as { id: number; batchSize: number; thread: number }));
    assert.deepEqual(bodies.map((b) => b.id), [0, 1, 2, 3, 4, 5, 6, 7]);
    assert.ok(bodies.some((b) => b.batchSize === 4), `a full batch: ${JSON.stringify(bodies.map((b) => b.batchSize))}`);
    await waitFor('every request in /metrics', async () => (await batchMetrics(r.port)).sum >= 8);
    const m = await batchMetrics(r.port);
    assert.equal(m.sum, 8);
    assert.ok(m.count >= 2 && m.count <= 3, `want 2–3 batches, got ${m.count}`);
    const perBatch = new Map(bodies.map((b) => [`${b.thread}/${(b as { batch?: number }).batch}`, b.batchSize]));
    assert.equal(perBatch.size, m.count, 'the predictor saw the batches /metrics counted');
  } finally {
    await r.replica.close({ graceMs: 1000 });
  }
});

test('TypeScript predictor without predictBatch under server_side_batching: a load error naming the file and the method', async () => {
  const r = await start({ predictor: { path: NO_BATCH_PREDICTOR, threadsPerProcess: 2, serverSideBatching: { maxBatchSize: 2, batchIntervalMs: 5 } } }, 'in-thread');
  try {
    await assert.rejects(r.replica.ready, (err: Error & { code?: string }) => {
      assert.equal(err.code, 'ENG_PREDICTOR_LOAD');
      assert.ok(err.message.startsWith(`${NO_BATCH_PREDICTOR}: class Predictor: predictor.server_side_batching is set (max_batch_size 2), so the class needs a predictBatch(requests) method`), err.message);
      return true;
    });
  } finally {
    await r.replica.close({ graceMs: 0 });
  }
});
