import assert from 'node:assert/strict';
import { test } from 'node:test';
import { readableLogLine, renderApiDetail } from '../../../../serving/cli/commands/get.js';
import type { ApiDetail } from '../../../../serving/daemon/daemon-service.js';

const TRACEBACK = ['Traceback (most recent call last):', '  File "predictor.py", line 1, in <module>', "ModuleNotFoundError: No module named 'sklearn'"].join('\n');

test('readableLogLine: pino JSON lines become level, message and error; other lines stay as they are', () => {
  const cases: ReadonlyArray<{ name: string; line: string; want: string }> = [
    {
      name: 'pino error with err.message',
      line: JSON.stringify({ level: 50, time: '2025-01-01T00:00:00.000Z', pid: 1, msg: 'predictor failed to load', err: { type: 'PredictorError', message: TRACEBACK, stack: 'PredictorError: …' } }),
      want: `error predictor failed to load: ${TRACEBACK}`,
    },
    { name: 'pino info', line: JSON.stringify({ level: 30, msg: 'replica listening', port: 1 }), want: 'info replica listening' },
    { name: 'a traceback line', line: '  File "predictor.py", line 1, in <module>', want: '  File "predictor.py", line 1, in <module>' },
    { name: 'JSON that is not a log line', line: '{"a":1}', want: '{"a":1}' },
    { name: 'not JSON after all', line: '{oops', want: '{oops' },
  ];
  for (const c of cases) assert.equal(readableLogLine(c.line), c.want, `${c.name}: want ${JSON.stringify(c.want)}, got ${JSON.stringify(readableLogLine(c.line))}`);
});

test('renderApiDetail: a failed predictor start shows the status message and readable last log lines', () => {
  const message = `replicas keep crashing (3 crashes in 5m); last crash: predictor failed to start: ${TRACEBACK}`;
  const d: ApiDetail = {
    name: 'iris',
    status: 'error',
    message,
    endpoint: '/iris',
    url: 'http://127.0.0.1:8888/iris',
    revision: 'abc',
    upToDate: 0,
    stale: 0,
    requested: 1,
    failed: 3,
    lastUpdated: 0,
    requests: { '2xx': 0, '4xx': 0, '5xx': 0, avgLatencyMs: null },
    spec: null,
    replicas: [{ id: 'iris-abc-3', revision: 'abc', state: 'crashed' }],
    autoscaler: { policy: 'cortex', avgInFlight: null, target: 1, raw: null, recommendation: null, lastDecision: null, lastTick: null },
    lastLogLines: [JSON.stringify({ level: 50, msg: 'predictor failed to load', err: { message: TRACEBACK } }), "ModuleNotFoundError: No module named 'sklearn'"],
  };
  const got = renderApiDetail(d, 60_000);
  assert.ok(got.includes(`\n${message}\n`), got);
  assert.ok(
    got.endsWith(
      [
        'last log lines:',
        '  error predictor failed to load: Traceback (most recent call last):',
        '    File "predictor.py", line 1, in <module>',
        "  ModuleNotFoundError: No module named 'sklearn'",
        "  ModuleNotFoundError: No module named 'sklearn'",
        '',
      ].join('\n'),
    ),
    got,
  );
});
