import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { pino } from 'pino';
import { EngineError } from '../../../core/errors.js';
import { deploy } from '../../../serving/cli/commands/deploy.js';
import { deleteApi } from '../../../serving/cli/commands/delete.js';
import { packProject } from '../../../serving/daemon/project-bundle.js';
import { runDaemon, type RunningDaemon } from '../../../serving/daemon/run-daemon.js';
import { waitFor, writeSlowProject } from '../../e2e/e2e-harness.js';

// requirements.txt at deploy, through a real daemon (control API, CLI, real venv and pip, offline).
// The failing deploys fail before any replica starts, so they need no Python predictor bridge.
const PYTHON = '/usr/bin/python3';
const IMPOSSIBLE = 'this-package-does-not-exist-myelin==99.0';

class Capture extends Writable {
  text = '';
  override _write(chunk: Buffer, _enc: string, cb: () => void): void {
    this.text += chunk.toString();
    cb();
  }
}

let tmp: string;
let stateDir: string;
let running: RunningDaemon;
let url: string;

async function startDaemon(): Promise<RunningDaemon> {
  return runDaemon({
    stateDir,
    target: 'local',
    host: '127.0.0.1',
    port: 0,
    gatewayHost: '127.0.0.1',
    gatewayPort: 0,
    log: pino({ level: 'info' }, pino.destination({ dest: join(tmp, `daemon-${Date.now()}.log`), sync: true })),
    local: { backoffBaseMs: 200, backoffMaxMs: 2000, stopGracePeriodMs: 10_000, probeIntervalMs: 200 },
    python: PYTHON,
  });
}

/** A Cortex-style Python project: myelin.yaml, predictor.py, requirements.txt and any other files. */
async function pythonProject(name: string, api: string, files: Readonly<Record<string, string>>): Promise<string> {
  const dir = join(tmp, name);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'myelin.yaml'), `- name: ${api}\n  kind: RealtimeAPI\n  predictor:\n    type: python\n    path: predictor.py\n  compute:\n    cpu: 100m\n`);
  await writeFile(join(dir, 'predictor.py'), 'class PythonPredictor:\n    def __init__(self, config):\n        pass\n\n    def predict(self, payload):\n        return payload\n');
  for (const [f, text] of Object.entries(files)) await writeFile(join(dir, f), text);
  return dir;
}

function envFolders(): Promise<string[]> {
  return readdir(join(stateDir, 'python-envs')).catch(() => []);
}

before(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'myelin-pyreq-'));
  stateDir = join(tmp, 'state');
  running = await startDaemon();
  url = running.controlUrl;
  process.env.MYELIN_STATE_DIR = stateDir; // the CLI commands read the daemon's token there
});
after(async () => {
  await running?.stop();
  await rm(tmp, { recursive: true, force: true });
});

