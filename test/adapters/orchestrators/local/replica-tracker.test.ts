import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { CrashWindow } from '../../../../adapters/orchestrators/local/crash-backoff.js';
import { LineRing } from '../../../../adapters/orchestrators/local/line-ring.js';
import {
  apiReplicaStatus,
  crashReasonOf,
  reconcileStep,
  replicaInfo,
  rolloutState,
  type CrashLoopRule,
  type TrackedApi,
  type TrackedReplica,
} from '../../../../adapters/orchestrators/local/replica-tracker.js';
import type { IntOrPercent } from '../../../../core/config/api-spec.js';
import type { ReplicaState } from '../../../../core/ports/orchestrator-target.js';

const abs = (value: number): IntOrPercent => ({ kind: 'absolute', value });
const RULE: CrashLoopRule = { threshold: 3, windowMs: 60_000 };
const SURGE1 = { maxSurge: abs(1), maxUnavailable: abs(0) };

/** `<revision>:<state>` per replica, in creation order; `!` marks a slot given up. */
function api(replicas: string[], o: { requested?: number; stable?: string; crashesOfCurrent?: number[]; lastCrash?: string } = {}): TrackedApi {
  const map = new Map<string, TrackedReplica>();
  replicas.forEach((desc, n) => {
    const stopRequested = desc.endsWith('!');
    const [revision, state] = desc.replace('!', '').split(':') as [string, ReplicaState];
    const id = `a-${revision}-${n}`;
    map.set(id, { id, api: 'a', revision, n, createdAt: n, state, stopRequested, lines: new LineRing(10) });
  });
  const window = new CrashWindow(RULE.windowMs);
  for (const t of o.crashesOfCurrent ?? []) window.record(t);
  return {
    name: 'a',
    current: { revision: 'new', spec: { updateStrategy: SURGE1 } },
    ...(o.stable ? { stable: { revision: o.stable } } : {}),
    requested: o.requested ?? 2,
    replicas: map,
    crashes: new Map([['new', window]]),
    ...(o.lastCrash ? { lastCrash: { revision: 'new', t: 0, lines: ['l1'], reason: o.lastCrash } } : {}),
  };
}

describe('replica-tracker: the next reconcile step', () => {
  const cases: readonly { name: string; a: TrackedApi; want: { stop: string[]; startCurrent: number; startStable: number; halted: boolean } }[] = [
    { name: 'new API: start requested', a: api([]), want: { stop: [], startCurrent: 2, startStable: 0, halted: false } },
    { name: 'steady: nothing to do', a: api(['new:ready', 'new:ready']), want: { stop: [], startCurrent: 0, startStable: 0, halted: false } },
    {
      name: 'scale down stops crashed, then pending, then the newest ready',
      a: api(['new:ready', 'new:ready', 'new:pending', 'new:crashed'], { requested: 1 }),
      want: { stop: ['a-new-3', 'a-new-2', 'a-new-1'], startCurrent: 0, startStable: 0, halted: false },
    },
    {
      name: 'a slot given up does not count',
      a: api(['new:ready', 'new:terminating!']),
      want: { stop: [], startCurrent: 1, startStable: 0, halted: false },
    },
    {
      name: 'rollout with surge 1: one new at a time, nothing old stops yet',
      a: api(['old:ready', 'old:ready'], { stable: 'old' }),
      want: { stop: [], startCurrent: 1, startStable: 0, halted: false },
    },
    {
      name: 'rollout: a new one ready lets one old go, the newest old first',
      a: api(['old:ready', 'old:ready', 'new:ready'], { stable: 'old' }),
      want: { stop: ['a-old-1'], startCurrent: 1, startStable: 0, halted: false },
    },
    {
      name: 'old ready replicas of a revision that never rolled out go before the stable ones',
      a: api(['old:ready', 'mid:ready', 'new:ready'], { stable: 'old' }),
      want: { stop: ['a-mid-1'], startCurrent: 1, startStable: 0, halted: false },
    },
    {
      name: 'halted: the new revision crash-loops, nothing old is stopped',
      a: api(['old:ready', 'old:ready', 'new:crashed'], { stable: 'old', crashesOfCurrent: [1, 2, 3] }),
      want: { stop: [], startCurrent: 0, startStable: 0, halted: true },
    },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const step = reconcileStep(c.a, 10, RULE);
      assert.deepEqual({ ...step, stop: step.stop.map((r) => r.id) }, c.want);
    });
  }
});

