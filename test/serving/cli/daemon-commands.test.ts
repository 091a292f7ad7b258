import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { ConfigError, EngineError } from '../../../core/errors.js';
import { deleteApi, refresh } from '../../../serving/cli/commands/delete.js';
import { deploy } from '../../../serving/cli/commands/deploy.js';
import { events } from '../../../serving/cli/commands/events.js';
import { get } from '../../../serving/cli/commands/get.js';
import { logs } from '../../../serving/cli/commands/logs.js';
import { predict } from '../../../serving/cli/commands/predict.js';
import { ExitError } from '../../../serving/cli/exit-error.js';
import { removeDir, startE2eDaemon, waitFor, writeSlowProject, type E2eDaemon } from '../../e2e/e2e-harness.js';

// The CLI's daemon commands against a real daemon (replicas are real child processes).
class Capture extends Writable {
  text = '';
  override _write(chunk: Buffer, _enc: string, cb: () => void): void {
    this.text += chunk.toString();
    cb();
  }
}

let d: E2eDaemon;
let project: string;
let url: string;
before(async () => {
  d = await startE2eDaemon();
  url = d.running.controlUrl;
  // As a user's shell would: the CLI finds the daemon's token in its state folder.
  process.env.MYELIN_STATE_DIR = d.stateDir;
  project = join(d.dir, 'cli-project');
  await mkdir(project, { recursive: true });
  await writeSlowProject(
    project,
    `- name: cli-api
  kind: RealtimeAPI
  predictor:
    type: typescript
    path: predictor.ts
    image: quay.io/cortexlabs/python-predictor-cpu:0.25.0
  monitoring:
    model_type: classification
    key: version
  compute:
    cpu: 100m
`,
  );
});
after(async () => {
  await d?.close();
  if (d) await removeDir(d.dir);
});

