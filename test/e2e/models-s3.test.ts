import assert from 'node:assert/strict';
import { cp, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import type { EngineEvent } from '../../core/events/engine-event.js';
import { deploy } from '../../serving/cli/commands/deploy.js';
import { events as eventsCommand } from '../../serving/cli/commands/events.js';
import { packProject } from '../../serving/daemon/project-bundle.js';
import type { RunningDaemon } from '../../serving/daemon/run-daemon.js';
import { irisModel } from '../harness/model-builders.js';
import { S3RVER_CREDENTIALS, spawnS3Server, type S3TestServer } from '../harness/s3-server.js';
import { removeDir, waitFor } from './e2e-harness.js';
import { startInProcessDaemon } from './in-process-daemon.js';

// Cortex 0.25's test/onnx/iris-classifier project, its three files unchanged (test/fixtures/
// cortex-onnx-iris-s3/), with its model where Cortex had it: s3://cortex-examples/onnx/iris-classifier/,
// here on s3rver (a real S3-compatible server in a child process) reached through AWS_ENDPOINT_URL.
// Deployed through a real daemon (control API, CLI command, gateway) with real replica processes,
// the real Python bridge (ONNXPredictor in predictor.py) and onnxruntime.
const FIXTURE = fileURLToPath(new URL('../fixtures/cortex-onnx-iris-s3/', import.meta.url));
const BUCKET = 'cortex-examples';
const MODEL_KEY = 'onnx/iris-classifier/iris.onnx';
const MODEL_URL = `s3://${BUCKET}/onnx/iris-classifier/`;
process.env.MYELIN_PYTHON ??= '/usr/bin/python3';

class Capture extends Writable {
  text = '';
  override _write(chunk: Buffer, _enc: string, cb: () => void): void {
    this.text += chunk.toString();
    cb();
  }
}

/**
 * A loopback HTTP proxy in front of s3rver that counts object reads (GET without a listing query),
 * by path, so the test sees how many times the model was downloaded.
 */
async function countingProxy(target: string): Promise<{ url: string; gets: Map<string, number>; server: Server }> {
  const to = new URL(target);
  const gets = new Map<string, number>();
  const server = createServer((req, res) => {
    const u = new URL(req.url ?? '/', 'http://x');
    if (req.method === 'GET' && !u.searchParams.has('list-type') && !u.searchParams.has('prefix')) gets.set(u.pathname, (gets.get(u.pathname) ?? 0) + 1);
    const up = request({ host: to.hostname, port: to.port, method: req.method, path: req.url, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, gets, server };
}

let dir: string;
let s3: S3TestServer;
let proxy: Awaited<ReturnType<typeof countingProxy>>;
let running: RunningDaemon;
let stateDir: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'myelin-e2e-models-s3-'));
  s3 = await spawnS3Server({ buckets: [BUCKET] });
  await s3.put(BUCKET, MODEL_KEY, irisModel());
  proxy = await countingProxy(s3.endpoint);
  // The daemon's environment (and so its replicas'): the store's endpoint and credentials.
  process.env.AWS_ENDPOINT_URL = proxy.url;
  process.env.AWS_ACCESS_KEY_ID = S3RVER_CREDENTIALS.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = S3RVER_CREDENTIALS.secretAccessKey;
  process.env.AWS_REGION = 'us-east-1';
  stateDir = join(dir, 'state');
  running = (await startInProcessDaemon({ dir, stateDir })).running;
  process.env.MYELIN_STATE_DIR = stateDir; // the CLI commands read the daemon's token there
});
after(async () => {
  await running?.stop();
  await new Promise((r) => proxy?.server.close(r));
  await s3?.close();
  if (dir) await removeDir(dir);
});

