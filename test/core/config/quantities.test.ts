import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  CPU_PATTERN,
  DURATION_PATTERN,
  formatCpu,
  formatDuration,
  formatIntOrPercent,
  formatMemory,
  INT_OR_PERCENT_PATTERN,
  MEMORY_PATTERN,
  parseCpu,
  parseDuration,
  parseIntOrPercent,
  parseMemory,
  type ParseResult,
} from '../../../core/config/quantities.js';

type Case<T> = { readonly input: unknown; readonly want: T | Error };

/** `Error` in `want` means: the parser must refuse, and the message must contain the error's message. */
function check<T>(name: string, parse: (v: unknown) => ParseResult<T>, cases: readonly Case<T>[]): void {
  for (const c of cases) {
    test(`${name}(${JSON.stringify(c.input)})`, () => {
      const got = parse(c.input);
      if (c.want instanceof Error) {
        assert.equal(got.ok, false, `want an error, got ${JSON.stringify(got)}`);
        if (!got.ok) assert.ok(got.message.includes(c.want.message), `want message containing ${JSON.stringify(c.want.message)}, got ${JSON.stringify(got.message)}`);
      } else {
        assert.deepEqual(got, { ok: true, value: c.want });
      }
    });
  }
}

check('parseDuration', parseDuration, [
  { input: '250ms', want: 250 },
  { input: '60s', want: 60_000 },
  { input: '5m', want: 300_000 },
  { input: '1h30m', want: 5_400_000 },
  { input: '1h30m15s', want: 5_415_000 },
  { input: '1.5h', want: 5_400_000 },
  { input: '.5s', want: 500 },
  { input: '0', want: 0 },
  { input: '0s', want: 0 },
  { input: '10s', want: 10_000 },
  { input: '1500us', want: 2 },
  { input: '1500000ns', want: 2 },
  { input: '168h', want: 168 * 3_600_000 },
  { input: '169h', want: new Error('at most 168h') },
  { input: '60', want: new Error('invalid duration (got "60"') },
  { input: 60, want: new Error('with a unit (got 60)') },
  { input: '5 minutes', want: new Error('invalid duration (got "5 minutes", must be a duration such as "250ms"') },
  { input: '-5s', want: new Error('invalid duration') },
  { input: ' 5s', want: new Error('invalid duration') },
  { input: '1d', want: new Error('invalid duration') },
  { input: '', want: new Error('invalid duration') },
  { input: null, want: new Error('(got null)') },
  { input: true, want: new Error('(got true)') },
  { input: ['5s'], want: new Error('(got a list)') },
  { input: '9'.repeat(100) + 's', want: new Error('invalid duration') },
]);

// The CLI's `--since` reads durations with the same parser: days allowed, no upper limit.
const sinceOptions = { allowDays: true, maxMs: Infinity } as const;
check('parseDuration(--since)', (v) => parseDuration(v, sinceOptions), [
  { input: '10m', want: 600_000 },
  { input: '1h30m', want: 5_400_000 },
  { input: '250ms', want: 250 },
  { input: '2d', want: 2 * 86_400_000 },
  { input: '1d12h', want: 36 * 3_600_000 },
  { input: '30d', want: 30 * 86_400_000 },
  { input: '0', want: 0 },
  { input: '', want: new Error('invalid duration') },
  { input: '10', want: new Error('invalid duration (got "10", must be a duration such as "250ms", "60s", "5m", "1h30m" or "2d")') },
  { input: 'm', want: new Error('invalid duration') },
  { input: '10x', want: new Error('invalid duration') },
  { input: '5m junk', want: new Error('invalid duration') },
]);

check('parseDuration(maxMs 1m)', (v) => parseDuration(v, { maxMs: 60_000 }), [
  { input: '60s', want: 60_000 },
  { input: '61s', want: new Error('must be at most 1m (got "61s")') },
  { input: '1d', want: new Error('invalid duration') },
]);

check('parseCpu', parseCpu, [
  { input: '200m', want: 200 },
  { input: '1', want: 1000 },
  { input: '0.5', want: 500 },
  { input: '2', want: 2000 },
  { input: 1, want: 1000 },
  { input: 0.5, want: 500 },
  { input: 2, want: 2000 },
  { input: 0.2, want: 200 },
  { input: 0.1, want: 100 },
  { input: '0.0001', want: 1 },
  { input: '1500m', want: 1500 },
  { input: '.25', want: 250 },
  { input: '0', want: 0 },
  { input: '2.5m', want: 3 },
  { input: '200 m', want: new Error('invalid CPU quantity (got "200 m"') },
  { input: '1Gi', want: new Error('invalid CPU quantity') },
  { input: '-1', want: new Error('invalid CPU quantity') },
  { input: -1, want: new Error('(got -1)') },
  { input: Infinity, want: new Error('must be a CPU quantity') },
  { input: 1e300, want: new Error('too large') },
  { input: null, want: new Error('(got null)') },
  { input: {}, want: new Error('(got a map)') },
]);

