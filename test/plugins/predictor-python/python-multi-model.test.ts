// python_client with models (Cortex 0.25 multi_model_reloading) in real Python processes, loaded
// through PythonPredictorBackend over a real local ModelProvider: get_model on path / paths / dir,
// versions and "latest", 400/404 answers, the required python_client and load_model, the no-cache
// preload, cache_size LRU under concurrent requests (a model in use is never evicted), two processes
// with their own caches, live reload through the ModelDirectory, and the counters in modelStats().
import assert from 'node:assert/strict';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { HttpError } from '../../../core/errors.js';
import { waitFor } from '../../harness/http-client.js';
import { GATES_PY, loadPython, type LoadedPython } from './python-test-kit.js';

/**
 * A predictor whose `load_model` reads `model.txt` (or the file itself) and records each load; with
 * `?gate=<file>` a prediction holds its model until the test creates the file, after touching
 * `held-<model>` so the test knows it got it.
 */
const PREDICTOR_PY = `
  import os
  import threading

  from gates import wait_for_file


  class PythonPredictor:
      def __init__(self, config, python_client):
          self.client = python_client
          self.loads = []
          self.lock = threading.Lock()

      def load_model(self, model_path):
          with self.lock:
              self.loads.append(os.path.relpath(model_path, os.getcwd()))
          path = os.path.join(model_path, "model.txt") if os.path.isdir(model_path) else model_path
          with open(path) as f:
              return f.read()

      def predict(self, query_params):
          name = query_params.get("model")
          version = query_params.get("version", "latest")
          model = self.client.get_model(name, version)
          gate = query_params.get("gate")
          if gate:
              open(f"held-{name}", "w").close()
              wait_for_file(gate)
          with self.lock:
              return {"model": model, "loads": list(self.loads), "pid": os.getpid()}
`;

const files = (models: Record<string, string>): Record<string, string> => ({ 'predictor.py': PREDICTOR_PY, 'gates.py': GATES_PY, ...models });

async function statusOf(t: LoadedPython, query: Record<string, string>): Promise<[number | undefined, string]> {
  const err = await t.fail(query);
  assert.ok(err instanceof HttpError, `want an HttpError, got ${err.name}: ${err.message}`);
  return [err.status, err.message];
}

describe('python_client: selecting models and versions', () => {
  test('models.path (one model): the name is ignored, numbered versions, "latest" is the highest', async () => {
    await using t = await loadPython(files({ 'm/1/model.txt': 'v1', 'm/10/model.txt': 'v10', 'm/2/model.txt': 'v2' }), (p) => ({ models: { path: p.path('m') } }));
    const cases: { query: Record<string, string>; want: string }[] = [
      { query: {}, want: 'v10' },
      { query: { model: 'anything' }, want: 'v10' },
      { query: { version: '2' }, want: 'v2' },
      { query: { version: '1' }, want: 'v1' },
      { query: { version: 'latest' }, want: 'v10' },
    ];
    for (const c of cases) {
      const got = (await t.call(c.query)) as { model: string };
      assert.equal(got.model, c.want, JSON.stringify(c.query));
    }
    assert.deepEqual(await statusOf(t, { version: '3' }), [404, 'the model has no version 3 (versions: 1, 2, 10)']);
    assert.deepEqual(await statusOf(t, { version: '1.5' }), [400, 'model_version must be a non-negative integer or "latest" (got "1.5")']);
  });

  test('model_path as one file: version 1, get_model() without arguments', async () => {
    await using t = await loadPython(files({ 'model.bin': 'the file' }), (p) => ({ modelPath: p.path('model.bin') }));
    assert.equal(((await t.call({})) as { model: string }).model, 'the file');
  });

  test('models.paths: the name is required and must be listed; versions per model', async () => {
    await using t = await loadPython(files({ 'x/model.txt': 'X', 'y/1/model.txt': 'Y1', 'y/3/model.txt': 'Y3' }), (p) => ({
      models: { paths: [{ name: 'xm', path: p.path('x') }, { name: 'ym', path: p.path('y') }] },
    }));
    assert.equal(((await t.call({ model: 'xm' })) as { model: string }).model, 'X');
    assert.equal(((await t.call({ model: 'ym' })) as { model: string }).model, 'Y3');
    assert.equal(((await t.call({ model: 'ym', version: '1' })) as { model: string }).model, 'Y1');
    const errors: { query: Record<string, string>; want: [number, string] }[] = [
      { query: {}, want: [400, 'model_name was not specified; this API serves several models, choose one of: xm, ym'] },
      { query: { model: 'zz' }, want: [404, 'model "zz" is not served by this API (models: xm, ym)'] },
      { query: { model: 'ym', version: '2' }, want: [404, 'model "ym" has no version 2 (versions: 1, 3)'] },
      { query: { model: 'xm', version: 'v1' }, want: [400, 'model_version must be a non-negative integer or "latest" (got "v1")'] },
    ];
    for (const e of errors) assert.deepEqual(await statusOf(t, e.query), e.want, JSON.stringify(e.query));
  });

  test('models.dir without cache_size: every version is loaded before load() resolves, never again', async () => {
    await using t = await loadPython(files({ 'models/a/model.txt': 'A', 'models/b/1/model.txt': 'B1', 'models/b/2/model.txt': 'B2' }), (p) => ({
      models: { dir: p.path('models') },
    }));
    const preloaded = ['models/a', 'models/b/1', 'models/b/2'];
    const stats0 = t.predictor.modelStats!();
    assert.deepEqual([stats0.loads, stats0.misses, stats0.inMemory], [3, 0, 3]);
    for (const [query, want] of [
      [{ model: 'b' }, 'B2'],
      [{ model: 'b', version: '1' }, 'B1'],
      [{ model: 'a' }, 'A'],
    ] as const) {
      const got = (await t.call(query)) as { model: string; loads: string[] };
      assert.deepEqual([got.model, got.loads], [want, preloaded], JSON.stringify(query));
    }
    const stats = t.predictor.modelStats!();
    assert.deepEqual([stats.hits, stats.misses, stats.evictions, stats.loads, stats.inMemory], [3, 0, 0, 3, 3]);
    assert.ok(stats.loadMsSum >= 0);
    assert.deepEqual(t.predictor.describe().models, [
      { name: 'a', versions: ['1'] },
      { name: 'b', versions: ['1', '2'] },
    ]);
  });
});

