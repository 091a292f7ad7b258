import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { buildCli } from '../../../serving/cli/cli.js';

// Cortex's flags (reference/cortex.md §9) are accepted; those that mean nothing here print one note line.
const BIN = fileURLToPath(new URL('../../../bin/myelin.mjs', import.meta.url));
const NO_DAEMON = 'http://127.0.0.1:9';

function runCli(args: readonly string[], cwd: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolveRun) => {
    execFile(process.execPath, [BIN, ...args], { cwd, timeout: 60_000, env: { ...process.env, MYELIN_DEBUG: '', MYELIN_URL: '' } }, (err, stdout, stderr) => {
      resolveRun({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
  });
}

function tempProject(yaml: string): { dir: string; [Symbol.dispose](): void } {
  const dir = mkdtempSync(join(tmpdir(), 'myelin-flags-'));
  writeFileSync(join(dir, 'cortex.yaml'), yaml);
  writeFileSync(join(dir, 'predictor.py'), 'class PythonPredictor:\n    pass\n');
  return { dir, [Symbol.dispose]: () => rmSync(dir, { recursive: true, force: true }) };
}

const ENV_NOTE = 'note: --env has no effect: myelin talks to one daemon (--url / MYELIN_URL)';

test('every command accepts -e/--env ENV', () => {
  for (const cmd of buildCli().commands) {
    assert.ok(cmd.options.some((o) => o.short === '-e' && o.long === '--env' && o.required), cmd.name());
  }
});

test('validate -e local works and says once on stderr that --env has no effect (real process)', async () => {
  using p = tempProject('- name: a\n  kind: RealtimeAPI\n  predictor:\n    type: python\n    path: predictor.py\n');
  const r = await runCli(['validate', '-e', 'local', '-o', 'json'], p.dir);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout).apis[0].name, 'a');
  assert.equal(r.stderr, `${ENV_NOTE}\n`);
  const long = await runCli(['validate', '--env=aws'], p.dir);
  assert.equal(long.code, 0, long.stderr);
  assert.equal(long.stderr, `${ENV_NOTE}\n`);
});

test('deploy -y --env: notes, then the invalid file is reported as JSON with -o json and exit 1 (real process)', async () => {
  using p = tempProject('- name: a\n  kind: RealtimeAPI\n  predictor:\n    type: pytorch\n');
  const r = await runCli(['deploy', '-y', '--env', 'local', '-o', 'json', '--url', NO_DAEMON], p.dir);
  assert.equal(r.code, 1, r.stderr);
  const lines = r.stderr.trimEnd().split('\n');
  assert.deepEqual(lines.slice(0, 2), [ENV_NOTE, 'note: --yes has no effect: myelin deploy never asks before uploading']);
  assert.match(lines[2], /^cortex\.yaml:4:\d+: a: predictor\.type: /, 'people still see the problem on stderr');
  const doc = JSON.parse(r.stdout) as { errors: { file: string; line: number; col: number; api: string; field: string; message: string; severity: string }[] };
  assert.equal(doc.errors.length, 1);
  assert.deepEqual([doc.errors[0].file, doc.errors[0].line, doc.errors[0].api, doc.errors[0].field, doc.errors[0].severity], ['cortex.yaml', 4, 'a', 'predictor.type', 'error']);
  assert.equal(typeof doc.errors[0].col, 'number');
  assert.match(doc.errors[0].message, /pytorch/);
  // --yes is a flag: without -o json nothing is printed on stdout, and the exit code is the same.
  const table = await runCli(['deploy', '--yes', '--url', NO_DAEMON], p.dir);
  assert.equal(table.code, 1);
  assert.equal(table.stdout, '');
});

test('delete -f -c -e: three notes, never an error; -o json reports the failure as JSON (real process)', async () => {
  using p = tempProject('');
  const r = await runCli(['delete', 'some-api', '-f', '-c', '-e', 'prod', '-o', 'json', '--url', NO_DAEMON], p.dir);
  assert.equal(r.code, 1);
  const lines = r.stderr.trimEnd().split('\n');
  assert.deepEqual(lines.slice(0, 3), [
    ENV_NOTE,
    'note: --force has no effect: myelin delete never asks for confirmation',
    "note: --keep-cache has no effect: myelin delete never removes the machine's model and virtualenv caches",
  ]);
  assert.match(lines[3], /^error: cannot reach the myelin daemon at http:\/\/127\.0\.0\.1:9/);
  const doc = JSON.parse(r.stdout) as { errors: { message: string }[] };
  assert.match(doc.errors[0].message, /^cannot reach the myelin daemon at http:\/\/127\.0\.0\.1:9/);
  const long = await runCli(['delete', 'some-api', '--force', '--keep-cache', '--url', NO_DAEMON], p.dir);
  assert.equal(long.code, 1);
  assert.equal(long.stdout, '');
  assert.equal(long.stderr.split('\n').filter((l) => l.startsWith('note: ')).length, 2);
});

test('a failed deploy wait keeps its response and the APIs in the one -o json document', async () => {
  const { failureDocument } = await import('../../../serving/cli/main.js');
  const { ExitError } = await import('../../../serving/cli/exit-error.js');
  const doc = failureDocument(new ExitError(1, 'error: a is error: boom (see `myelin get a`)', { json: { results: [], apis: [{ name: 'a', status: 'error' }] } }));
  assert.deepEqual(doc, { results: [], apis: [{ name: 'a', status: 'error' }], errors: [{ message: 'a is error: boom (see `myelin get a`)' }] });
});
