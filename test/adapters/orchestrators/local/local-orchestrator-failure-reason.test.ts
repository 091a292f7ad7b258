import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { MAX_FAILURE_BYTES, MAX_FAILURE_LINES, boundFailureMessage, failureMessageOf } from '../../../../adapters/orchestrators/local/replica-launcher.js';
import { apiSpecFixture } from '../../../harness/api-spec-fixture.js';
import { crashedReplicas, pidAlive, startTestOrchestrator, waitFor } from '../../../harness/local-orchestrator-harness.js';

const TRACEBACK = [
  'Traceback (most recent call last):',
  '  File "/srv/project/predictor.py", line 1, in <module>',
  '    import this_module_is_missing',
  "ModuleNotFoundError: No module named 'this_module_is_missing'",
].join('\n');

describe('boundFailureMessage: a failure message is kept whole but bounded', () => {
  const long = Array.from({ length: 60 }, (_, i) => `line ${i + 1}`).join('\n');
  const wide = Array.from({ length: 10 }, (_, i) => `${i}:${'x'.repeat(1000)}`).join('\n');
  const cases: ReadonlyArray<{ name: string; input: string; want: string }> = [
    { name: 'one line is kept', input: 'cannot load predictor.ts: SyntaxError', want: 'cannot load predictor.ts: SyntaxError' },
    { name: 'a short traceback is kept whole', input: TRACEBACK, want: TRACEBACK },
    { name: 'CRLF and trailing blank lines are normalized', input: 'a\r\nb\r\n\r\n', want: 'a\nb' },
    { name: 'leading blank lines are dropped', input: '\n\n  \nboom', want: 'boom' },
    { name: `more than ${MAX_FAILURE_LINES} lines keep the first and the last ones`, input: long, want: `line 1\n…\n${Array.from({ length: 18 }, (_, i) => `line ${i + 43}`).join('\n')}` },
    { name: `exactly ${MAX_FAILURE_LINES} lines are kept whole`, input: long.split('\n').slice(0, 20).join('\n'), want: long.split('\n').slice(0, 20).join('\n') },
    { name: 'an empty message stays empty', input: '  \n', want: '' },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const got = boundFailureMessage(c.input);
      assert.equal(got, c.want, `want ${JSON.stringify(c.want)}, got ${JSON.stringify(got)}`);
    });
  }
  test(`over ${MAX_FAILURE_BYTES} bytes: the first line clipped, then whole last lines`, () => {
    const got = boundFailureMessage(wide);
    assert.ok(Buffer.byteLength(got) <= MAX_FAILURE_BYTES, `got ${Buffer.byteLength(got)} bytes`);
    const [head, mark, ...tail] = got.split('\n');
    assert.match(head, /^0:x+…$/);
    assert.ok(Buffer.byteLength(head) <= 512);
    assert.equal(mark, '…');
    assert.ok(tail.length >= 3, `${tail.length} lines kept`);
    assert.ok(tail.every((l) => /^\d:x{1000}$/.test(l)), 'only whole lines');
    assert.equal(tail[tail.length - 1], `9:${'x'.repeat(1000)}`);
  });
  test('one huge line, or a huge last line: bounded, the end of the last line kept', () => {
    const one = boundFailureMessage('é'.repeat(5000));
    assert.ok(Buffer.byteLength(one) <= MAX_FAILURE_BYTES && one.endsWith('é…'), `${Buffer.byteLength(one)} bytes`);
    const last = boundFailureMessage(`summary\n${'y'.repeat(5000)}Error: boom`);
    assert.ok(Buffer.byteLength(last) <= MAX_FAILURE_BYTES, `${Buffer.byteLength(last)} bytes`);
    assert.match(last, /^summary\n…y+Error: boom$/);
  });
  test('failureMessageOf reads only myelin.replica.failed messages with a message', () => {
    assert.equal(failureMessageOf({ type: 'myelin.replica.failed', message: 'boom' }), 'boom');
    assert.equal(failureMessageOf({ type: 'myelin.replica.failed', message: ' ' }), null);
    assert.equal(failureMessageOf({ type: 'myelin.replica.failed' }), null);
    assert.equal(failureMessageOf({ type: 'myelin.replica.listening', port: 1 }), null);
    assert.equal(failureMessageOf('myelin.replica.failed'), null);
    assert.equal(failureMessageOf(null), null);
  });
});

describe('LocalOrchestrator: the reason a replica gives for not starting (real child processes)', () => {
  test('myelin.replica.failed then exit 1: the crash reason and the crash-loop status carry the message', async () => {
    const t = await startTestOrchestrator();
    try {
      const spec = apiSpecFixture({ name: 'pyfail', predictor: { env: { FAKE_FAIL_MESSAGE: TRACEBACK } } });
      await t.orch.apply({ spec, revision: 'pyfail0000', replicas: 1 });
      const s = await waitFor('crash loop', () => t.orch.status('pyfail')?.crashLooping && t.orch.status('pyfail'));
      const first = crashedReplicas(t, 'pyfail')[0];
      assert.equal(first.exitCode, 1);
      assert.equal(first.crashReason, `predictor failed to start: ${TRACEBACK}`);
      // A multi-line reason goes last, after the counts.
      const want = `replicas keep crashing (${s.failed} crashes in 1m); last crash: predictor failed to start: ${TRACEBACK}`;
      assert.equal(s.message, want, `want ${JSON.stringify(want)}, got ${JSON.stringify(s.message)}`);
      assert.ok(s.lastLogLines.some((l) => l.endsWith('predictor cannot start')), s.lastLogLines.join('\n'));
      // The orchestrator's own log note stays one line.
      const notes: string[] = [];
      const logSub = t.orch.logs$('pyfail', { follow: false }).subscribe((l) => notes.push(l));
      logSub.unsubscribe();
      const note = notes.find((l) => l.startsWith('[orchestrator] replica '));
      assert.match(note ?? '', /crashed \(predictor failed to start: Traceback \(most recent call last\): …\); replacing it in /);
    } finally {
      await t.close();
    }
    for (const pid of t.pids) assert.equal(pidAlive(pid), false, `pid ${pid} still running`);
  });

  test('a one-line failure keeps the usual one-line status', async () => {
    const t = await startTestOrchestrator();
    try {
      const spec = apiSpecFixture({ name: 'jsfail', predictor: { env: { FAKE_FAIL_MESSAGE: 'cannot load predictor.ts: SyntaxError: Unexpected token' } } });
      await t.orch.apply({ spec, revision: 'jsfail0000', replicas: 1 });
      const s = await waitFor('crash loop', () => t.orch.status('jsfail')?.crashLooping && t.orch.status('jsfail'));
      assert.match(s.message ?? '', /^replicas keep crashing \(\d+ crashes in 1m, last: predictor failed to start: cannot load predictor\.ts: SyntaxError: Unexpected token\)$/);
    } finally {
      await t.close();
    }
  });
});
