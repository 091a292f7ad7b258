import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ReplicaInfo } from '../../../core/ports/orchestrator-target.js';
import { diffReplicaEvents } from '../../../serving/daemon/diff-replica-events.js';

function r(id: string, state: ReplicaInfo['state'], over: Partial<ReplicaInfo> = {}): ReplicaInfo {
  return { id, api: 'iris', revision: 'rev1', state, createdAt: 0, ...over };
}

/** Events as `<type> <replica>`, with the crash fields when there are any. */
function short(events: ReturnType<typeof diffReplicaEvents>['events']): string[] {
  return events.map((e) => (e.type === 'replica.crashed' ? `${e.type} ${e.replica} ${e.exitCode} ${e.signal} ${e.reason}` : `${e.type} ${e.replica}`));
}

describe('diffReplicaEvents', () => {
  const cases: ReadonlyArray<{ name: string; prev: ReplicaInfo[]; next: ReplicaInfo[]; want: string[]; wantGone?: string[] }> = [
    { name: 'nothing changes', prev: [r('a', 'ready')], next: [r('a', 'ready')], want: [] },
    { name: 'a new pending replica says nothing', prev: [], next: [r('a', 'pending')], want: [] },
    { name: 'pending → starting: started', prev: [r('a', 'pending')], next: [r('a', 'starting')], want: ['replica.started a'] },
    { name: 'a new starting replica: started', prev: [], next: [r('a', 'starting')], want: ['replica.started a'] },
    { name: 'a new ready replica: started, ready', prev: [], next: [r('a', 'ready')], want: ['replica.started a', 'replica.ready a'] },
    { name: 'pending → ready: started, ready', prev: [r('a', 'pending')], next: [r('a', 'ready')], want: ['replica.started a', 'replica.ready a'] },
    { name: 'starting → ready: ready', prev: [r('a', 'starting')], next: [r('a', 'ready')], want: ['replica.ready a'] },
    { name: 'ready → starting (probes failed): nothing', prev: [r('a', 'ready')], next: [r('a', 'starting')], want: [] },
    { name: 'ready → terminating: nothing', prev: [r('a', 'ready')], next: [r('a', 'terminating')], want: [] },
    { name: 'terminating → stopped: stopped', prev: [r('a', 'terminating')], next: [r('a', 'stopped')], want: ['replica.stopped a'] },
    { name: 'pending → stopped: started, stopped', prev: [r('a', 'pending')], next: [r('a', 'stopped')], want: ['replica.started a', 'replica.stopped a'] },
    {
      name: "crashed with the target's reason",
      prev: [r('a', 'ready')],
      next: [r('a', 'crashed', { exitCode: 1, signal: null, crashReason: 'predictor failed to start: boom' })],
      want: ['replica.crashed a 1 null predictor failed to start: boom'],
    },
    { name: 'crashed by a signal', prev: [r('a', 'ready')], next: [r('a', 'crashed', { exitCode: null, signal: 'SIGKILL' })], want: ['replica.crashed a null SIGKILL killed by SIGKILL'] },
    { name: 'crashed with an exit code', prev: [r('a', 'starting')], next: [r('a', 'crashed', { exitCode: 0 })], want: ['replica.crashed a 0 null exit code 0'] },
    { name: 'crashed, nothing known', prev: [r('a', 'ready')], next: [r('a', 'crashed')], want: ['replica.crashed a null null exited unexpectedly'] },
    { name: 'a new crashed replica: started, crashed', prev: [], next: [r('a', 'crashed', { exitCode: 2 })], want: ['replica.started a', 'replica.crashed a 2 null exit code 2'] },
    { name: 'a ready replica leaves: stopped', prev: [r('a', 'ready')], next: [], want: ['replica.stopped a'], wantGone: ['a'] },
    { name: 'a crashed replica leaves: nothing more', prev: [r('a', 'crashed')], next: [], want: [], wantGone: ['a'] },
    { name: 'a stopped replica leaves: nothing more', prev: [r('a', 'stopped')], next: [], want: [], wantGone: ['a'] },
    {
      name: 'order: next in its order, then the ones gone in prev order',
      prev: [r('x', 'ready'), r('a', 'starting'), r('y', 'pending'), r('b', 'pending')],
      next: [r('b', 'ready'), r('a', 'ready'), r('c', 'starting')],
      want: ['replica.started b', 'replica.ready b', 'replica.ready a', 'replica.started c', 'replica.stopped x', 'replica.stopped y'],
      wantGone: ['x', 'y'],
    },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const got = diffReplicaEvents(c.prev, c.next, 7);
      assert.deepEqual(short(got.events), c.want, `want ${JSON.stringify(c.want)}, got ${JSON.stringify(short(got.events))}`);
      assert.deepEqual(got.gone.map((g) => g.id), c.wantGone ?? []);
    });
  }

  test('each event carries v, api, t, replica and revision of its replica', () => {
    const got = diffReplicaEvents([r('a', 'ready', { api: 'other', revision: 'old' })], [r('b', 'ready', { revision: 'rev2' }), r('c', 'crashed', { exitCode: 1, crashReason: 'exit code 1' })], 42);
    assert.deepEqual(got.events, [
      { v: 1, api: 'iris', t: 42, replica: 'b', revision: 'rev2', type: 'replica.started' },
      { v: 1, api: 'iris', t: 42, replica: 'b', revision: 'rev2', type: 'replica.ready' },
      { v: 1, api: 'iris', t: 42, replica: 'c', revision: 'rev1', type: 'replica.started' },
      { v: 1, api: 'iris', t: 42, replica: 'c', revision: 'rev1', type: 'replica.crashed', exitCode: 1, signal: null, reason: 'exit code 1' },
      { v: 1, type: 'replica.stopped', api: 'other', t: 42, replica: 'a', revision: 'old' },
    ]);
  });

  test('the inputs are left as they were', () => {
    const prev = Object.freeze([Object.freeze(r('a', 'ready'))]);
    const next = Object.freeze([Object.freeze(r('a', 'crashed'))]);
    diffReplicaEvents(prev, next, 0);
    assert.deepEqual(prev, [r('a', 'ready')]);
  });
});
