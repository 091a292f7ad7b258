import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatAge, formatLatency, renderTable } from '../../../serving/cli/table.js';

test('renderTable aligns columns and hides zero-only starred columns', () => {
  const rows = [
    { a: 'iris-classifier', b: 1, c: 0 },
    { a: 'x', b: 12, c: 0 },
  ];
  const got = renderTable(rows, [
    { title: 'api', value: (r) => r.a },
    { title: 'up-to-date', value: (r) => r.b },
    { title: '5XX', value: (r) => r.c, hideWhenZero: true },
  ]);
  assert.equal(got, 'api               up-to-date\niris-classifier   1\nx                 12\n');
});

test('formatters', () => {
  const cases: Array<[string, string, string]> = [
    [formatAge(17 * 60_000 + 5), '17m', 'age minutes'],
    [formatAge(3 * 3_600_000), '3h', 'age hours'],
    [formatAge(5 * 86_400_000), '5d', 'age days'],
    [formatLatency(24.123456789), '24.1235 ms', 'latency ms'],
    [formatLatency(1500), '1.5 s', 'latency s'],
    [formatLatency(null), '-', 'latency none'],
  ];
  for (const [got, want, name] of cases) assert.equal(got, want, name);
});