describe('python_client: cache_size', () => {
  test('LRU over (model, version): a model held by a running prediction is not evicted; counters', async () => {
    await using t = await loadPython(files({ 'models/a/model.txt': 'A', 'models/b/model.txt': 'B', 'models/c/model.txt': 'C' }), (p) => ({
      models: { dir: p.path('models'), cacheSize: 1, diskCacheSize: 3 },
      threadsPerProcess: 3,
    }));
    assert.deepEqual(t.predictor.modelStats!().loads, 0, 'nothing is loaded before the first request');
    // 1. A prediction gets "a" and holds it.
    const held = t.call({ model: 'a', gate: 'open-a' });
    await waitFor('the first prediction to hold model a', () => t.project.list('.').includes('held-a'), 20_000, 5);
    // 2. "b" is loaded while "a" is held: the cache is over its size (2 > 1) but "a" stays; "b" goes when its prediction ends.
    assert.deepEqual(((await t.call({ model: 'b' })) as { loads: string[] }).loads, ['models/a', 'models/b']);
    // 3. "a" again, while still held: a hit, not a load.
    assert.deepEqual(((await t.call({ model: 'a' })) as { loads: string[] }).loads, ['models/a', 'models/b']);
    let s = t.predictor.modelStats!();
    assert.deepEqual({ hits: s.hits, misses: s.misses, evictions: s.evictions, loads: s.loads, inMemory: s.inMemory }, { hits: 1, misses: 2, evictions: 1, loads: 2, inMemory: 1 });
    t.project.touch('open-a');
    assert.equal(((await held) as { model: string }).model, 'A');
    // 4. "b" was evicted: loaded again, and now "a" (least recently used, no longer held) goes.
    assert.deepEqual(((await t.call({ model: 'b' })) as { loads: string[] }).loads, ['models/a', 'models/b', 'models/b']);
    assert.deepEqual(((await t.call({ model: 'a' })) as { loads: string[] }).loads, ['models/a', 'models/b', 'models/b', 'models/a']);
    s = t.predictor.modelStats!();
    assert.deepEqual({ hits: s.hits, misses: s.misses, evictions: s.evictions, loads: s.loads, inMemory: s.inMemory }, { hits: 1, misses: 4, evictions: 3, loads: 4, inMemory: 1 });
    assert.equal(t.provider.localCalls.length, 4, 'only a load asks for the local copy, a hit does not');
  });

  test('cache_size 2 over three models under concurrent requests: the two held ones stay, the third waits its turn', async () => {
    await using t = await loadPython(files({ 'models/a/model.txt': 'A', 'models/b/model.txt': 'B', 'models/c/model.txt': 'C' }), (p) => ({
      models: { dir: p.path('models'), cacheSize: 2, diskCacheSize: 3 },
      threadsPerProcess: 4,
    }));
    const holdA = t.call({ model: 'a', gate: 'open' });
    const holdB = t.call({ model: 'b', gate: 'open' });
    await waitFor('a and b held', () => ['held-a', 'held-b'].every((f) => t.project.list('.').includes(f)), 20_000, 5);
    // "c" pushes the cache to 3; neither held model can go, so "c" itself is evicted when its prediction ends.
    assert.equal(((await t.call({ model: 'c' })) as { model: string }).model, 'C');
    assert.deepEqual([t.predictor.modelStats!().inMemory, t.predictor.modelStats!().evictions], [2, 1]);
    // While held, "a" and "b" are hits.
    const loadsNow = ((await t.call({ model: 'a' })) as { loads: string[] }).loads;
    assert.deepEqual(((await t.call({ model: 'b' })) as { loads: string[] }).loads, loadsNow);
    assert.deepEqual([...loadsNow].sort(), ['models/a', 'models/b', 'models/c']);
    t.project.touch('open');
    assert.deepEqual([((await holdA) as { model: string }).model, ((await holdB) as { model: string }).model], ['A', 'B']);
    const s = t.predictor.modelStats!();
    assert.deepEqual({ hits: s.hits, misses: s.misses, evictions: s.evictions, loads: s.loads, inMemory: s.inMemory }, { hits: 2, misses: 3, evictions: 1, loads: 3, inMemory: 2 });
  });

  test('processes_per_replica 2: each process has its own memory cache; modelStats sums them', async () => {
    await using t = await loadPython(files({ 'models/a/model.txt': 'A', 'models/b/model.txt': 'B' }), (p) => ({
      models: { dir: p.path('models'), cacheSize: 1, diskCacheSize: 2 },
      processesPerReplica: 2,
      threadsPerProcess: 1,
    }));
    // The first prediction occupies one process, so the second goes to the other one.
    const first = t.call({ model: 'a', gate: 'open' });
    await waitFor('the first prediction to hold model a', () => t.project.list('.').includes('held-a'), 20_000, 5);
    const second = (await t.call({ model: 'a' })) as { pid: number; loads: string[] };
    t.project.touch('open');
    const one = (await first) as { pid: number; loads: string[] };
    assert.notEqual(one.pid, second.pid, 'two processes served');
    assert.deepEqual([one.loads, second.loads], [['models/a'], ['models/a']], 'each process loaded a itself');
    const s = t.predictor.modelStats!();
    assert.deepEqual({ hits: s.hits, misses: s.misses, evictions: s.evictions, loads: s.loads, inMemory: s.inMemory }, { hits: 0, misses: 2, evictions: 0, loads: 2, inMemory: 2 });
    const pids = (t.predictor.describe().workers as { pid: number }[]).map((w) => w.pid).sort();
    assert.deepEqual(pids, [one.pid, second.pid].sort());
  });
});

