// The tensor batcher on a recording model and a hand-fired interval: merge and split by rows, a full
// batch versus the interval, error isolation, separate batches for different shapes or dtypes,
// padding to a fixed batch dimension, and the load-time batch-dimension check.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { HttpError, PredictorError } from '../../../core/errors.js';
import type { RunnableModel } from '../../../core/predictor/runnable-model.js';
import type { TensorSignature } from '../../../core/predictor/predictor-contract.js';
import { batchRunnable, checkBatchDimension, withTensorBatching, type BatchScheduler, type TensorBatchOptions } from '../../../core/predictor/tensor-batcher.js';
import type { TensorData } from '../../../core/predictor/tensor-data.js';

/** Intervals scheduled by the batcher, fired by the test (SG 9.2: no real time). */
class HandScheduler {
  readonly timers: Array<{ fire: () => void; ms: number; cancelled: boolean }> = [];
  readonly schedule: BatchScheduler = (fire, ms) => {
    const t = { fire, ms, cancelled: false };
    this.timers.push(t);
    return () => (t.cancelled = true);
  };
  live(): number {
    return this.timers.filter((t) => !t.cancelled).length;
  }
  fireAll(): void {
    for (const t of this.timers.splice(0)) if (!t.cancelled) t.fire();
  }
}

/** A model `y = 10 x` (and `n`, the row count, when `scalarOutput`) that records the shape of every run; a -1 in x makes a run fail. */
class RecordingModel implements RunnableModel {
  readonly runs: number[][] = [];
  readonly outputs: TensorSignature[];
  released = false;
  constructor(
    readonly inputs: TensorSignature[] = [{ name: 'x', dtype: 'float32', shape: ['batch', 2] }],
    private readonly scalarOutput = false,
  ) {
    this.outputs = [{ name: 'y', dtype: 'float32', shape: [-1, 2] }];
  }
  async run(feeds: readonly TensorData[]): Promise<TensorData[]> {
    const x = feeds[0];
    this.runs.push([...x.shape]);
    const data = x.data as Float32Array;
    if (data.includes(-1)) throw new Error('poison value -1');
    const y: TensorData = { name: 'y', dtype: 'float32', shape: x.shape, data: data.map((v) => v * 10) };
    if (!this.scalarOutput) return [y];
    return [y, { name: 'n', dtype: 'float32', shape: [], data: new Float32Array([x.shape[0]]) }];
  }
  async release(): Promise<void> {
    this.released = true;
  }
}

function x(rows: number[][], name = 'x'): TensorData[] {
  return [{ name, dtype: 'float32', shape: [rows.length, rows[0]?.length ?? 0], data: Float32Array.from(rows.flat()) }];
}

function rowsOf(out: TensorData[]): number[][] {
  const t = out[0];
  const per = t.shape[1];
  return Array.from({ length: t.shape[0] }, (_, r) => Array.from(t.data as Float32Array).slice(r * per, (r + 1) * per));
}

function setup(maxBatchSize: number, model = new RecordingModel()): { model: RecordingModel; batched: RunnableModel; sizes: number[]; clock: HandScheduler; warned: unknown[] } {
  const sizes: number[] = [];
  const warned: unknown[] = [];
  const clock = new HandScheduler();
  const log = { warn: (o: unknown) => warned.push(o) } as unknown as TensorBatchOptions['log'];
  const batched = batchRunnable(model, { maxBatchSize, intervalMs: 5, onBatch: (n) => sizes.push(n), label: 'model "m" version 1', log, scheduler: clock.schedule });
  return { model, batched, sizes, clock, warned };
}

