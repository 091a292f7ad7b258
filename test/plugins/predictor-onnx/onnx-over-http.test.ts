/**
 * The onnx backend behind a real replica (node:http on loopback), in the replica's main thread and in
 * piscina worker threads: bad tensors are answered 400 naming the input, the expected and the got,
 * and never take the replica down (issue #5 item 9, shapes and dtypes).
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { pino } from 'pino';
import { startReplica, type ExecutorChoice, type Replica } from '../../../serving/replica/replica-server.js';
import { apiSpecFixture } from '../../harness/api-spec-fixture.js';
import { addModel, int64Model, irisModel, writeOnnxModel } from '../../harness/model-builders.js';

interface Answer {
  readonly status: number;
  readonly body: unknown;
}

function post(port: number, path: string, body: string, contentType = 'application/json'): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method: 'POST', headers: { 'content-type': contentType } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        resolve({ status: res.statusCode ?? 0, body: text.length ? JSON.parse(text) : undefined });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

function get(port: number, path: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    request({ host: '127.0.0.1', port, path }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) }));
    })
      .on('error', reject)
      .end();
  });
}

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'myelin-onnx-http-'));
  await writeOnnxModel(join(dir, 'iris.onnx'), irisModel());
  await writeOnnxModel(join(dir, 'add.onnx'), addModel());
  await writeOnnxModel(join(dir, 'int64.onnx'), int64Model());
});
after(() => rm(dir, { recursive: true, force: true }));

const executors: ExecutorChoice[] = ['in-thread', 'worker-threads'];
for (const executor of executors) {
  describe(`onnx over HTTP (${executor})`, () => {
    let replica: Replica;
    let port: number;
    const lines: Record<string, unknown>[] = [];
    before(async () => {
      const log = pino(
        { level: 'info' },
        new Writable({
          write: (c, _e, cb) => {
            for (const l of String(c).split('\n')) if (l.trim()) lines.push(JSON.parse(l) as Record<string, unknown>);
            cb();
          },
        }),
      );
      replica = await startReplica({
        spec: apiSpecFixture({
          name: 'zoo',
          projectDir: dir,
          predictor: {
            type: 'onnx',
            models: {
              paths: [
                { name: 'iris', path: join(dir, 'iris.onnx') },
                { name: 'add', path: join(dir, 'add.onnx') },
                { name: 'ids', path: join(dir, 'int64.onnx') },
              ],
            },
          },
        }),
        log,
        executor,
      });
      await replica.ready;
      port = replica.address.port!;
    });
    after(() => replica.close({ graceMs: 1000 }));

    test('a good request, then GET / shows the runtime and the signatures', async () => {
      const ok = await post(port, '/predict?model=iris', JSON.stringify([[5.1, 3.5, 1.4, 0.2]]));
      assert.equal(ok.status, 200);
      assert.deepEqual((ok.body as { label: number[] }).label, [0]);
      const summary = JSON.stringify((await get(port, '/')).body);
      assert.match(summary, /onnxruntime-node 1\.30\.0/);
      assert.match(summary, /"name":"input","dtype":"float32","shape":\["batch",4\]/);
    });

    test('wrong shapes and dtypes are 400s naming the input, the expected and the got', async () => {
      const cases: { name: string; path: string; body: string; want: RegExp }[] = [
        { name: 'inner dim', path: '/?model=iris', body: '[[1, 2, 3]]', want: /^input "input": expected shape \[batch, 4\], got \[1, 3\]$/ },
        { name: 'rank', path: '/?model=iris', body: '[5.1, 3.5, 1.4, 0.2]', want: /^input "input": expected shape \[batch, 4\], got \[4\]/ },
        { name: 'ragged', path: '/?model=iris', body: '[[1, 2, 3, 4], [1]]', want: /^input "input": ragged nested array: \[1\] has 1 elements, expected 4/ },
        { name: 'string for float', path: '/?model=iris', body: '[[1, 2, "3", 4]]', want: /^input "input": expected float32 values, got string "3" at \[0\]\[2\]$/ },
        { name: 'fraction for int64', path: '/?model=ids', body: '{"ids": [[1, 2, 3.5]]}', want: /^input "ids": expected int64 values, got number 3.5 at \[0\]\[2\]$/ },
        { name: 'batch mismatch', path: '/?model=add', body: '{"a": [[1, 2, 3]], "b": [[1, 2, 3], [4, 5, 6]]}', want: /^input "b": dimension "batch" is 2, but input "a" has it as 1$/ },
        { name: 'missing input', path: '/?model=add', body: '{"a": [[1, 2, 3]]}', want: /^missing input "b" \(the model's inputs: a, b\)$/ },
        { name: 'no model name', path: '/', body: '[[1, 2, 3, 4]]', want: /^model_name was not specified/ },
      ];
      for (const c of cases) {
        const got = await post(port, c.path, c.body);
        assert.equal(got.status, 400, `${c.name}: ${JSON.stringify(got.body)}`);
        assert.match((got.body as { error: string }).error, c.want, c.name);
      }
      const text = await post(port, '/?model=iris', 'hello', 'text/plain');
      assert.equal(text.status, 400);
      // Still serving, and ready.
      const ok = await post(port, '/?model=add', '{"a": [[1, 2, 3]], "b": [[1, 1, 1]]}');
      assert.deepEqual([ok.status, ok.body], [200, { sum: [[2, 3, 4]], product: [[1, 2, 3]] }]);
      assert.equal(replica.state(), 'ready');
    });

    test('?debug=true logs each stage once under the request id', async () => {
      const from = lines.length;
      await post(port, '/?model=iris&debug=true', '[[6.3, 3.3, 6.0, 2.5]]');
      const stages = lines.slice(from).filter((l) => l.msg === 'debug stage');
      assert.deepEqual(stages.map((l) => l.stage), ['raw sample', 'inference']);
      assert.equal(new Set(stages.map((l) => l.requestId)).size, 1);
    });
  });
}
