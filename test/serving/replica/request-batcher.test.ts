// The request batcher (predictors that take lists) with a hand-fired interval: full batch versus
// interval, each request its own answer or error, a thrown batch or a wrong-length result fails all,
// answered (timed-out) requests are left out, and the wrapper keeps the predictor's optional parts.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { pino } from 'pino';
import { HttpError } from '../../../core/errors.js';
import type { BackendPredictArgs, LoadedPredictor } from '../../../core/ports/predictor-backend.js';
import type { BatchScheduler } from '../../../core/predictor/tensor-batcher.js';
import { RequestBatcher, slotsPerInstance, withRequestBatching } from '../../../serving/replica/request-batcher.js';
import { apiSpecFixture } from '../../harness/api-spec-fixture.js';

const log = pino({ level: 'silent' });

class HandScheduler {
  readonly timers: Array<{ fire: () => void; ms: number; cancelled: boolean }> = [];
  readonly schedule: BatchScheduler = (fire, ms) => {
    const t = { fire, ms, cancelled: false };
    this.timers.push(t);
    return () => (t.cancelled = true);
  };
  fireAll(): void {
    for (const t of this.timers.splice(0)) if (!t.cancelled) t.fire();
  }
}

function args(payload: unknown, cancel?: { cancelled: boolean }): BackendPredictArgs {
  return { requestId: `r-${String(payload)}`, payload, query: {}, headers: {}, debug: false, log, ...(cancel ? { cancel } : {}) };
}

/** A batch function that records each batch's payloads and answers `p * 2`, an HttpError for 'bad'. */
function recorder(): { batches: unknown[][]; run: (b: readonly BackendPredictArgs[]) => Promise<unknown[]> } {
  const batches: unknown[][] = [];
  return {
    batches,
    run: async (b) => {
      batches.push(b.map((a) => a.payload));
      return b.map((a) => (a.payload === 'bad' ? new HttpError(422, 'bad payload') : (a.payload as number) * 2));
    },
  };
}

describe('RequestBatcher', () => {
  test('a batch runs as soon as max_batch_size requests wait; each gets its own answer', async () => {
    const rec = recorder();
    const clock = new HandScheduler();
    const sizes: number[] = [];
    const b = new RequestBatcher(rec.run, { maxBatchSize: 3, intervalMs: 10, onBatch: (n) => sizes.push(n), scheduler: clock.schedule });
    const got = await Promise.all([1, 2, 3].map((p) => b.submit(args(p))));
    assert.deepEqual(got, [2, 4, 6]);
    assert.deepEqual(rec.batches, [[1, 2, 3]]);
    assert.deepEqual(sizes, [3]);
    assert.equal(clock.timers[0].cancelled, true, 'the interval of a full batch is cancelled');
    assert.deepEqual([b.batches, b.batchedRequests], [1, 3]);
  });

  test('a batch that is not full runs when the interval (from its first request) ends', async () => {
    const rec = recorder();
    const clock = new HandScheduler();
    const b = new RequestBatcher(rec.run, { maxBatchSize: 8, intervalMs: 25, scheduler: clock.schedule });
    const pending = [b.submit(args(1)), b.submit(args(2))];
    assert.deepEqual([rec.batches.length, b.pending(), clock.timers.map((t) => t.ms)], [0, 2, [25]]);
    clock.fireAll();
    assert.deepEqual(await Promise.all(pending), [2, 4]);
    assert.deepEqual(rec.batches, [[1, 2]]);
  });

  test('an Error entry fails its request alone (its status kept); the others get their answers', async () => {
    const rec = recorder();
    const b = new RequestBatcher(rec.run, { maxBatchSize: 3, intervalMs: 10, scheduler: new HandScheduler().schedule });
    const got = await Promise.allSettled([b.submit(args(1)), b.submit(args('bad')), b.submit(args(3))]);
    assert.deepEqual(got.map((r) => r.status), ['fulfilled', 'rejected', 'fulfilled']);
    const reason = (got[1] as PromiseRejectedResult).reason as HttpError;
    assert.deepEqual([reason instanceof HttpError, reason.status], [true, 422]);
  });

  const failing = [
    { name: 'predictBatch throws', run: async (): Promise<unknown[]> => Promise.reject(new Error('boom')), want: /boom/ },
    { name: 'a list of the wrong length', run: async (): Promise<unknown[]> => [1], want: /predictBatch got 2 requests and returned 1 results/ },
    { name: 'not a list', run: async (): Promise<unknown[]> => ({}) as unknown as unknown[], want: /returned object/ },
  ];
  for (const c of failing) {
    test(`${c.name}: every request of the batch fails`, async () => {
      const b = new RequestBatcher(c.run, { maxBatchSize: 2, intervalMs: 10, scheduler: new HandScheduler().schedule });
      const got = await Promise.allSettled([b.submit(args(1)), b.submit(args(2))]);
      for (const r of got) {
        assert.equal(r.status, 'rejected');
        assert.match(String((r as PromiseRejectedResult).reason), c.want);
      }
    });
  }

  test('a request already answered (timed out) when its batch runs is left out', async () => {
    const rec = recorder();
    const clock = new HandScheduler();
    const b = new RequestBatcher(rec.run, { maxBatchSize: 4, intervalMs: 10, scheduler: clock.schedule });
    const cancel = { cancelled: false };
    const gone = b.submit(args(1, cancel));
    const kept = b.submit(args(2));
    cancel.cancelled = true;
    clock.fireAll();
    assert.equal(await kept, 4);
    await assert.rejects(gone, /answered before its batch ran/);
    assert.deepEqual(rec.batches, [[2]]);
  });
});

