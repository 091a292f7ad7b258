// A PythonPredictor behind a real replica (real python3 worker, real HTTP): every payload kind as
// Python sees it, query parameters and headers, and every response kind Python can return — plain
// values, starlette/fastapi responses and HTTPException, duck-typed responses, numpy values — and
// an exception (a generic 500; the traceback logged under the request id).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { HttpResult } from '../../harness/http-client.js';
import { pythonHas, startPythonReplica, type PythonReplica } from './python-test-kit.js';

const HAVE_FASTAPI = pythonHas('fastapi', 'starlette');

const PREDICTOR = `
  import numpy as np

  try:
      from fastapi import HTTPException
      from starlette.responses import JSONResponse, Response
  except ImportError:  # the tests that need them are skipped
      HTTPException = JSONResponse = Response = None


  def describe(v):
      if isinstance(v, bytes):
          return {"type": "bytes", "value": list(v)}
      if hasattr(v, "getlist"):
          fields = {}
          for k in v:
              values = []
              for x in v.getlist(k):
                  if isinstance(x, str):
                      values.append(x)
                  else:
                      values.append({"filename": x.filename, "content_type": x.content_type, "data": list(x.file.read())})
              fields[k] = values
          last = {k: (v[k] if isinstance(v[k], str) else v[k].filename) for k in v}
          return {"type": "form", "value": fields, "last": last}
      return {"type": type(v).__name__, "value": v}


  class Duck:
      status_code = 203
      body = b"quack"
      headers = {"X-Duck": "yes"}
      media_type = "text/plain"


  class Conflict(Exception):
      status_code = 409
      detail = "already there"


  class PythonPredictor:
      def __init__(self, config):
          self.config = config

      def predict(self, payload, query_params, headers):
          behave = query_params.get("behave", "echo")
          if behave == "echo":
              return describe(payload)
          if behave == "types":
              return [type(x).__name__ for x in payload]
          if behave == "query":
              return {"k": query_params.getlist("k"), "last": query_params["k"], "s": query_params.get("s"), "missing": query_params.get("nope"), "keys": sorted(query_params.keys())}
          if behave == "headers":
              return {"exact": headers["X-Custom"], "lower": headers.get("x-custom"), "upper": "X-CUSTOM" in headers, "ct": headers.get("Content-Type")}
          if behave == "dict":
              return {"a": 1, "nested": {"b": [1.5, None, True]}}
          if behave == "list":
              return [1, "x", None]
          if behave == "int":
              return 42
          if behave == "float":
              return 2.5
          if behave == "none":
              return None
          if behave == "str":
              return "plain text ✓"
          if behave == "bytes":
              return b"\\x00\\x01\\xff"
          if behave == "numpy":
              return {"f": np.float32(0.5), "i": np.int64(3), "a": np.arange(3), "m": np.ones((2, 2), dtype=np.float64), "b": np.bool_(True)}
          if behave == "numpy-array":
              return np.array([[1, 2], [3, 4]], dtype=np.int32)
          if behave == "response":
              return Response(content=b"a,b\\n1,2\\n", status_code=201, headers={"X-Model": "v2"}, media_type="text/csv")
          if behave == "json-response":
              return JSONResponse({"made": True}, status_code=202, headers={"x-made-by": "starlette"})
          if behave == "http-exception":
              raise HTTPException(status_code=418, detail="short and stout", headers={"X-Why": "tea"})
          if behave == "http-exception-dict":
              raise HTTPException(status_code=422, detail={"field": "x"})
          if behave == "duck":
              return Duck()
          if behave == "duck-error":
              raise Conflict()
          if behave == "raise":
              return 1 / 0 if payload == "div" else {}["secret detail that must stay in the log"]
          if behave == "double":
              return payload + payload
          if behave == "unserializable":
              return {"x": object()}
          raise ValueError(f"unknown behave={behave}")
`;

const multipart = [
  '--XyZ',
  'Content-Disposition: form-data; name="field"',
  '',
  'value',
  '--XyZ',
  'Content-Disposition: form-data; name="field"',
  '',
  'second',
  '--XyZ',
  'Content-Disposition: form-data; name="file"; filename="a.bin"',
  'Content-Type: image/png',
  '',
  '\u0000\u0001\u00ff',
  '--XyZ--',
  '',
].join('\r\n');

