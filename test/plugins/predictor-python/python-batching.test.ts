// Server-side batching of a PythonPredictor (Cortex 0.25 DynamicBatcher semantics) in real Python
// processes: LoadedPredictor.predictBatch called directly (lists in, one answer per request out, only
// the arguments predict declares, whole-batch failures, one request failing alone), then end to end
// through a real replica whose request batcher gathers concurrent HTTP requests into one batch.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { HttpError } from '../../../core/errors.js';
import { jsonOfAnswer, loadPython, predictArgs, startPythonReplica } from './python-test-kit.js';

const TEAPOT_PY = `
  class Teapot(Exception):
      """An HTTP exception look-alike (status_code + detail), as starlette's."""

      def __init__(self, detail):
          super().__init__(detail)
          self.status_code = 418
          self.detail = detail
`;

/** `predict` answers each request with its index, payload, query value and the batch size; `?fail=` picks how it fails. */
const BATCH_PY = `
  from teapot import Teapot


  class PythonPredictor:
      def __init__(self, config):
          self.calls = 0

      def predict(self, payload, query_params):
          self.calls += 1
          assert isinstance(payload, list) and isinstance(query_params, list)
          modes = [q.get("fail") for q in query_params]
          if "raise" in modes:
              raise RuntimeError("the whole batch failed")
          if "teapot-all" in modes:
              raise Teapot("no coffee for anyone")
          out = []
          for i, (p, q) in enumerate(zip(payload, query_params)):
              if q.get("fail") == "value":
                  out.append(ValueError(f"bad input {p['x']}"))
              elif q.get("fail") == "teapot":
                  out.append(Teapot(f"request {i} is a teapot"))
              else:
                  out.append({"i": i, "x": p["x"], "k": q.get("k"), "n": len(payload), "calls": self.calls})
          if "short" in modes:
              return out[:-1]
          if "tuple" in modes:
              return {"not": "a list"}
          return out
`;

