import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { ConfigError, formatConfigProblem } from '../../../core/errors.js';
import { findConfigFile, validate, type ValidateOptions } from '../../../serving/cli/commands/validate.js';
import { ExitError } from '../../../serving/cli/exit-error.js';

const repo = fileURLToPath(new URL('../../../', import.meta.url));

class Capture extends Writable {
  text = '';
  override _write(chunk: Buffer, _enc: BufferEncoding, done: () => void): void {
    this.text += chunk.toString();
    done();
  }
}

function project(files: Record<string, string>): { dir: string; [Symbol.dispose](): void } {
  const dir = mkdtempSync(join(tmpdir(), 'myelin-validate-'));
  for (const [rel, content] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, rel)), { recursive: true });
    writeFileSync(join(dir, rel), content);
  }
  return { dir, [Symbol.dispose]: () => rmSync(dir, { recursive: true, force: true }) };
}

const VALID = `# written the way Cortex users wrote them
- name: iris-classifier
  kind: RealtimeAPI
  predictor:
    type: python
    path: predictor.py
    config:
      bucket: cortex-examples
  compute:
    cpu: 1
    mem: 1Gi
  autoscaling:
    min_replicas: 2
    max_replicas: 10
  networking:
    api_gateway: none

- kind: api
  name: legacy-onnx
  model: s3://cortex-examples/onnx/iris-classifier/gbtree.onnx
  compute:
    max_replicas: 4
`;

const INVALID = `- name: iris-classifier
  kind: RealtimeAPI
  predictor:
    type: python
    path: missing.py
  autoscaling:
    min_replicas: 5
    max_replicas: 2
    window: 15s
`;

function options(dir: string, over: Partial<ValidateOptions> = {}): ValidateOptions & { stdout: Capture; stderr: Capture } {
  return { cwd: dir, output: 'table', stdout: new Capture(), stderr: new Capture(), ...over } as ValidateOptions & { stdout: Capture; stderr: Capture };
}

test('validate prints a table of the resolved APIs and the warnings, and returns them', async () => {
  using p = project({ 'cortex.yaml': VALID, 'predictor.py': 'class PythonPredictor: pass\n' });
  const o = options(p.dir);
  const got = await validate(o);
  assert.equal(got.file, 'cortex.yaml');
  assert.deepEqual(got.specs.map((s) => [s.name, s.dialect, s.predictor.type, s.autoscaling.policy]), [
    ['iris-classifier', 'realtime', 'python', 'cortex'],
    ['legacy-onnx', 'legacy', 'onnx', 'cpu'],
  ]);
  assert.equal(
    o.stdout.text,
    [
      'name              kind           predictor   endpoint           replicas (min/init/max)   policy              target        compute',
      'iris-classifier   RealtimeAPI    python      /iris-classifier   2/2/10                    cortex (tick 10s)   1 in flight   cpu 1, mem 1Gi',
      'legacy-onnx       api (legacy)   onnx        /legacy-onnx       1/1/4                     cpu (tick 10s)      80% cpu       cpu 200m',
      '',
    ].join('\n'),
  );
  assert.equal(o.stderr.text, 'cortex.yaml:16:5: iris-classifier: networking.api_gateway: warning: has no effect: myelin has no API Gateway; the API is served by the myelin gateway\n');
});

test('validate -o json and -o yaml print { file, apis, warnings } with the full resolved specs', async () => {
  using p = project({ 'cortex.yaml': VALID, 'predictor.py': 'x' });
  for (const output of ['json', 'yaml'] as const) {
    const o = options(p.dir, { output });
    const got = await validate(o);
    const printed = (output === 'json' ? JSON.parse(o.stdout.text) : parse(o.stdout.text)) as { file: string; apis: unknown[]; warnings: unknown[] };
    assert.equal(printed.file, 'cortex.yaml', output);
    assert.deepEqual(printed.apis, JSON.parse(JSON.stringify(got.specs)), output);
    assert.equal(printed.warnings.length, 1, output);
  }
});

