// Pods get their API's project from the daemon (issue 12): a real daemon in this process (runDaemon:
// control API on a real socket, local replicas), `myelin fetch-project` against it with the per-API
// token, and the ConfigMap path (`--from`).
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative, sep } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { pino } from 'pino';
import { fetchProject, type FetchProjectOptions } from '../../../serving/cli/commands/fetch-project.js';
import { ExitError } from '../../../serving/cli/exit-error.js';
import { BUNDLE_MEDIA_TYPE, bundleId, encodeBundle, packProject } from '../../../serving/daemon/project-bundle.js';
import { isProjectToken, projectToken } from '../../../serving/daemon/project-tokens.js';
import { runDaemon, type RunningDaemon } from '../../../serving/daemon/run-daemon.js';

describe('projectToken', () => {
  test('is the hex HMAC-SHA256 of project:<api>, one per API and per daemon secret', () => {
    const t = projectToken('secret-1', 'iris');
    assert.match(t, /^[0-9a-f]{64}$/);
    assert.equal(projectToken('secret-1', 'iris'), t, 'derived, so the same every time');
    assert.notEqual(projectToken('secret-1', 'iris2'), t);
    assert.notEqual(projectToken('secret-2', 'iris'), t);
    // Known answer: HMAC-SHA256(key "k", "project:a").
    assert.equal(projectToken('k', 'a'), 'ae4fdac996713cea7de6d9ab3e4f25824f788b99c1b9e379eac3c79fc71633c5');
  });

  test('isProjectToken accepts exactly the API token', () => {
    const t = projectToken('s', 'iris');
    assert.equal(isProjectToken('s', 'iris', t), true);
    assert.equal(isProjectToken('s', 'other', t), false, "another API's token");
    assert.equal(isProjectToken('s2', 'iris', t), false, 'another daemon');
    assert.equal(isProjectToken('s', 'iris', t.slice(1)), false, 'shorter');
    assert.equal(isProjectToken('s', 'iris', `${t}0`), false, 'longer');
    assert.equal(isProjectToken('s', 'iris', ''), false);
  });
});

const YAML = (version: string) =>
  ['alpha', 'beta']
    .map((name) => `- name: ${name}\n  kind: RealtimeAPI\n  predictor:\n    type: javascript\n    path: predictor.js\n    config:\n      version: ${version}\n  compute:\n    cpu: 100m\n`)
    .join('');

/** Every file under `dir` with its bytes and permission bits, by relative path. */
async function tree(dir: string): Promise<Map<string, { data: string; mode: number }>> {
  const out = new Map<string, { data: string; mode: number }>();
  async function walk(d: string): Promise<void> {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else out.set(relative(dir, p).split(sep).join('/'), { data: (await readFile(p)).toString('base64'), mode: (await stat(p)).mode & 0o777 });
    }
  }
  await walk(dir);
  return out;
}

function sink(): Writable & { text: () => string } {
  const chunks: string[] = [];
  const w = new Writable({
    write(c, _e, cb) {
      chunks.push(String(c));
      cb();
    },
  }) as Writable & { text: () => string };
  w.text = () => chunks.join('');
  return w;
}