describe('batchRunnable', () => {
  test('a full batch runs at once: inputs stacked along dim 0, outputs split by each request\'s rows', async () => {
    const { model, batched, sizes, clock } = setup(3);
    const got = await Promise.all([batched.run(x([[1, 2]])), batched.run(x([[3, 4], [5, 6]])), batched.run(x([[7, 8]]))]);
    assert.deepEqual(model.runs, [[4, 2]], 'one run of 4 rows for 3 requests');
    assert.deepEqual(sizes, [3], 'requests are counted, not rows');
    assert.deepEqual(got.map(rowsOf), [[[10, 20]], [[30, 40], [50, 60]], [[70, 80]]]);
    assert.deepEqual(got.map((o) => o[0].shape), [[1, 2], [2, 2], [1, 2]]);
    assert.equal(clock.live(), 0, 'the interval of a batch run by size is cancelled');
  });

  test('a batch that is not full runs when the interval ends, measured from its first request', async () => {
    const { model, batched, sizes, clock } = setup(8);
    const a = batched.run(x([[1, 1]]));
    const b = batched.run(x([[2, 2]]));
    await Promise.resolve();
    assert.deepEqual(model.runs, [], 'nothing runs before the interval');
    assert.deepEqual(clock.timers.map((t) => t.ms), [5], 'one interval, started by the first request');
    clock.fireAll();
    assert.deepEqual((await Promise.all([a, b])).map(rowsOf), [[[10, 10]], [[20, 20]]]);
    assert.deepEqual(model.runs, [[2, 2]]);
    assert.deepEqual(sizes, [2]);
    // The next request opens a new window.
    const c = batched.run(x([[3, 3]]));
    assert.equal(clock.live(), 1);
    clock.fireAll();
    assert.deepEqual(rowsOf(await c), [[30, 30]]);
    assert.deepEqual(model.runs, [[2, 2], [1, 2]], 'a lone request runs as it is');
  });

  test('one failing request: the merged run fails, each request runs alone, only the bad one gets an error', async () => {
    const { model, batched, sizes } = setup(3);
    const got = await Promise.allSettled([batched.run(x([[1, 2]])), batched.run(x([[-1, 0]])), batched.run(x([[3, 4]]))]);
    assert.deepEqual(
      got.map((r) => r.status),
      ['fulfilled', 'rejected', 'fulfilled'],
    );
    assert.deepEqual(rowsOf((got[0] as PromiseFulfilledResult<TensorData[]>).value), [[10, 20]]);
    assert.deepEqual(rowsOf((got[2] as PromiseFulfilledResult<TensorData[]>).value), [[30, 40]]);
    assert.match(String((got[1] as PromiseRejectedResult).reason), /poison/);
    assert.deepEqual(model.runs, [[3, 2], [1, 2], [1, 2], [1, 2]], 'one merged run, then one run per request');
    assert.deepEqual(sizes, [3]);
  });

  const separate = [
    { name: 'other inner dimensions', b: (): TensorData[] => x([[1, 2, 3]]) },
    { name: 'another dtype', b: (): TensorData[] => [{ name: 'x', dtype: 'float64', shape: [1, 2], data: new Float64Array([1, 2]) }] },
  ];
  for (const c of separate) {
    test(`requests with ${c.name} go into separate batches`, async () => {
      const model = new RecordingModel([{ name: 'x', dtype: 'float32', shape: ['batch', -1] }]);
      const { batched, sizes, clock } = setup(4, model);
      const runs = [batched.run(x([[1, 2]])), batched.run(c.b()), batched.run(x([[3, 4]]))];
      assert.equal(clock.live(), 2, 'one queue (and interval) per batch key');
      clock.fireAll();
      await Promise.all(runs);
      assert.deepEqual(model.runs.map((s) => s[0]).sort(), [1, 2], 'the two alike share one run; the other runs apart');
      assert.deepEqual([...sizes].sort(), [1, 2]);
    });
  }

  test('a request that cannot be stacked (a scalar input) runs alone, at once', async () => {
    const model = new RecordingModel([{ name: 'x', dtype: 'float32', shape: [] }]);
    const { batched, sizes, clock } = setup(4, model);
    const scalar: TensorData[] = [{ name: 'x', dtype: 'float32', shape: [], data: new Float32Array([2]) }];
    const out = await batched.run(scalar);
    assert.deepEqual(Array.from(out[0].data as Float32Array), [20]);
    assert.deepEqual([model.runs, sizes, clock.live()], [[[]], [1], 0]);
  });

  test('outputs without the batch as first dimension: the batch runs each request alone, then batching is off for the model', async () => {
    const model = new RecordingModel(undefined, true);
    const { batched, sizes, clock, warned } = setup(2, model);
    const got = await Promise.all([batched.run(x([[1, 1]])), batched.run(x([[2, 2]]))]);
    assert.deepEqual(got.map((o) => Array.from(o[1].data as Float32Array)), [[1], [1]], 'each got its own (unsplit) output');
    assert.equal(warned.length, 1);
    await batched.run(x([[3, 3]]));
    assert.deepEqual(model.runs, [[2, 2], [1, 2], [1, 2], [1, 2]]);
    assert.deepEqual([sizes, clock.live()], [[2, 1], 0]);
  });

  test('a fixed first dimension ≥ max_batch_size: shown dynamic, batches padded to it, padding dropped; too many rows is a 400', async () => {
    const model = new RecordingModel([{ name: 'x', dtype: 'float32', shape: [4, 2] }]);
    const { batched, clock } = setup(2, model);
    assert.deepEqual(batched.inputs[0].shape, [-1, 2]);
    assert.deepEqual((batched.info?.serverSideBatching as { paddedTo?: number }).paddedTo, 4);
    const got = await Promise.all([batched.run(x([[1, 2]])), batched.run(x([[3, 4]]))]);
    assert.deepEqual(model.runs, [[4, 2]], 'two rows padded to the fixed 4');
    assert.deepEqual(got.map(rowsOf), [[[10, 20]], [[30, 40]]]);
    const lone = batched.run(x([[5, 6]]));
    clock.fireAll();
    assert.deepEqual(rowsOf(await lone), [[50, 60]]);
    assert.deepEqual(model.runs.at(-1), [4, 2], 'a lone request is padded too');
    await assert.rejects(batched.run(x([[1, 1], [1, 1], [1, 1], [1, 1], [1, 1]])), (err: unknown) => err instanceof HttpError && err.status === 400 && /at most 4 rows/.test(err.message));
  });

  test('while a batch runs, the next one is due after its interval but keeps gathering until the run ends', async () => {
    let finish!: () => void;
    const gate = new Promise<void>((r) => (finish = r));
    const model = new RecordingModel();
    const slow: RunnableModel = {
      inputs: model.inputs,
      outputs: model.outputs,
      run: async (feeds) => {
        if (model.runs.length === 0) await gate;
        return model.run(feeds);
      },
      release: () => model.release(),
    };
    const { batched, sizes, clock } = setup(4, slow as RecordingModel);
    const first = Promise.all([1, 2, 3, 4].map((v) => batched.run(x([[v, v]]))));
    await Promise.resolve();
    const second = [batched.run(x([[5, 5]]))];
    clock.fireAll();
    second.push(batched.run(x([[6, 6]])), batched.run(x([[7, 7]])));
    assert.deepEqual(sizes, [4], 'the second batch waits for the first run');
    finish();
    await first;
    const got = await Promise.all(second);
    assert.deepEqual(got.map(rowsOf), [[[50, 50]], [[60, 60]], [[70, 70]]]);
    assert.deepEqual(sizes, [4, 3], 'requests that came after the interval joined the waiting batch');
    assert.deepEqual(model.runs, [[4, 2], [3, 2]]);
  });

  test('release releases the model', async () => {
    const { model, batched } = setup(2);
    await batched.release();
    assert.equal(model.released, true);
  });
});

