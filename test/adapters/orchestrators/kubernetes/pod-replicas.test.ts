import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { V1Deployment, V1Pod } from '@kubernetes/client-node';
import { podView, replicaStatus, type PodView } from '../../../../adapters/orchestrators/kubernetes/pod-replicas.js';

const T0 = '2025-01-01T00:00:00Z';
const T1 = '2025-01-01T00:00:05Z';

function pod(name: string, revision: string, status: V1Pod['status'], extra: Partial<V1Pod['metadata']> = {}): V1Pod {
  return {
    metadata: { name, labels: { 'myelin.dev/api': 'iris', 'myelin.dev/revision': revision }, creationTimestamp: T0 as unknown as Date, ...extra },
    spec: { containers: [{ name: 'replica' }] },
    status,
  };
}

const running = (ready: boolean): V1Pod['status'] => ({
  phase: 'Running',
  podIP: '10.244.0.7',
  conditions: [{ type: 'Ready', status: ready ? 'True' : 'False', lastTransitionTime: T1 as unknown as Date }],
  containerStatuses: [{ name: 'replica', image: 'x', imageID: '', ready, restartCount: 0, state: { running: {} } }],
});
const unschedulable: V1Pod['status'] = {
  phase: 'Pending',
  conditions: [{ type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message: '0/3 nodes are available: 3 Insufficient nvidia.com/gpu.' }],
};
const crashLoop: V1Pod['status'] = {
  phase: 'Running',
  podIP: '10.244.0.8',
  conditions: [{ type: 'Ready', status: 'False' }],
  containerStatuses: [
    {
      name: 'replica',
      image: 'x',
      imageID: '',
      ready: false,
      restartCount: 3,
      state: { waiting: { reason: 'CrashLoopBackOff', message: 'back-off 40s' } },
      lastState: { terminated: { exitCode: 2 } },
    },
  ],
};

test('pods map to replica states', () => {
  const cases: { name: string; pod: V1Pod; want: Partial<PodView['replica']> & { crashReason?: string } }[] = [
    { name: 'scheduled, not started', pod: pod('a', 'r1', { phase: 'Pending', conditions: [{ type: 'PodScheduled', status: 'True' }] }), want: { state: 'pending' } },
    {
      name: 'unschedulable',
      pod: pod('a', 'r1', unschedulable),
      want: { state: 'pending', pendingReason: 'compute unavailable: 0/3 nodes are available: 3 Insufficient nvidia.com/gpu.' },
    },
    { name: 'running, not ready', pod: pod('a', 'r1', running(false)), want: { state: 'starting', address: { host: '10.244.0.7', port: 8888 } } },
    {
      name: 'running, ready',
      pod: pod('a', 'r1', running(true)),
      want: { state: 'ready', address: { host: '10.244.0.7', port: 8888 }, readyAt: Date.parse(T1) },
    },
    { name: 'crash loop', pod: pod('a', 'r1', crashLoop), want: { state: 'crashed', crashReason: 'CrashLoopBackOff: back-off 40s (exit code 2, 3 restarts)' } },
    {
      name: 'image pull',
      pod: pod('a', 'r1', {
        phase: 'Pending',
        containerStatuses: [{ name: 'replica', image: 'x', imageID: '', ready: false, restartCount: 0, state: { waiting: { reason: 'ImagePullBackOff', message: 'Back-off pulling image "x"' } } }],
      }),
      want: { state: 'crashed', crashReason: 'ImagePullBackOff: Back-off pulling image "x"' },
    },
    {
      name: 'running again between back-offs',
      pod: pod('a', 'r1', {
        phase: 'Running',
        podIP: '10.244.0.8',
        conditions: [{ type: 'Ready', status: 'False' }],
        containerStatuses: [
          { name: 'replica', image: 'x', imageID: '', ready: false, restartCount: 4, state: { running: {} }, lastState: { terminated: { exitCode: 137, reason: 'OOMKilled' } } },
        ],
      }),
      want: { state: 'crashed', crashReason: 'restarting after OOMKilled (exit code 137, 4 restarts)' },
    },
    {
      name: 'restarted once after a clean exit, loading again',
      pod: pod('a', 'r1', {
        phase: 'Running',
        conditions: [{ type: 'Ready', status: 'False' }],
        containerStatuses: [{ name: 'replica', image: 'x', imageID: '', ready: false, restartCount: 1, state: { running: {} }, lastState: { terminated: { exitCode: 0 } } }],
      }),
      want: { state: 'starting' },
    },
    { name: 'failed', pod: pod('a', 'r1', { phase: 'Failed', reason: 'Evicted', message: 'low on memory' }), want: { state: 'crashed', crashReason: 'Evicted: low on memory' } },
    { name: 'succeeded', pod: pod('a', 'r1', { phase: 'Succeeded' }), want: { state: 'stopped' } },
    { name: 'being deleted', pod: pod('a', 'r1', running(true), { deletionTimestamp: T1 as unknown as Date }), want: { state: 'terminating' } },
  ];
  for (const c of cases) {
    const v = podView(c.pod)!;
    const got: Record<string, unknown> = { state: v.replica.state };
    for (const k of Object.keys(c.want)) got[k] = k === 'crashReason' ? v.crashReason : (v.replica as unknown as Record<string, unknown>)[k];
    assert.deepEqual(got, c.want, c.name);
    assert.equal(v.replica.id, 'a');
    assert.equal(v.replica.api, 'iris');
    assert.equal(v.replica.createdAt, Date.parse(T0), `${c.name}: createdAt`);
  }
  assert.equal(podView({ metadata: { name: 'x' } }), undefined, 'pods without the api label are not replicas');
  // Deserialized objects carry Date instances instead of strings.
  assert.equal(podView(pod('d', 'r1', running(true), { creationTimestamp: new Date(Date.parse(T1)) }))!.replica.createdAt, Date.parse(T1));
});