describe('replica-tracker: rollout state and status', () => {
  test('rolloutState counts ready replicas per side and is done only when every replica runs the current revision', () => {
    assert.deepEqual(rolloutState(api(['old:ready', 'new:ready', 'new:starting'], { stable: 'old' })), { updated: 1, stale: 1, done: false });
    assert.deepEqual(rolloutState(api(['old:terminating!', 'new:ready', 'new:ready'], { stable: 'old' })), { updated: 2, stale: 0, done: false });
    assert.deepEqual(rolloutState(api(['new:ready', 'new:ready'], { stable: 'old' })), { updated: 2, stale: 0, done: true });
    assert.deepEqual(rolloutState(api(['new:ready', 'new:ready', 'new:ready'])), { updated: 3, stale: 0, done: false });
  });

  const statusCases: readonly { name: string; a: TrackedApi; now: number; want: Record<string, unknown> }[] = [
    {
      name: 'counts of the current revision; old ready replicas are stale',
      a: api(['old:ready', 'new:ready', 'new:starting', 'new:pending'], { stable: 'old' }),
      now: 0,
      want: { upToDate: 1, stale: 1, starting: 1, pending: 1, failed: 0, crashLooping: false },
    },
    {
      name: 'crash loop: the message carries counts and the last reason',
      a: api(['new:crashed'], { crashesOfCurrent: [1, 2, 3], lastCrash: 'exit code 3' }),
      now: 10,
      want: { failed: 3, crashLooping: true, message: 'replicas keep crashing (3 crashes in 1m, last: exit code 3)', lastLogLines: ['l1'] },
    },
    {
      name: 'a halted rollout names the revision still serving',
      a: api(['old:ready', 'old:ready', 'new:crashed'], { stable: 'old', crashesOfCurrent: [1, 2, 3], lastCrash: 'exit code 3' }),
      now: 10,
      want: { stale: 2, crashLooping: true, message: 'revision new keeps crashing (3 crashes in 1m, last: exit code 3); rollout stopped, revision old still serving (2 ready)' },
    },
    {
      name: 'a multi-line reason goes after the counts',
      a: api(['new:crashed'], { crashesOfCurrent: [1, 2, 3], lastCrash: 'predictor failed to start: Traceback\n  line' }),
      now: 10,
      want: { message: 'replicas keep crashing (3 crashes in 1m); last crash: predictor failed to start: Traceback\n  line' },
    },
    {
      name: 'crashes that left the window no longer count',
      a: api(['new:ready'], { crashesOfCurrent: [1, 2, 3], lastCrash: 'exit code 3' }),
      now: 60_003,
      want: { failed: 0, crashLooping: false, lastLogLines: [] },
    },
  ];
  for (const c of statusCases) {
    test(`apiReplicaStatus: ${c.name}`, () => {
      const s = apiReplicaStatus(c.a, c.now, RULE) as unknown as Record<string, unknown>;
      for (const [k, v] of Object.entries(c.want)) assert.deepEqual(s[k], v, k);
      if (!('message' in c.want)) assert.equal(s.message, undefined);
    });
  }
});

describe('replica-tracker: the port view of a replica', () => {
  test('a crashed replica carries its exit and a reason with its last output; an address only while it can serve', () => {
    const lines = new LineRing(10);
    for (const l of ['a', 'b', 'c', 'd', 'e', 'f']) lines.push(l);
    const base = { id: 'r', api: 'a', revision: 'v', n: 0, createdAt: 5, stopRequested: false, lines, address: { host: '127.0.0.1', port: 1 }, pid: 42 };
    assert.deepEqual(replicaInfo({ ...base, state: 'crashed', exit: { code: null, signal: 'SIGKILL' } }), {
      id: 'r',
      api: 'a',
      revision: 'v',
      state: 'crashed',
      createdAt: 5,
      pid: 42,
      exitCode: null,
      signal: 'SIGKILL',
      crashReason: 'killed by SIGKILL; last output:\nb\nc\nd\ne\nf',
    });
    assert.deepEqual(replicaInfo({ ...base, state: 'ready', readyAt: 7 }).address, { host: '127.0.0.1', port: 1 });
    assert.equal(replicaInfo({ ...base, state: 'stopped', exit: { code: 0, signal: null } }).exitCode, undefined);
  });

  test('crashReasonOf: a failure message or a spawn error stands alone; a long reason is cut at 2048 characters', () => {
    assert.equal(crashReasonOf({ code: 1, signal: null, failure: 'boom' }, ['x']), 'predictor failed to start: boom');
    assert.equal(crashReasonOf({ code: null, signal: null, error: new Error('spawn x ENOENT') }, ['x']), 'could not start: spawn x ENOENT');
    assert.equal(crashReasonOf({ code: 2, signal: null }, []), 'exit code 2');
    const long = crashReasonOf({ code: 1, signal: null }, ['y'.repeat(5000)]);
    assert.equal(long.length, 2049);
    assert.ok(long.endsWith('…'));
  });
});
