import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PICK_FULL, PICK_NONE, pickUpstream, type Candidate } from '../../../serving/gateway/pick-upstream.js';

const c = (outstanding: number, ejectedUntilMs = 0): Candidate => ({ outstanding, directInFlight: 0, ejectedUntilMs });

interface Case {
  readonly name: string;
  readonly loads: readonly Candidate[];
  readonly start: number;
  readonly max: number;
  readonly nowMs?: number;
  readonly tried?: readonly number[];
  readonly want: number;
}

const cases: readonly Case[] = [
  { name: 'no candidates', loads: [], start: 0, max: 10, want: PICK_NONE },
  { name: 'least outstanding wins', loads: [c(3), c(1), c(2)], start: 0, max: 10, want: 1 },
  { name: 'tie: first met from the cursor (start 0)', loads: [c(2), c(0), c(1), c(0)], start: 0, max: 10, want: 1 },
  { name: 'tie: first met from the cursor (start 2)', loads: [c(2), c(0), c(1), c(0)], start: 2, max: 10, want: 3 },
  { name: 'tie: cursor wraps around', loads: [c(1), c(1), c(1)], start: 2, max: 10, want: 2 },
  { name: 'full replicas are skipped', loads: [c(2), c(1), c(3)], start: 0, max: 2, want: 1 },
  { name: 'all full', loads: [c(2), c(2)], start: 1, max: 2, want: PICK_FULL },
  { name: 'ejected replica used last', loads: [c(0, 100), c(4)], start: 0, max: 10, nowMs: 50, want: 1 },
  { name: 'ejection expired', loads: [c(0, 100), c(4)], start: 0, max: 10, nowMs: 100, want: 0 },
  { name: 'only ejected ones left: least loaded of them', loads: [c(3, 100), c(1, 100)], start: 0, max: 10, nowMs: 50, want: 1 },
  { name: 'ejected but full is still full', loads: [c(2, 100)], start: 0, max: 2, nowMs: 50, want: PICK_FULL },
  { name: 'tried ones are skipped', loads: [c(0), c(5)], start: 0, max: 10, tried: [0], want: 1 },
  { name: 'all tried', loads: [c(0), c(5)], start: 0, max: 10, tried: [0, 1], want: PICK_NONE },
];

for (const k of cases) {
  test(`pickUpstream: ${k.name}`, () => {
    const tried = k.tried === undefined ? null : k.tried.map((i) => k.loads[i]);
    const got = pickUpstream(k.loads, k.start, k.max, k.nowMs ?? 0, tried);
    assert.equal(got, k.want, `want ${k.want}, got ${got}`);
  });
}
