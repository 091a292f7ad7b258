import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { IntOrPercent } from '../../../../core/config/api-spec.js';
import type { ApiReplicaStatus, ReplicaInfo } from '../../../../core/ports/orchestrator-target.js';
import { apiSpecFixture } from '../../../harness/api-spec-fixture.js';
import { crashedReplicas, latest, ofApi, pidAlive, startTestOrchestrator, waitFor, type TestOrchestrator } from '../../../harness/local-orchestrator-harness.js';

const abs = (value: number): IntOrPercent => ({ kind: 'absolute', value });
const SLOT_STATES: ReadonlySet<ReplicaInfo['state']> = new Set(['pending', 'starting', 'ready', 'crashed']);

/** Ready replicas and slots of `api` in every list emitted from index `from` on. */
function history(t: TestOrchestrator, api: string, from: number): { ready: number[]; slots: number[] } {
  const lists = t.lists.slice(from);
  return {
    ready: lists.map((l) => ofApi(l, api, 'ready').length),
    slots: lists.map((l) => ofApi(l, api).filter((r) => SLOT_STATES.has(r.state)).length),
  };
}

/** `status(api)` after every replicas$ list, as the daemon reads it to publish `rollout.progress`. */
function recordStatus(t: TestOrchestrator, api: string): { readonly statuses: ApiReplicaStatus[]; unsubscribe(): void } {
  const statuses: ApiReplicaStatus[] = [];
  const sub = t.orch.replicas$().subscribe(() => {
    const s = t.orch.status(api);
    if (s) statuses.push(s);
  });
  return { statuses, unsubscribe: () => sub.unsubscribe() };
}

const rollouts: readonly { name: string; surge: number; unavailable: number; requested: number }[] = [
  { name: 'max_surge 1, max_unavailable 0', surge: 1, unavailable: 0, requested: 3 },
  { name: 'max_surge 0, max_unavailable 1', surge: 0, unavailable: 1, requested: 3 },
];

