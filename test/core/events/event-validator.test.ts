import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { MAX_EVENT_BYTES, type EngineEvent } from '../../../core/events/engine-event.js';
import { checkOutgoingEvent, decodeEngineEvent, encodeEngineEvent, isEngineEvent } from '../../../core/events/event-validator.js';

const t = 1_763_900_000_000;
const decided: EngineEvent = {
  v: 1,
  type: 'scaling.decided',
  api: 'iris',
  t,
  from: 2,
  to: 4,
  policy: 'cortex',
  avgInFlight: 40,
  target: 10,
  raw: 4,
  recommendation: 4,
  reason: 'avg 40 in flight at target 10',
};

const valid: ReadonlyArray<{ name: string; x: unknown }> = [
  { name: 'scaling.decided', x: decided },
  { name: 'replica.started', x: { v: 1, type: 'replica.started', api: 'iris', t, replica: 'iris-1', revision: 'r1' } },
  { name: 'replica.crashed with exit code and signal', x: { v: 1, type: 'replica.crashed', api: 'iris', t, replica: 'iris-1', revision: 'r1', exitCode: null, signal: 'SIGKILL', reason: 'oom' } },
  { name: 'api.status with message', x: { v: 1, type: 'api.status', api: 'iris', t, status: 'live', message: 'ok' } },
  { name: 'rollout.progress', x: { v: 1, type: 'rollout.progress', api: 'iris', t, revision: 'r2', updated: 1, stale: 2, requested: 3 } },
  { name: 'metrics.unavailable', x: { v: 1, type: 'metrics.unavailable', api: 'iris', t, replicas: 3, reason: 'no fresh samples' } },
  { name: 'api.deployed with extra fields', x: { v: 1, type: 'api.deployed', api: 'iris', t, revision: 'r1', anything: { nested: true } } },
  { name: 'api.deleted', x: { v: 1, type: 'api.deleted', api: 'iris', t } },
  { name: 'deploy.progress', x: { v: 1, type: 'deploy.progress', api: 'iris', t, stage: 'requirements', line: 'Requirement already satisfied: numpy' } },
  { name: 'unknown extra field on a typed event (readers ignore it)', x: { ...decided, tick: 12 } },
];

const invalid: ReadonlyArray<{ name: string; x: unknown }> = [
  { name: 'null', x: null },
  { name: 'array', x: [decided] },
  { name: 'v 2', x: { ...decided, v: 2 } },
  { name: 'unknown type', x: { ...decided, type: 'scaling.guessed' } },
  { name: 'api not DNS-1035', x: { ...decided, api: 'Iris_1' } },
  { name: 'api with a subject wildcard', x: { ...decided, api: 'iris.>' } },
  { name: 'negative t', x: { ...decided, t: -1 } },
  { name: 'missing t', x: { v: 1, type: 'api.deleted', api: 'iris' } },
  { name: 'scaling.decided without reason', x: { ...decided, reason: undefined } },
  { name: 'scaling.decided with fractional to', x: { ...decided, to: 2.5 } },
  { name: 'scaling.decided with NaN raw', x: { ...decided, raw: Number.NaN } },
  { name: 'replica event without replica', x: { v: 1, type: 'replica.ready', api: 'iris', t, revision: 'r1' } },
  { name: 'replica event with exitCode as string', x: { v: 1, type: 'replica.stopped', api: 'iris', t, replica: 'a', revision: 'r1', exitCode: '1' } },
  { name: 'api.status without status', x: { v: 1, type: 'api.status', api: 'iris', t } },
  { name: 'rollout.progress with negative stale', x: { v: 1, type: 'rollout.progress', api: 'iris', t, revision: 'r2', updated: 1, stale: -2, requested: 3 } },
  { name: 'metrics.unavailable without replicas', x: { v: 1, type: 'metrics.unavailable', api: 'iris', t, reason: 'x' } },
  { name: 'deploy.progress without line', x: { v: 1, type: 'deploy.progress', api: 'iris', t, stage: 'requirements' } },
  { name: 'deploy.progress of an unknown stage', x: { v: 1, type: 'deploy.progress', api: 'iris', t, stage: 'conda', line: 'x' } },
];

describe('event validation', () => {
  for (const c of valid) {
    test(`valid: ${c.name}`, () => {
      assert.equal(isEngineEvent(c.x), true);
      assert.equal(checkOutgoingEvent(c.x), '');
    });
  }
  for (const c of invalid) {
    test(`invalid: ${c.name}`, () => {
      assert.equal(isEngineEvent(c.x), false);
      assert.notEqual(checkOutgoingEvent(c.x), '');
    });
  }
  test('an event whose JSON exceeds the size limit is refused before publishing', () => {
    const big = { v: 1, type: 'api.status', api: 'iris', t, status: 'error', message: 'x'.repeat(MAX_EVENT_BYTES) };
    assert.equal(isEngineEvent(big), true);
    assert.match(checkOutgoingEvent(big), /bytes >/);
  });
});

describe('event codec', () => {
  for (const c of valid) {
    test(`round trip: ${c.name}`, () => {
      const got = decodeEngineEvent(encodeEngineEvent(c.x as EngineEvent));
      assert.equal(got.ok, true);
      if (got.ok) assert.deepEqual(got.value, c.x);
    });
  }
  const bad: ReadonlyArray<{ name: string; bytes: Uint8Array; want: string }> = [
    { name: 'oversized', bytes: new Uint8Array(MAX_EVENT_BYTES + 1).fill(0x20), want: 'oversized' },
    { name: 'not JSON', bytes: Buffer.from('hello'), want: 'malformed' },
    { name: 'JSON, not an event', bytes: Buffer.from('{"v":1}'), want: 'invalid' },
  ];
  for (const c of bad) {
    test(`decode rejects ${c.name}`, () => {
      const got = decodeEngineEvent(c.bytes);
      assert.equal(got.ok ? 'ok' : got.reason, c.want);
    });
  }
});
