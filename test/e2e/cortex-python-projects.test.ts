import assert from 'node:assert/strict';
import { cp, mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { pino } from 'pino';
import { packProject } from '../../serving/daemon/project-bundle.js';
import { runDaemon, type RunningDaemon } from '../../serving/daemon/run-daemon.js';
import { irisModel } from '../harness/model-builders.js';
import { removeDir, waitFor } from './e2e-harness.js';

// Cortex projects with Python predictors, deployed through the daemon and answered through its
// gateway: real replicas (child processes), real Python workers, real onnxruntime.
const examples = fileURLToPath(new URL('../../examples/', import.meta.url));
process.env.MYELIN_PYTHON ??= '/usr/bin/python3';

let dir: string;
let running: RunningDaemon;
let gateway: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'myelin-e2e-python-'));
  const log = pino({ level: 'info' }, pino.destination({ dest: join(dir, 'daemon.log'), sync: true }));
  running = await runDaemon({
    stateDir: join(dir, 'state'),
    target: 'local',
    host: '127.0.0.1',
    port: 0,
    gatewayHost: '127.0.0.1',
    gatewayPort: 0,
    log,
    local: { backoffBaseMs: 200, backoffMaxMs: 1000, stopGracePeriodMs: 5000, probeIntervalMs: 200 },
  });
  gateway = running.gatewayUrl;
});
after(async () => {
  await running?.stop();
  if (dir) await removeDir(dir);
});

/** Copies an example project into the test folder (so nothing is written into the repository) and deploys it. */
async function deployExample(name: string, configFile: string): Promise<string> {
  const project = join(dir, name);
  await cp(join(examples, name), project, { recursive: true });
  await running.daemon.deploy(await packProject(project, configFile), { force: true });
  return project;
}

async function waitLive(api: string, ms = 60_000): Promise<void> {
  await waitFor(`${api} live`, ms, async () => {
    const a = await running.daemon.get(api);
    if (a.status === 'error') throw new Error(`${api} failed: ${a.message ?? ''}`);
    return a.status === 'live' && a.upToDate >= 1;
  });
}

async function post(endpoint: string, body: string, contentType = 'application/json'): Promise<{ status: number; type: string; text: string }> {
  const res = await fetch(`${gateway}${endpoint}`, { method: 'POST', headers: { 'content-type': contentType }, body });
  return { status: res.status, type: res.headers.get('content-type') ?? '', text: await res.text() };
}

const sample = (project: string) => readFile(join(examples, project, 'sample.json'), 'utf8');