/** A raw GET with any Host header (fetch does not let a caller set it). */
function rawGet(url: string, headers: Record<string, string>): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('fetch-project against a real daemon', () => {
  let dir: string;
  let project: string;
  let running: RunningDaemon;
  let id: string;
  let projectsDir: string;
  let n = 0;
  const dest = () => join(dir, `dest-${++n}`);
  const urlOf = (pid: string, api: string) => `${running.controlUrl}/v1/projects/${pid}?api=${api}`;
  const run = (o: Omit<FetchProjectOptions, 'stdout' | 'env'> & { env?: NodeJS.ProcessEnv }) => {
    const stdout = sink();
    return { stdout, done: fetchProject({ env: {}, retryForMs: 2_000, ...o, stdout }) };
  };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'myelin-fetch-project-'));
    project = join(dir, 'project');
    await mkdir(join(project, 'lib/deeper'), { recursive: true });
    await writeFile(join(project, 'myelin.yaml'), YAML('v1'));
    await writeFile(
      join(project, 'predictor.js'),
      "import { label } from './lib/label.js';\nexport class Predictor {\n  constructor({ config }) { this.version = String(config.version); }\n  predict() { return { label: label(), version: this.version }; }\n}\n",
    );
    await writeFile(join(project, 'lib/label.js'), "export function label() { return 'ok'; }\n");
    await writeFile(join(project, 'lib/deeper/blob.bin'), Buffer.from([0, 1, 2, 254, 255]));
    await writeFile(join(project, 'lib/run.sh'), '#!/bin/sh\necho hi\n');
    await chmod(join(project, 'lib/run.sh'), 0o755);
    const log = pino({ level: 'info' }, pino.destination({ dest: join(dir, 'daemon.log'), sync: true }));
    running = await runDaemon({
      stateDir: join(dir, 'state'),
      target: 'local',
      host: '127.0.0.1',
      port: 0,
      gatewayHost: '127.0.0.1',
      gatewayPort: 0,
      log,
      local: { backoffBaseMs: 200, backoffMaxMs: 2000, stopGracePeriodMs: 5_000, probeIntervalMs: 200 },
    });
    const bundle = await packProject(project, 'myelin.yaml');
    id = bundleId(bundle);
    await running.daemon.deploy(bundle, { force: true });
    projectsDir = join(dir, 'state', 'projects');
  });

  after(async () => {
    await running?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  test('the daemon stores the encoded bundle beside the project folder', async () => {
    const names = await readdir(projectsDir);
    assert.ok(names.includes(id), names.join(','));
    assert.ok(names.includes(`${id}.bundle`), names.join(','));
    assert.deepEqual(await readFile(join(projectsDir, `${id}.bundle`)), encodeBundle(await packProject(project, 'myelin.yaml')));
  });

  test('the per-API token fetches files identical to the project, modes included', async () => {
    const out = dest();
    const r = run({ url: urlOf(id, 'alpha'), token: projectToken(running.token, 'alpha'), dest: out });
    const fetched = await r.done;
    const expected = await tree(project);
    assert.deepEqual(await tree(out), expected);
    assert.equal(fetched.id, id);
    assert.equal(fetched.files, expected.size);
    const bytes = [...expected.values()].reduce((s, f) => s + Buffer.from(f.data, 'base64').length, 0);
    assert.equal(r.stdout.text(), `fetched project ${id}: ${expected.size} files, ${bytes} bytes into ${out}\n`);
  });

  test('URL and token default from MYELIN_PROJECT_URL / MYELIN_PROJECT_TOKEN; an existing empty folder is written into', async () => {
    const out = dest();
    await mkdir(out);
    const r = run({ dest: out, env: { MYELIN_PROJECT_URL: urlOf(id, 'beta'), MYELIN_PROJECT_TOKEN: projectToken(running.token, 'beta') } });
    await r.done;
    assert.deepEqual(await tree(out), await tree(project));
  });

  test('the route answers the bundle media type with the id as ETag, and 304 to If-None-Match', async () => {
    const res = await fetch(urlOf(id, 'alpha'), { headers: { authorization: `Bearer ${projectToken(running.token, 'alpha')}` } });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), BUNDLE_MEDIA_TYPE);
    assert.equal(res.headers.get('etag'), `"${id}"`);
    await res.arrayBuffer();
    const again = await fetch(urlOf(id, 'alpha'), { headers: { authorization: `Bearer ${running.token}`, 'if-none-match': `"${id}"` } });
    assert.equal(again.status, 304, 'the daemon token works too');
  });

  test('a wrong or missing token is 401 with the control API error shape', async () => {
    await assert.rejects(run({ url: urlOf(id, 'alpha'), token: 'nope', dest: dest() }).done, (err: ExitError) => {
      assert.equal(err.exitCode, 1);
      assert.match(err.message, /^error: .* answered HTTP 401: missing or wrong bearer token for the project of alpha/);
      assert.doesNotMatch(err.message, /\n/);
      return true;
    });
    const res = await fetch(urlOf(id, 'alpha'));
    assert.equal(res.status, 401);
    assert.equal(res.headers.get('www-authenticate'), 'Bearer');
    const body = (await res.json()) as { error: string; code: string };
    assert.equal(body.code, 'ENG_UNAUTHORIZED');
    assert.equal(typeof body.error, 'string');
  });

  test("another API's token is refused", async () => {
    await assert.rejects(run({ url: urlOf(id, 'alpha'), token: projectToken(running.token, 'beta'), dest: dest() }).done, /answered HTTP 401/);
    // A token of another daemon (secret) for the right API neither.
    await assert.rejects(run({ url: urlOf(id, 'alpha'), token: projectToken('other-secret', 'alpha'), dest: dest() }).done, /answered HTTP 401/);
  });

  test('an unknown id or an API not deployed is 404 naming it', async () => {
    const token = projectToken(running.token, 'alpha');
    await assert.rejects(run({ url: urlOf('0123456789abcdef', 'alpha'), token, dest: dest() }).done, (err: ExitError) => {
      assert.equal(err.exitCode, 1);
      assert.match(err.message, /answered HTTP 404: api alpha does not run project 0123456789abcdef/);
      return true;
    });
    await assert.rejects(run({ url: urlOf(id, 'gamma'), token: projectToken(running.token, 'gamma'), dest: dest() }).done, /answered HTTP 404: api gamma is not deployed/);
  });

  test('a foreign Host is served with a project token only', async () => {
    const url = urlOf(id, 'alpha');
    const withProjectToken = await rawGet(url, { host: 'myelin-daemon.default.svc:8889', authorization: `Bearer ${projectToken(running.token, 'alpha')}` });
    assert.equal(withProjectToken.status, 200);
    const withDaemonToken = await rawGet(url, { host: 'myelin-daemon.default.svc:8889', authorization: `Bearer ${running.token}` });
    assert.equal(withDaemonToken.status, 403, withDaemonToken.body);
    const wrong = await rawGet(url, { host: 'evil.example', authorization: 'Bearer nope' });
    assert.equal(wrong.status, 403);
    const otherRoute = await rawGet(`${running.controlUrl}/v1/apis`, { host: 'myelin-daemon.default.svc:8889', authorization: `Bearer ${projectToken(running.token, 'alpha')}` });
    assert.equal(otherRoute.status, 403, 'every other route keeps the loopback-only rule');
  });

  test('a project token opens no other route', async () => {
    const res = await fetch(`${running.controlUrl}/v1/apis`, { headers: { authorization: `Bearer ${projectToken(running.token, 'alpha')}` } });
    assert.equal(res.status, 401);
    await res.arrayBuffer();
  });

  test('--from a folder holding project.bundle (a mounted ConfigMap)', async () => {
    const cm = join(dir, 'configmap');
    await mkdir(cm);
    await writeFile(join(cm, 'project.bundle'), await readFile(join(projectsDir, `${id}.bundle`)));
    const out = dest();
    const r = run({ from: cm, dest: out });
    assert.equal((await r.done).id, id);
    assert.deepEqual(await tree(out), await tree(project));
  });

  test('a corrupt bundle fails with the BundleError message', async () => {
    const cm = join(dir, 'corrupt');
    await mkdir(cm);
    await writeFile(join(cm, 'project.bundle'), Buffer.from('this is not gzip'));
    const out = dest();
    await assert.rejects(run({ from: cm, dest: out }).done, (err: ExitError) => {
      assert.equal(err.exitCode, 1);
      assert.match(err.message, /^error: .*project\.bundle does not hold a usable project: not an encoded project bundle: /);
      return true;
    });
    // gzip of JSON that is not a bundle, and a bundle with a path escaping the folder.
    const { gzipSync } = await import('node:zlib');
    await writeFile(join(cm, 'project.bundle'), gzipSync(JSON.stringify({ configFile: 'myelin.yaml', files: [{ path: '../evil', data: '' }, { path: 'myelin.yaml', data: '' }] })));
    await assert.rejects(run({ from: cm, dest: dest() }).done, /unsafe file path in project: "\.\.\/evil"/);
  });

  test('a folder that is not empty is refused', async () => {
    const out = dest();
    await mkdir(out);
    await writeFile(join(out, 'other'), 'x');
    const cm = join(dir, 'configmap');
    await assert.rejects(run({ from: cm, dest: out }).done, /is not empty/);
  });

  test('connection failures are retried, then one clear line', async () => {
    const { createServer } = await import('node:net');
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const closedPort = (probe.address() as { port: number }).port;
    await new Promise<void>((r) => probe.close(() => r()));
    const started = Date.now();
    await assert.rejects(run({ url: `http://127.0.0.1:${closedPort}/v1/projects/x?api=a`, token: 't', dest: dest(), retryForMs: 800 }).done, (err: ExitError) => {
      assert.equal(err.exitCode, 1);
      assert.match(err.message, /^error: cannot fetch the project from .* \(gave up after 1 s\): ECONNREFUSED$/);
      return true;
    });
    assert.ok(Date.now() - started >= 700, 'retried for the whole window');
  });

  test('a daemon that is still starting is waited for', async () => {
    // A port nothing listens on yet; the daemon's control API comes up there a moment later.
    const { createServer } = await import('node:net');
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const port = (probe.address() as { port: number }).port;
    await new Promise<void>((r) => probe.close(() => r()));
    const { ControlApi } = await import('../../../serving/daemon/control-api.js');
    const late = new ControlApi({ host: '127.0.0.1', port, service: running.daemon, projects: running.daemon, log: pino({ level: 'silent' }), token: running.token });
    const out = dest();
    const r = run({ url: `http://127.0.0.1:${port}/v1/projects/${id}?api=alpha`, token: projectToken(running.token, 'alpha'), dest: out, retryForMs: 10_000 });
    await new Promise((res) => setTimeout(res, 700));
    await late.start();
    try {
      await r.done;
      assert.deepEqual(await tree(out), await tree(project));
    } finally {
      await late.close();
    }
  });

  test('a project stored before .bundle files is read from its folder, without __pycache__', async () => {
    await rm(join(projectsDir, `${id}.bundle`));
    await mkdir(join(projectsDir, id, 'lib', '__pycache__'), { recursive: true });
    await writeFile(join(projectsDir, id, 'lib', '__pycache__', 'x.cpython-312.pyc'), 'bytecode');
    const out = dest();
    const fetched = await run({ url: urlOf(id, 'alpha'), token: projectToken(running.token, 'alpha'), dest: out }).done;
    assert.equal(fetched.id, id);
    assert.deepEqual(await tree(out), await tree(project));
  });

  test('a new project replaces the old one: its folder and .bundle are collected, the old id is 404', async () => {
    await writeFile(join(project, 'myelin.yaml'), YAML('v2'));
    await writeFile(join(project, 'lib/label.js'), "export function label() { return 'v2'; }\n");
    const bundle = await packProject(project, 'myelin.yaml');
    const id2 = bundleId(bundle);
    assert.notEqual(id2, id);
    await running.daemon.deploy(bundle, { force: true });
    const names = await readdir(projectsDir);
    assert.ok(names.includes(id2) && names.includes(`${id2}.bundle`), names.join(','));
    assert.ok(!names.includes(id) && !names.includes(`${id}.bundle`), names.join(','));
    const token = projectToken(running.token, 'alpha');
    await assert.rejects(run({ url: urlOf(id, 'alpha'), token, dest: dest() }).done, new RegExp(`404: api alpha does not run project ${id} \\(it runs ${id2}\\)`));
    const out = dest();
    await run({ url: urlOf(id2, 'alpha'), token, dest: out }).done;
    assert.deepEqual(await tree(out), await tree(project));
  });
});

