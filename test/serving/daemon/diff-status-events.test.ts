import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ApiReplicaStatus } from '../../../core/ports/orchestrator-target.js';
import { diffStatusEvents, NO_STATUS, type StatusMemory } from '../../../serving/daemon/diff-status-events.js';

function rs(over: Partial<ApiReplicaStatus>): ApiReplicaStatus {
  return { api: 'iris', revision: 'r2', requested: 2, upToDate: 0, stale: 0, pending: 0, starting: 0, failed: 0, crashLooping: false, computeUnavailable: false, lastLogLines: [], ...over };
}

/** Runs the steps in order from NO_STATUS; each step's events as short strings. */
function run(steps: ReadonlyArray<ApiReplicaStatus | undefined>, minReplicas = 1): string[][] {
  let memory: StatusMemory = NO_STATUS;
  return steps.map((replicas, i) => {
    const got = diffStatusEvents(memory, { api: 'iris', revision: 'r2', minReplicas, replicas }, i);
    memory = got.memory;
    return got.events.map((e) => (e.type === 'api.status' ? `status ${e.status}${e.message ? ` (${e.message})` : ''}` : `rollout ${e.updated}/${e.stale}/${e.requested}`));
  });
}

describe('diffStatusEvents', () => {
  const cases: ReadonlyArray<{ name: string; steps: Array<ApiReplicaStatus | undefined>; minReplicas?: number; want: string[][] }> = [
    { name: 'unknown to the target: status unknown once, no rollout', steps: [undefined, undefined], want: [['status unknown'], []] },
    { name: 'the same counts twice: once', steps: [rs({ upToDate: 2 }), rs({ upToDate: 2 })], want: [['status live'], []] },
    { name: 'a message change is a status change', steps: [rs({ upToDate: 2 }), rs({ upToDate: 2, message: 'm' })], want: [['status live'], ['status live (m)']] },
    {
      name: 'a plain scale-up is no rollout',
      steps: [rs({ upToDate: 1, requested: 1 }), rs({ upToDate: 1, requested: 2 }), rs({ upToDate: 2, requested: 2 })],
      want: [['status live'], [], []],
    },
    {
      name: 'a rollout: each change while stale > 0, once more when the old ones are gone, then quiet',
      steps: [rs({ upToDate: 0, stale: 2 }), rs({ upToDate: 0, stale: 2 }), rs({ upToDate: 1, stale: 2 }), rs({ upToDate: 2, stale: 1 }), rs({ upToDate: 2, stale: 0 }), rs({ upToDate: 2, stale: 0 }), rs({ upToDate: 1, stale: 0 })],
      want: [['status updating', 'rollout 0/2/2'], [], ['status live', 'rollout 1/2/2'], ['rollout 2/1/2'], ['rollout 2/0/2'], [], []],
    },
    {
      name: 'a target that forgets the API mid-rollout: nothing until it knows it again',
      steps: [rs({ upToDate: 0, stale: 1 }), undefined, rs({ upToDate: 0, stale: 1 }), rs({ upToDate: 1, stale: 0 })],
      want: [['status updating', 'rollout 0/1/2'], ['status unknown'], ['status updating'], ['status live', 'rollout 1/0/2']],
    },
    {
      name: 'crash loop, then compute unavailable, in Cortex order',
      steps: [rs({ crashLooping: true, message: 'replicas keep crashing' }), rs({ crashLooping: true }), rs({ computeUnavailable: true, message: 'no cpu' })],
      want: [['status error (replicas keep crashing)'], ['status error (replicas of the current revision keep crashing)'], ['status compute unavailable (no cpu)']],
    },
    { name: 'min replicas 0 with none ready is live', steps: [rs({ upToDate: 0 })], minReplicas: 0, want: [['status live']] },
    {
      name: 'min replicas 0 at 0 requested is scaled to zero, and live again once one is up',
      steps: [rs({ upToDate: 1, requested: 1 }), rs({ upToDate: 0, requested: 0 }), rs({ upToDate: 0, requested: 1 }), rs({ upToDate: 1, requested: 1 })],
      minReplicas: 0,
      want: [['status live'], ['status scaled to zero'], ['status live'], []],
    },
    { name: 'min replicas 1 at 0 requested is not scaled to zero', steps: [rs({ upToDate: 0, requested: 0 })], want: [['status updating']] },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const got = run(c.steps, c.minReplicas);
      assert.deepEqual(got, c.want, `want ${JSON.stringify(c.want)}, got ${JSON.stringify(got)}`);
    });
  }

  test('events carry v, api, t and the daemon’s revision; memory is a new value', () => {
    const prev = Object.freeze({ ...NO_STATUS });
    const got = diffStatusEvents(prev, { api: 'iris', revision: 'r9', minReplicas: 1, replicas: rs({ upToDate: 1, stale: 1, requested: 2 }) }, 55);
    assert.deepEqual(got.events, [
      { v: 1, type: 'api.status', api: 'iris', t: 55, status: 'live' },
      { v: 1, type: 'rollout.progress', api: 'iris', t: 55, revision: 'r9', updated: 1, stale: 1, requested: 2 },
    ]);
    assert.deepEqual(got.memory, { status: 'live|', rollout: 'r9|1|1|2' });
    assert.deepEqual(prev, NO_STATUS);
  });
});
