import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { pino } from 'pino';
import { PYTHON_ENV_MARKER, PythonEnvCache, RequirementsError, pythonEnvKey } from '../../../serving/daemon/python-env-cache.js';

// The requirements.txt virtualenv cache against Debian's real interpreter (python3-numpy installed
// there) and the real pip, offline: numpy is satisfied by the system site-packages.
const PYTHON = '/usr/bin/python3';
const IMPOSSIBLE = 'this-package-does-not-exist-myelin==99.0';
const run = promisify(execFile);

let tmp: string;
let envsDir: string;
let project: string;
before(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'myelin-pyenv-'));
  envsDir = join(tmp, 'state', 'python-envs');
  project = join(tmp, 'project');
  await mkdir(project, { recursive: true });
});
after(async () => {
  await rm(tmp, { recursive: true, force: true });
});

function cache(python = PYTHON): PythonEnvCache {
  return new PythonEnvCache({ dir: envsDir, python, log: pino({ level: 'silent' }) });
}

describe('PythonEnvCache (real venv and pip, offline)', () => {
  test('numpy from the system site-packages: installed once, imported by the venv python, reused after', async () => {
    const requirementsFile = join(project, 'requirements.txt');
    await writeFile(requirementsFile, 'numpy\n');
    const key = pythonEnvKey(PYTHON, await readFile(requirementsFile));
    // Left behind by a daemon that died mid-install (its pid is past any pid_max): swept.
    const orphan = join(envsDir, `${key}.tmp-999999999-0abc`);
    await mkdir(orphan, { recursive: true });
    // A folder under the final name without the marker is never used: rebuilt.
    await mkdir(join(envsDir, key), { recursive: true });
    await writeFile(join(envsDir, key, 'junk'), 'not an environment');

    const lines: string[] = [];
    const envs = cache();
    const env = await envs.ensure({ requirementsFile, cwd: project, onLine: (l) => lines.push(l) });
    assert.equal(env.reused, false);
    assert.equal(env.key, key);
    assert.equal(env.dir, join(envsDir, key));
    assert.equal(env.python, join(envsDir, key, 'bin', 'python'));
    assert.ok(lines.some((l) => /Requirement already satisfied: numpy/.test(l)), lines.join('\n'));
    assert.ok(existsSync(join(env.dir, PYTHON_ENV_MARKER)));
    assert.equal(existsSync(join(env.dir, 'junk')), false, 'the unmarked folder was replaced');
    assert.deepEqual(await readdir(envsDir), [key], 'no temporary folder is left, the orphan is swept');

    // The environment works where it ended up (it was built under a temporary name).
    const { stdout } = await run(env.python, ['-c', 'import sys, numpy; print(sys.prefix); print(numpy.__name__)'], { cwd: project });
    assert.deepEqual(stdout.trim().split('\n'), [env.dir, 'numpy']);
    const pip = await readFile(join(env.dir, 'bin', 'pip'), 'utf8');
    assert.ok(pip.startsWith(`#!${env.dir}/bin/python`), pip.split('\n')[0]);

    const markerBefore = (await stat(join(env.dir, PYTHON_ENV_MARKER))).mtimeMs;
    const again: string[] = [];
    // Another cache object (a daemon restart) finds it too.
    const second = await cache().ensure({ requirementsFile, cwd: project, onLine: (l) => again.push(l) });
    assert.equal(second.reused, true);
    assert.equal(second.dir, env.dir);
    assert.equal((await stat(join(env.dir, PYTHON_ENV_MARKER))).mtimeMs, markerBefore, 'not reinstalled');
    assert.ok(!again.some((l) => /pip install/.test(l)), again.join('\n'));
  });

  test('an impossible package: RequirementsError with pip\'s last lines, no folder left; concurrent calls share the one install', async () => {
    const dir = join(tmp, 'impossible');
    await mkdir(dir, { recursive: true });
    const requirementsFile = join(dir, 'requirements.txt');
    await writeFile(requirementsFile, `${IMPOSSIBLE}\n`);
    const before = new Set(await readdir(envsDir).catch(() => [] as string[]));
    const envs = cache();
    const firstLines: string[] = [];
    const secondLines: string[] = [];
    const results = await Promise.allSettled([
      envs.ensure({ requirementsFile, cwd: dir, onLine: (l) => firstLines.push(l) }),
      envs.ensure({ requirementsFile, cwd: dir, onLine: (l) => secondLines.push(l) }),
    ]);
    for (const r of results) {
      assert.equal(r.status, 'rejected');
      const err = (r as PromiseRejectedResult).reason as Error;
      assert.ok(err instanceof RequirementsError, String(err));
      assert.equal((err as RequirementsError).code, 'ENG_REQUIREMENTS');
      assert.match(err.message, /^requirements\.txt could not be installed \(pip exited with code 1\); pip's last lines:\n/);
      assert.match(err.message, /No matching distribution found for this-package-does-not-exist-myelin==99\.0/);
      assert.ok(err.message.split('\n').length <= 16, 'at most 15 quoted lines');
    }
    assert.equal((results[0] as PromiseRejectedResult).reason, (results[1] as PromiseRejectedResult).reason, 'one install, one error');
    // Either call may read the file first (the reads run on libuv's pool): one installs, the other waits.
    const [installer, waiter] = firstLines.some((l) => /No matching distribution/.test(l)) ? [firstLines, secondLines] : [secondLines, firstLines];
    assert.ok(installer.some((l) => /No matching distribution/.test(l)), installer.join('\n'));
    assert.deepEqual(waiter, ['the same requirements are being installed by another deploy; waiting for it']);
    const now = (await readdir(envsDir)).filter((n) => !before.has(n));
    assert.deepEqual(now, [], 'the failed build is removed');
  });

  test('an interpreter that does not exist: a clear RequirementsError naming --python', async () => {
    const requirementsFile = join(project, 'requirements.txt');
    const err = await cache('/nonexistent/myelin/python3').ensure({ requirementsFile, cwd: project }).then(
      () => assert.fail('expected a rejection'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof RequirementsError);
    assert.match(err.message, /cannot run \/nonexistent\/myelin\/python3 \(not found: set `myelin up --python PATH` or MYELIN_PYTHON\)/);
    assert.ok(!(await readdir(envsDir)).some((n) => n.includes('.tmp-')));
  });

  test('the key changes with the file and with the interpreter', () => {
    const a = pythonEnvKey('/usr/bin/python3', Buffer.from('numpy\n'));
    assert.match(a, /^[0-9a-f]{32}$/);
    assert.notEqual(pythonEnvKey('/usr/bin/python3', Buffer.from('numpy==1.24\n')), a);
    assert.notEqual(pythonEnvKey('python3', Buffer.from('numpy\n')), a);
    assert.equal(pythonEnvKey('/usr/bin/python3', Buffer.from('numpy\n')), a);
  });
});
