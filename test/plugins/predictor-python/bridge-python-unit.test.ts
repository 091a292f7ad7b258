// The Python side of the bridge, unit by unit, in one real python3 process that imports
// myelin_bridge.py: request data types (MultiDict and friends), Cortex's input conversion
// (_to_inputs), response encoding, monitoring values, HTTP errors and signature checks.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { before, describe, test } from 'node:test';
import { BRIDGE_DIR, PYTHON, dedent } from './python-test-kit.js';

interface Case {
  readonly name: string;
  /** Python statements that set `result` (b = myelin_bridge, np = numpy). An exception gives `{raised: "Type: message"}`. */
  readonly code: string;
  readonly want: unknown;
}

const cases: Case[] = [
  // --- MultiDict, QueryParams, Headers, FormData
  {
    name: 'QueryParams: [] gives the last value, getlist every value, len counts keys',
    code: 'q = b.QueryParams([("k", "1"), ("k", "2"), ("s", "x")]); result = [q["k"], q.getlist("k"), len(q), "k" in q, q.get("nope", "dflt"), list(q), q.multi_items()]',
    want: ['2', ['1', '2'], 2, true, 'dflt', ['k', 's'], [['k', '1'], ['k', '2'], ['s', 'x']]],
  },
  {
    name: 'QueryParams: getlist of a missing key is empty, [] raises KeyError',
    code: 'q = b.QueryParams([]); result = [q.getlist("x"), q.get("x")]; q["x"]',
    want: { raised: "KeyError: 'x'" },
  },
  {
    name: 'Headers are case-insensitive',
    code: 'h = b.Headers([("Content-Type", "text/plain"), ("X-Many", "a"), ("x-many", "b")]); result = [h["content-type"], h.get("CONTENT-TYPE"), "X-MANY" in h, h.getlist("X-Many"), list(h.keys())]',
    want: ['text/plain', 'text/plain', true, ['a', 'b'], ['content-type', 'x-many']],
  },
  {
    name: 'QueryParams keys are case-sensitive',
    code: 'q = b.QueryParams([("K", "1")]); result = ["k" in q, "K" in q]',
    want: [false, true],
  },
  {
    name: 'FormData compares equal to a dict and holds UploadFiles',
    code: 'f = b.FormData([("a", "1"), ("file", b.UploadFile("x.bin", "image/png", b"\\x00\\x01"))]); u = f["file"]; result = [f == {"a": "1", "file": u}, u.filename, u.content_type, list(u.file.read()), u.read()]',
    want: [true, 'x.bin', 'image/png', [0, 1], ''],
  },
  // --- NodeArg
  {
    name: 'NodeArg shows ONNX types and None for unknown dims',
    code: 'a = b.NodeArg("input", "float32", ["batch", 4]); c = b.NodeArg("x", "int64", [-1, None, 3]); result = [a.name, a.type, a.shape, c.type, c.shape, b.NodeArg("s", "string", [1]).type]',
    want: ['input', 'tensor(float)', ['batch', 4], 'tensor(int64)', [null, null, 3], 'tensor(string)'],
  },
  // --- _to_inputs (Cortex's convert_to_onnx_input / transform_to_numpy)
  {
    name: '_to_inputs: a flat list is reshaped to [-1, 4] with the model dtype',
    code: 'r = b._to_inputs([5.1, 3.5, 1.4, 0.2], [b.NodeArg("input", "float32", ["batch", 4])], "iris"); a = r["input"]; result = [list(r), str(a.dtype), list(a.shape)]',
    want: [['input'], 'float32', [1, 4]],
  },
  {
    name: '_to_inputs: a batch keeps its rows',
    code: 'a = b._to_inputs([[1, 2, 3, 4], [5, 6, 7, 8]], [b.NodeArg("input", "float32", ["batch", 4])], "iris")["input"]; result = list(a.shape)',
    want: [2, 4],
  },
  {
    name: '_to_inputs: unknown dims count as 1 (Cortex)',
    code: 'a = b._to_inputs([1, 2, 3], [b.NodeArg("x", "int64", [None, 3])], "m")["x"]; result = [str(a.dtype), list(a.shape), a.tolist()]',
    want: ['int64', [1, 3], [[1, 2, 3]]],
  },
  {
    name: '_to_inputs: a numpy array is cast to the model dtype',
    code: 'a = b._to_inputs(np.array([[1, 2, 3, 4]], dtype=np.int64), [b.NodeArg("input", "float32", ["batch", 4])], "iris")["input"]; result = [str(a.dtype), list(a.shape)]',
    want: ['float32', [1, 4]],
  },
  {
    name: '_to_inputs: one input given as {name: value}',
    code: 'r = b._to_inputs({"input": [1, 2, 3, 4]}, [b.NodeArg("input", "float32", ["batch", 4])], "iris"); result = list(r["input"].shape)',
    want: [1, 4],
  },
  {
    name: '_to_inputs: strings become an object array',
    code: 'a = b._to_inputs(["a", "b"], [b.NodeArg("s", "string", [2])], "m")["s"]; result = [str(a.dtype), a.tolist()]',
    want: ['object', ['a', 'b']],
  },
  {
    name: '_to_inputs: several inputs need a dict',
    code: 'b._to_inputs([1, 2], [b.NodeArg("a", "float32", [1]), b.NodeArg("b", "float32", [1])], "add")',
    want: { raised: 'HTTPError: expected model_input to be a dictionary with keys \'"a", "b"\' for model \'add\'', status: 400 },
  },
  {
    name: '_to_inputs: a missing key is a 400',
    code: 'b._to_inputs({"a": [1]}, [b.NodeArg("a", "float32", [1]), b.NodeArg("b", "float32", [1])], "add")',
    want: { raised: "HTTPError: missing key 'b' for model 'add'", status: 400 },
  },
  {
    name: '_to_inputs: a shape that cannot fit is a 400 naming the input',
    code: dedent(`
      try:
          b._to_inputs([1, 2, 3], [b.NodeArg("input", "float32", ["batch", 4])], "iris")
      except b.HTTPError as e:
          result = [e.status_code, str(e).split(": cannot reshape array of size 3")[0]]
    `),
    want: [400, "failed to convert to numpy array for model 'iris': key 'input'"],
  },
  {
    name: '_to_inputs: an array of the model\'s rank is not reshaped, whatever its unknown dims (a batch of 2 for [None, 4])',
    code: 'a = b._to_inputs([[1, 2, 3, 4], [5, 6, 7, 8]], [b.NodeArg("input", "float32", [-1, 4])], "tf")["input"]; result = list(a.shape)',
    want: [2, 4],
  },
  {
    name: '_to_inputs: an array of the model\'s rank but a wrong shape is left for the runtime to refuse (it names the input)',
    code: 'a = b._to_inputs([[1, 2, 3]], [b.NodeArg("input", "float32", ["batch", 4])], "iris")["input"]; result = list(a.shape)',
    want: [1, 3],
  },
  {
    name: '_to_inputs: text for a number is a 400 naming the input',
    code: 'b._to_inputs(["x", 1, 2, 3], [b.NodeArg("input", "float32", ["batch", 4])], "iris")',
    want: { raised: "HTTPError: failed to convert to numpy array for model 'iris': key 'input': could not convert string to float: 'x'", status: 400 },
  },
  // --- responses
  {
    name: '_encode_response: bytes, str, dict, number, None',
    code: 'result = [[s, h, list(body)] for s, h, body in (b._encode_response(v) for v in (b"\\x01", "é", {"a": 1}, 2.5, None))]',
    want: [
      [200, [['content-type', 'application/octet-stream']], [1]],
      [200, [['content-type', 'text/plain; charset=utf-8']], [0xc3, 0xa9]],
      [200, [['content-type', 'application/json']], [...Buffer.from('{"a": 1}')]],
      [200, [['content-type', 'application/json']], [...Buffer.from('2.5')]],
      [200, [['content-type', 'application/json']], [...Buffer.from('null')]],
    ],
  },
  {
    name: '_encode_response: numpy values inside a dict become JSON',
    code: 'result = b._encode_response({"f": np.float32(0.5), "i": np.int64(3), "a": np.arange(3), "m": np.eye(2, dtype=np.uint8)})[2].decode()',
    want: '{"f": 0.5, "i": 3, "a": [0, 1, 2], "m": [[1, 0], [0, 1]]}',
  },
  {
    name: '_encode_response: a duck-typed response (headers dict, media_type, str body)',
    code: dedent(`
      class R:
          status_code = 201
          body = "made"
          headers = {"X-Model": "v2", "Content-Length": "99"}
          media_type = "text/csv"
      result = b._encode_response(R())
    `),
    want: [201, [['x-model', 'v2'], ['content-type', 'text/csv']], 'made'],
  },
  {
    name: '_encode_response: something JSON cannot encode names what is allowed',
    code: 'b._encode_response({"x": object()})',
    want: {
      raised:
        'TypeError: Object of type object is not JSON serializable: please return an object that is JSON serializable (including its nested fields), a bytes object, a string, or a starlette.response.Response object',
    },
  },
  {
    name: '_json_default: sets and tuples as lists, bytes as a size',
    code: 'result = b.json.loads(b.json.dumps({"s": {1}, "t": (1, 2), "b": b"abc"}, default=b._json_default))',
    want: { s: [1], t: [1, 2], b: '<3 bytes>' },
  },
  // --- HTTP errors
  {
    name: '_http_error_of: ours, a look-alike, a dict detail, not one',
    code: dedent(`
      class Teapot(Exception):
          status_code = 418
          detail = {"why": "tea"}
          headers = {"X-Why": 1}
      class NoDetail(Exception):
          status_code = 409
      class BadStatus(Exception):
          status_code = 99
          detail = "x"
      result = [b._http_error_of(b.HTTPError(404, "gone")), b._http_error_of(Teapot()), b._http_error_of(NoDetail()), b._http_error_of(BadStatus()), b._http_error_of(ValueError("v"))]
    `),
    want: [[404, 'gone', {}], [418, '{"why": "tea"}', { 'X-Why': '1' }], null, null, null],
  },
  // --- monitoring
  {
    name: '_monitored_value: classification (str, int, numpy int, bool, key) and regression',
    code: dedent(`
      c = {"model_type": "classification", "key": None}
      k = {"model_type": "classification", "key": "label"}
      r = {"model_type": "regression", "key": None}
      result = [b._monitored_value("cat", c), b._monitored_value(2, c), b._monitored_value(np.int64(1), c), b._monitored_value(True, c),
                b._monitored_value({"label": "dog"}, k), b._monitored_value(["dog"], k), b._monitored_value(1.5, r), b._monitored_value(float("nan"), r),
                b._monitored_value("x", r)]
    `),
    want: ['cat', '2', '1', null, 'dog', null, 1.5, null, null],
  },
  // --- signature checks (Cortex's messages)
  {
    name: '_check_args: the arguments after self',
    code: 'class P:\n    def predict(self, query_params, payload): pass\nresult = b._check_args(P, "predict", [], b.PREDICT_ARGS, "error in p.py")',
    want: ['query_params', 'payload'],
  },
  {
    name: '_check_args: an unsupported argument',
    code: 'class P:\n    def predict(self, payload, extra): pass\nb._check_args(P, "predict", [], b.PREDICT_ARGS, "error in p.py")',
    want: { raised: 'StartupError: error in p.py: class P: invalid signature for method "predict(self, payload, extra)": "extra" is not a supported argument' },
  },
  {
    name: '_check_args: a required argument missing',
    code: 'class P:\n    def __init__(self, onnx_client): pass\nb._check_args(P, "__init__", ["onnx_client", "config"], [], "error in p.py")',
    want: { raised: 'StartupError: error in p.py: class P: invalid signature for method "__init__(self, onnx_client)": "config" is a required argument, but was not provided' },
  },
  {
    name: '_check_args: a method not defined',
    code: 'class P:\n    pass\nb._check_args(P, "predict", [], b.PREDICT_ARGS, "error in p.py")',
    want: { raised: 'StartupError: error in p.py: class P: required method "predict" is not defined' },
  },
];

