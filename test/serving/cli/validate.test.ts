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