test('status counts the current revision and explains what blocks it', () => {
  const deployment = (replicas: number, revision: string, conditions: NonNullable<V1Deployment['status']>['conditions'] = []): V1Deployment => ({
    spec: { replicas, selector: {}, template: { metadata: { labels: { 'myelin.dev/revision': revision } } } },
    status: { conditions },
  });
  const views = (...pods: V1Pod[]): PodView[] => pods.map((p) => podView(p)!);
  const cases = [
    {
      name: 'rollout half way',
      d: deployment(2, 'r2'),
      pods: views(pod('o1', 'r1', running(true)), pod('o2', 'r1', running(true)), pod('n1', 'r2', running(true)), pod('n2', 'r2', running(false))),
      want: { requested: 2, upToDate: 1, stale: 2, pending: 0, starting: 1, failed: 0, crashLooping: false, computeUnavailable: false },
    },
    {
      name: 'no room for the new pod',
      d: deployment(1, 'r2'),
      pods: views(pod('o1', 'r1', running(true)), pod('n1', 'r2', unschedulable)),
      want: {
        requested: 1,
        upToDate: 0,
        stale: 1,
        pending: 1,
        starting: 0,
        failed: 0,
        crashLooping: false,
        computeUnavailable: true,
        message: 'compute unavailable: 0/3 nodes are available: 3 Insufficient nvidia.com/gpu.',
      },
    },
    {
      name: 'new revision crash-loops while the old one serves',
      d: deployment(1, 'r2'),
      pods: views(pod('o1', 'r1', running(true)), pod('n1', 'r2', crashLoop)),
      want: {
        requested: 1,
        upToDate: 0,
        stale: 1,
        pending: 0,
        starting: 0,
        failed: 1,
        crashLooping: true,
        computeUnavailable: false,
        message: 'replica n1 crashed: CrashLoopBackOff: back-off 40s (exit code 2, 3 restarts)',
        lastLogLines: ['boom'],
      },
    },
    {
      name: 'an evicted pod is crashed but not looping',
      d: deployment(1, 'r1'),
      pods: views(pod('e1', 'r1', { phase: 'Failed', reason: 'Evicted', message: 'low on memory' }), pod('n1', 'r1', running(true))),
      want: {
        requested: 1,
        upToDate: 1,
        stale: 0,
        pending: 0,
        starting: 0,
        failed: 1,
        crashLooping: false,
        computeUnavailable: false,
        message: 'replica e1 crashed: Evicted: low on memory',
        lastLogLines: ['boom'],
      },
    },
    {
      name: 'progress deadline exceeded',
      d: deployment(1, 'r1', [{ type: 'Progressing', status: 'False', reason: 'ProgressDeadlineExceeded', message: 'ReplicaSet "x" has timed out progressing.' }]),
      pods: views(pod('n1', 'r1', running(false))),
      want: {
        requested: 1,
        upToDate: 0,
        stale: 0,
        pending: 0,
        starting: 1,
        failed: 0,
        crashLooping: false,
        computeUnavailable: false,
        message: 'ProgressDeadlineExceeded: ReplicaSet "x" has timed out progressing.',
      },
    },
  ];
  for (const c of cases) {
    const s = replicaStatus('iris', c.d, c.pods, ['boom']);
    assert.deepEqual(s, { api: 'iris', revision: c.d.spec!.template.metadata!.labels!['myelin.dev/revision'], lastLogLines: [], ...c.want }, c.name);
  }
});
