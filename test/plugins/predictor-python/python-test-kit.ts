/**
 * Helpers for the Python bridge's tests: a temp project folder holding small predictor files, a real
 * replica serving it (real python3 worker processes, real HTTP on loopback), its pino lines captured
 * (SG 7.4) and its metric samples collected.
 *
 * The interpreter is Debian's `/usr/bin/python3` when it exists (it has numpy, and fastapi for the
 * starlette tests); the `python3` first on PATH may be a pyenv one without them.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ApiSpec } from '../../../core/config/api-spec.js';
import { ModelRuntimeRegistry } from '../../../core/contribution/model-runtime-registry.js';
import type { BackendPredictArgs } from '../../../core/ports/predictor-backend.js';
import { isPredictorResponse } from '../../../core/predictor/predictor-contract.js';
import { PythonPredictorBackend } from '../../../plugins/predictor-python/python-predictor-backend.js';
import type { PythonWorkerPool } from '../../../plugins/predictor-python/python-worker-pool.js';
import { startReplica, type Replica, type ReplicaOptions } from '../../../serving/replica/replica-server.js';
import { apiSpecFixture, type ApiSpecOverrides } from '../../harness/api-spec-fixture.js';
import { httpCall, type HttpResult } from '../../harness/http-client.js';
import { LocalModelProvider } from '../../harness/local-model-provider.js';
import { captureLog, CollectingTransport, type CapturedLog } from '../../serving/replica/replica-test-kit.js';

// An explicit MYELIN_PYTHON wins (as in scripts/run-tests.mjs).
if (!process.env.MYELIN_PYTHON && existsSync('/usr/bin/python3')) process.env.MYELIN_PYTHON = '/usr/bin/python3';

/** The interpreter the bridge runs in these tests. */
export const PYTHON = process.env.MYELIN_PYTHON ?? 'python3';

/** The bridge script, for Python-side unit tests that import it. */
export const BRIDGE_DIR = fileURLToPath(new URL('../../../plugins/predictor-python/bridge/', import.meta.url));

/** The repository's iris model (input `input` float32 [batch, 4]; outputs `label` int64 [batch], `probabilities` float32 [batch, 3]). */
export const IRIS_ONNX = fileURLToPath(new URL('../../../examples/iris-onnx/model/iris.onnx', import.meta.url));

/** True when `PYTHON` can import every module named (checked once per set, in a real process). */
export function pythonHas(...modules: string[]): boolean {
  const r = spawnSync(PYTHON, ['-c', modules.map((m) => `import ${m}`).join('; ')], { stdio: 'ignore' });
  return r.status === 0;
}

/**
 * Removes the common leading indentation of a template literal (and its first and last blank lines),
 * so Python sources can be written indented inside TypeScript.
 */
export function dedent(text: string): string {
  const lines = text.replace(/^\n/, '').replace(/\n[ \t]*$/, '').split('\n');
  const indents = lines.filter((l) => l.trim() !== '').map((l) => /^ */.exec(l)![0].length);
  const cut = indents.length ? Math.min(...indents) : 0;
  return `${lines.map((l) => l.slice(cut)).join('\n')}\n`;
}

/** A temp project folder; `files` maps relative paths to contents (Python sources are dedented). */
export interface PythonProject {
  readonly dir: string;
  path(rel: string): string;
  write(rel: string, content: string | Uint8Array): string;
  /** Creates an empty file (a gate a predictor waits for). */
  touch(rel: string): void;
  /** Names in a sub-folder (created if missing), sorted. */
  list(rel: string): string[];
  read(rel: string): string;
  remove(): void;
}