describe('PythonPredictor predictBatch (direct)', () => {
  test('lists in, one answer per request out, in order; the batch counters', async () => {
    await using t = await loadPython({ 'predictor.py': BATCH_PY, 'teapot.py': TEAPOT_PY }, () => ({
      serverSideBatching: { maxBatchSize: 3, batchIntervalMs: 1000 },
      threadsPerProcess: 3,
    }));
    const batch = [0, 1, 2].map((i) => predictArgs(t.log, { k: `q${i}` }, { x: i * 10 }));
    const answers = await t.predictor.predictBatch!(batch);
    assert.deepEqual(answers.map(jsonOfAnswer), [
      { i: 0, x: 0, k: 'q0', n: 3, calls: 1 },
      { i: 1, x: 10, k: 'q1', n: 3, calls: 1 },
      { i: 2, x: 20, k: 'q2', n: 3, calls: 1 },
    ]);
    const one = await t.predictor.predictBatch!([predictArgs(t.log, { k: 'solo' }, { x: 7 })]);
    assert.deepEqual(one.map(jsonOfAnswer), [{ i: 0, x: 7, k: 'solo', n: 1, calls: 2 }]);
    const s = t.predictor.modelStats!();
    assert.deepEqual([s.batches, s.batchedRequests], [2, 4]);
  });

  test('an exception instance in the list fails only its request (with its status); the others answer', async () => {
    await using t = await loadPython({ 'predictor.py': BATCH_PY, 'teapot.py': TEAPOT_PY }, () => ({ serverSideBatching: { maxBatchSize: 3, batchIntervalMs: 1000 }, threadsPerProcess: 3 }));
    const answers = await t.predictor.predictBatch!([
      predictArgs(t.log, { fail: 'value' }, { x: 1 }),
      predictArgs(t.log, { k: 'fine' }, { x: 2 }),
      predictArgs(t.log, { fail: 'teapot' }, { x: 3 }),
    ]);
    const [bad, ok, teapot] = answers as [Error, unknown, Error & { status?: number }];
    assert.ok(bad instanceof Error && !(bad instanceof HttpError), 'a plain exception is a plain Error (answered 500)');
    assert.deepEqual([bad.name, bad.message], ['ValueError', 'bad input 1']);
    assert.deepEqual(jsonOfAnswer(ok), { i: 1, x: 2, k: 'fine', n: 3, calls: 1 });
    assert.ok(teapot instanceof HttpError);
    assert.deepEqual([teapot.status, teapot.message], [418, 'request 2 is a teapot']);
  });

  const wholeBatch: { name: string; fail: string; want: RegExp; status?: number }[] = [
    { name: 'a list one short', fail: 'short', want: /^predict returned a list of 1 results for a batch of 2 requests: return one result per request, in order$/ },
    { name: 'not a list', fail: 'tuple', want: /^please return a list when using server side batching, got <class 'dict'>$/ },
    { name: 'predict raising', fail: 'raise', want: /^the whole batch failed$/ },
    { name: 'predict raising an HTTP exception', fail: 'teapot-all', want: /^no coffee for anyone$/, status: 418 },
  ];
  for (const c of wholeBatch) {
    test(`${c.name} fails the whole batch`, async () => {
      await using t = await loadPython({ 'predictor.py': BATCH_PY, 'teapot.py': TEAPOT_PY }, () => ({ serverSideBatching: { maxBatchSize: 2, batchIntervalMs: 1000 }, threadsPerProcess: 2 }));
      const err = await t.predictor.predictBatch!([predictArgs(t.log, {}, { x: 1 }), predictArgs(t.log, { fail: c.fail }, { x: 2 })]).then(
        () => assert.fail('want a rejection'),
        (e: Error & { status?: number }) => e,
      );
      assert.match(err.message, c.want);
      assert.equal(err.status, c.status);
      // The worker still serves.
      assert.deepEqual((await t.predictor.predictBatch!([predictArgs(t.log, { k: 'after' }, { x: 3 })])).map(jsonOfAnswer), [{ i: 0, x: 3, k: 'after', n: 1, calls: 2 }]);
    });
  }

  test('only the arguments predict declares are passed (headers as a list, no payload)', async () => {
    await using t = await loadPython(
      {
        'predictor.py': `
          class PythonPredictor:
              def __init__(self, config):
                  pass

              def predict(self, headers):
                  return [{"n": h["x-n"], "of": len(headers)} for h in headers]
        `,
      },
      () => ({ serverSideBatching: { maxBatchSize: 2, batchIntervalMs: 1000 }, threadsPerProcess: 2 }),
    );
    const args = ['a', 'b'].map((n) => ({ ...predictArgs(t.log), headers: { 'content-type': 'application/json', 'x-n': n } }));
    assert.deepEqual((await t.predictor.predictBatch!(args)).map(jsonOfAnswer), [
      { n: 'a', of: 2 },
      { n: 'b', of: 2 },
    ]);
  });

  test('without server_side_batching the predictor has no predictBatch', async () => {
    await using t = await loadPython({ 'predictor.py': BATCH_PY, 'teapot.py': TEAPOT_PY });
    assert.equal(t.predictor.predictBatch, undefined);
    assert.equal(t.predictor.modelStats, undefined);
  });
});

describe('PythonPredictor server-side batching through a replica', () => {
  test('concurrent HTTP requests are answered from one predict call, each with its own answer; one failing alone', async () => {
    await using t = await startPythonReplica({
      files: { 'predictor.py': BATCH_PY, 'teapot.py': TEAPOT_PY },
      // The interval is far off: the batch runs when max_batch_size requests wait, never on the clock.
      spec: () => ({ predictor: { serverSideBatching: { maxBatchSize: 4, batchIntervalMs: 60_000 }, threadsPerProcess: 4 } }),
    });
    const queries = ['?k=a', '?k=b', '?fail=teapot', '?k=d'];
    const rs = await Promise.all(queries.map((q, i) => t.postJson({ x: i }, q)));
    // Each request got the answer to its own entry (its own x and k), all from one call of 4.
    for (const j of [0, 1, 3]) {
      const b = rs[j].json() as { x: number; k: string; n: number; calls: number };
      assert.deepEqual([rs[j].status, b.x, b.k, b.n, b.calls], [200, j, queries[j].slice(3), 4, 1], queries[j]);
    }
    assert.equal(rs[2].status, 418);
    assert.match(String((rs[2].json() as { error: string }).error), /is a teapot$/);
  });
});
