import assert from 'node:assert/strict';
import { test } from 'node:test';
import { planRollout, resolveUpdateBudget, type RolloutInput, type RolloutPlan } from '../../../../adapters/orchestrators/local/rollout-plan.js';
import type { IntOrPercent } from '../../../../core/config/api-spec.js';

const abs = (value: number): IntOrPercent => ({ kind: 'absolute', value });
const pct = (value: number): IntOrPercent => ({ kind: 'percent', value });

const budgetCases: readonly { name: string; surge: IntOrPercent; unavail: IntOrPercent; requested: number; want: { maxSurge: number; maxUnavailable: number } }[] = [
  { name: 'Cortex default 25%/25% of 4', surge: pct(25), unavail: pct(25), requested: 4, want: { maxSurge: 1, maxUnavailable: 1 } },
  { name: '25%/25% of 1: surge rounds up, unavailable down', surge: pct(25), unavail: pct(25), requested: 1, want: { maxSurge: 1, maxUnavailable: 0 } },
  { name: '25%/25% of 10', surge: pct(25), unavail: pct(25), requested: 10, want: { maxSurge: 3, maxUnavailable: 2 } },
  { name: 'absolute 0/1', surge: abs(0), unavail: abs(1), requested: 3, want: { maxSurge: 0, maxUnavailable: 1 } },
  { name: 'both resolve to 0 → one may be unavailable', surge: pct(0), unavail: pct(10), requested: 3, want: { maxSurge: 0, maxUnavailable: 1 } },
];
for (const c of budgetCases) {
  test(`resolveUpdateBudget: ${c.name}`, () => {
    assert.deepEqual(resolveUpdateBudget({ maxSurge: c.surge, maxUnavailable: c.unavail }, c.requested), c.want);
  });
}

const none: RolloutPlan = { startCurrent: 0, stopCurrent: 0, stopOldNotReady: 0, stopOldReady: 0, startOld: 0 };
const planCases: readonly { name: string; input: RolloutInput; want: RolloutPlan }[] = [
  {
    name: 'new API: start all',
    input: { requested: 3, budget: { maxSurge: 1, maxUnavailable: 0 }, current: { slots: 0, ready: 0 }, old: { slots: 0, ready: 0 }, halted: false },
    want: { ...none, startCurrent: 3 },
  },
  {
    name: 'steady state scale down stops the excess',
    input: { requested: 1, budget: { maxSurge: 1, maxUnavailable: 0 }, current: { slots: 3, ready: 3 }, old: { slots: 0, ready: 0 }, halted: false },
    want: { ...none, stopCurrent: 2 },
  },
  {
    name: 'surge 1 / unavailable 0, first step: one new, nothing old stops',
    input: { requested: 3, budget: { maxSurge: 1, maxUnavailable: 0 }, current: { slots: 0, ready: 0 }, old: { slots: 3, ready: 3 }, halted: false },
    want: { ...none, startCurrent: 1 },
  },
  {
    name: 'surge 1 / unavailable 0, new one ready: stop one old, start the next new',
    input: { requested: 3, budget: { maxSurge: 1, maxUnavailable: 0 }, current: { slots: 1, ready: 1 }, old: { slots: 3, ready: 3 }, halted: false },
    want: { ...none, stopOldReady: 1, startCurrent: 1 },
  },
  {
    name: 'surge 1 / unavailable 0, new one still starting: wait',
    input: { requested: 3, budget: { maxSurge: 1, maxUnavailable: 0 }, current: { slots: 1, ready: 0 }, old: { slots: 3, ready: 3 }, halted: false },
    want: none,
  },
  {
    name: 'surge 0 / unavailable 1, first step: stop one old and start one new in its place',
    input: { requested: 3, budget: { maxSurge: 0, maxUnavailable: 1 }, current: { slots: 0, ready: 0 }, old: { slots: 3, ready: 3 }, halted: false },
    want: { ...none, stopOldReady: 1, startCurrent: 1 },
  },
  {
    name: 'surge 0 / unavailable 1, new one starting: at the minimum, wait',
    input: { requested: 3, budget: { maxSurge: 0, maxUnavailable: 1 }, current: { slots: 1, ready: 0 }, old: { slots: 2, ready: 2 }, halted: false },
    want: none,
  },
  {
    name: 'old replicas that do not serve are stopped at once',
    input: { requested: 2, budget: { maxSurge: 1, maxUnavailable: 0 }, current: { slots: 0, ready: 0 }, old: { slots: 2, ready: 0 }, halted: false },
    want: { ...none, stopOldNotReady: 2, startCurrent: 2 },
  },
  {
    name: 'scaled to zero during a rollout: everything stops',
    input: { requested: 0, budget: { maxSurge: 1, maxUnavailable: 0 }, current: { slots: 1, ready: 1 }, old: { slots: 2, ready: 2 }, halted: false },
    want: { ...none, stopCurrent: 1, stopOldReady: 2 },
  },
  {
    name: 'halted: keep the crashing slots, restore the old revision to requested',
    input: { requested: 3, budget: { maxSurge: 0, maxUnavailable: 1 }, current: { slots: 1, ready: 0 }, old: { slots: 2, ready: 2 }, halted: true },
    want: { ...none, startOld: 1 },
  },
  {
    name: 'halted: old revision already at requested, nothing to do',
    input: { requested: 2, budget: { maxSurge: 1, maxUnavailable: 0 }, current: { slots: 1, ready: 0 }, old: { slots: 2, ready: 2 }, halted: true },
    want: none,
  },
  {
    name: 'halted and scaled down: excess old replicas go, not-ready ones first',
    input: { requested: 1, budget: { maxSurge: 1, maxUnavailable: 0 }, current: { slots: 1, ready: 0 }, old: { slots: 3, ready: 2 }, halted: true },
    want: { ...none, stopOldNotReady: 1, stopOldReady: 1 },
  },
];
for (const c of planCases) {
  test(`planRollout: ${c.name}`, () => assert.deepEqual(planRollout(c.input), c.want));
}

