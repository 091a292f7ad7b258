// Issue 11, defects 4 and 6, through a real onnx replica (no predictor file) on loopback: non-finite
// numbers are refused with 400 naming the input, and a body's size, nesting and value count are bounded.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { httpCall } from '../../harness/http-client.js';
import { apiSpecFixture } from '../../harness/api-spec-fixture.js';
import { irisModel, writeOnnxModel } from '../../harness/model-builders.js';
import { startReplica, type Replica } from '../../../serving/replica/replica-server.js';
import { jsonLimitExceeded, jsonValueLimit } from '../../../serving/replica/request-payload.js';
import { captureLog } from './replica-test-kit.js';

const MAX_BODY = 64 * 1024; // ⇒ 4096 JSON values
let dir: string;
let replica: Replica;
let port: number;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'myelin-limits-'));
  const model = await writeOnnxModel(join(dir, 'iris.onnx'), irisModel());
  const spec = apiSpecFixture({ projectDir: dir, predictor: { type: 'onnx', models: { path: model } }, networking: { maxBodyBytes: MAX_BODY } } as never);
  replica = await startReplica({ spec, log: captureLog().log, maxJsonDepth: 64 });
  await replica.ready;
  port = replica.address.port!;
});
after(async () => {
  await replica.close({ graceMs: 0 });
  await rm(dir, { recursive: true, force: true });
});

const post = (body: string) => httpCall({ port }, { method: 'POST', path: '/', headers: { 'content-type': 'application/json' }, body });
const error = (text: string): string => (JSON.parse(text) as { error: string }).error;

describe('non-finite numbers (defect 6)', () => {
  test('1e309 is answered 400 naming the input and the element', async () => {
    const r = await post('[[5.1, 3.5, 1e309, 0.2]]');
    assert.equal(r.status, 400, r.text);
    assert.equal(error(r.text), 'input "input": element [0][2] is not a finite number (Infinity: beyond ±1.8e308)');
  });
  test('a 1000-digit number, and -1e400 in { input: … }', async () => {
    const r = await post(`[[5.1, 3.5, 1.4, ${'7'.repeat(1000)}]]`);
    assert.equal(r.status, 400, r.text);
    assert.match(error(r.text), /^input "input": element \[0\]\[3\] is not a finite number/);
    const m = await post('{"input": [[1, 2, 3, 4], [-1e400, 0, 0, 0]]}');
    assert.equal(m.status, 400, m.text);
    assert.match(error(m.text), /^input "input": element \[1\]\[0\] is not a finite number \(-Infinity/);
  });
  test('beyond float32 (1e39) too; finite values still get 200', async () => {
    const r = await post('[[1e39, 0, 0, 0]]');
    assert.equal(r.status, 400, r.text);
    assert.match(error(r.text), /element \[0\]\[0\] is not a finite float32 number/);
    const ok = await post('[[5.1, 3.5, 1.4, 0.2]]');
    assert.equal(ok.status, 200, ok.text);
    assert.ok((JSON.parse(ok.text) as { probabilities: number[][] }).probabilities[0].every((p) => typeof p === 'number'));
  });
});

describe('body limits (defect 4)', () => {
  test('a body over max_body_size: 413 naming the limit', async () => {
    const r = await post(`"${'x'.repeat(MAX_BODY)}"`);
    assert.equal(r.status, 413, r.text);
    assert.match(error(r.text), /larger than the limit of 65536 bytes \(networking\.max_body_size\)/);
  });
  test('more JSON values than one per 16 bytes of max_body_size: 400 naming the limit', async () => {
    assert.equal(jsonValueLimit(MAX_BODY), 4096);
    const rows = Array.from({ length: 1000 }, () => '[0,0,0,0]').join(',');
    const r = await post(`[${rows}]`); // 1 + 1000 × 5 values, 10 kB
    assert.equal(r.status, 400, r.text);
    assert.match(error(r.text), /JSON holds more than 4096 values \(the limit: one per 16 bytes of networking\.max_body_size\)/);
    const fewer = await post(`[${Array.from({ length: 800 }, () => '[0,0,0,0]').join(',')}]`); // 4001 values
    assert.equal(fewer.status, 200, fewer.text);
  });
  test('nesting deeper than the limit: 400 naming it', async () => {
    const r = await post(`${'['.repeat(65)}0${']'.repeat(65)}`.padEnd(200, ' '));
    assert.equal(r.status, 400, r.text);
    assert.match(error(r.text), /JSON nested deeper than 64 levels \(the limit\)/);
  });
  test('jsonLimitExceeded counts values exactly and skips strings', () => {
    const b = (s: string) => Buffer.from(s);
    assert.equal(jsonLimitExceeded(b('[1,2,3]'), 10, 4), undefined);
    assert.equal(jsonLimitExceeded(b('[1,2,3]'), 10, 3), 'values');
    assert.equal(jsonLimitExceeded(b('[ ]'), 10, 1), undefined);
    assert.equal(jsonLimitExceeded(b('{"a,b,c": [], "d": {}}'), 10, 5), undefined);
    assert.equal(jsonLimitExceeded(b('{"a,b,c": [], "d": {}}'), 10, 2), 'values');
    assert.equal(jsonLimitExceeded(b('[[[0]]]'), 2, 100), 'depth');
    assert.equal(jsonLimitExceeded(b('"[[[\\"[[["'), 2, 1), undefined);
  });
});