describe('requirements.txt at deploy (real daemon, venv and pip)', () => {
  test('an API that runs no Python: requirements.txt and dependencies.sh are left alone', async () => {
    const dir = join(tmp, 'js');
    await mkdir(dir, { recursive: true });
    await writeSlowProject(dir, '- name: req-api\n  kind: RealtimeAPI\n  predictor:\n    type: typescript\n    path: predictor.ts\n  compute:\n    cpu: 100m\n');
    await writeFile(join(dir, 'requirements.txt'), `${IMPOSSIBLE}\n`);
    await writeFile(join(dir, 'dependencies.sh'), 'apt-get install -y libgomp1\n');
    const out = new Capture();
    const err = new Capture();
    const r = await deploy({ url, cwd: dir, force: false, wait: true, output: 'table', stdout: out, stderr: err });
    assert.equal(r.results[0].action, 'created');
    assert.deepEqual(r.warnings, []);
    assert.equal(err.text, '');
    assert.doesNotMatch(out.text, /requirements/);
    assert.deepEqual(await envFolders(), [], 'nothing was installed');
    const res = await fetch((await running.daemon.get('req-api')).url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    assert.equal(res.status, 200);
  });

  test('a Python deploy whose requirements.txt fails is refused (400) before anything changes; the API serving keeps serving', async () => {
    const serving = await running.daemon.get('req-api');
    assert.equal(serving.status, 'live');
    const dir = await pythonProject('py-bad', 'req-api', { 'requirements.txt': `numpy\n${IMPOSSIBLE}\n`, 'dependencies.sh': 'echo hi\n' });
    const seen: string[] = [];
    const sub = running.daemon.events$({ api: 'req-api' }).subscribe((e) => seen.push(e.type));
    try {
      // The control API: 400 with the code and pip's lines.
      const res = await fetch(`${url}/v1/deploy`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${running.token}` },
        body: JSON.stringify({ bundle: await packProject(dir, 'myelin.yaml'), force: true }),
      });
      assert.equal(res.status, 400);
      const body = (await res.json()) as { error: string; code: string };
      assert.equal(body.code, 'ENG_REQUIREMENTS');
      assert.match(body.error, /^req-api: requirements\.txt could not be installed \(pip exited with code 1\); pip's last lines:\n/);
      assert.match(body.error, /No matching distribution found for this-package-does-not-exist-myelin==99\.0/);

      // The CLI: pip's lines while the request is pending, then the error.
      const out = new Capture();
      const err = await deploy({ url, cwd: dir, force: true, wait: true, output: 'table', stdout: out, stderr: new Capture() }).then(
        () => assert.fail('the deploy should be refused'),
        (e: unknown) => e,
      );
      assert.ok(err instanceof EngineError, String(err));
      assert.equal(err.code, 'ENG_REQUIREMENTS');
      assert.match(err.message, /requirements\.txt could not be installed/);
      assert.match(out.text, /^\[requirements\.txt\] creating a virtualenv with \/usr\/bin\/python3/m);
      assert.match(out.text, /^\[requirements\.txt\] ERROR: No matching distribution found for this-package-does-not-exist-myelin==99\.0$/m);
      assert.equal(out.text.match(/No matching distribution found/g)?.length, 1, 'each line printed once');
    } finally {
      sub.unsubscribe();
    }
    assert.ok(seen.includes('deploy.progress'));
    assert.deepEqual(
      seen.filter((t) => t.startsWith('replica.') || t === 'api.deployed'),
      [],
      'nothing was started, stopped or deployed',
    );
    assert.deepEqual(await envFolders(), [], 'the failed environment is removed');
    const now = await running.daemon.get('req-api');
    assert.equal(now.revision, serving.revision);
    assert.equal(now.status, 'live');
    assert.equal((now.spec as { predictor: { type: string } }).predictor.type, 'javascript');
    const res = await fetch(now.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    assert.equal(res.status, 200, 'still served by the JavaScript predictor');
  });

  test('a Python deploy whose requirements install: the API runs the virtualenv; conda and dependencies.sh are warned about; reused after', async () => {
    const dir = await pythonProject('py-ok', 'py-ok', { 'requirements.txt': 'numpy\n', 'dependencies.sh': '#!/bin/sh\n\necho hi\n', 'conda-packages.txt': 'numpy\n' });
    const out = new Capture();
    const err = new Capture();
    const r = await deploy({ url, cwd: dir, force: false, wait: false, output: 'table', stdout: out, stderr: err });
    assert.equal(r.results[0].action, 'created');
    assert.deepEqual(r.warnings.map((w) => [w.file, w.severity]), [['dependencies.sh', 'warning'], ['conda-packages.txt', 'warning']]);
    assert.match(err.text, /^dependencies\.sh:3:1: warning: not run by myelin .*requirements\.txt/m);
    assert.match(err.text, /^conda-packages\.txt:1:1: warning: not installed by myelin .*requirements\.txt/m);
    assert.match(out.text, /^\[requirements\.txt\] Requirement already satisfied: numpy/m);
    const [key] = await envFolders();
    assert.match(key ?? '', /^[0-9a-f]{32}$/);
    const venvPython = join(stateDir, 'python-envs', key, 'bin', 'python');
    const detail = await running.daemon.get('py-ok');
    assert.equal((detail.spec as { predictor: { env: Record<string, string> } }).predictor.env.MYELIN_PYTHON, venvPython);

    // Same project again: the same environment, so the same revision, nothing reinstalled.
    const again = new Capture();
    const r2 = await deploy({ url, cwd: dir, force: true, wait: false, output: 'table', stdout: again, stderr: new Capture() });
    assert.equal(r2.results[0].action, 'up to date');
    assert.match(again.text, /^\[requirements\.txt\] requirements\.txt is installed already/m);
    assert.doesNotMatch(again.text, /pip install/);

    // After a restart the restored API runs the same environment (found in the cache).
    await running.stop();
    running = await startDaemon();
    url = running.controlUrl;
    const restored = await waitFor('py-ok restored', 10_000, async () => (await running.daemon.list()).find((a) => a.name === 'py-ok'));
    assert.equal(restored.revision, detail.revision);
    const spec = (await running.daemon.get('py-ok')).spec as { predictor: { env: Record<string, string> } };
    assert.equal(spec.predictor.env.MYELIN_PYTHON, venvPython);
    assert.deepEqual(await envFolders(), [key]);
    await deleteApi({ url, api: 'py-ok', output: 'table', stdout: new Capture() });
    assert.ok(existsSync(venvPython), 'environments outlive the APIs that used them');
  });
});