/** A copy of the fixture in the test folder, with `cortex.yaml` replaced by `edit(original)` when given. */
async function projectCopy(name: string, edit?: (yaml: string) => string): Promise<string> {
  const project = join(dir, name);
  await cp(FIXTURE, project, { recursive: true });
  if (edit) await writeFile(join(project, 'cortex.yaml'), edit(await readFile(join(FIXTURE, 'cortex.yaml'), 'utf8')));
  return project;
}

async function predict(body: string): Promise<{ status: number; text: string }> {
  const res = await fetch(`${running.gatewayUrl}/iris-classifier`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
  return { status: res.status, text: await res.text() };
}

const modelGets = (): number => proxy.gets.get(`/${BUCKET}/${MODEL_KEY}`) ?? 0;

describe("Cortex's onnx iris-classifier with its model on S3 (s3rver), through the daemon", () => {
  let revision: string;

  test('myelin deploy prefetches the model (progress printed), the API answers the sample, a model.download event is emitted', async () => {
    const project = await projectCopy('iris');
    const out = new Capture();
    await deploy({ url: running.controlUrl, cwd: project, force: false, wait: true, timeoutMs: 120_000, output: 'table', stdout: out, stderr: new Capture() });
    assert.match(out.text, new RegExp(`^\\[models\\] ${MODEL_URL.replace(/[/.]/g, '\\$&')}: downloaded \\d+(\\.\\d)? (B|KiB) \\(`, 'm'), out.text);
    assert.match(out.text, /^iris-classifier is live at http:\/\/127\.0\.0\.1:\d+\/iris-classifier$/m);

    const got = await predict(await readFile(join(FIXTURE, 'sample.json'), 'utf8'));
    assert.deepEqual(got, { status: 200, text: 'setosa' });
    assert.equal((await predict(JSON.stringify({ sepal_length: 7.7, sepal_width: 3.0, petal_length: 6.1, petal_width: 2.3 }))).text, 'virginica');

    const seen = running.daemon.recentEvents({ api: 'iris-classifier', sinceMs: 0 });
    const downloads = seen.filter((e): e is Extract<EngineEvent, { type: 'model.download' }> => e.type === 'model.download');
    const size = irisModel().byteLength;
    assert.ok(downloads.length >= 1, 'a model.download event');
    assert.deepEqual(
      { url: downloads.at(-1)!.url, bytes: downloads.at(-1)!.bytes, total: downloads.at(-1)!.total, done: downloads.at(-1)!.done },
      { url: MODEL_URL, bytes: size, total: size, done: true },
    );
    // `myelin events` shows it readably.
    const listed = new Capture();
    await eventsCommand({ url: running.controlUrl, api: 'iris-classifier', follow: false, output: 'table', stdout: listed });
    assert.match(listed.text, /iris-classifier {2}model\.download {2}s3:\/\/cortex-examples\/onnx\/iris-classifier\/: downloaded /);

    assert.equal(modelGets(), 1, 'the model was read once');
    const cacheEntries = (await readdir(join(stateDir, 'models', 'v1'))).filter((n) => !n.startsWith('.'));
    assert.equal(cacheEntries.length, 1, 'one version in <state>/models');
    revision = (await running.daemon.get('iris-classifier')).revision;
  });

  test('two replicas share the one download (min_replicas 2): s3rver still saw one GET of the model', async () => {
    const project = await projectCopy('iris-two', (yaml) => `${yaml.trimEnd()}\n  autoscaling:\n    min_replicas: 2\n`);
    const out = new Capture();
    const r = await deploy({ url: running.controlUrl, cwd: project, force: true, wait: true, timeoutMs: 120_000, output: 'table', stdout: out, stderr: new Capture() });
    assert.equal(r.results[0].action, 'reconfigured');
    assert.match(out.text, /^\[models\] s3:\/\/cortex-examples\/onnx\/iris-classifier\/: in the machine's model cache already/m);
    const detail = await waitFor('two ready replicas', 60_000, async () => {
      const d = await running.daemon.get('iris-classifier');
      if (d.status === 'error') throw new Error(`iris-classifier failed: ${d.message ?? ''}`);
      return d.replicas.filter((x) => x.state === 'ready').length === 2 ? d : undefined;
    });
    assert.equal(new Set(detail.replicas.map((x) => x.pid)).size, 2, 'two processes');
    const answers = await Promise.all(Array.from({ length: 8 }, async () => (await predict(await readFile(join(FIXTURE, 'sample.json'), 'utf8'))).text));
    assert.deepEqual(answers, Array(8).fill('setosa'));
    assert.equal(modelGets(), 1, 'no replica downloaded it again');
    revision = detail.revision;
  });

  test('a project whose model key does not exist is refused (400 naming the URL); the API serving keeps answering', async () => {
    const project = await projectCopy('iris-missing', (yaml) => yaml.replace(MODEL_URL, `s3://${BUCKET}/onnx/no-such-model/`));
    const since = Date.now();
    const res = await fetch(`${running.controlUrl}/v1/deploy`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${running.token}` },
      body: JSON.stringify({ bundle: await packProject(project, 'cortex.yaml'), force: true }),
    });
    assert.equal(res.status, 400);
    const body = (await res.json()) as { error: string; code: string; problems: Array<{ file: string; line: number; api: string; field: string; message: string }> };
    assert.equal(body.code, 'ENG_CONFIG_INVALID');
    assert.deepEqual(
      body.problems.map((p) => [p.file, p.line, p.api, p.field, p.message]),
      [['cortex.yaml', 7, 'iris-classifier', 'predictor.models.path', 's3://cortex-examples/onnx/no-such-model/: the model was not found (nothing is stored at that path)']],
    );
    assert.equal(body.error, `cortex.yaml:7:6: iris-classifier: predictor.models.path: ${body.problems[0].message}`);

    const after = running.daemon.recentEvents({ api: 'iris-classifier', sinceMs: since });
    assert.deepEqual(after.filter((e) => e.type.startsWith('replica.') || e.type === 'api.deployed').map((e) => e.type), [], 'nothing started, stopped or deployed');
    const now = await running.daemon.get('iris-classifier');
    assert.equal(now.revision, revision);
    assert.equal(now.status, 'live');
    assert.deepEqual(await predict(await readFile(join(FIXTURE, 'sample.json'), 'utf8')), { status: 200, text: 'setosa' });
  });

  test("a replica that has to download by itself reports it: its model.download event reaches the daemon's events, attributed to it", async () => {
    // The cache emptied by hand; a refresh starts new replicas without a deploy (nothing prefetches).
    await rm(join(stateDir, 'models'), { recursive: true, force: true });
    const since = Date.now();
    await running.daemon.refresh('iris-classifier', { force: true });
    const done = await waitFor("a replica's model.download event", 60_000, () =>
      running.daemon
        .recentEvents({ api: 'iris-classifier', sinceMs: since })
        .find((e): e is Extract<EngineEvent, { type: 'model.download' }> => e.type === 'model.download' && e.done && e.replica !== undefined),
    );
    const replicaIds = new Set((await running.daemon.get('iris-classifier')).replicas.map((r) => r.id));
    assert.ok(replicaIds.has(done.replica!), `attributed to a replica of the API (got ${done.replica}, replicas ${[...replicaIds].join(', ')})`);
    assert.deepEqual({ url: done.url, total: done.total }, { url: MODEL_URL, total: irisModel().byteLength });
    await waitFor('the refreshed replicas serving', 60_000, async () => {
      const d = await running.daemon.get('iris-classifier');
      return d.status === 'live' && d.stale === 0 && d.upToDate === 2;
    });
    assert.deepEqual(await predict(await readFile(join(FIXTURE, 'sample.json'), 'utf8')), { status: 200, text: 'setosa' });
    assert.equal(modelGets(), 2, 'downloaded once more, by one replica for both');
  });
});