const SCRIPT = dedent(`
  import json, sys, traceback
  sys.path.insert(0, sys.argv[1])
  import numpy as np
  import myelin_bridge as b
  out = {}
  for name, code in json.load(sys.stdin):
      ns = {"b": b, "np": np}
      try:
          exec(code, ns)
          out[name] = json.loads(json.dumps(ns.get("result"), default=lambda v: v.decode() if isinstance(v, bytes) else b._json_default(v)))
      except Exception as e:
          got = {"raised": f"{type(e).__name__}: {e}"}
          if isinstance(e, b.HTTPError):
              got["status"] = e.status_code
          out[name] = got
  print(json.dumps(out))
`);

describe('myelin_bridge.py units (in python3)', () => {
  let got: Record<string, unknown>;
  before(() => {
    const r = spawnSync(PYTHON, ['-c', SCRIPT, BRIDGE_DIR], { input: JSON.stringify(cases.map((c) => [c.name, c.code])) });
    assert.equal(r.status, 0, r.stderr.toString());
    got = JSON.parse(r.stdout.toString()) as Record<string, unknown>;
  });
  for (const c of cases) {
    test(c.name, () => {
      assert.deepEqual(got[c.name], c.want);
    });
  }

  test('the bridge imports nothing outside the standard library at start', () => {
    const script = dedent(`
      import sys
      sys.path.insert(0, sys.argv[1])
      before = set(sys.modules)
      import myelin_bridge
      extra = sorted(m.split(".")[0] for m in set(sys.modules) - before if not m.startswith("_"))
      std = set(sys.stdlib_module_names)
      print(",".join(sorted({m for m in extra if m not in std and m != "myelin_bridge"})))
    `);
    const r = spawnSync(PYTHON, ['-c', script, BRIDGE_DIR]);
    assert.equal(r.status, 0, r.stderr.toString());
    assert.equal(r.stdout.toString().trim(), '', 'non-stdlib modules imported');
  });
});