describe('python payloads and responses over HTTP', () => {
  let t: PythonReplica;
  before(async () => {
    t = await startPythonReplica({ files: { 'predictor.py': PREDICTOR } });
  });
  after(() => t[Symbol.asyncDispose]());

  const payloads: { name: string; type?: string; body: string | Buffer; want: unknown }[] = [
    { name: 'JSON object → dict', type: 'application/json', body: '{"x": [1, 2], "s": "é"}', want: { type: 'dict', value: { x: [1, 2], s: 'é' } } },
    { name: 'JSON list → list', type: 'application/json', body: '[1, "a", null]', want: { type: 'list', value: [1, 'a', null] } },
    { name: 'JSON string → str', type: 'application/json', body: '"hi"', want: { type: 'str', value: 'hi' } },
    { name: 'JSON number → int', type: 'application/json; charset=utf-8', body: '7', want: { type: 'int', value: 7 } },
    { name: '+json media type → parsed', type: 'application/vnd.api+json', body: '{"a": true}', want: { type: 'dict', value: { a: true } } },
    { name: 'text/plain → str', type: 'text/plain', body: 'héllo', want: { type: 'str', value: 'héllo' } },
    { name: 'text/plain latin1 → str', type: 'text/plain; charset=latin1', body: Buffer.from([0x68, 0xe9]), want: { type: 'str', value: 'hé' } },
    { name: 'octet-stream → bytes', type: 'application/octet-stream', body: Buffer.from([1, 2, 255]), want: { type: 'bytes', value: [1, 2, 255] } },
    { name: 'no content-type → bytes', body: Buffer.from([7]), want: { type: 'bytes', value: [7] } },
    { name: 'empty body → empty bytes', body: '', want: { type: 'bytes', value: [] } },
    { name: 'empty text → empty str', type: 'text/plain', body: '', want: { type: 'str', value: '' } },
    {
      name: 'urlencoded form → form object (getlist, last value by key)',
      type: 'application/x-www-form-urlencoded',
      body: 'a=1&a=2&b=%C3%A9',
      want: { type: 'form', value: { a: ['1', '2'], b: ['é'] }, last: { a: '2', b: 'é' } },
    },
    {
      name: 'multipart → form object with an UploadFile',
      type: 'multipart/form-data; boundary=XyZ',
      body: multipart,
      want: {
        type: 'form',
        value: { field: ['value', 'second'], file: [{ filename: 'a.bin', content_type: 'image/png', data: [0, 1, 0xc3, 0xbf] }] },
        last: { field: 'second', file: 'a.bin' },
      },
    },
  ];
  for (const c of payloads) {
    test(`payload: ${c.name}`, async () => {
      const r = await t.post('?behave=echo', c.body, c.type ?? '');
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(r.json(), c.want);
    });
  }

  test('JSON goes to json.loads as received: 1.0 arrives as a float, 2 as an int', async () => {
    const r = await t.post('?behave=types', '[1.0, 2, 2.50, 1e3, true, null]');
    assert.deepEqual(r.json(), ['float', 'int', 'float', 'float', 'bool', 'NoneType']);
  });

  test('query_params: a repeated key gives getlist, [] gives the last', async () => {
    const r = await t.post('?behave=query&k=1&k=2&s=x%20y');
    assert.deepEqual(r.json(), { k: ['1', '2'], last: '2', s: 'x y', missing: null, keys: ['behave', 'k', 's'] });
  });

  test('headers are case-insensitive', async () => {
    const r = await t.post('?behave=headers', '{}', 'application/json', { 'X-Custom': 'yes' });
    assert.deepEqual(r.json(), { exact: 'yes', lower: 'yes', upper: true, ct: 'application/json' });
  });

  const json = (r: HttpResult): unknown => r.json();
  const text = (r: HttpResult): unknown => r.text;
  const responses: { behave: string; status: number; type: string; body: (r: HttpResult) => unknown; want: unknown; fastapi?: boolean; headers?: Record<string, string> }[] = [
    { behave: 'dict', status: 200, type: 'application/json', body: json, want: { a: 1, nested: { b: [1.5, null, true] } } },
    { behave: 'list', status: 200, type: 'application/json', body: json, want: [1, 'x', null] },
    { behave: 'int', status: 200, type: 'application/json', body: text, want: '42' },
    { behave: 'float', status: 200, type: 'application/json', body: text, want: '2.5' },
    { behave: 'none', status: 200, type: 'application/json', body: text, want: 'null' },
    { behave: 'str', status: 200, type: 'text/plain; charset=utf-8', body: text, want: 'plain text ✓' },
    { behave: 'bytes', status: 200, type: 'application/octet-stream', body: (r) => [...r.body], want: [0, 1, 255] },
    { behave: 'numpy', status: 200, type: 'application/json', body: json, want: { f: 0.5, i: 3, a: [0, 1, 2], m: [[1, 1], [1, 1]], b: true } },
    { behave: 'numpy-array', status: 200, type: 'application/json', body: json, want: [[1, 2], [3, 4]] },
    { behave: 'duck', status: 203, type: 'text/plain', body: text, want: 'quack', headers: { 'x-duck': 'yes' } },
    { behave: 'duck-error', status: 409, type: 'application/json', body: json, want: { error: 'already there' } },
    { behave: 'response', status: 201, type: 'text/csv; charset=utf-8', body: text, want: 'a,b\n1,2\n', headers: { 'x-model': 'v2' }, fastapi: true },
    { behave: 'json-response', status: 202, type: 'application/json', body: json, want: { made: true }, headers: { 'x-made-by': 'starlette' }, fastapi: true },
    { behave: 'http-exception', status: 418, type: 'application/json', body: json, want: { error: 'short and stout' }, headers: { 'x-why': 'tea' }, fastapi: true },
    { behave: 'http-exception-dict', status: 422, type: 'application/json', body: json, want: { error: '{"field": "x"}' }, fastapi: true },
  ];
  for (const c of responses) {
    const skip = c.fastapi && !HAVE_FASTAPI ? `fastapi/starlette are not importable by ${process.env.MYELIN_PYTHON ?? 'python3'}` : false;
    test(`response: ${c.behave} → ${c.status} ${c.type}`, { skip }, async () => {
      const r = await t.post(`?behave=${c.behave}`);
      assert.equal(r.status, c.status, r.text);
      assert.equal(r.headers['content-type'], c.type);
      assert.equal(r.headers['content-length'], String(r.body.length));
      assert.deepEqual(c.body(r), c.want);
      for (const [k, v] of Object.entries(c.headers ?? {})) assert.equal(r.headers[k], v, `header ${k}`);
    });
  }

  for (const c of [
    { name: 'KeyError', body: '{}', at: /predictor\.py", line \d+, in predict/, error: /KeyError: 'secret detail that must stay in the log'/ },
    { name: 'ZeroDivisionError', body: '"div"', at: /predictor\.py", line \d+, in predict/, error: /ZeroDivisionError: division by zero/ },
    { name: 'an unserializable value', body: '{}', behave: 'unserializable', at: /in _encode_response/, error: /TypeError: Object of type object is not JSON serializable: please return an object that is JSON serializable/ },
  ]) {
    test(`an exception (${c.name}) is a generic 500; the traceback is logged under the request id`, async () => {
      const r = await t.post(`?behave=${c.behave ?? 'raise'}`, c.body);
      assert.equal(r.status, 500);
      const id = String(r.headers['x-request-id']);
      assert.deepEqual(r.json(), { error: 'internal server error', request_id: id });
      assert.doesNotMatch(r.text, /secret|Traceback/);
      const logged = t.linesOf(id).find((l) => l.level === 50 && l.msg === 'predictor failed');
      assert.ok(logged, `an error line under request id ${id}`);
      const stack = String((logged.err as { stack?: string }).stack);
      assert.match(stack, /Traceback \(most recent call last\):/);
      assert.match(stack, c.at);
      assert.match(stack, c.error);
    });
  }

  test('a 3 MiB body and a 6 MiB answer cross the pipes intact', async () => {
    const body = Buffer.alloc(3 * 1024 * 1024);
    for (let i = 0; i < body.length; i++) body[i] = (i * 7919) & 0xff;
    const r = await t.post('?behave=double', body, 'application/octet-stream');
    assert.equal(r.status, 200);
    assert.equal(r.body.length, 2 * body.length);
    assert.ok(r.body.subarray(0, body.length).equals(body) && r.body.subarray(body.length).equals(body), 'the same bytes twice');
  });

  test('an unknown behave (a ValueError) is a 500 too, and the worker keeps serving', async () => {
    assert.equal((await t.post('?behave=nope')).status, 500);
    assert.equal((await t.post('?behave=int')).text, '42');
    assert.equal(t.replica.state(), 'ready');
  });
});