describe('Cortex projects with Python predictors, through myelin deploy and the gateway', () => {
  test('the committed iris.onnx copies are what examples/iris-onnx/build-model.ts writes', async () => {
    for (const project of ['cortex-onnx-iris', 'legacy-onnx-python']) {
      assert.deepEqual(new Uint8Array(await readFile(join(examples, project, 'model/iris.onnx'))), irisModel(), project);
    }
  });

  test("Cortex 0.25's onnx iris-classifier (ONNXPredictor in predictor.py, models.path): setosa as text", async () => {
    await deployExample('cortex-onnx-iris', 'cortex.yaml');
    await waitLive('iris-classifier');
    const got = await post('/iris-classifier', await sample('cortex-onnx-iris'));
    assert.deepEqual({ status: got.status, text: got.text }, { status: 200, text: 'setosa' });
    assert.match(got.type, /^text\/plain/);
    const virginica = await post('/iris-classifier', JSON.stringify({ sepal_length: 7.7, sepal_width: 3.0, petal_length: 6.1, petal_width: 2.3 }));
    assert.equal(virginica.text, 'virginica');
    // A payload without the field: the user's KeyError is a 500 with a generic body, the replica keeps serving.
    const bad = await post('/iris-classifier', '{"sepal_length": 1}');
    assert.equal(bad.status, 500);
    assert.equal((JSON.parse(bad.text) as { error: string }).error, 'internal server error');
    assert.equal((await post('/iris-classifier', await sample('cortex-onnx-iris'))).text, 'setosa');
  });

  test('a PythonPredictor with scikit-learn and requirements.txt (installed offline into a virtualenv)', async () => {
    await deployExample('iris-sklearn', 'myelin.yaml');
    await waitLive('iris-sklearn', 120_000);
    const got = await post('/iris-sklearn', await sample('iris-sklearn'));
    assert.deepEqual({ status: got.status, text: got.text }, { status: 200, text: 'setosa' });
    // monitoring (classification) counts the label the bridge extracted.
    await waitFor('class counts in the API summary', 20_000, async () => {
      const a = (await running.daemon.get('iris-sklearn')) as unknown as { monitoring?: { classes?: Record<string, number> } };
      return (a.monitoring?.classes?.setosa ?? 0) >= 1;
    });
  });

  test('a legacy kind: api project with a Python handler.py', async () => {
    await deployExample('legacy-onnx-python', 'cortex.yaml');
    await waitLive('iris-handler');
    const got = await post('/iris-handler', await sample('legacy-onnx-python'));
    assert.equal(got.status, 200);
    const body = JSON.parse(got.text) as { class_label: string; class_index: number; probabilities: number[] };
    assert.equal(body.class_label, 'iris-setosa');
    assert.equal(body.class_index, 0);
    assert.equal(body.probabilities.length, 3);
  });

  test('processes_per_replica 2 × threads_per_process 2 answers four slow requests at once', async () => {
    const project = join(dir, 'overlap');
    await mkdir(project, { recursive: true });
    await writeFile(
      join(project, 'cortex.yaml'),
      `- name: overlap
  kind: RealtimeAPI
  predictor:
    type: python
    path: predictor.py
    processes_per_replica: 2
    threads_per_process: 2
    config:
      folder: ${JSON.stringify(join(project, 'inside'))}
`,
    );
    // Each predict marks itself inside, then waits until four are inside (or 20 s pass): four answers
    // that each saw four inside prove the overlap without any timing threshold.
    await writeFile(
      join(project, 'predictor.py'),
      `import os, time, uuid

class PythonPredictor:
    def __init__(self, config):
        self.folder = config["folder"]
        os.makedirs(self.folder, exist_ok=True)

    def predict(self, payload):
        mark = os.path.join(self.folder, uuid.uuid4().hex)
        open(mark, "w").close()
        deadline = time.time() + 20
        while len(os.listdir(self.folder)) < 4 and time.time() < deadline:
            time.sleep(0.01)
        seen = len(os.listdir(self.folder))
        return {"pid": os.getpid(), "seen": seen}
`,
    );
    await running.daemon.deploy(await packProject(project, 'cortex.yaml'), { force: true });
    await waitLive('overlap');
    const answers = await Promise.all([1, 2, 3, 4].map(() => post('/overlap', '{}')));
    const bodies = answers.map((a) => JSON.parse(a.text) as { pid: number; seen: number });
    assert.deepEqual(answers.map((a) => a.status), [200, 200, 200, 200]);
    assert.ok(bodies.every((b) => b.seen >= 4), `each request saw the others inside: ${JSON.stringify(bodies)}`);
    assert.equal(new Set(bodies.map((b) => b.pid)).size, 2, 'two Python processes served them');
  });

  test('a predictor that cannot start: the deploy ends in error with the Python traceback in the status message', async () => {
    const project = join(dir, 'broken');
    await mkdir(project, { recursive: true });
    await writeFile(join(project, 'cortex.yaml'), '- name: broken\n  kind: RealtimeAPI\n  predictor:\n    type: python\n    path: predictor.py\n');
    await writeFile(join(project, 'predictor.py'), 'import this_module_does_not_exist_myelin\n\nclass PythonPredictor:\n    def __init__(self, config):\n        pass\n\n    def predict(self, payload):\n        return payload\n');
    await running.daemon.deploy(await packProject(project, 'cortex.yaml'), { force: true });
    const a = await waitFor('broken in error', 60_000, async () => {
      const s = await running.daemon.get('broken');
      return s.status === 'error' ? s : undefined;
    });
    assert.match(a.message ?? '', /ModuleNotFoundError: No module named 'this_module_does_not_exist_myelin'/);
    // The other APIs kept serving.
    assert.equal((await post('/iris-classifier', await sample('cortex-onnx-iris'))).text, 'setosa');
  });
});