describe('checkBatchDimension', () => {
  const sig = (shape: ReadonlyArray<number | string | null>, name = 'x'): TensorSignature => ({ name, dtype: 'float32', shape: shape as Array<number | string> });
  const cases: Array<{ name: string; inputs: TensorSignature[]; max: number; want: RegExp | null }> = [
    { name: '-1', inputs: [sig([-1, 4])], max: 8, want: null },
    { name: 'a symbolic name', inputs: [sig(['batch', 4])], max: 8, want: null },
    { name: 'null', inputs: [sig([null, 4])], max: 8, want: null },
    { name: 'unknown shape', inputs: [sig([])], max: 8, want: null },
    { name: 'fixed at max_batch_size', inputs: [sig([8, 4])], max: 8, want: null },
    { name: 'fixed below max_batch_size', inputs: [sig([1, 4], 'input')], max: 8, want: /input "input" has shape \[1, 4\]: its first \(batch\) dimension is fixed at 1, below max_batch_size 8/ },
    { name: 'one of two inputs fixed', inputs: [sig(['batch', 2], 'a'), sig([2, 2], 'b')], max: 4, want: /^input "b" has shape \[2, 2\]/ },
    { name: 'different fixed dimensions', inputs: [sig([8, 2], 'a'), sig([16, 2], 'b')], max: 4, want: /different fixed first \(batch\) dimensions/ },
  ];
  for (const c of cases) {
    test(`${c.name} → ${c.want ? 'refused' : 'accepted'}`, () => {
      const got = checkBatchDimension(c.inputs, c.max);
      if (c.want === null) assert.equal(got, null);
      else assert.match(got ?? 'null', c.want);
    });
  }

  test('withTensorBatching throws ENG_PREDICTOR_LOAD naming the model version, and leaves a model alone without batching', () => {
    const model = new RecordingModel([{ name: 'x', dtype: 'float32', shape: [1, 3] }]);
    assert.equal(withTensorBatching(model, undefined, 'model "m" version 1'), model);
    assert.throws(
      () => withTensorBatching(model, { maxBatchSize: 4, intervalMs: 1 }, 'model "m" version 1'),
      (err: unknown) => err instanceof PredictorError && err.code === 'ENG_PREDICTOR_LOAD' && /^model "m" version 1: server_side_batching: input "x" has shape \[1, 3\]/.test(err.message),
    );
  });
});
