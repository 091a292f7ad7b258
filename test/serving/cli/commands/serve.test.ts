import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { after, test } from 'node:test';
import { pino } from 'pino';
import { ExitError } from '../../../../serving/cli/exit-error.js';
import { serve } from '../../../../serving/cli/commands/serve.js';
import type { Replica } from '../../../../serving/replica/replica-server.js';
import { httpCall, postJson, waitFor } from '../../../harness/http-client.js';

const root = fileURLToPath(new URL('../../../../', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'myelin-serve-'));
after(() => rmSync(dir, { recursive: true, force: true }));

writeFileSync(
  join(dir, 'predictor.mjs'),
  `export class Predictor { constructor({ config }) { this.c = config; if (config.fail) throw new Error('cannot construct') } predict({ payload }) { return { who: this.c.who, payload, env: process.env.SERVE_TEST_GREETING ?? null } } }`,
);
writeFileSync(
  join(dir, 'myelin.yaml'),
  ['a', 'b', 'broken']
    .map((n) => `- name: ${n}\n  kind: RealtimeAPI\n  predictor:\n    type: javascript\n    path: predictor.mjs\n    env:\n      SERVE_TEST_GREETING: hi-${n}\n    config:\n      who: ${n}\n${n === 'broken' ? '      fail: true\n' : ''}`)
    .join(''),
);

function sink(): { stream: PassThrough; text: () => string } {
  const stream = new PassThrough();
  let text = '';
  stream.on('data', (c: Buffer) => (text += String(c)));
  return { stream, text: () => text };
}

const silent = pino({ level: 'silent' });

test('serves the chosen API until aborted', async () => {
  const out = sink();
  const stop = new AbortController();
  let replica: Replica | undefined;
  const running = serve({ cwd: dir, api: 'b', port: 0, stdout: out.stream, stderr: sink().stream, log: silent, signal: stop.signal, onListening: (r) => (replica = r) });
  await waitFor('listening', () => replica !== undefined);
  await replica!.ready;
  const r = await postJson({ port: replica!.address.port! }, [1]);
  assert.deepEqual(r.json(), { who: 'b', payload: [1], env: 'hi-b' }, 'predictor.env is set while serving');
  await waitFor('ready line', () => out.text().includes('b ready (in-thread, 1×1'));
  assert.match(out.text(), /^serving b at http:\/\/127\.0\.0\.1:\d+ /);
  stop.abort();
  await running;
  assert.equal(replica!.state(), 'closed');
  assert.equal(process.env.SERVE_TEST_GREETING, undefined, 'and restored after');
});

const refusals = [
  { name: 'several APIs and no --api', api: undefined, want: /has 3 APIs; choose one with --api \(a, b, broken\)/ },
  { name: 'an unknown --api', api: 'zzz', want: /has no API named "zzz" \(it has: a, b, broken\)/ },
  { name: 'a predictor that cannot load', api: 'broken', want: /broken: the predictor cannot be loaded: .*cannot construct/ },
];
for (const c of refusals) {
  test(`refuses ${c.name} with exit code 1`, async () => {
    await assert.rejects(serve({ cwd: dir, api: c.api, port: 0, stdout: sink().stream, stderr: sink().stream, log: silent }), (e: unknown) => {
      assert.ok(e instanceof ExitError);
      assert.equal(e.exitCode, 1);
      assert.match(e.message, c.want);
      return true;
    });
  });
}

test('`myelin serve examples/hello-typescript` runs the example predictor; SIGTERM stops it with exit 0', async () => {
  const proc = spawn(process.execPath, [join(root, 'bin/myelin.mjs'), 'serve', 'examples/hello-typescript', '--port', '0'], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    let out = '';
    proc.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
    proc.stderr.resume();
    const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
    await waitFor('ready', () => out.includes('iris-classifier ready'));
    const port = Number(/http:\/\/127\.0\.0\.1:(\d+)/.exec(out)![1]);
    const sample = JSON.parse((await import('node:fs')).readFileSync(join(root, 'examples/hello-typescript/sample.json'), 'utf8')) as Record<string, number>;
    const cases = [
      { body: sample, want: [200, 'setosa'] },
      { body: { sepal_length: 6.7, sepal_width: 3.0, petal_length: 5.2, petal_width: 2.3 }, want: [200, 'virginica'] },
      { body: { sepal_length: 5.9, sepal_width: 2.8, petal_length: 4.3, petal_width: 1.3 }, want: [200, 'versicolor'] },
      { body: { sepal_length: 5.9 }, want: [400, '{"error":"\\"sepal_width\\" must be a number (got nothing)"}'] },
    ];
    for (const c of cases) {
      const r = await postJson({ port }, c.body);
      assert.deepEqual([r.status, r.text], c.want);
    }
    const summary = (await httpCall({ port }, { path: '/' })).json() as { model_metadata: { type: string; class: string } };
    assert.deepEqual([summary.model_metadata.type, summary.model_metadata.class], ['typescript', 'IrisPredictor']);
    proc.kill('SIGTERM');
    assert.equal(await exited, 0);
  } finally {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
  }
});