test('the file: given, a folder, myelin.yaml before cortex.yaml, or an error naming both', () => {
  using p = project({ 'a/myelin.yaml': '', 'a/cortex.yaml': '', 'b/cortex.yaml': '', 'c/x': '', 'other.yaml': '' });
  const cases: { cwd: string; file?: string; want: string | RegExp }[] = [
    { cwd: p.dir, file: 'other.yaml', want: 'other.yaml' },
    { cwd: join(p.dir, 'a'), want: 'myelin.yaml' },
    { cwd: join(p.dir, 'b'), want: 'cortex.yaml' },
    { cwd: p.dir, file: 'a', want: join('a', 'myelin.yaml') },
    { cwd: p.dir, file: 'b', want: join('b', 'cortex.yaml') },
    { cwd: p.dir, file: 'missing.yaml', want: 'missing.yaml' },
    { cwd: join(p.dir, 'c'), want: /^error: no configuration file given, and neither myelin\.yaml nor cortex\.yaml is in / },
  ];
  for (const c of cases) {
    if (typeof c.want === 'string') assert.equal(findConfigFile(c.cwd, c.file), c.want, JSON.stringify(c));
    else {
      const want = c.want;
      assert.throws(() => findConfigFile(c.cwd, c.file), (err: unknown) => err instanceof ExitError && err.exitCode === 1 && want.test(err.message));
    }
  }
});

test('validate throws the ConfigError with every problem of an invalid file', async () => {
  using p = project({ 'cortex.yaml': INVALID });
  const o = options(p.dir);
  await assert.rejects(validate(o), (err: unknown) => {
    assert.ok(err instanceof ConfigError);
    assert.deepEqual(err.problems.map(formatConfigProblem), [
      `cortex.yaml:5:5: iris-classifier: predictor.path: predictor file "missing.py" does not exist (looked for ${join(p.dir, 'missing.py')})`,
      'cortex.yaml:7:5: iris-classifier: autoscaling.min_replicas: cannot be greater than max_replicas (5 > 2)',
      'cortex.yaml:9:5: iris-classifier: autoscaling.window: 15s is not a multiple of the tick, 10s (the default for the cortex policy)',
    ]);
    return true;
  });
  assert.equal(o.stdout.text, '');
});

/** Runs the real CLI as a child process (bounded by a timeout) and returns its exit code and output. */
function runCli(args: readonly string[], cwd: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolveRun) => {
    execFile(process.execPath, [join(repo, 'bin/myelin.mjs'), ...args], { cwd, timeout: 60_000, env: { ...process.env, MYELIN_DEBUG: '' } }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      resolveRun({ code, stdout, stderr });
    });
  });
}

test('`myelin validate` as a real process: exit 0 and a table on a valid file, exit 1 and every problem on stderr otherwise', async () => {
  using p = project({ 'cortex.yaml': VALID, 'predictor.py': 'x', 'bad/cortex.yaml': INVALID, 'empty.yaml': '', 'map.yaml': 'name: iris\n' });
  const ok = await runCli(['validate'], p.dir);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /^name +kind +predictor +endpoint/);
  assert.match(ok.stdout, /\niris-classifier +RealtimeAPI +python +\/iris-classifier +2\/2\/10 /);
  assert.match(ok.stderr, /^cortex\.yaml:16:5: iris-classifier: networking\.api_gateway: warning: /);

  const json = await runCli(['validate', 'cortex.yaml', '-o', 'json'], p.dir);
  assert.equal(json.code, 0, json.stderr);
  assert.deepEqual((JSON.parse(json.stdout) as { apis: { name: string }[] }).apis.map((a) => a.name), ['iris-classifier', 'legacy-onnx']);

  const bad = await runCli(['validate', 'bad'], p.dir);
  assert.equal(bad.code, 1);
  assert.equal(bad.stdout, '');
  assert.deepEqual(bad.stderr.trimEnd().split('\n'), [
    `${join('bad', 'cortex.yaml')}:5:5: iris-classifier: predictor.path: predictor file "missing.py" does not exist (looked for ${join(p.dir, 'bad', 'missing.py')})`,
    `${join('bad', 'cortex.yaml')}:7:5: iris-classifier: autoscaling.min_replicas: cannot be greater than max_replicas (5 > 2)`,
    `${join('bad', 'cortex.yaml')}:9:5: iris-classifier: autoscaling.window: 15s is not a multiple of the tick, 10s (the default for the cortex policy)`,
  ]);

  for (const [file, want] of [
    ['empty.yaml', 'empty.yaml:1:1: the file is empty; expected a YAML list of APIs, e.g. "- name: my-api"'],
    ['map.yaml', 'map.yaml:1:1: cortex YAML configuration files must contain a list of maps (found a map; start each API with "- ", e.g. "- name: my-api")'],
    ['nope.yaml', 'nope.yaml:1:1: cannot read the configuration file (no such file)'],
  ] as const) {
    const r = await runCli(['validate', file], p.dir);
    assert.deepEqual([r.code, r.stdout, r.stderr], [1, '', `${want}\n`], file);
  }
});

