// Open Inference Protocol v2 through the daemon (in this process), its gateway and real replica
// processes: the iris-onnx example as deployed by users (its ONNXPredictor is skipped for v2) and a
// multi-model `models.dir` API, answers compared with onnxruntime's own.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { packProject } from '../../serving/daemon/project-bundle.js';
import type { RunningDaemon } from '../../serving/daemon/run-daemon.js';
import { irisModel, writeOnnxModel } from '../harness/model-builders.js';
import { removeDir, waitFor } from './e2e-harness.js';
import { startInProcessDaemon } from './in-process-daemon.js';

const example = (p: string): string => fileURLToPath(new URL(`../../examples/${p}`, import.meta.url));
const ROWS = [5.1, 3.5, 1.4, 0.2, 6.3, 3.3, 6.0, 2.5];

let dir: string;
let running: RunningDaemon;
let gateway: string;

async function live(api: string): Promise<void> {
  await waitFor(`${api} live`, 90_000, async () => {
    const a = await running.daemon.get(api);
    if (a.status === 'error') throw new Error(`${api} failed: ${a.message ?? ''}`);
    return a.status === 'live' && a.upToDate >= 1;
  });
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'myelin-e2e-v2-'));
  running = (await startInProcessDaemon({ dir })).running;
  gateway = running.gatewayUrl;
  await running.daemon.deploy(await packProject(example('iris-onnx'), 'myelin.yaml'), { force: true });
  const zoo = join(dir, 'zoo');
  await mkdir(join(zoo, 'models', 'flower', '1'), { recursive: true });
  await mkdir(join(zoo, 'models', 'flower', '2'), { recursive: true });
  await writeOnnxModel(join(zoo, 'models', 'flower', '1', 'iris.onnx'), irisModel());
  await writeOnnxModel(join(zoo, 'models', 'flower', '2', 'iris.onnx'), irisModel({ intercept: [0, 0, 1000] }));
  await writeFile(join(zoo, 'cortex.yaml'), '- name: zoo\n  kind: RealtimeAPI\n  predictor:\n    type: onnx\n    models:\n      dir: models/\n');
  await running.daemon.deploy(await packProject(zoo, 'cortex.yaml'), { force: true });
  await live('iris-classifier');
  await live('zoo');
});
after(async () => {
  await running?.stop();
  if (dir) await removeDir(dir);
});

async function v2(method: string, path: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${gateway}${path}`, { method, ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }) });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

describe('v2 through the daemon', () => {
  test('health, metadata and infer on the iris example, as onnxruntime answers', async () => {
    assert.deepEqual(await v2('GET', '/v2/health/ready'), { status: 200, body: { ready: true } });
    const meta = await v2('GET', '/v2/models/iris-classifier');
    assert.equal(meta.status, 200);
    assert.deepEqual(meta.body.inputs, [{ name: 'input', datatype: 'FP32', shape: [-1, 4] }]);
    assert.equal((await v2('GET', '/v2/models/iris-classifier/ready')).status, 200);

    const session = await ort.InferenceSession.create(example('iris-onnx/model/iris.onnx'));
    const want = await session.run({ input: new ort.Tensor('float32', Float32Array.from(ROWS), [2, 4]) });
    await session.release();
    const got = await v2('POST', '/v2/models/iris-classifier/infer', { inputs: [{ name: 'input', shape: [2, 4], datatype: 'FP32', data: ROWS }] });
    assert.equal(got.status, 200, JSON.stringify(got.body));
    const outputs = got.body.outputs as Array<{ name: string; data: number[] }>;
    assert.deepEqual(outputs.find((o) => o.name === 'label')!.data, Array.from(want.label.data as BigInt64Array, Number));
    const p = outputs.find((o) => o.name === 'probabilities')!.data;
    Array.from(want.probabilities.data as Float32Array).forEach((w, i) => assert.ok(Math.abs(p[i] - w) < 1e-6, `p[${i}]`));
    // The Cortex-style endpoint still runs the example's predictor.
    const cortex = await fetch(`${gateway}/iris-classifier`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"sepal_length":5.2,"sepal_width":3.6,"petal_length":1.4,"petal_width":0.3}' });
    assert.equal(((await cortex.json()) as { label: string }).label, 'setosa');
  });

  test('a models.dir API: each model by its name, versions by path, unknown ones 404', async () => {
    const infer = (path: string) => v2('POST', path, { inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: ROWS.slice(0, 4) }], outputs: [{ name: 'label' }] });
    const latest = await infer('/v2/models/flower/infer');
    assert.equal(latest.status, 200, JSON.stringify(latest.body));
    assert.deepEqual([latest.body.model_name, latest.body.model_version, (latest.body.outputs as Array<{ data: number[] }>)[0].data], ['flower', '2', [2]]);
    const v1 = await infer('/v2/models/flower/versions/1/infer');
    assert.deepEqual([v1.body.model_version, (v1.body.outputs as Array<{ data: number[] }>)[0].data], ['1', [0]]);
    const meta = await v2('GET', '/v2/models/flower');
    assert.deepEqual(meta.body.versions, ['1', '2']);
    const unknown = await infer('/v2/models/tulip/infer');
    assert.equal(unknown.status, 404);
    assert.match(String(unknown.body.error), /model "tulip" is not served by this API \(models: flower\)/);
  });
});
