import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { pino } from 'pino';
import { ManualClock } from '../../../core/clock.js';
import { InvalidMessageLog } from '../../../core/metrics/invalid-message-log.js';

test('logs the first invalid message at once, then one line per interval with the suppressed count', () => {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  const clock = new ManualClock(0);
  const log = new InvalidMessageLog(pino({ level: 'info' }, sink), clock, 'metric sample', 10_000);
  const steps: ReadonlyArray<{ advanceMs: number; reports: number; wantLines: number; wantSuppressed?: number }> = [
    { advanceMs: 0, reports: 1, wantLines: 1, wantSuppressed: 0 },
    { advanceMs: 5_000, reports: 100, wantLines: 1 },
    { advanceMs: 4_999, reports: 1, wantLines: 1 },
    { advanceMs: 1, reports: 1, wantLines: 2, wantSuppressed: 101 },
    { advanceMs: 10_000, reports: 1, wantLines: 3, wantSuppressed: 0 },
  ];
  for (const [i, s] of steps.entries()) {
    clock.advance(s.advanceMs);
    for (let k = 0; k < s.reports; k++) log.report({ source: 'myelin.metrics.iris', reason: 'invalid', detail: 'x'.repeat(400) });
    assert.equal(lines.length, s.wantLines, `step ${i}: want ${s.wantLines} lines, got ${lines.length}`);
    if (s.wantSuppressed !== undefined) {
      const last = lines[lines.length - 1];
      assert.equal(last.msg, 'dropped an invalid message');
      assert.equal(last.suppressed, s.wantSuppressed, `step ${i}`);
      assert.equal(last.source, 'myelin.metrics.iris');
      assert.ok(String(last.detail).length <= 301);
    }
  }
});
