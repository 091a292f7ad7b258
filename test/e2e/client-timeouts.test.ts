// Issue 11, defect 3, through a real daemon: `myelin up --headers-timeout/--request-timeout` reach the
// gateway and every replica, so a stalled upload is answered 408 (that it never counts in flight is
// checked at the replica, test/serving/replica/stalled-uploads.test.ts).
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { after, before, test } from 'node:test';
import { removeDir, startE2eDaemon, waitFor, type E2eDaemon } from './e2e-harness.js';

let d: E2eDaemon;
before(async () => {
  d = await startE2eDaemon({ daemon: { headersTimeoutMs: 1000, requestTimeoutMs: 1500 } });
  await d.deploy('- name: slow\n  kind: RealtimeAPI\n  predictor:\n    type: typescript\n    path: predictor.ts\n  compute:\n    cpu: 100m\n');
});
after(async () => {
  await d?.close();
  if (d) await removeDir(d.dir);
});

/** Sends `head` and part of a body, then nothing; resolves with what came back once the server closed. */
function stall(url: URL): Promise<string> {
  return new Promise((resolve) => {
    const s = connect(Number(url.port), '127.0.0.1');
    let text = '';
    s.setEncoding('utf8').on('data', (c: string) => (text += c));
    s.on('error', () => {});
    s.once('close', () => resolve(text));
    s.write(`POST ${url.pathname} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{"x":`);
  });
}

test('the replicas get the timeouts in their environment', async () => {
  const detail = await waitFor('a ready replica', 30_000, async () => {
    const got = await d.get('slow');
    return got.replicas.find((r) => r.state === 'ready' && r.pid !== undefined);
  });
  const environ = (await readFile(`/proc/${detail.pid}/environ`, 'utf8')).split('\0');
  assert.ok(environ.includes('MYELIN_HEADERS_TIMEOUT_MS=1000'), 'headers timeout');
  assert.ok(environ.includes('MYELIN_REQUEST_TIMEOUT_MS=1500'), 'request timeout');
});

test('stalled uploads through the gateway get 408 after the request timeout; the API keeps answering', async () => {
  const url = new URL(await d.url('slow'));
  const answers = await Promise.all(Array.from({ length: 10 }, () => stall(url)));
  for (const a of answers) assert.match(a, /^HTTP\/1\.1 408 /, a);
  const ok = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
  assert.equal(ok.status, 200);
});
