// The replica as a real child process (serving/replica/replica-entry.mjs), as the local orchestrator
// starts it: env contract, IPC messages, metric samples over IPC, bad input, SIGTERM, load failure.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, test } from 'node:test';
import { httpCall, postJson, rawExchange, waitFor } from '../../harness/http-client.js';
import { apiSpecFixture, type ApiSpecOverrides } from '../../harness/api-spec-fixture.js';
import { BEHAVIOUR_PREDICTOR } from './replica-test-kit.js';

const ENTRY = fileURLToPath(new URL('../../../serving/replica/replica-entry.mjs', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'myelin-replica-proc-'));
const started: ChildProcess[] = [];
after(() => {
  for (const c of started) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

interface Child {
  readonly proc: ChildProcess;
  readonly messages: Array<Record<string, unknown>>;
  stderr(): string;
  stdout(): string;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function startChild(name: string, spec: ApiSpecOverrides, extraEnv: Record<string, string> = {}, ipc = true): Child {
  const specFile = join(dir, `${name}.json`);
  writeFileSync(specFile, JSON.stringify(apiSpecFixture({ name, ...spec, predictor: { path: BEHAVIOUR_PREDICTOR, ...spec.predictor } })));
  const proc = spawn(process.execPath, [ENTRY], {
    stdio: ipc ? ['ignore', 'pipe', 'pipe', 'ipc'] : ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      MYELIN_API: name,
      MYELIN_REPLICA_ID: `${name}-r1`,
      MYELIN_REVISION: 'rev1',
      MYELIN_SPEC_FILE: specFile,
      MYELIN_HOST: '127.0.0.1',
      MYELIN_PORT: '0',
      MYELIN_SAMPLE_INTERVAL_MS: '50',
      ...extraEnv,
    },
  });
  started.push(proc);
  const messages: Array<Record<string, unknown>> = [];
  let err = '';
  let out = '';
  proc.stderr!.setEncoding('utf8').on('data', (c: string) => (err += c));
  proc.stdout!.setEncoding('utf8').on('data', (c: string) => (out += c));
  proc.on('message', (m) => messages.push(m as Record<string, unknown>));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  return { proc, messages, stderr: () => err, stdout: () => out, exited };
}

async function listeningPort(c: Child): Promise<number> {
  await waitFor('the listening message', () => c.messages.some((m) => m.type === 'myelin.replica.listening'));
  const m = c.messages.find((x) => x.type === 'myelin.replica.listening')!;
  assert.equal(m.host, '127.0.0.1');
  return m.port as number;
}

describe('replica child process', () => {
  test('reports listening and ready over IPC, publishes samples over IPC, survives bad input, stops on SIGTERM after answering', async () => {
    const c = startChild('proc-api', { predictor: { timeoutMs: 300 }, networking: { maxBodyBytes: 4096 } });
    const port = await listeningPort(c);
    const target = { port };
    await waitFor('ready', () => c.messages.some((m) => m.type === 'myelin.replica.ready'));
    assert.equal((await httpCall(target, { path: '/healthz/ready' })).status, 200);
    assert.equal((await postJson(target, { a: 1 })).status, 200);

    const bad = [
      { name: 'invalid UTF-8', send: () => httpCall(target, { method: 'POST', path: '/predict', headers: { 'content-type': 'application/json' }, body: Buffer.from([0xc3, 0x28]) }), want: 400 },
      { name: 'very deep JSON', send: () => httpCall(target, { method: 'POST', path: '/predict', headers: { 'content-type': 'application/json' }, body: `${'['.repeat(1500)}${']'.repeat(1500)}` }), want: 400 },
      { name: 'body over the limit', send: () => postJson(target, 'x'.repeat(5000)), want: 413 },
      { name: 'predictor throws', send: () => postJson(target, {}, '/predict?behave=throw'), want: 500 },
      { name: 'predictor hangs', send: () => postJson(target, {}, '/predict?behave=hang'), want: 504 },
      { name: 'predictor leaks a rejected promise', send: () => postJson(target, {}, '/predict?behave=leak'), want: 200 },
    ];
    for (const b of bad) {
      const r = await b.send();
      assert.equal(r.status, b.want, `${b.name}: ${r.text}`);
    }
    const truncated = await rawExchange(port, 'POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 50\r\n\r\n{"a"', { halfClose: true });
    assert.doesNotMatch(truncated, /^HTTP\/1\.1 200/);
    await waitFor('the leaked rejection logged', () => c.stderr().includes('unhandled promise rejection (ignored; the replica keeps serving)'));
    assert.equal((await postJson(target, { still: 'alive' })).status, 200);
    assert.equal(c.proc.exitCode, null, 'still running');

    await waitFor('metric samples over IPC', () => c.messages.filter((m) => m.type === 'myelin.metrics').length >= 2);
    const sample = c.messages.find((m) => m.type === 'myelin.metrics')!.sample as Record<string, unknown>;
    assert.deepEqual([sample.api, sample.replica, sample.revision, sample.v], ['proc-api', 'proc-api-r1', 'rev1', 1]);

    const gate = join(dir, 'proc-gate');
    const inFlight = postJson(target, {}, `/predict?behave=waitfile&file=${encodeURIComponent(gate)}`);
    await waitFor('in flight', async () => {
      const m = await httpCall(target, { path: '/metrics' });
      return /myelin_replica_requests_in_flight\{[^}]*\} 1/.test(m.text);
    });
    c.proc.kill('SIGTERM');
    await waitFor('draining', () => c.stderr().includes('replica draining'));
    writeFileSync(gate, '');
    const answered = await inFlight;
    assert.equal(answered.status, 200, 'the request in flight was answered during the drain');
    assert.deepEqual(await c.exited, { code: 0, signal: null });
    const last = c.messages.filter((m) => m.type === 'myelin.metrics').at(-1)!.sample as { ready: boolean };
    assert.equal(last.ready, false, 'a last sample says not ready');
  });

  test('an onnx replica leaves no onnxruntime telemetry: nothing under ~/.cache, no /tmp/mat-debug-<pid>.log', async () => {
    const home = join(dir, 'home-onnx');
    const model = fileURLToPath(new URL('../../../examples/iris-onnx/model/iris.onnx', import.meta.url));
    const env: Record<string, string> = { HOME: home };
    // The test command sets it for its own process; the replica must set it itself.
    const saved = process.env.ORT_DISABLE_TELEMETRY;
    delete process.env.ORT_DISABLE_TELEMETRY;
    let c: Child;
    try {
      c = startChild('onnx-api', { predictor: { type: 'onnx', path: undefined, modelPath: model } }, env);
    } finally {
      if (saved !== undefined) process.env.ORT_DISABLE_TELEMETRY = saved;
    }
    const port = await listeningPort(c);
    await waitFor('ready', () => c.messages.some((m) => m.type === 'myelin.replica.ready'));
    assert.equal((await postJson({ port }, [[5.1, 3.5, 1.4, 0.2]])).status, 200);
    c.proc.kill('SIGTERM');
    await c.exited;
    assert.equal(existsSync(join(home, '.cache')), false, 'no ~/.cache written');
    assert.equal(existsSync(`/tmp/mat-debug-${c.proc.pid}.log`), false, 'no /tmp/mat-debug-<pid>.log');
  });

  test('a predictor that cannot load: failed message, exit code 1', async () => {
    const c = startChild('proc-fail', { predictor: { config: { failInit: true } } });
    await listeningPort(c);
    assert.deepEqual(await c.exited, { code: 1, signal: null });
    const failed = c.messages.find((m) => m.type === 'myelin.replica.failed');
    assert.match(String(failed?.message), /init failed on purpose/);
  });

  test('without an IPC channel the listening message is a JSON line on stdout; worker threads run in the child', async () => {
    const c = startChild('proc-noipc', { predictor: { processesPerReplica: 2 } }, {}, false);
    await waitFor('the stdout line', () => c.stdout().includes('\n'));
    const m = JSON.parse(c.stdout().split('\n')[0]) as { type: string; port: number };
    assert.equal(m.type, 'myelin.replica.listening');
    const target = { port: m.port };
    await waitFor('ready', async () => (await httpCall(target, { path: '/healthz/ready' })).status === 200);
    const threads = new Set<number>();
    const gate = join(dir, 'noipc-gate');
    const held = postJson(target, {}, `/predict?behave=waitfile&file=${encodeURIComponent(gate)}`);
    threads.add(((await postJson(target, {}, '/predict?behave=thread')).json() as { thread: number }).thread);
    writeFileSync(gate, '');
    threads.add(((await held).json() as { thread: number }).thread);
    assert.equal(threads.size, 2, 'two worker threads served');
    c.proc.kill('SIGTERM');
    assert.deepEqual(await c.exited, { code: 0, signal: null });
  });

  test('predictor.log_level sets the level of the replica log (warning: info lines are not written)', async () => {
    const quiet = startChild('proc-quiet', { predictor: { logLevel: 'warning' } });
    const loud = startChild('proc-loud', {});
    await waitFor('both ready', () => [quiet, loud].every((c) => c.messages.some((m) => m.type === 'myelin.replica.ready')));
    quiet.proc.kill('SIGTERM');
    loud.proc.kill('SIGTERM');
    await Promise.all([quiet.exited, loud.exited]);
    assert.match(loud.stderr(), /"level":30,.*"msg":"replica listening"/, 'the default level writes info lines');
    assert.doesNotMatch(quiet.stderr(), /"level":30/, 'warning hides info lines');
  });

  test('a bad environment is reported and exits 1', async () => {
    const c = startChild('proc-env', {}, { MYELIN_PORT: 'eighty' });
    assert.deepEqual(await c.exited, { code: 1, signal: null });
    assert.match(c.stderr(), /MYELIN_PORT must be an integer/);
  });
});
