import assert from 'node:assert/strict';
import { test } from 'node:test';
import { INITIAL_SCALING_POLICY_STATE, isScalingPolicyState } from '../../../core/ports/scaling-policy.js';

const cases: { name: string; state: unknown; want: boolean }[] = [
  { name: 'the initial state', state: INITIAL_SCALING_POLICY_STATE, want: true },
  { name: 'a state with history and panic', state: { v: 1, startMs: 5, history: [[10, 3]], panic: { sinceMs: 1, lastOverMs: 2 } }, want: true },
  { name: 'a JSON round trip', state: JSON.parse(JSON.stringify({ v: 1, startMs: null, history: [], panic: null })), want: true },
  { name: 'another version', state: { v: 2, startMs: null, history: [], panic: null }, want: false },
  { name: 'not an object', state: 'state', want: false },
  { name: 'null', state: null, want: false },
  { name: 'a history entry that is not [t, int]', state: { v: 1, startMs: null, history: [[1, 2.5]], panic: null }, want: false },
  { name: 'history missing', state: { v: 1, startMs: null, panic: null }, want: false },
  { name: 'a start time that is not a number', state: { v: 1, startMs: '0', history: [], panic: null }, want: false },
  { name: 'a malformed panic', state: { v: 1, startMs: 0, history: [], panic: { sinceMs: 1 } }, want: false },
];

for (const c of cases) {
  test(`isScalingPolicyState: ${c.name} ⇒ ${c.want}`, () => {
    assert.equal(isScalingPolicyState(c.state), c.want);
  });
}
