/**
 * The tensorflow backend (tfjs on wasm) behind a real replica whose predictors run in piscina worker
 * threads: predictions, a 400 for a bad tensor, and the runtime shown in GET /.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { pino } from 'pino';
import { startReplica, type Replica } from '../../../serving/replica/replica-server.js';
import { apiSpecFixture } from '../../harness/api-spec-fixture.js';
import { writeTfjsGraphIris } from '../../harness/tfjs-model-builders.js';

function call(port: number, method: string, path: string, body?: string): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method, headers: { 'content-type': 'application/json' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

let dir: string;
let replica: Replica;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'myelin-tf-http-'));
  await writeTfjsGraphIris(join(dir, 'graph'));
  replica = await startReplica({
    spec: apiSpecFixture({
      name: 'iris-tf',
      projectDir: dir,
      predictor: { type: 'tensorflow', modelPath: join(dir, 'graph'), processesPerReplica: 2, env: { MYELIN_TFJS_RUNTIME: 'wasm' } },
    }),
    log: pino({ level: 'silent' }),
    executor: 'worker-threads',
  });
  await replica.ready;
});
after(async () => {
  await replica.close({ graceMs: 1000 });
  await rm(dir, { recursive: true, force: true });
});

test('tfjs-wasm in worker threads over HTTP', async () => {
  const port = replica.address.port!;
  const ok = await call(port, 'POST', '/predict', '{"input": [[5.1, 3.5, 1.4, 0.2], [6.3, 3.3, 6.0, 2.5]]}');
  assert.equal(ok.status, 200);
  assert.deepEqual((ok.body as { label: number[] }).label, [0, 2]);
  const bad = await call(port, 'POST', '/predict', '[[5.1, 3.5]]');
  assert.deepEqual([bad.status, bad.body], [400, { error: 'input "input": expected shape [-1, 4], got [1, 2]' }]);
  assert.match(JSON.stringify((await call(port, 'GET', '/')).body), /@tensorflow\/tfjs 4\.\d+\.\d+ \(wasm backend\)/);
});
