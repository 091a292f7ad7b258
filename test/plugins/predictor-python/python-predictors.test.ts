// Cortex's PythonPredictor interface through the bridge, one real replica per case (started together):
// constructor and predict arguments passed by name in any order, python_client with load_model on a
// models folder, post_predict after the response, python_path, the working folder, predictor.env and
// .env, and the user's print/logging output in the replica log.
import assert from 'node:assert/strict';
import { realpathSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import type { ApiSpecOverrides } from '../../harness/api-spec-fixture.js';
import { waitFor } from '../../harness/http-client.js';
import { GATES_PY, startPythonReplica, type PythonProject, type PythonReplica } from './python-test-kit.js';

interface Case {
  readonly name: string;
  readonly files: Readonly<Record<string, string>>;
  readonly spec?: (p: PythonProject) => ApiSpecOverrides;
  /** Runs requests against the replica and asserts. */
  check(t: PythonReplica): Promise<void>;
}

const cases: Case[] = [
  {
    name: 'PythonPredictor(self, config) with predict(self): config is predictor.config',
    files: {
      'predictor.py': `
        class PythonPredictor:
            def __init__(self, config):
                self.config = config

            def predict(self):
                return {"config": self.config, "type": type(self.config).__name__}
      `,
    },
    spec: () => ({ predictor: { config: { greeting: 'hi', nested: { n: 1, list: [1, 2] } } } }),
    async check(t) {
      const r = await t.postJson({ ignored: true });
      assert.deepEqual(r.json(), { config: { greeting: 'hi', nested: { n: 1, list: [1, 2] } }, type: 'dict' });
      const meta = await t.metadata();
      assert.deepEqual(meta.predictor, { path: t.project.path('predictor.py'), class: 'PythonPredictor' });
      assert.equal(meta.type, 'python');
    },
  },
  {
    name: 'PythonPredictor(self, python_client, config) with load_model on models.dir: versions, latest, cache, errors',
    files: {
      'models/a/model.txt': 'A',
      'models/b/1/model.txt': 'B1',
      'models/b/2/model.txt': 'B2',
      'predictor.py': `
        import os
        import threading


        class PythonPredictor:
            def __init__(self, python_client, config):
                self.client = python_client
                self.loaded = []
                self.lock = threading.Lock()

            def load_model(self, model_path):
                with self.lock:
                    self.loaded.append(os.path.relpath(model_path, os.getcwd()))
                with open(os.path.join(model_path, "model.txt")) as f:
                    return f.read()

            def predict(self, query_params):
                name = query_params.get("model")
                version = query_params.get("version", "latest")
                return {"model": self.client.get_model(name, version), "loaded": self.loaded}
      `,
    },
    spec: (p) => ({ predictor: { models: { dir: p.path('models') } } }),
    async check(t) {
      const steps: { query: string; status: number; want: unknown }[] = [
        // No cache_size: every version was loaded before the replica was ready (Cortex), none again.
        { query: '?model=a', status: 200, want: { model: 'A', loaded: ['models/a', 'models/b/1', 'models/b/2'] } },
        { query: '?model=b', status: 200, want: { model: 'B2', loaded: ['models/a', 'models/b/1', 'models/b/2'] } },
        { query: '?model=b&version=1', status: 200, want: { model: 'B1', loaded: ['models/a', 'models/b/1', 'models/b/2'] } },
        { query: '?model=b&version=latest', status: 200, want: { model: 'B2', loaded: ['models/a', 'models/b/1', 'models/b/2'] } },
        { query: '?model=zzz', status: 404, want: { error: 'model "zzz" is not served by this API (models: a, b)' } },
        { query: '?model=b&version=7', status: 404, want: { error: 'model "b" has no version 7 (versions: 1, 2)' } },
        { query: '?model=b&version=x', status: 400, want: { error: 'model_version must be a non-negative integer or "latest" (got "x")' } },
        { query: '', status: 400, want: { error: 'model_name was not specified; this API serves several models, choose one of: a, b' } },
      ];
      for (const s of steps) {
        const r = await t.postJson({}, s.query);
        assert.deepEqual([r.status, r.json()], [s.status, s.want], s.query);
      }
      assert.deepEqual((await t.metadata()).models, [
        { name: 'a', versions: ['1'] },
        { name: 'b', versions: ['1', '2'] },
      ]);
    },
  },
  {
    name: 'PythonPredictor with python_client on a single model_path: get_model() without a name',
    files: {
      'model.bin': 'the model',
      'predictor.py': `
        class PythonPredictor:
            def __init__(self, config, python_client):
                self.client = python_client

            def load_model(self, model_path):
                with open(model_path) as f:
                    return f.read()

            def predict(self, payload):
                return self.client.get_model()
      `,
    },
    spec: (p) => ({ predictor: { modelPath: p.path('model.bin') } }),
    async check(t) {
      assert.equal((await t.postJson({})).text, 'the model');
    },
  },
  {
    name: 'predict(self, headers) gets only the headers',
    files: {
      'predictor.py': `
        class PythonPredictor:
            def __init__(self, config):
                pass

            def predict(self, headers):
                return headers["X-Only"]
      `,
    },
    async check(t) {
      assert.equal((await t.post('', '{}', 'application/json', { 'x-only': 'headers' })).text, 'headers');
    },
  },
  {
    name: 'predict(self, query_params, payload): arguments by name, in any order',
    files: {
      'predictor.py': `
        class PythonPredictor:
            def __init__(self, config):
                pass

            def predict(self, query_params, payload):
                return [query_params["q"], payload]
      `,
    },
    async check(t) {
      assert.deepEqual((await t.postJson({ p: 1 }, '?q=query')).json(), ['query', { p: 1 }]);
    },
  },
  {
    name: 'post_predict(self, response, payload) runs after the response is sent',
    files: {
      'gates.py': GATES_PY,
      'predictor.py': `
        import json
        import os

        from gates import wait_for_file


        class PythonPredictor:
            def __init__(self, config):
                pass

            def predict(self, payload):
                return {"answer": payload["id"] * 2}

            def post_predict(self, response, payload):
                # Blocks until the test has the response: a post_predict run before it would never see the gate.
                wait_for_file(f"sent-{payload['id']}")
                with open(f"post-{payload['id']}.json", "w") as f:
                    json.dump({"response": response, "payload": payload}, f)
      `,
    },
    async check(t) {
      const r = await t.postJson({ id: 21 });
      assert.deepEqual(r.json(), { answer: 42 });
      t.project.touch('sent-21');
      await waitFor('post_predict wrote its file', () => t.project.list('.').includes('post-21.json'), 20_000);
      await waitFor('post_predict finished writing', () => t.project.read('post-21.json').endsWith('}'), 20_000);
      assert.deepEqual(JSON.parse(t.project.read('post-21.json')), { response: { answer: 42 }, payload: { id: 21 } });
    },
  },
  {
    name: 'post_predict(self, response, payload, query_params, headers) that raises is logged, the response stands',
    files: {
      'predictor.py': `
        class PythonPredictor:
            def __init__(self, config):
                pass

            def predict(self, payload):
                return "ok"

            def post_predict(self, response, payload, query_params, headers):
                raise RuntimeError(f"post failed for {response} {query_params['n']} {headers['x-h']}")
      `,
    },
    async check(t) {
      const r = await t.post('?n=5', '{}', 'application/json', { 'x-h': 'hv' });
      assert.deepEqual([r.status, r.text], [200, 'ok']);
      await waitFor('the post_predict failure in the log', () =>
        t.log.lines().some((l) => l.level === 50 && String(l.msg).includes('post_predict failed') && String(l.msg).includes('RuntimeError: post failed for ok 5 hv')),
      20_000);
    },
  },
  {
    name: 'python_path goes on sys.path: a helper module from a sibling folder imports',
    files: {
      'lib/helpers/shout.py': `
        def shout(s):
            return s.upper() + "!"
      `,
      'lib/helpers/__init__.py': '',
      'predictor.py': `
        import sys

        from helpers.shout import shout


        class PythonPredictor:
            def __init__(self, config):
                pass

            def predict(self, payload):
                return {"said": shout(payload), "path": sys.path[:3]}
      `,
    },
    spec: (p) => ({ predictor: { pythonPath: p.path('lib') } }),
    async check(t) {
      const got = (await t.post('', 'hey', 'text/plain')).json() as { said: string; path: string[] };
      assert.equal(got.said, 'HEY!');
      assert.ok(got.path.includes(t.project.path('lib')) && got.path.includes(t.project.dir), JSON.stringify(got.path));
    },
  },
  {
    name: 'the working folder is the project folder',
    files: {
      'data/labels.txt': 'cat\ndog\n',
      'predictor.py': `
        import os


        class PythonPredictor:
            def __init__(self, config):
                with open("data/labels.txt") as f:
                    self.labels = f.read().split()

            def predict(self):
                return {"cwd": os.getcwd(), "labels": self.labels}
      `,
    },
    async check(t) {
      assert.deepEqual((await t.postJson({})).json(), { cwd: realpathSync(t.project.dir), labels: ['cat', 'dog'] });
    },
  },
  {
    name: "predictor.env and the project's .env are applied (predictor.env wins)",
    files: {
      '.env': '# a comment\nFROM_DOTENV=dotenv\nBOTH=from-dotenv\nexport QUOTED="q v"\n\nNOT A LINE\n',
      'predictor.py': `
        import os


        class PythonPredictor:
            def __init__(self, config):
                self.at_init = os.environ["FROM_SPEC"]

            def predict(self):
                return {k: os.environ.get(k) for k in ("FROM_DOTENV", "BOTH", "QUOTED", "FROM_SPEC")} | {"at_init": self.at_init}
      `,
    },
    spec: () => ({ predictor: { env: { FROM_SPEC: 'spec', BOTH: 'from-spec' } } }),
    async check(t) {
      assert.deepEqual((await t.postJson({})).json(), { FROM_DOTENV: 'dotenv', BOTH: 'from-spec', QUOTED: 'q v', FROM_SPEC: 'spec', at_init: 'spec' });
    },
  },
  {
    name: "the user's print() and logging reach the replica log",
    files: {
      'predictor.py': `
        import logging
        import sys

        log = logging.getLogger("user.predictor")


        class PythonPredictor:
            def __init__(self, config):
                print("constructed")

            def predict(self, payload):
                print(f"stdout {payload}")
                print(f"stderr {payload}", file=sys.stderr)
                log.warning("careful with %s", payload)
                return "logged"
      `,
    },
    async check(t) {
      assert.equal((await t.post('', 'p1', 'text/plain')).text, 'logged');
      await waitFor('stdout, stderr and logging lines', () => {
        const lines = t.log.lines();
        return (
          lines.some((l) => l.msg === 'constructed' && l.stream === 'stdout') &&
          lines.some((l) => l.msg === 'stdout p1' && l.stream === 'stdout' && l.level === 30) &&
          lines.some((l) => l.msg === 'stderr p1' && l.stream === 'stderr' && l.level === 40) &&
          lines.some((l) => l.msg === 'careful with p1' && l.logger === 'user.predictor' && l.level === 40 && l.worker === 0)
        );
      }, 20_000);
    },
  },
];

describe('python predictor classes and signatures', () => {
  const replicas = new Map<string, PythonReplica>();
  before(async () => {
    const started = await Promise.allSettled(cases.map((c) => startPythonReplica({ files: c.files, spec: c.spec })));
    started.forEach((s, i) => {
      if (s.status === 'fulfilled') replicas.set(cases[i].name, s.value);
    });
    const failed = started.flatMap((s, i) => (s.status === 'rejected' ? [`${cases[i].name}: ${(s.reason as Error).message}`] : []));
    assert.deepEqual(failed, [], 'every case starts');
  });
  after(() => Promise.all([...replicas.values()].map((t) => t[Symbol.asyncDispose]())));

  for (const c of cases) {
    test(c.name, async () => {
      const t = replicas.get(c.name);
      assert.ok(t, 'started');
      await c.check(t);
    });
  }
});