check('parseMemory', parseMemory, [
  { input: '200Mi', want: 200 * 2 ** 20 },
  { input: '1Gi', want: 2 ** 30 },
  { input: '200M', want: 200e6 },
  { input: '1G', want: 1e9 },
  { input: '512Ki', want: 512 * 1024 },
  { input: '1k', want: 1000 },
  { input: '1K', want: 1000 },
  { input: '1.5Gi', want: 1.5 * 2 ** 30 },
  { input: '1048576', want: 1_048_576 },
  { input: 1_048_576, want: 1_048_576 },
  { input: '0.5', want: 1 },
  { input: '1Ti', want: 2 ** 40 },
  { input: '1 Gi', want: new Error('invalid memory quantity (got "1 Gi"') },
  { input: '1GB', want: new Error('invalid memory quantity') },
  { input: '1gi', want: new Error('invalid memory quantity') },
  { input: '-1Gi', want: new Error('invalid memory quantity') },
  { input: '9999999Ei', want: new Error('too large') },
  { input: -5, want: new Error('(got -5)') },
  { input: false, want: new Error('(got false)') },
]);

check('parseIntOrPercent', parseIntOrPercent, [
  { input: 5, want: { kind: 'absolute', value: 5 } },
  { input: 0, want: { kind: 'absolute', value: 0 } },
  { input: '5', want: { kind: 'absolute', value: 5 } },
  { input: '10%', want: { kind: 'percent', value: 10 } },
  { input: '0%', want: { kind: 'percent', value: 0 } },
  { input: '100%', want: { kind: 'percent', value: 100 } },
  { input: '101%', want: new Error('between 0% and 100% (got "101%")') },
  { input: -1, want: new Error('at least 0 (got -1)') },
  { input: 1.5, want: new Error('(got 1.5)') },
  { input: '1.5%', want: new Error('invalid value (got "1.5%"') },
  { input: 'ten', want: new Error('invalid value') },
  { input: null, want: new Error('(got null)') },
]);

test('the schema patterns accept exactly what the parsers accept', () => {
  const pairs: readonly [string, string, (v: unknown) => ParseResult<unknown>, readonly string[]][] = [
    ['duration', DURATION_PATTERN, parseDuration, ['250ms', '60s', '5m', '1h30m', '0', '0s', '.5s', '1.5h', '60', '5 minutes', '-5s', '1d', '', 'ms', '1h30', '1µs', '1μs']],
    ['cpu', CPU_PATTERN, parseCpu, ['200m', '1', '0.5', '.5', '2', '1.5m', 'm', '', '1Gi', '-1', '1.']],
    ['memory', MEMORY_PATTERN, parseMemory, ['200Mi', '1Gi', '200M', '1G', '1', '1k', '1K', '1Ki', '1gi', '1GB', '', 'Mi', '1.5Gi', '1.']],
    ['int-or-percent', INT_OR_PERCENT_PATTERN, parseIntOrPercent, ['5', '10%', '0', '100%', '1.5', '%', '', '-1']],
  ];
  for (const [name, pattern, parse, inputs] of pairs) {
    const re = new RegExp(pattern, 'u');
    for (const input of inputs) {
      // The parser may refuse a value the pattern allows for its range (e.g. `101%`), never the other way round.
      if (parse(input).ok) assert.ok(re.test(input), `${name}: parser accepts ${JSON.stringify(input)} but the pattern does not`);
      else if (!/too large|at most|between/.test((parse(input) as { message: string }).message)) {
        assert.ok(!re.test(input), `${name}: pattern accepts ${JSON.stringify(input)} but the parser does not`);
      }
    }
  }
});

test('formatters print what users write', () => {
  const cases: readonly [string, string][] = [
    [formatDuration(250), '250ms'],
    [formatDuration(60_000), '1m'],
    [formatDuration(5_400_000), '1h30m'],
    [formatDuration(10_000), '10s'],
    [formatDuration(0), '0s'],
    [formatCpu(200), '200m'],
    [formatCpu(1000), '1'],
    [formatCpu(1500), '1500m'],
    [formatMemory(200 * 2 ** 20), '200Mi'],
    [formatMemory(2 ** 30), '1Gi'],
    [formatMemory(1000), '1k'],
    [formatMemory(2e9), '2G'],
    [formatMemory(1001), '1001'],
    [formatIntOrPercent({ kind: 'percent', value: 25 }), '25%'],
    [formatIntOrPercent({ kind: 'absolute', value: 3 }), '3'],
  ];
  for (const [got, want] of cases) assert.equal(got, want);
});