export function makeProject(files: Readonly<Record<string, string | Uint8Array>> = {}, prefix = 'myelin-py-'): PythonProject {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const project: PythonProject = {
    dir,
    path: (rel) => join(dir, rel),
    write(rel, content) {
      const p = join(dir, rel);
      mkdirSync(dirname(p), { recursive: true });
      writeFileSync(p, typeof content === 'string' && rel.endsWith('.py') ? dedent(content) : content);
      return p;
    },
    touch: (rel) => writeFileSync(join(dir, rel), ''),
    list(rel) {
      const p = join(dir, rel);
      mkdirSync(p, { recursive: true });
      return readdirSync(p).sort();
    },
    read: (rel) => readFileSync(join(dir, rel), 'utf8'),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
  for (const [rel, content] of Object.entries(files)) project.write(rel, content);
  return project;
}

export interface PythonReplica extends AsyncDisposable {
  readonly replica: Replica;
  readonly project: PythonProject;
  readonly target: { readonly port: number };
  readonly log: CapturedLog;
  readonly transport: CollectingTransport;
  /** POST to `/predict<query>` with a body and a content type (default JSON of `value`). */
  post(query: string, body?: string | Uint8Array, contentType?: string, headers?: Record<string, string>): Promise<HttpResult>;
  postJson(value: unknown, query?: string, headers?: Record<string, string>): Promise<HttpResult>;
  /** GET `/`'s `model_metadata`. */
  metadata(): Promise<Record<string, unknown>>;
  /** Python worker pids from GET `/` (`model_metadata.workers`). */
  workers(): Promise<{ pid: number; serving: boolean; restarts: number }[]>;
  /** Log lines bound to a request id. */
  linesOf(requestId: string): Array<Record<string, unknown>>;
}

export interface StartOptions {
  /** Files of the project (relative path → content). */
  readonly files?: Readonly<Record<string, string | Uint8Array>>;
  /** Runs on the project before the replica starts (writes models, say). */
  readonly prepare?: (project: PythonProject) => Promise<unknown>;
  /** The spec, given the project folder; `projectDir` and `pythonPath` default to the folder. */
  readonly spec?: (project: PythonProject) => ApiSpecOverrides;
  readonly replica?: Partial<Omit<ReplicaOptions, 'spec' | 'log'>>;
  /** Default true: await `replica.ready` (a start-up failure then rejects). */
  readonly awaitReady?: boolean;
}

/**
 * Starts a real replica on a project of Python files. The spec defaults to `predictor.type: python`,
 * `predictor.path: <dir>/predictor.py`. Dispose closes the replica (its Python workers) and removes the folder.
 */
export async function startPythonReplica(options: StartOptions = {}): Promise<PythonReplica> {
  const project = makeProject(options.files ?? {});
  try {
    await options.prepare?.(project);
  } catch (err) {
    project.remove();
    throw err;
  }
  const log = captureLog();
  const transport = new CollectingTransport();
  const overrides = options.spec?.(project) ?? {};
  const spec = apiSpecFixture({
    ...overrides,
    projectDir: overrides.projectDir ?? project.dir,
    predictor: { type: 'python', path: project.path('predictor.py'), pythonPath: project.dir, ...overrides.predictor },
  });
  let replica: Replica;
  try {
    replica = await startReplica({ spec, log: log.log, transport, sampleIntervalMs: 50, ...options.replica });
  } catch (err) {
    project.remove();
    throw err;
  }
  const target = { port: replica.address.port! };
  const t: PythonReplica = {
    replica,
    project,
    target,
    log,
    transport,
    post: (query, body = '{}', contentType = 'application/json', headers = {}) =>
      httpCall(target, { method: 'POST', path: `/predict${query}`, headers: { ...(contentType ? { 'content-type': contentType } : {}), ...headers }, body }),
    postJson: (value, query = '', headers = {}) =>
      httpCall(target, { method: 'POST', path: `/predict${query}`, headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(value) }),
    async metadata() {
      const r = await httpCall(target, { path: '/' });
      return (r.json() as { model_metadata: Record<string, unknown> }).model_metadata;
    },
    async workers() {
      return (await t.metadata()).workers as { pid: number; serving: boolean; restarts: number }[];
    },
    linesOf: (requestId) => log.lines().filter((l) => l.requestId === requestId),
    async [Symbol.asyncDispose]() {
      await replica.close({ graceMs: 0 });
      project.remove();
    },
  };
  if (options.awaitReady ?? true) {
    try {
      await replica.ready;
    } catch (err) {
      await t[Symbol.asyncDispose]();
      throw err;
    }
  }
  return t;
}

/**
 * `gates.py` for a project: `wait_for_file(path, deadline_s=20.0)` polls every 5 ms until the file
 * exists and raises TimeoutError after the deadline. Predictors in these tests block on gates the test
 * opens, never on a clock.
 */
export const GATES_PY = `
  import os
  import time


  def wait_for_file(path, deadline_s=20.0):
      end = time.monotonic() + deadline_s
      while not os.path.exists(path):
          if time.monotonic() > end:
              raise TimeoutError(f"gate {path} not opened within {deadline_s} s")
          time.sleep(0.005)
`;

/** A Python predictor loaded directly through `PythonPredictorBackend` (no replica), with a real local `ModelProvider`. */
export interface LoadedPython extends AsyncDisposable {
  readonly project: PythonProject;
  readonly predictor: PythonWorkerPool;
  readonly provider: LocalModelProvider;
  readonly log: CapturedLog;
  /** `predict` with a JSON payload and query parameters; resolves with the parsed JSON answer. */
  call(query?: Record<string, string>, payload?: unknown): Promise<unknown>;
  /** The same as `call`, resolving with the thrown error instead (fails when it answers). */
  fail(query?: Record<string, string>, payload?: unknown): Promise<Error & { status?: number }>;
}

let requestSeq = 0;

/** `BackendPredictArgs` of a JSON request (for `predict` and `predictBatch`). */
export function predictArgs(log: CapturedLog, query: Record<string, string> = {}, payload: unknown = {}): BackendPredictArgs {
  const requestId = `r${++requestSeq}`;
  return { payload, query, headers: { 'content-type': 'application/json' }, requestId, debug: false, log: log.log.child({ requestId }) } as BackendPredictArgs;
}

/** The JSON body of an answer from the bridge (a `PredictorResponse` whose body is the encoded bytes). */
export function jsonOfAnswer(answer: unknown): unknown {
  assert.ok(isPredictorResponse(answer), `a PredictorResponse, got ${String(answer)}`);
  return JSON.parse(Buffer.from(answer.body as Uint8Array).toString('utf8'));
}

/**
 * Loads `predictor.py` of a temp project with `PythonPredictorBackend` over a `LocalModelProvider`
 * (live-reload polling off: tests call `predictor.models.poll()`). `predictor` overrides get the
 * project, e.g. `(p) => ({ models: { dir: p.path('models') } })`.
 */
export async function loadPython(
  files: Readonly<Record<string, string | Uint8Array>>,
  predictor: (p: PythonProject) => Partial<ApiSpec['predictor']> = () => ({}),
): Promise<LoadedPython> {
  const project = makeProject(files);
  const log = captureLog();
  const provider = new LocalModelProvider();
  const overrides = predictor(project);
  const spec = apiSpecFixture({
    projectDir: project.dir,
    predictor: { type: 'python', path: project.path('predictor.py'), pythonPath: project.dir, ...overrides, env: { MYELIN_MODEL_POLL_MS: '0', ...overrides.env } },
  });
  let loaded: PythonWorkerPool;
  try {
    loaded = (await new PythonPredictorBackend(new ModelRuntimeRegistry([]), provider).load(spec, log.log)) as PythonWorkerPool;
  } catch (err) {
    project.remove();
    throw err;
  }
  const call = async (query: Record<string, string> = {}, payload: unknown = {}): Promise<unknown> => jsonOfAnswer(await loaded.predict(predictArgs(log, query, payload)));
  return {
    project,
    predictor: loaded,
    provider,
    log,
    call,
    async fail(query, payload) {
      return loaded.predict(predictArgs(log, query, payload)).then(
        (a) => assert.fail(`want an error, got ${JSON.stringify(jsonOfAnswer(a))}`),
        (err: Error & { status?: number }) => err,
      );
    },
    async [Symbol.asyncDispose]() {
      await loaded.close();
      project.remove();
    },
  };
}