/**
 * Whole rollouts stepped to the end: each step applies the plan, stopped replicas vanish, then one
 * starting replica becomes ready (the slowest possible progress). Checks Kubernetes' invariants at
 * every step: ready ≥ R − maxUnavailable and slots ≤ R + maxSurge, and that the rollout finishes.
 */
const sims: readonly { R: number; surge: number; unavail: number }[] = [
  { R: 3, surge: 1, unavail: 0 },
  { R: 3, surge: 0, unavail: 1 },
  { R: 5, surge: 2, unavail: 1 },
  { R: 1, surge: 1, unavail: 0 },
  { R: 1, surge: 0, unavail: 1 },
  { R: 4, surge: 4, unavail: 0 },
];
for (const s of sims) {
  test(`planRollout simulation R=${s.R} surge=${s.surge} unavailable=${s.unavail}`, () => {
    let cur = { starting: 0, ready: 0 };
    let old = { ready: s.R };
    const minReady = s.R - s.unavail;
    for (let step = 0; step < 100; step++) {
      const p = planRollout({
        requested: s.R,
        budget: { maxSurge: s.surge, maxUnavailable: s.unavail },
        current: { slots: cur.starting + cur.ready, ready: cur.ready },
        old: { slots: old.ready, ready: old.ready },
        halted: false,
      });
      assert.equal(p.stopCurrent, 0);
      old = { ready: old.ready - p.stopOldReady };
      cur = { ...cur, starting: cur.starting + p.startCurrent };
      const ready = old.ready + cur.ready;
      const slots = old.ready + cur.starting + cur.ready;
      assert.ok(ready >= minReady, `step ${step}: ready ${ready} < minimum ${minReady}`);
      assert.ok(slots <= s.R + s.surge, `step ${step}: ${slots} slots > ${s.R + s.surge}`);
      if (old.ready === 0 && cur.ready === s.R) return;
      assert.ok(cur.starting > 0, `step ${step}: stuck (old ${old.ready}, new ready ${cur.ready})`);
      cur = { starting: cur.starting - 1, ready: cur.ready + 1 };
    }
    assert.fail('rollout did not finish in 100 steps');
  });
}