test('`myelin validate -o json` on an invalid file prints { errors } on stdout and exits 1 (real process)', async () => {
  using p = project({ 'bad/cortex.yaml': INVALID, 'empty.yaml': '' });
  const bad = await runCli(['validate', 'bad', '-o', 'json'], p.dir);
  assert.equal(bad.code, 1, bad.stderr);
  const doc = JSON.parse(bad.stdout) as { errors: Record<string, unknown>[] };
  assert.deepEqual(doc.errors.map((e) => [e.file, e.line, e.col, e.api, e.field, e.severity]), [
    [join('bad', 'cortex.yaml'), 5, 5, 'iris-classifier', 'predictor.path', 'error'],
    [join('bad', 'cortex.yaml'), 7, 5, 'iris-classifier', 'autoscaling.min_replicas', 'error'],
    [join('bad', 'cortex.yaml'), 9, 5, 'iris-classifier', 'autoscaling.window', 'error'],
  ]);
  assert.equal(doc.errors[1].message, 'cannot be greater than max_replicas (5 > 2)');
  // A file-level problem has no api and a null field.
  const empty = await runCli(['validate', 'empty.yaml', '-o', 'json'], p.dir);
  assert.equal(empty.code, 1);
  assert.deepEqual(JSON.parse(empty.stdout), {
    errors: [{ file: 'empty.yaml', line: 1, col: 1, field: null, message: 'the file is empty; expected a YAML list of APIs, e.g. "- name: my-api"', severity: 'error' }],
  });
  // Not a configuration problem: still JSON.
  const none = await runCli(['validate', '-o', 'json'], p.dir);
  assert.equal(none.code, 1);
  assert.match((JSON.parse(none.stdout) as { errors: { message: string }[] }).errors[0].message, /^no configuration file given/);
});

test('control characters from the file are escaped in problem lines: a newline cannot forge a line, an escape sequence cannot reach the terminal (real process)', async () => {
  const yaml = '- name: evil\n  kind: RealtimeAPI\n  predictor:\n    type: python\n    path: "x\\nforged.yaml:1:1: all fine\\e[0m.py"\n    "bad\\nkey\\e[31m": 1\n';
  using p = project({ 'cortex.yaml': yaml, 'a\nforged.yaml:1:1: ok\u001b[2J.yaml': yaml });
  const r = await runCli(['validate'], p.dir);
  assert.equal(r.code, 1);
  assert.doesNotMatch(r.stderr, /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/, 'no control character but the line ends');
  const lines = r.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 2, lines.join('\n'));
  assert.ok(lines.every((l) => l.startsWith('cortex.yaml:')), lines.join('\n'));
  assert.match(lines[0], /^cortex\.yaml:5:5: evil: predictor\.path: predictor file .* \(looked for .*x\\nforged\.yaml:1:1: all fine\\x1b\[0m\.py\)$/);
  assert.match(lines[1], /^cortex\.yaml:6:5: evil: predictor: key /);
  // The file part too: a file name holding a newline and an escape sequence.
  const named = await runCli(['validate', 'a\nforged.yaml:1:1: ok\u001b[2J.yaml'], p.dir);
  assert.equal(named.code, 1);
  assert.doesNotMatch(named.stderr, /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/);
  assert.deepEqual(named.stderr.trimEnd().split('\n').map((l) => l.split(':5:5: ')[0].split(':6:5: ')[0]), Array(2).fill('a\\nforged.yaml:1:1: ok\\x1b[2J.yaml'));
  // JSON keeps the text as it is (JSON escapes it itself).
  const json = await runCli(['validate', '-o', 'json'], p.dir);
  assert.doesNotMatch(json.stdout, /\u001b/);
  assert.ok((JSON.parse(json.stdout) as { errors: { message: string }[] }).errors[0].message.includes('x\nforged.yaml:1:1: all fine\u001b[0m.py'));
});
