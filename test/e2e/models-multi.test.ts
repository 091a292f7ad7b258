import assert from 'node:assert/strict';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { DeleteObjectCommand } from '@aws-sdk/client-s3';
import { packProject } from '../../serving/daemon/project-bundle.js';
import type { RunningDaemon } from '../../serving/daemon/run-daemon.js';
import { irisModel } from '../harness/model-builders.js';
import { S3RVER_CREDENTIALS, startS3Server, type S3TestServer } from '../harness/s3-server.js';
import { removeDir, waitFor } from './e2e-harness.js';
import { startInProcessDaemon } from './in-process-daemon.js';

// A multi-model ONNX API whose models live in S3 (s3rver reached through AWS_ENDPOINT_URL), with
// numbered versions, a memory cache smaller than its model set, and a version added and one removed
// while it serves: through the daemon, its real replicas and its gateway.
const SETOSA = [[5.1, 3.5, 1.4, 0.2]];
/** Intercepts that make every sample one class: the label tells which version answered. */
const ALWAYS = { setosa: [1000, 0, 0], versicolor: [0, 1000, 0], virginica: [0, 0, 1000] } as const;

let dir: string;
let s3: S3TestServer;
let running: RunningDaemon;
let gateway: string;
const saved: Record<string, string | undefined> = {};

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'myelin-e2e-models-'));
  s3 = await startS3Server({ buckets: ['models'] });
  await s3.put('models', 'zoo/iris/1/iris.onnx', irisModel({ intercept: ALWAYS.versicolor }));
  await s3.put('models', 'zoo/iris/2/iris.onnx', irisModel({ intercept: ALWAYS.virginica }));
  await s3.put('models', 'zoo/plain/model.onnx', irisModel());
  await s3.put('models', 'zoo/fixed.onnx', irisModel({ intercept: ALWAYS.setosa }));
  // Replicas inherit the daemon's environment, as they would from `myelin up`.
  // A live-reload poll of 300 ms instead of 10 s keeps the test short.
  const env = { MYELIN_MODEL_POLL_MS: '300', AWS_ENDPOINT_URL: s3.endpoint, AWS_ACCESS_KEY_ID: S3RVER_CREDENTIALS.accessKeyId, AWS_SECRET_ACCESS_KEY: S3RVER_CREDENTIALS.secretAccessKey, AWS_REGION: 'us-east-1' };
  for (const [k, v] of Object.entries(env)) {
    saved[k] = process.env[k];
    process.env[k] = v;
  }
  running = (await startInProcessDaemon({ dir })).running;
  gateway = running.gatewayUrl;
});
after(async () => {
  await running?.stop();
  await s3?.close();
  for (const [k, v] of Object.entries(saved)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  if (dir) await removeDir(dir);
});

async function predict(query: string): Promise<{ status: number; body: { label?: number[]; error?: string } }> {
  const res = await fetch(`${gateway}/zoo?${query}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(SETOSA) });
  return { status: res.status, body: (await res.json()) as { label?: number[]; error?: string } };
}

interface Summary {
  models: Record<string, { versions: string[]; timestamps: number[]; status: Record<string, string> }>;
}

describe('multi-model API with models in S3', () => {
  test('versions, a cache smaller than the model set, and live reload through the gateway', async () => {
    const project = join(dir, 'zoo');
    await mkdir(project, { recursive: true });
    await writeFile(
      join(project, 'cortex.yaml'),
      `- name: zoo
  kind: RealtimeAPI
  predictor:
    type: onnx
    models:
      dir: s3://models/zoo/
      cache_size: 2
      disk_cache_size: 3
`,
    );
    await running.daemon.deploy(await packProject(project, 'cortex.yaml'), { force: true });
    await waitFor('zoo live', 60_000, async () => {
      const a = await running.daemon.get('zoo');
      if (a.status === 'error') throw new Error(`zoo failed: ${a.message ?? ''}`);
      return a.status === 'live' && a.upToDate >= 1;
    });

    const summary = async (): Promise<Summary> => (await (await fetch(`${gateway}/zoo`)).json()) as Summary;
    const first = await summary();
    assert.deepEqual(Object.keys(first.models).sort(), ['fixed', 'iris', 'plain']);
    assert.deepEqual(first.models.iris.versions, ['1', '2']);
    // Model caching: nothing is loaded before a request needs it.
    assert.deepEqual(first.models.iris.status, { 1: 'not loaded', 2: 'not loaded' });

    assert.deepEqual((await predict('model=iris')).body.label, [2]);
    assert.deepEqual((await predict('model=iris&version=1')).body.label, [1]);
    assert.deepEqual((await predict('model=plain')).body.label, [0]);
    assert.deepEqual((await predict('model=fixed')).body.label, [0]);
    // Four versions asked for, two fit in memory: the least recently used left.
    const after4 = await summary();
    const loaded = Object.values(after4.models).flatMap((m) => Object.values(m.status)).filter((s) => s === 'loaded');
    assert.equal(loaded.length, 2);
    assert.equal(after4.models.iris.status['1'], 'not loaded');
    // And comes back on request.
    assert.deepEqual((await predict('model=iris&version=1')).body.label, [1]);

    const missing = await predict('model=nope');
    assert.equal(missing.status, 404);
    assert.match(missing.body.error ?? '', /models: fixed, iris, plain/);
    const noName = await predict('');
    assert.equal(noName.status, 400);
    assert.match(noName.body.error ?? '', /model_name was not specified/);

    // A version added while serving becomes "latest"; a removed one answers 404.
    await s3.put('models', 'zoo/iris/3/iris.onnx', irisModel({ intercept: ALWAYS.setosa }));
    await s3.client.send(new DeleteObjectCommand({ Bucket: 'models', Key: 'zoo/iris/1/iris.onnx' }));
    await waitFor('version 3 listed', 30_000, async () => {
      const v = (await summary()).models.iris.versions;
      return v.join() === '2,3';
    });
    assert.deepEqual((await predict('model=iris')).body.label, [0]);
    const removed = await predict('model=iris&version=1');
    assert.equal(removed.status, 404);
    assert.match(removed.body.error ?? '', /versions: 2, 3/);

    await running.daemon.delete('zoo');
  });
});
