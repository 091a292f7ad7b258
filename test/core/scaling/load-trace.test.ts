import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError } from '../../../core/errors.js';
import { parseLoadTrace, type LoadTrace } from '../../../core/scaling/load-trace.js';

const pt = (tSec: number, total: number | null, replicas: Record<string, number | null> = {}, cpu: number | null = null) => ({ tSec, total, replicas, cpu });

interface Case {
  readonly name: string;
  readonly format: 'csv' | 'jsonl';
  readonly text: string;
  readonly want: LoadTrace;
}

const cases: Case[] = [
  {
    name: 'csv without header, two columns: time and total',
    format: 'csv',
    text: '0,2\n60,12\n\n# comment\n120,\n',
    want: { mode: 'total', replicaIds: [], points: [pt(0, 2), pt(60, 12), pt(120, null)] },
  },
  {
    name: 'csv without header, more columns: one per replica',
    format: 'csv',
    text: '0,1,2\n1,3,\n',
    want: { mode: 'replicas', replicaIds: ['r1', 'r2'], points: [pt(0, null, { r1: 1, r2: 2 }), pt(1, null, { r1: 3, r2: null })] },
  },
  {
    name: 'csv with header: total and cpu',
    format: 'csv',
    text: 't,inflight,cpu\r\n0,4,0.5\r\n10.5,8,0.9\r\n',
    want: { mode: 'total', replicaIds: [], points: [pt(0, 4, {}, 0.5), pt(10.5, 8, {}, 0.9)] },
  },
  {
    name: 'csv with header naming replicas',
    format: 'csv',
    text: 'seconds,api-a,api-b\n0,1.5,2\n',
    want: { mode: 'replicas', replicaIds: ['api-a', 'api-b'], points: [pt(0, null, { 'api-a': 1.5, 'api-b': 2 })] },
  },
  {
    name: 'jsonl totals with cpu and an outage',
    format: 'jsonl',
    text: '{"t": 0, "inFlight": 3, "cpu": 0.4}\n{"t": 5, "inFlight": null}\n',
    want: { mode: 'total', replicaIds: [], points: [pt(0, 3, {}, 0.4), pt(5, null)] },
  },
  {
    name: 'jsonl per-replica objects and lists',
    format: 'jsonl',
    text: '{"t": 0, "replicas": {"a": 1, "b": 2}}\n{"t": 1, "replicas": {"b": 4, "c": null}}\n',
    want: { mode: 'replicas', replicaIds: ['a', 'b', 'c'], points: [pt(0, null, { a: 1, b: 2 }), pt(1, null, { b: 4, c: null })] },
  },
];

for (const c of cases) {
  test(`parseLoadTrace: ${c.name}`, () => {
    assert.deepEqual(parseLoadTrace(c.text, c.format, 'trace'), c.want);
  });
}

const bad: { name: string; format: 'csv' | 'jsonl'; text: string; want: RegExp[] }[] = [
  { name: 'negative and non-numeric values, with line and column', format: 'csv', text: 't,inflight\n0,-1\n1,abc\n', want: [/^trace:2:3: inflight must be a number ≥ 0 or empty \(got "-1"\)$/, /^trace:3:3: inflight must be a number ≥ 0/] },
  { name: 'time going backwards', format: 'csv', text: '5,1\n4,1\n', want: [/^trace:2:1: time 4 s goes backwards \(previous 5 s\)$/] },
  { name: 'column count mismatch', format: 'csv', text: '0,1,2\n1,2\n', want: [/^trace:2:1: expected 3 columns, got 2$/] },
  { name: 'total and replica columns together', format: 'csv', text: 't,inflight,a\n0,1,1\n', want: [/give either a total in-flight column or per-replica columns/] },
  { name: 'header without time first', format: 'csv', text: 'inflight,t\n1,0\n', want: [/first column must be the time in seconds/] },
  { name: 'empty trace', format: 'csv', text: '# nothing\n', want: [/the trace has no data lines/] },
  { name: 'jsonl not JSON', format: 'jsonl', text: '{"t": 0, "inFlight": 1}\n{t: 1}\n', want: [/^trace:2:1: not JSON/] },
  { name: 'jsonl missing load', format: 'jsonl', text: '{"t": 0}\n', want: [/missing "inFlight"/] },
  { name: 'jsonl mixing kinds', format: 'jsonl', text: '{"t": 0, "inFlight": 1}\n{"t": 1, "replicas": [1]}\n', want: [/mixes lines/] },
];

for (const c of bad) {
  test(`parseLoadTrace rejects: ${c.name}`, () => {
    assert.throws(
      () => parseLoadTrace(c.text, c.format, 'trace'),
      (e: unknown) => {
        assert.ok(e instanceof ConfigError);
        const lines = e.message.split('\n').filter((l) => l.startsWith('trace:'));
        for (const w of c.want) assert.ok(lines.some((l) => w.test(l)) || w.test(e.message), `want ${w} in:\n${e.message}`);
        return true;
      },
    );
  });
}
