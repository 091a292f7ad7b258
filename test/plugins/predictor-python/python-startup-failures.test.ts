// A Python predictor that cannot start fails the replica's start: `replica.ready` rejects with a
// message holding the last lines of the Python traceback (what `myelin deploy` and `myelin get` show),
// the replica is `failed`, and predictions get 503. Also Cortex's signature errors, a missing class,
// and an interpreter that does not exist. One replica per case, all started together.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ApiSpecOverrides } from '../../harness/api-spec-fixture.js';
import { httpCall } from '../../harness/http-client.js';
import { IRIS_ONNX, startPythonReplica, type PythonProject } from './python-test-kit.js';

interface Case {
  readonly name: string;
  readonly files: Readonly<Record<string, string>>;
  readonly spec?: (p: PythonProject) => ApiSpecOverrides;
  /** Each must appear in the rejection's message. */
  readonly want: readonly (string | RegExp)[];
  readonly code?: string;
}

/** A predict method, indented to follow the class bodies below (which are dedented as a whole). */
const OK_PREDICT = `
            def predict(self, payload):
                return payload
`;

const cases: Case[] = [
  {
    name: 'an ImportError at import time',
    files: {
      'predictor.py': `
        import os
        import module_that_does_not_exist_xyz


        class PythonPredictor:
            def __init__(self, config):
                pass
      ` + OK_PREDICT,
    },
    want: [
      "error in predictor.py: ModuleNotFoundError: No module named 'module_that_does_not_exist_xyz'",
      /Traceback \(most recent call last\):/,
      /predictor\.py", line 2, in <module>/,
      /\nModuleNotFoundError: No module named 'module_that_does_not_exist_xyz'$/,
    ],
  },
  {
    name: 'an exception in __init__',
    files: {
      'predictor.py': `
        class PythonPredictor:
            def __init__(self, config):
                self.threshold = config["threshold"]
      ` + OK_PREDICT,
    },
    want: ["error in predictor.py: class PythonPredictor: __init__ failed: KeyError: 'threshold'", /predictor\.py", line 3, in __init__/, /KeyError: 'threshold'/],
  },
  {
    name: 'an import of a helper that raises inside __init__',
    files: {
      'helper.py': `
        def load(path):
            raise FileNotFoundError(f"no model at {path}")
      `,
      'predictor.py': `
        import helper


        class PythonPredictor:
            def __init__(self, config):
                self.model = helper.load("model.pkl")
      ` + OK_PREDICT,
    },
    want: ['__init__ failed: FileNotFoundError: no model at model.pkl', /helper\.py", line 2, in load/],
  },
  {
    name: 'a syntax error',
    files: {
      'predictor.py': `
        class PythonPredictor:
            def __init__(self, config)
                pass
      `,
    },
    want: ['error in predictor.py: SyntaxError', /predictor\.py", line 2/, /SyntaxError: expected ':'/],
  },
  {
    name: 'no PythonPredictor class',
    files: { 'predictor.py': 'class Predictor:\n    pass\n' },
    want: ['error in predictor.py: PythonPredictor class is not defined'],
  },
  {
    name: 'predict with an unsupported argument (Cortex’s message)',
    files: {
      'predictor.py': `
        class PythonPredictor:
            def __init__(self, config):
                pass

            def predict(self, payload, extra):
                return payload
      `,
    },
    want: ['error in predictor.py: class PythonPredictor: invalid signature for method "predict(self, payload, extra)": "extra" is not a supported argument'],
  },
  {
    name: '__init__ without config',
    files: {
      'predictor.py': `
        class PythonPredictor:
            def __init__(self):
                pass
      ` + OK_PREDICT,
    },
    want: ['invalid signature for method "__init__(self)": "config" is a required argument, but was not provided'],
  },
  {
    name: 'no predict method',
    files: {
      'predictor.py': `
        class PythonPredictor:
            def __init__(self, config):
                pass
      `,
    },
    want: ['class PythonPredictor: required method "predict" is not defined'],
  },
  {
    name: 'an ONNXPredictor without onnx_client',
    files: {
      'predictor.py': `
        class ONNXPredictor:
            def __init__(self, config):
                pass
      ` + OK_PREDICT,
    },
    spec: (p) => ({ predictor: { type: 'onnx', path: p.path('predictor.py'), modelPath: IRIS_ONNX } }),
    want: ['class ONNXPredictor: invalid signature for method "__init__(self, config)": "onnx_client" is a required argument, but was not provided'],
  },
  {
    name: 'a python_client predictor with models but no load_model',
    files: {
      'm.bin': 'x',
      'predictor.py': `
        class PythonPredictor:
            def __init__(self, config, python_client):
                pass
      ` + OK_PREDICT,
    },
    spec: (p) => ({ predictor: { modelPath: p.path('m.bin') } }),
    want: [
      'error in predictor.py: class PythonPredictor: required method "load_model" is not defined',
      'when the python predictor type is used and models are specified in the api spec, adding the "load_model" method is required',
    ],
  },
  {
    name: 'a predictor with models whose __init__ takes no python_client',
    files: {
      'models/a/model.bin': 'x',
      'predictor.py': `
        class PythonPredictor:
            def __init__(self, config):
                pass

            def load_model(self, model_path):
                return model_path
      ` + OK_PREDICT,
    },
    spec: (p) => ({ predictor: { models: { dir: p.path('models') } } }),
    want: [
      'error in predictor.py: class PythonPredictor: invalid signature for method "__init__(self, config)": "python_client" is a required argument, but was not provided',
      'adding the "python_client" argument is required',
    ],
  },
  {
    name: 'load_model raising while the models are loaded at start (no cache_size)',
    files: {
      'models/a/model.bin': 'x',
      'predictor.py': `
        import os


        class PythonPredictor:
            def __init__(self, config, python_client):
                pass

            def load_model(self, model_path):
                raise ValueError("cannot read " + os.path.basename(os.path.normpath(model_path)))
      ` + OK_PREDICT,
    },
    spec: (p) => ({ predictor: { models: { dir: p.path('models') } } }),
    want: ['error in predictor.py: class PythonPredictor: load_model failed: failed loading model a of version 1: ValueError: cannot read a', 'line 9, in load_model'],
  },
  {
    name: 'models.dir that does not exist',
    files: { 'predictor.py': 'class PythonPredictor:\n    pass\n' },
    spec: (p) => ({ predictor: { models: { dir: p.path('nope') } } }),
    want: [/nope: models\.dir was not found/],
  },
  {
    name: 'post_predict with an unsupported argument',
    files: {
      'predictor.py': `
        class PythonPredictor:
            def __init__(self, config):
                pass

            def predict(self):
                return 1

            def post_predict(self, response, extra):
                pass
      `,
    },
    want: ['invalid signature for method "post_predict(self, response, extra)": "extra" is not a supported argument'],
  },
  {
    name: 'an interpreter that does not exist',
    files: { 'predictor.py': 'class PythonPredictor:\n    pass\n' },
    spec: () => ({ predictor: { env: { MYELIN_PYTHON: '/nonexistent/python3' } } }),
    want: ['cannot run the Python interpreter "/nonexistent/python3"', 'ENOENT', 'set MYELIN_PYTHON or myelin up --python'],
    code: 'ENG_PREDICTOR_PYTHON',
  },
];

describe('python predictors that cannot start', () => {
  const started = cases.map(async (c) => {
    const t = await startPythonReplica({ files: c.files, spec: c.spec, awaitReady: false });
    const outcome = await t.replica.ready.then(
      () => undefined,
      (err: unknown) => err as Error & { code?: string },
    );
    return { t, err: outcome };
  });

  for (const [i, c] of cases.entries()) {
    test(`${c.name}: replica.ready rejects with the Python error; the replica is failed`, async () => {
      const { t, err } = await started[i];
      try {
        assert.ok(err, 'ready rejected');
        for (const w of c.want) {
          if (typeof w === 'string') assert.ok(err.message.includes(w), `want ${JSON.stringify(w)} in:\n${err.message}`);
          else assert.match(err.message, w);
        }
        assert.equal(err.code, c.code ?? 'ENG_PREDICTOR_LOAD');
        assert.equal(t.replica.state(), 'failed');
        const r = await t.postJson({});
        assert.equal(r.status, 503);
        assert.deepEqual(r.json(), { error: 'the predictor failed to load', request_id: r.headers['x-request-id'] });
        assert.equal((await httpCall(t.target, { path: '/healthz/ready' })).status, 503);
        const logged = t.log.lines().find((l) => l.msg === 'replica failed: the predictor cannot be loaded');
        assert.ok(logged, 'the failure is logged');
      } finally {
        await t[Symbol.asyncDispose]();
      }
    });
  }
});
