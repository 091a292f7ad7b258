// examples/python-multi-model as committed: its cortex.yaml loads through the config loader and a
// real replica serves it (real Python, the pickled scikit-learn models generate_models.py wrote):
// two versions of "iris", "latest", a second model, the 400/404 answers, and cache_size 1 evicting.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { nodeProjectFileSystem } from '../../../adapters/fs/node-project-file-system.js';
import { loadApiSpecsFromFile } from '../../../core/config/load-api-specs.js';
import { startReplica, type Replica } from '../../../serving/replica/replica-server.js';
import { httpCall } from '../../harness/http-client.js';
import { captureLog } from '../../serving/replica/replica-test-kit.js';
import { PYTHON } from './python-test-kit.js';

const EXAMPLE = fileURLToPath(new URL('../../../examples/python-multi-model/', import.meta.url));
const SAMPLE = readFileSync(`${EXAMPLE}sample.json`, 'utf8');

describe('examples/python-multi-model', () => {
  let replica: Replica;
  const log = captureLog();
  const post = (query: string) =>
    httpCall({ port: replica.address.port! }, { method: 'POST', path: `/predict${query}`, headers: { 'content-type': 'application/json' }, body: SAMPLE });

  before(async () => {
    const { specs } = await loadApiSpecsFromFile(`${EXAMPLE}cortex.yaml`, { files: nodeProjectFileSystem });
    assert.equal(specs.length, 1);
    const spec = specs[0];
    assert.deepEqual([spec.predictor.type, spec.predictor.models?.cacheSize, spec.predictor.models?.diskCacheSize], ['python', 1, 2]);
    replica = await startReplica({ spec: { ...spec, predictor: { ...spec.predictor, env: { ...spec.predictor.env, MYELIN_PYTHON: PYTHON } } }, log: log.log });
    await replica.ready;
  });
  after(() => replica?.close({ graceMs: 0 }));

  test('versions, latest and a second model answer the sample; unknown ones are 400/404 naming what exists', async () => {
    const cases: { query: string; status: number; want: unknown }[] = [
      { query: '?model=iris', status: 200, want: { label: 'virginica', probability: 1 } },
      { query: '?model=iris&version=1', status: 200, want: { label: 'virginica', probability: 0.618 } },
      { query: '?model=iris&version=2', status: 200, want: { label: 'virginica', probability: 1 } },
      { query: '?model=tree', status: 200, want: { label: 'virginica', probability: 0.978 } },
      { query: '', status: 400, want: { error: 'model_name was not specified; this API serves several models, choose one of: iris, tree' } },
      { query: '?model=rose', status: 404, want: { error: 'model "rose" is not served by this API (models: iris, tree)' } },
      { query: '?model=iris&version=3', status: 404, want: { error: 'model "iris" has no version 3 (versions: 1, 2)' } },
    ];
    for (const c of cases) {
      const r = await post(c.query);
      const body = r.json() as Record<string, unknown>;
      delete body.request_id;
      assert.deepEqual([r.status, body], [c.status, c.want], c.query);
    }
    // cache_size 1: each switch of version loaded the next one and evicted the previous.
    const loads = log.lines().filter((l) => typeof l.msg === 'string' && (l.msg as string).startsWith('loading model'));
    const evictions = log.lines().filter((l) => typeof l.msg === 'string' && (l.msg as string).startsWith('evicted model'));
    assert.deepEqual(loads.map((l) => l.msg), ['loading model iris of version 2', 'loading model iris of version 1', 'loading model iris of version 2', 'loading model tree of version 1']);
    assert.equal(evictions.length, 3);
  });
});