describe('LocalOrchestrator rolling updates (real child processes)', () => {
  for (const c of rollouts) {
    test(`rolls every replica to the new revision with ${c.name}, never below requested − max_unavailable ready`, async () => {
      const t = await startTestOrchestrator();
      const sub = recordStatus(t, 'roll');
      try {
        const strategy = { maxSurge: abs(c.surge), maxUnavailable: abs(c.unavailable) };
        const v1 = apiSpecFixture({ name: 'roll', updateStrategy: strategy, predictor: { env: { USER_V: '1' } } });
        await t.orch.apply({ spec: v1, revision: 'aaaa111111', replicas: c.requested });
        const old = await waitFor('v1 ready', () => ofApi(latest(t), 'roll', 'ready').length === c.requested && ofApi(latest(t), 'roll', 'ready'));

        const from = t.lists.length;
        const v2 = apiSpecFixture({ ...v1, predictor: { env: { USER_V: '2' } } });
        await t.orch.apply({ spec: v2, revision: 'bbbb222222', replicas: c.requested });
        await waitFor('only v2, all ready', () => {
          const l = ofApi(latest(t), 'roll');
          return l.length === c.requested && l.every((r) => r.revision === 'bbbb222222' && r.state === 'ready');
        });

        const h = history(t, 'roll', from);
        const minReady = c.requested - c.unavailable;
        assert.ok(Math.min(...h.ready) >= minReady, `ready dipped to ${Math.min(...h.ready)} (minimum ${minReady}): ${h.ready.join(',')}`);
        assert.ok(Math.max(...h.slots) <= c.requested + c.surge, `slots reached ${Math.max(...h.slots)} (maximum ${c.requested + c.surge}): ${h.slots.join(',')}`);
        // It was a real rollout: old replicas were stopped one by one, not all at once.
        assert.ok(h.ready.length > c.requested, 'several steps were observed');
        for (const r of old) assert.equal(pidAlive(r.pid!), false, `old replica ${r.id} still running`);

        const rolling = sub.statuses.filter((p) => p.revision === 'bbbb222222');
        assert.ok(rolling.some((p) => p.stale > 0 && p.upToDate > 0), 'old and new revisions served side by side mid-way');
        const last = rolling[rolling.length - 1];
        assert.deepEqual([last.upToDate, last.stale, last.requested], [c.requested, 0, c.requested]);
        const s = t.orch.status('roll')!;
        assert.deepEqual([s.revision, s.upToDate, s.stale, s.crashLooping, s.message], ['bbbb222222', c.requested, 0, false, undefined]);
      } finally {
        sub.unsubscribe();
        await t.close();
      }
    });
  }

  test('a new revision that crash-loops stops the rollout; the old revision keeps serving (max_surge 1)', async () => {
    const t = await startTestOrchestrator();
    try {
      const v1 = apiSpecFixture({ name: 'bad', updateStrategy: { maxSurge: abs(1), maxUnavailable: abs(0) } });
      await t.orch.apply({ spec: v1, revision: 'good111111', replicas: 2 });
      const old = await waitFor('v1 ready', () => ofApi(latest(t), 'bad', 'ready').length === 2 && ofApi(latest(t), 'bad', 'ready'));
      const from = t.lists.length;

      const v2 = apiSpecFixture({ ...v1, predictor: { env: { FAKE_CRASH_ON_START: '1' } } });
      await t.orch.apply({ spec: v2, revision: 'bad2222222', replicas: 2 });
      const s = await waitFor('crash loop', () => t.orch.status('bad')?.crashLooping && t.orch.status('bad'));
      assert.equal(s.revision, 'bad2222222');
      assert.equal(s.upToDate, 0);
      assert.equal(s.stale, 2);
      assert.match(s.message ?? '', /^revision bad2222222 keeps crashing \(\d+ crashes in 1m, last: exit code 3\); rollout stopped, revision good111111 still serving \(2 ready\)$/);
      assert.ok(s.lastLogLines.some((l) => l.startsWith('Error: predictor failed to load')));

      // The crashing revision is still retried (with backoff) while halted, one replica at a time.
      await waitFor('a 4th crash', () => (t.orch.status('bad')?.failed ?? 0) >= 4);
      const crashes = crashedReplicas(t, 'bad');
      assert.ok(crashes.length >= 4);
      assert.ok(crashes.every((c) => c.revision === 'bad2222222'));
      assert.equal(t.orch.status('bad')?.crashLooping, true);

      // The old replicas are the same processes, and were never out of service.
      const now = ofApi(latest(t), 'bad', 'ready');
      assert.deepEqual(now.map((r) => r.pid).sort(), old.map((r) => r.pid).sort());
      const h = history(t, 'bad', from);
      assert.ok(Math.min(...h.ready) >= 2, `ready dipped: ${h.ready.join(',')}`);
      assert.ok(Math.max(...h.slots) <= 3, `more than requested + surge slots: ${h.slots.join(',')}`);
    } finally {
      await t.close();
    }
    for (const pid of t.pids) assert.equal(pidAlive(pid), false, `pid ${pid} still running`);
  });

  test('max_surge 0: a crash-looping new revision brings the old revision back to requested; redeploying the old one recovers', async () => {
    const t = await startTestOrchestrator();
    try {
      const v1 = apiSpecFixture({ name: 'back', updateStrategy: { maxSurge: abs(0), maxUnavailable: abs(1) } });
      await t.orch.apply({ spec: v1, revision: 'good111111', replicas: 2 });
      await waitFor('v1 ready', () => ofApi(latest(t), 'back', 'ready').length === 2);

      const v2 = apiSpecFixture({ ...v1, predictor: { env: { FAKE_CRASH_ON_START: '1' } } });
      await t.orch.apply({ spec: v2, revision: 'bad2222222', replicas: 2 });
      // One old replica made room (max_unavailable 1), then the new one crash-looped.
      await waitFor('crash loop', () => t.orch.status('back')?.crashLooping);
      await waitFor('old revision back at 2 ready', () => ofApi(latest(t), 'back', 'ready').filter((r) => r.revision === 'good111111').length === 2);
      assert.match(t.orch.status('back')?.message ?? '', /rollout stopped, revision good111111 still serving \(2 ready\)$/);

      // Deploying the previous revision again ends the failed rollout.
      await t.orch.apply({ spec: v1, revision: 'good111111', replicas: 2 });
      await waitFor('only v1 left', () => {
        const l = ofApi(latest(t), 'back');
        return l.length === 2 && l.every((r) => r.revision === 'good111111' && r.state === 'ready');
      });
      const s = t.orch.status('back')!;
      assert.deepEqual([s.revision, s.upToDate, s.stale, s.failed, s.crashLooping, s.message], ['good111111', 2, 0, 0, false, undefined]);
    } finally {
      await t.close();
    }
  });
});