describe('python_client: live reload', () => {
  test('without a cache: an added version is loaded at its first get_model, a removed one is dropped and answers 404', async () => {
    await using t = await loadPython(files({ 'models/a/1/model.txt': 'A1', 'models/b/model.txt': 'B' }), (p) => ({ models: { dir: p.path('models') } }));
    assert.deepEqual(t.predictor.modelStats!().inMemory, 2);
    const changes: string[] = [];
    const stop = t.predictor.models!.onDidChange((c) => changes.push(`${c.change} ${c.model}@${c.version}`));
    mkdirSync(t.project.path('models/a/2'));
    writeFileSync(t.project.path('models/a/2/model.txt'), 'A2');
    await t.predictor.models!.poll();
    assert.deepEqual(changes, ['added a@2']);
    // Lazily, as Cortex: "latest" is now 2, loaded by this request.
    const got = (await t.call({ model: 'a' })) as { model: string; loads: string[] };
    assert.deepEqual([got.model, got.loads], ['A2', ['models/a/1', 'models/b', 'models/a/2']]);
    let s = t.predictor.modelStats!();
    assert.deepEqual({ misses: s.misses, loads: s.loads, inMemory: s.inMemory }, { misses: 1, loads: 3, inMemory: 3 });
    rmSync(t.project.path('models/a/1'), { recursive: true });
    await t.predictor.models!.poll();
    assert.deepEqual(changes, ['added a@2', 'removed a@1']);
    assert.deepEqual(await statusOf(t, { model: 'a', version: '1' }), [404, 'model "a" has no version 1 (versions: 2)']);
    s = t.predictor.modelStats!();
    assert.deepEqual({ evictions: s.evictions, inMemory: s.inMemory }, { evictions: 0, inMemory: 2 }, 'the removed version left memory (not an eviction)');
    stop();
  });

  test('with a cache: a version removed while a prediction holds it stays until that prediction ends', async () => {
    await using t = await loadPython(files({ 'models/a/1/model.txt': 'A1', 'models/a/2/model.txt': 'A2' }), (p) => ({
      models: { dir: p.path('models'), cacheSize: 2, diskCacheSize: 2 },
      threadsPerProcess: 2,
    }));
    const held = t.call({ model: 'a', gate: 'open' });
    await waitFor('the prediction to hold a@2', () => t.project.list('.').includes('held-a'), 20_000, 5);
    rmSync(t.project.path('models/a/2'), { recursive: true });
    await t.predictor.models!.poll();
    assert.equal(((await t.call({ model: 'a' })) as { model: string }).model, 'A1', 'latest is 1 now');
    assert.equal(t.predictor.modelStats!().inMemory, 2, 'a@2 is still held');
    t.project.touch('open');
    assert.equal(((await held) as { model: string }).model, 'A2');
    // The next answer carries the counters after the release.
    await t.call({ model: 'a' });
    const s = t.predictor.modelStats!();
    assert.deepEqual({ hits: s.hits, misses: s.misses, evictions: s.evictions, inMemory: s.inMemory }, { hits: 1, misses: 2, evictions: 0, inMemory: 1 });
  });
});
