// A replica serving several onnx models with cache_size 1: GET / lists them with Cortex's versions and
// each version's status, and /metrics counts hits, misses, evictions and loads, in the replica's thread
// and summed over worker threads.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { httpCall, postJson } from '../../harness/http-client.js';
import { apiSpecFixture } from '../../harness/api-spec-fixture.js';
import { irisModel, writeOnnxModel } from '../../harness/model-builders.js';
import { startReplica, type ExecutorChoice } from '../../../serving/replica/replica-server.js';
import { captureLog } from './replica-test-kit.js';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'myelin-model-metrics-'));
  for (const [m, v] of [['a', '1'], ['a', '2'], ['b', '1']]) {
    await mkdir(join(dir, 'zoo', m, v), { recursive: true });
    await writeOnnxModel(join(dir, 'zoo', m, v, 'm.onnx'), irisModel());
  }
});
after(() => rm(dir, { recursive: true, force: true }));

function metric(text: string, name: string): number {
  return Number(new RegExp(`^${name}\\{[^}]*\\} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
}

for (const executor of ['in-thread', 'worker-threads'] as const satisfies readonly ExecutorChoice[]) {
  describe(`model cache metrics (${executor})`, () => {
    test('GET / lists versions and status; /metrics counts hits, misses, evictions and loads', async () => {
      const spec = apiSpecFixture({
        projectDir: dir,
        predictor: { type: 'onnx', processesPerReplica: executor === 'worker-threads' ? 2 : 1, models: { dir: join(dir, 'zoo'), cacheSize: 1, diskCacheSize: 3 } },
      });
      const replica = await startReplica({ spec, log: captureLog().log, executor });
      try {
        await replica.ready;
        const port = replica.address.port!;
        const before = (await httpCall({ port }, { path: '/' })).json() as { models: Record<string, { versions: string[]; status: Record<string, string> }> };
        assert.deepEqual(before.models, {
          a: { versions: ['1', '2'], timestamps: (before.models.a as unknown as { timestamps: number[] }).timestamps, status: { 1: 'not loaded', 2: 'not loaded' } },
          b: { versions: ['1'], timestamps: (before.models.b as unknown as { timestamps: number[] }).timestamps, status: { 1: 'not loaded' } },
        });
        const rows = [[5.1, 3.5, 1.4, 0.2]];
        // Sequential, one model at a time: a miss, a hit, then b evicts a@2, then a@2 is a miss again.
        for (const q of ['model=a', 'model=a', 'model=b', 'model=a']) {
          const r = await postJson({ port }, rows, `/?${q}`);
          assert.equal(r.status, 200, r.text);
        }
        // Worker threads report after their predictions, at most twice a second.
        let text = '';
        for (let i = 0; i < 100; i++) {
          text = (await httpCall({ port }, { path: '/metrics' })).text;
          if (metric(text, 'myelin_model_loads_total') + metric(text, 'myelin_model_cache_hits_total') >= 4) break;
          await new Promise((r) => setTimeout(r, 100));
        }
        const misses = metric(text, 'myelin_model_cache_misses_total');
        const hits = metric(text, 'myelin_model_cache_hits_total');
        assert.equal(misses + hits, 4, text);
        assert.equal(metric(text, 'myelin_model_loads_total'), misses);
        assert.ok(metric(text, 'myelin_model_load_seconds_total') > 0);
        if (executor === 'in-thread') {
          assert.deepEqual([misses, hits, metric(text, 'myelin_model_evictions_total'), metric(text, 'myelin_models_in_memory')], [3, 1, 2, 1]);
        } else {
          // Each worker thread keeps its own cache_size; the balancer decides which serves what.
          assert.ok(misses >= 2 && misses <= 4, text);
        }
      } finally {
        await replica.close();
      }
    });
  });
}