describe('fetch-project --python-env: requirements.txt installed in the pod (real venv and pip, offline)', () => {
  const python = process.env.MYELIN_PYTHON || '/usr/bin/python3';
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'myelin-fetch-pyenv-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** A ConfigMap folder holding the bundle of a Python project with these files. */
  async function configMapOf(name: string, files: Record<string, string>): Promise<string> {
    const project = join(dir, `${name}-project`);
    await mkdir(project, { recursive: true });
    await writeFile(join(project, 'myelin.yaml'), `- name: ${name}\n  kind: RealtimeAPI\n  predictor:\n    type: python\n    path: predictor.py\n`);
    await writeFile(join(project, 'predictor.py'), 'class PythonPredictor:\n    def __init__(self, config):\n        pass\n    def predict(self, payload):\n        return payload\n');
    for (const [f, text] of Object.entries(files)) await writeFile(join(project, f), text);
    const cm = join(dir, `${name}-cm`);
    await mkdir(cm);
    await writeFile(join(cm, 'project.bundle'), encodeBundle(await packProject(project, 'myelin.yaml')));
    return cm;
  }

  test('installs into <dir>/<key>, links <dir>/current, whose python runs in the virtualenv with the packages; a second pod reuses it', async () => {
    // numpy is in Debian's site-packages: pip is satisfied without a download.
    const cm = await configMapOf('py', { 'requirements.txt': 'numpy\n' });
    const envDir = join(dir, 'python-env');
    const out = sink();
    await fetchProject({ from: cm, dest: join(dir, 'dest-1'), pythonEnv: envDir, env: { MYELIN_PYTHON: python }, stdout: out });
    assert.match(out.text(), /^\[requirements\.txt\] creating a virtualenv with /m);
    assert.match(out.text(), /^\[requirements\.txt\] .*Requirement already satisfied: numpy/m);
    assert.match(out.text(), new RegExp(`^python: ${envDir}/current/bin/python \\(${envDir}/[0-9a-f]{32}\\)$`, 'm'));
    const { execFile } = await import('node:child_process');
    const { promisify } = await import('node:util');
    const r = await promisify(execFile)(join(envDir, 'current', 'bin', 'python'), ['-c', 'import sys, numpy; print(sys.prefix); print(sys.prefix != sys.base_prefix)']);
    const [prefix, inVenv] = r.stdout.trim().split('\n');
    assert.equal(inVenv, 'True', 'the interpreter runs in the virtualenv');
    assert.equal(prefix, join(envDir, 'current'));
    const again = sink();
    await fetchProject({ from: cm, dest: join(dir, 'dest-2'), pythonEnv: envDir, env: { MYELIN_PYTHON: python }, stdout: again });
    assert.match(again.text(), /requirements\.txt is installed already/);
  });

  test('a requirements.txt pip cannot install ends it with pip\'s last lines; a project without one is refused', async () => {
    const bad = await configMapOf('pybad', { 'requirements.txt': 'this-package-does-not-exist-myelin==99.0\n' });
    await assert.rejects(fetchProject({ from: bad, dest: join(dir, 'dest-bad'), pythonEnv: join(dir, 'env-bad'), env: { MYELIN_PYTHON: python }, stdout: sink() }), (err: ExitError) => {
      assert.equal(err.exitCode, 1);
      assert.match(err.message, /^error: requirements\.txt could not be installed \(pip exited with code 1\); pip's last lines:\n/);
      return true;
    });
    const none = await configMapOf('pynone', {});
    await assert.rejects(fetchProject({ from: none, dest: join(dir, 'dest-none'), pythonEnv: join(dir, 'env-none'), env: {}, stdout: sink() }), /--python-env .*: the project has no requirements\.txt to install/);
  });
});