test('another local user cannot drive the daemon: loopback callers need the token, which only the owner can read', async () => {
  // No token: refused, on loopback too, for reads and changes alike.
  const read = await fetch(`${url}/v1/apis`);
  assert.equal(read.status, 401);
  assert.equal(((await read.json()) as { code: string }).code, 'ENG_UNAUTHORIZED');
  const change = await fetch(`${url}/v1/shutdown`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
  assert.equal(change.status, 401);
  assert.equal((await fetch(`${url}/metrics`)).status, 401);
  // The token lives in the state folder, which is the owner's alone.
  const { stat } = await import('node:fs/promises');
  assert.equal((await stat(d.stateDir)).mode & 0o777, 0o700);
  assert.equal((await stat(join(d.stateDir, 'token'))).mode & 0o777, 0o600);
  assert.equal((await readFile(join(d.stateDir, 'token'), 'utf8')).trim(), d.running.token);
  assert.equal((await fetch(`${url}/v1/apis`, { headers: { authorization: `Bearer ${d.running.token}` } })).status, 200);
});

test('deploy validates, uploads, waits until live; get, predict, events, logs, refresh and delete work against it', async () => {
  const out = new Capture();
  const err = new Capture();
  const r = await deploy({ url, cwd: project, force: false, wait: true, output: 'table', stdout: out, stderr: err });
  assert.equal(r.results[0].action, 'created');
  assert.match(out.text, /creating cli-api \(RealtimeAPI\)/);
  assert.match(out.text, /cli-api is live at http:\/\/127\.0\.0\.1:\d+\/cli-api/);
  assert.match(err.text, /myelin.yaml:\d+:\d+: cli-api: predictor.image: warning: /, 'fields without effect are warned about');

  const again = new Capture();
  const r2 = await deploy({ url, cwd: project, force: false, wait: false, output: 'table', stdout: again, stderr: new Capture() });
  assert.equal(r2.results[0].action, 'up to date');

  const body = new Capture();
  await predict({ url, api: 'cli-api', file: '-', stdin: Readable.from(['{"x": 1}']), stdout: body });
  assert.match(body.text, /"version":"v1"/);
  await assert.rejects(predict({ url, api: 'cli-api', file: '-', stdin: Readable.from(['{oops']), stdout: new Capture() }), (e: unknown) => e instanceof ExitError && /not valid JSON/.test(e.message));
  await assert.rejects(predict({ url, api: 'cli-api', file: '-', stdin: Readable.from(['"bad"']), stdout: new Capture() }), (e: unknown) => e instanceof ExitError && /HTTP 400/.test(e.message));

  await waitFor('the prediction is counted', 10_000, async () => {
    const t = new Capture();
    await get({ url, output: 'table', watch: false, stdout: t });
    return /cli-api\s+live\s+1\s+1\s+\S+\s+\S+ ms\s+1/.test(t.text) ? t.text : undefined;
  });
  // With direct connections (the default) the replica answered the request itself and reports it to
  // the gateway's counters within about a second.
  const prom = await waitFor('the gateway counted the prediction', 10_000, async () => {
    const text = await (await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${d.running.token}` } })).text();
    return /^myelin_gateway_requests_total\{api="cli-api",code="2xx"\} 1$/m.test(text) ? text : undefined;
  });
  assert.match(prom, /myelin_api_responses_total\{api="cli-api",code="2xx"\} 1/);
  assert.match(prom, /myelin_api_desired_replicas\{api="cli-api"\} 1/);
  // The gateway's series follow the daemon's on the same endpoint (runDaemon wires them in).
  assert.match(prom, /^myelin_gateway_requests_total\{api="cli-api",code="2xx"\} 1$/m);
  assert.match(prom, /^myelin_gateway_retries_total\{api="cli-api",reason="keepalive_reset"\} \d+$/m);
  assert.match(prom, /^myelin_gateway_ready_upstreams\{api="cli-api"\} 1$/m);
  const one = new Capture();
  await get({ url, api: 'cli-api', output: 'table', watch: false, stdout: one });
  assert.match(one.text, /class\s+count\nv1\s+1/);
  assert.match(one.text, /endpoint: http:\/\/127\.0\.0\.1:\d+\/cli-api/);
  assert.match(one.text, /autoscaler \(cortex\): /);
  const json = new Capture();
  await get({ url, api: 'cli-api', output: 'json', watch: false, stdout: json });
  assert.equal(JSON.parse(json.text).name, 'cli-api');

  const ev = new Capture();
  const n = await events({ url, api: 'cli-api', follow: false, since: '10m', output: 'table', stdout: ev });
  assert.ok(n > 0);
  assert.match(ev.text, /cli-api {2}replica\.ready {2}cli-api-/);
  assert.match(ev.text, /cli-api {2}api\.status {2}live/);

  // --follow replays the same events, then goes on until interrupted (the signal: Ctrl-C).
  const followed = new Capture();
  const stop = new AbortController();
  const following = events({ url, api: 'cli-api', follow: true, since: '10m', output: 'json', stdout: followed, signal: stop.signal });
  await waitFor('the followed replay', 10_000, () => followed.text.split('\n').filter(Boolean).length >= n);
  stop.abort();
  assert.ok((await following) >= n);
  assert.ok(followed.text.split('\n').filter(Boolean).every((l) => (JSON.parse(l) as { api: string }).api === 'cli-api'));

  const lines = new Capture();
  await logs({ url, api: 'cli-api', follow: false, stdout: lines });
  assert.match(lines.text, /\[cli-api-[0-9a-f]+-\d+\] /);

  const before = (await d.running.daemon.get('cli-api')).revision;
  const rf = await refresh({ url, api: 'cli-api', force: false, output: 'table', stdout: new Capture() });
  assert.notEqual(rf.revision, before);
  await waitFor('refreshed replica live', 60_000, async () => {
    const g = await d.running.daemon.get('cli-api');
    return g.status === 'live' && g.stale === 0 && g.replicas.every((x) => x.revision === rf.revision);
  });

  const del = new Capture();
  await deleteApi({ url, api: 'cli-api', output: 'table', stdout: del });
  assert.equal(del.text, 'deleting cli-api\n');
  await assert.rejects(get({ url, api: 'cli-api', output: 'table', watch: false, stdout: new Capture() }), /not deployed/);
});

test('an invalid file is never uploaded: every problem is reported with its position', async () => {
  const bad = await mkdtemp(join(tmpdir(), 'myelin-cli-bad-'));
  try {
    await writeFile(join(bad, 'cortex.yaml'), '- name: bad\n  kind: RealtimeAPI\n  predictor:\n    type: pytorch\n  autoscaling:\n    min_replicas: 5\n    max_replicas: 2\n');
    await assert.rejects(
      deploy({ url, cwd: bad, force: false, wait: false, output: 'table', stdout: new Capture(), stderr: new Capture() }),
      (e: unknown) => e instanceof ConfigError && e.problems.some((p) => p.file === 'cortex.yaml' && p.line === 4 && p.field === 'predictor.type'),
    );
    assert.deepEqual((await d.running.daemon.list()).map((a) => a.name), []);
    // Valid for the loader, but its requirements.txt cannot be installed: refused by the daemon before anything starts.
    await writeFile(join(bad, 'cortex.yaml'), '- name: py\n  kind: RealtimeAPI\n  predictor:\n    type: python\n    path: predictor.py\n');
    await writeFile(join(bad, 'predictor.py'), 'class PythonPredictor:\n    pass\n');
    await writeFile(join(bad, 'requirements.txt'), 'this-package-does-not-exist-myelin==99.0\n');
    await assert.rejects(
      deploy({ url, cwd: bad, force: false, wait: false, output: 'table', stdout: new Capture(), stderr: new Capture() }),
      (e: unknown) => e instanceof EngineError && e.code === 'ENG_REQUIREMENTS' && /^py: requirements\.txt could not be installed/.test(e.message),
    );
    assert.deepEqual((await d.running.daemon.list()).map((a) => a.name), []);
    await rm(join(bad, 'requirements.txt'));
    // A local_port that is taken (here: the control API's own port) rejects the deploy; nothing starts.
    const taken = new URL(url).port;
    await writeSlowProject(bad, `- name: porty\n  kind: RealtimeAPI\n  predictor:\n    type: typescript\n    path: predictor.ts\n  networking:\n    local_port: ${taken}\n`);
    await rm(join(bad, 'cortex.yaml'));
    await assert.rejects(
      deploy({ url, cwd: bad, force: false, wait: false, output: 'table', stdout: new Capture(), stderr: new Capture() }),
      (e: unknown) => e instanceof ConfigError && e.problems.some((p) => p.api === 'porty' && p.field === 'networking.local_port'),
    );
    assert.deepEqual((await d.running.daemon.list()).map((a) => a.name), []);
  } finally {
    await rm(bad, { recursive: true, force: true });
  }
});

test('a bundle the daemon cannot write answers 400 ENG_BAD_BUNDLE naming the entry, not 500', async () => {
  const token = await readFile(join(d.stateDir, 'token'), 'utf8').then((t) => t.trim(), () => undefined);
  const yaml = Buffer.from('- name: bundle-api\n  kind: RealtimeAPI\n  predictor:\n    type: typescript\n    path: predictor.ts\n').toString('base64');
  const x = Buffer.from('x').toString('base64');
  const long = 'n'.repeat(300);
  for (const [paths, want] of [
    [['predictor.ts', 'predictor.ts/inner.ts'], /a file and a folder with the same name: "predictor\.ts" \(a file\) and "predictor\.ts\/inner\.ts"/],
    [['predictor.ts', long], new RegExp(`name too long in project: "${long}"`)],
  ] as const) {
    const res = await fetch(`${url}/v1/deploy`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify({ bundle: { configFile: 'myelin.yaml', files: [{ path: 'myelin.yaml', data: yaml }, ...paths.map((path) => ({ path, data: x }))] } }),
    });
    const body = (await res.json()) as { error: string; code: string };
    assert.equal(res.status, 400, JSON.stringify(body));
    assert.equal(body.code, 'ENG_BAD_BUNDLE');
    assert.match(body.error, want);
  }
  assert.deepEqual((await d.running.daemon.list()).map((a) => a.name), []);
});

test('without a daemon the commands say how to start one', async () => {
  const nowhere = 'http://127.0.0.1:9';
  const hint = (e: unknown): boolean => e instanceof ExitError && /cannot reach the myelin daemon at http:\/\/127\.0\.0\.1:9 .*myelin up/.test(e.message);
  await assert.rejects(get({ url: nowhere, output: 'table', watch: false, stdout: new Capture() }), hint);
  await assert.rejects(events({ url: nowhere, follow: true, output: 'table', stdout: new Capture() }), hint);
  await assert.rejects(events({ url: nowhere, follow: false, output: 'table', stdout: new Capture() }), hint);
  await assert.rejects(logs({ url: nowhere, api: 'x', follow: true, stdout: new Capture() }), hint);
  await assert.rejects(deleteApi({ url: nowhere, api: 'x', output: 'table', stdout: new Capture() }), hint);
  await assert.rejects(predict({ url: nowhere, api: 'x', file: '-', stdin: Readable.from(['{}']), stdout: new Capture() }), hint);
});

const exec = promisify(execFile);

/** A port the OS reports free right now (bound to port 0, then released). */
async function freePort(): Promise<number> {
  const { createServer } = await import('node:net');
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}
const BIN = fileURLToPath(new URL('../../../bin/myelin.mjs', import.meta.url));

test('`myelin deploy -o json` prints { errors } when the daemon refuses the deploy, and exits 1; `delete -f -c` is accepted (real CLI processes)', async () => {
  const bad = await mkdtemp(join(tmpdir(), 'myelin-cli-json-'));
  try {
    // Valid for the local check, refused by the daemon: the local_port is the control API's own port.
    await writeSlowProject(bad, `- name: porty\n  kind: RealtimeAPI\n  predictor:\n    type: typescript\n    path: predictor.ts\n  networking:\n    local_port: ${new URL(url).port}\n`);
    const r = await exec(process.execPath, [BIN, 'deploy', '-y', '-o', 'json', '--url', url, '--state-dir', d.stateDir], { cwd: bad, timeout: 60_000 }).then(
      () => assert.fail('deploy should fail'),
      (e: { code: number; stdout: string; stderr: string }) => e,
    );
    assert.equal(r.code, 1, r.stderr);
    const doc = JSON.parse(r.stdout) as { errors: { file: string; line: number; col: number; api: string; field: string; message: string }[] };
    assert.ok(doc.errors.some((e) => e.file === 'myelin.yaml' && e.api === 'porty' && e.field === 'networking.local_port' && typeof e.line === 'number' && typeof e.col === 'number' && e.message !== ''), r.stdout);
    assert.deepEqual((await d.running.daemon.list()).map((a) => a.name), []);

    const del = await exec(process.execPath, [BIN, 'delete', 'porty', '-f', '-c', '-o', 'json', '--url', url, '--state-dir', d.stateDir], { timeout: 60_000 }).then(
      () => assert.fail('porty is not deployed'),
      (e: { code: number; stdout: string; stderr: string }) => e,
    );
    assert.equal(del.code, 1);
    assert.match(del.stderr, /^note: --force has no effect: .*\nnote: --keep-cache has no effect: /);
    assert.deepEqual(JSON.parse(del.stdout), { errors: [{ message: 'api porty is not deployed', code: 'ENG_NOT_FOUND' }] });
  } finally {
    await rm(bad, { recursive: true, force: true });
  }
});

test('myelin up --detach starts a background daemon that myelin down stops (real processes)', async () => {
  const state = await mkdtemp(join(tmpdir(), 'myelin-detach-'));
  const port = await freePort();
  const gatewayPort = await freePort();
  try {
    const { stdout } = await exec(process.execPath, [BIN, 'up', '--detach', '--state-dir', state, '--port', String(port), '--gateway-port', String(gatewayPort)], { timeout: 90_000 });
    assert.match(stdout, /started in the background \(pid \d+\)/);
    const pid = Number((await readFile(join(state, 'daemon.pid'), 'utf8')).trim());
    const list = await exec(process.execPath, [BIN, 'get', '--url', `http://127.0.0.1:${port}`, '--state-dir', state, '-o', 'json'], { timeout: 60_000 });
    assert.deepEqual(JSON.parse(list.stdout), []);
    const down = await exec(process.execPath, [BIN, 'down', '--url', `http://127.0.0.1:${port}`, '--state-dir', state], { timeout: 90_000 });
    assert.match(down.stdout, /myelin daemon stopped/);
    assert.throws(() => process.kill(pid, 0), 'the daemon process is gone');
  } finally {
    await rm(state, { recursive: true, force: true });
  }
});
