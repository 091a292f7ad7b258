// Issue 11, defect 3, at the replica: a stalled upload (headers, then half a body) is answered 408 and
// closed after requestTimeoutMs, a half-sent head is closed after headersTimeoutMs, and neither ever
// counts as in flight (what autoscaling reads), while an idle keep-alive connection is left alone.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { apiSpecFixture } from '../../harness/api-spec-fixture.js';
import { irisModel, writeOnnxModel } from '../../harness/model-builders.js';
import { startReplica, type Replica } from '../../../serving/replica/replica-server.js';
import { captureLog } from './replica-test-kit.js';

let dir: string;
let replica: Replica;
let port: number;
const inFlightSeen: number[] = [];
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'myelin-stalled-'));
  const model = await writeOnnxModel(join(dir, 'iris.onnx'), irisModel());
  const spec = apiSpecFixture({ projectDir: dir, predictor: { type: 'onnx', models: { path: model } } } as never);
  replica = await startReplica({ spec, log: captureLog().log, headersTimeoutMs: 1000, requestTimeoutMs: 1500 });
  await replica.ready;
  port = replica.address.port!;
});
after(async () => {
  await replica.close({ graceMs: 0 });
  await rm(dir, { recursive: true, force: true });
});

interface RawConn {
  readonly socket: Socket;
  text(): string;
  readonly closed: Promise<void>;
}
function raw(first: string): RawConn {
  const socket = connect(port, '127.0.0.1');
  let text = '';
  socket.setEncoding('utf8').on('data', (c: string) => (text += c));
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  socket.on('error', () => {});
  socket.write(first);
  return { socket, text: () => text, closed };
}

async function until(what: string, check: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const SAMPLE = '[[5.1, 3.5, 1.4, 0.2]]';

test('thirty stalled uploads: never in flight, each answered 408 and closed; a real request is served meanwhile', async () => {
  const timer = setInterval(() => inFlightSeen.push(replica.counts().inFlight), 10);
  try {
    const stalled = Array.from({ length: 30 }, () => raw(`POST / HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: ${SAMPLE.length}\r\n\r\n${SAMPLE.slice(0, 10)}`));
    await until('30 bodies arriving', () => replica.counts().receiving === 30);
    assert.equal(replica.counts().inFlight, 0, 'a body still arriving is not in flight');

    const ok = await fetch(`http://127.0.0.1:${port}/`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: SAMPLE });
    assert.equal(ok.status, 200, await ok.text());

    await Promise.all(stalled.map((c) => c.closed));
    for (const c of stalled) assert.match(c.text(), /^HTTP\/1\.1 408 Request Timeout\r\n/);
    await until('nothing admitted', () => replica.counts().receiving === 0);
    assert.deepEqual(replica.counts(), { inFlight: 0, queued: 0, receiving: 0 });
    assert.ok(Math.max(...inFlightSeen) <= 1, `only the real request was ever in flight (saw ${Math.max(...inFlightSeen)})`);
  } finally {
    clearInterval(timer);
  }
});

test('a request head that never ends is closed after headersTimeoutMs', async () => {
  const c = raw('POST / HTTP/1.1\r\nhost: 127.0.0.1\r\nx-slow: ');
  await c.closed;
  assert.doesNotMatch(c.text(), /200 OK/);
});

test('an idle keep-alive connection outlives both timeouts and serves its next request', async () => {
  const request = `POST / HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: ${SAMPLE.length}\r\n\r\n${SAMPLE}`;
  const c = raw(request);
  await until('the first answer', () => /HTTP\/1\.1 200/.test(c.text()));
  await new Promise((r) => setTimeout(r, 2500)); // longer than headersTimeoutMs and requestTimeoutMs
  c.socket.write(request);
  await until('the second answer', () => (c.text().match(/HTTP\/1\.1 200/g) ?? []).length === 2);
  c.socket.destroy();
});