describe('withRequestBatching', () => {
  const base = (extra: Partial<LoadedPredictor> = {}): LoadedPredictor => ({
    predict: async () => 'single',
    describe: () => ({ backend: 'test' }),
    close: async () => {},
    ...extra,
  });
  const batching = apiSpecFixture({ predictor: { serverSideBatching: { maxBatchSize: 2, batchIntervalMs: 5 }, threadsPerProcess: 2 } });

  test('without server_side_batching, or without predictBatch, the predictor is used as it is', () => {
    const plain = base({ predictBatch: async (b) => b.map(() => 1) });
    assert.equal(withRequestBatching(plain, apiSpecFixture()), plain);
    const noBatch = base();
    assert.equal(withRequestBatching(noBatch, batching), noBatch);
  });

  test('predict goes through predictBatch; describe shows the batching; capacity stays absent when the predictor has none', async () => {
    const sizes: number[] = [];
    const wrapped = withRequestBatching(base({ predictBatch: async (b) => b.map((a) => `batched ${String(a.payload)}`) }), batching, (n) => sizes.push(n));
    assert.deepEqual(await Promise.all([wrapped.predict(args('a')), wrapped.predict(args('b'))]), ['batched a', 'batched b']);
    assert.deepEqual(sizes, [2]);
    assert.deepEqual(wrapped.describe().serverSideBatching, { maxBatchSize: 2, batchIntervalMs: 5 });
    assert.equal(wrapped.capacity, undefined);
    assert.equal(wrapped.postPredict, undefined);
  });

  test('slots per instance: threads_per_process, raised to max_batch_size under batching', () => {
    const cases = [
      { threads: 4, batching: undefined, want: 4 },
      { threads: 4, batching: { maxBatchSize: 16, batchIntervalMs: 1 }, want: 16 },
      { threads: 32, batching: { maxBatchSize: 16, batchIntervalMs: 1 }, want: 32 },
    ];
    for (const c of cases) {
      const got = slotsPerInstance(apiSpecFixture({ predictor: { threadsPerProcess: c.threads, ...(c.batching ? { serverSideBatching: c.batching } : {}) } }));
      assert.equal(got, c.want, `threads ${c.threads}, batching ${JSON.stringify(c.batching)}: want ${c.want}, got ${got}`);
    }
  });
});
