import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { V1Deployment, V1Pod } from '@kubernetes/client-node';
import { containerExit, podView, replicaStatus, type PodView } from '../../../../adapters/orchestrators/kubernetes/pod-replicas.js';

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

test('a crashed replica carries exitCode, signal and crashReason from the container termination', () => {
  type Term = { exitCode: number; signal?: number; reason?: string; message?: string };
  const container = (c: { restartCount?: number; state?: object; lastState?: object; ready?: boolean }) => ({
    name: 'replica',
    image: 'x',
    imageID: '',
    ready: c.ready ?? false,
    restartCount: c.restartCount ?? 0,
    ...(c.state ? { state: c.state } : {}),
    ...(c.lastState ? { lastState: c.lastState } : {}),
  });
  const backOff = (last: Term, restartCount = 3): V1Pod['status'] => ({
    phase: 'Running',
    conditions: [{ type: 'Ready', status: 'False' }],
    containerStatuses: [container({ restartCount, state: { waiting: { reason: 'CrashLoopBackOff', message: 'back-off 40s' } }, lastState: { terminated: last } })],
  });
  const long = 'x'.repeat(5000);
  const cases: { name: string; status: V1Pod['status']; want: { exitCode: number | null; signal: string | null; crashReason: string; looping: boolean } }[] = [
    {
      name: 'back-off after exit 2',
      status: backOff({ exitCode: 2 }),
      want: { exitCode: 2, signal: null, crashReason: 'CrashLoopBackOff: back-off 40s (exit code 2, 3 restarts)', looping: true },
    },
    {
      name: 'back-off after OOMKilled, exit 137 = 128 + 9',
      status: backOff({ exitCode: 137, reason: 'OOMKilled' }),
      want: { exitCode: null, signal: 'SIGKILL', crashReason: 'CrashLoopBackOff: back-off 40s (OOMKilled, exit code 137, 3 restarts)', looping: true },
    },
    {
      name: 'back-off with a termination message',
      status: backOff({ exitCode: 1, reason: 'Error', message: 'Traceback (most recent call last):\nValueError: bad model\n' }, 2),
      want: {
        exitCode: 1,
        signal: null,
        crashReason: 'CrashLoopBackOff: back-off 40s (Error, exit code 1, 2 restarts); message: Traceback (most recent call last):\nValueError: bad model',
        looping: true,
      },
    },
    {
      name: 'running again between back-offs after SIGTERM (143)',
      status: {
        phase: 'Running',
        conditions: [{ type: 'Ready', status: 'False' }],
        containerStatuses: [container({ restartCount: 4, state: { running: {} }, lastState: { terminated: { exitCode: 143, reason: 'Error' } } })],
      },
      want: { exitCode: null, signal: 'SIGTERM', crashReason: 'restarting after Error (exit code 143, 4 restarts)', looping: true },
    },
    {
      name: 'just exited with SIGSEGV (139), before the back-off',
      status: {
        phase: 'Running',
        conditions: [{ type: 'Ready', status: 'False' }],
        containerStatuses: [container({ state: { terminated: { exitCode: 139, reason: 'Error' } } })],
      },
      want: { exitCode: null, signal: 'SIGSEGV', crashReason: 'exited with Error (exit code 139)', looping: true },
    },
    {
      name: 'the runtime names the signal',
      status: backOff({ exitCode: 134, signal: 6, reason: 'Error' }, 1),
      want: { exitCode: null, signal: 'SIGABRT', crashReason: 'CrashLoopBackOff: back-off 40s (Error, exit code 134, 1 restarts)', looping: true },
    },
    {
      name: 'exit 200 is no signal',
      status: backOff({ exitCode: 200 }, 1),
      want: { exitCode: 200, signal: null, crashReason: 'CrashLoopBackOff: back-off 40s (exit code 200, 1 restarts)', looping: true },
    },
    {
      name: 'image cannot be pulled: it never ran',
      status: { phase: 'Pending', containerStatuses: [container({ state: { waiting: { reason: 'ErrImagePull', message: 'not found' } } })] },
      want: { exitCode: null, signal: null, crashReason: 'ErrImagePull: not found', looping: true },
    },
    {
      name: 'phase Failed, container terminated with a message',
      status: { phase: 'Failed', containerStatuses: [container({ state: { terminated: { exitCode: 1, reason: 'Error', message: 'boom' } } })] },
      want: { exitCode: 1, signal: null, crashReason: 'Error: boom (exit code 1)', looping: false },
    },
    {
      name: 'evicted, no container status',
      status: { phase: 'Failed', reason: 'Evicted', message: 'low on memory' },
      want: { exitCode: null, signal: null, crashReason: 'Evicted: low on memory', looping: false },
    },
    {
      name: 'evicted, its container killed',
      status: {
        phase: 'Failed',
        reason: 'Evicted',
        message: 'low on memory',
        containerStatuses: [container({ state: { terminated: { exitCode: 137, reason: 'Error', message: 'killed during eviction' } } })],
      },
      want: { exitCode: null, signal: 'SIGKILL', crashReason: 'Evicted: low on memory (exit code 137); message: killed during eviction', looping: false },
    },
    {
      name: 'a long termination message is bounded',
      status: backOff({ exitCode: 1, message: long }, 1),
      want: { exitCode: 1, signal: null, crashReason: `${`CrashLoopBackOff: back-off 40s (exit code 1, 1 restarts); message: ${long}`.slice(0, 2048)}…`, looping: true },
    },
  ];
  for (const c of cases) {
    const v = podView(pod('a', 'r1', c.status))!;
    const got = { exitCode: v.replica.exitCode, signal: v.replica.signal, crashReason: v.replica.crashReason, looping: v.looping };
    assert.equal(v.replica.state, 'crashed', c.name);
    assert.deepEqual(got, c.want, `${c.name}: want ${JSON.stringify(c.want)}, got ${JSON.stringify(got)}`);
    assert.equal(v.crashReason, v.replica.crashReason, `${c.name}: status and replica say the same`);
  }
  for (const status of [running(true), running(false), unschedulable, { phase: 'Succeeded' }]) {
    const r = podView(pod('a', 'r1', status))!.replica;
    assert.deepEqual(['exitCode', 'signal', 'crashReason'].filter((k) => k in r), [], `${r.state}: no crash fields`);
  }
});

test('containerExit maps exit codes 128 + n to Linux signals', () => {
  const cases: { name: string; term: Parameters<typeof containerExit>[0]; want: ReturnType<typeof containerExit> }[] = [
    { name: 'never ran', term: undefined, want: { exitCode: null, signal: null } },
    { name: 'exit 0', term: { exitCode: 0 }, want: { exitCode: 0, signal: null } },
    { name: 'exit 128 (no signal 0)', term: { exitCode: 128 }, want: { exitCode: 128, signal: null } },
    { name: '129 SIGHUP', term: { exitCode: 129 }, want: { exitCode: null, signal: 'SIGHUP' } },
    { name: '130 SIGINT', term: { exitCode: 130 }, want: { exitCode: null, signal: 'SIGINT' } },
    { name: '134 SIGABRT', term: { exitCode: 134 }, want: { exitCode: null, signal: 'SIGABRT' } },
    { name: '137 SIGKILL', term: { exitCode: 137 }, want: { exitCode: null, signal: 'SIGKILL' } },
    { name: '139 SIGSEGV', term: { exitCode: 139 }, want: { exitCode: null, signal: 'SIGSEGV' } },
    { name: '143 SIGTERM', term: { exitCode: 143 }, want: { exitCode: null, signal: 'SIGTERM' } },
    { name: '159 SIGSYS', term: { exitCode: 159 }, want: { exitCode: null, signal: 'SIGSYS' } },
    { name: '160 is an exit code', term: { exitCode: 160 }, want: { exitCode: 160, signal: null } },
    { name: 'runtime signal wins', term: { exitCode: 2, signal: 15 }, want: { exitCode: null, signal: 'SIGTERM' } },
    { name: 'unknown runtime signal falls back to the code', term: { exitCode: 2, signal: 99 }, want: { exitCode: 2, signal: null } },
  ];
  for (const c of cases) {
    const got = containerExit(c.term);
    assert.deepEqual(got, c.want, `${c.name}: want ${JSON.stringify(c.want)}, got ${JSON.stringify(got)}`);
  }
});

test('failed and crashLooping: which pods count', () => {
  const deployment: V1Deployment = { spec: { replicas: 2, selector: {}, template: { metadata: { labels: { 'myelin.dev/revision': 'r2' } } } }, status: {} };
  const justExited: V1Pod['status'] = {
    phase: 'Running',
    conditions: [{ type: 'Ready', status: 'False' }],
    containerStatuses: [{ name: 'replica', image: 'x', imageID: '', ready: false, restartCount: 0, state: { terminated: { exitCode: 1, reason: 'Error' } } }],
  };
  const recovered: V1Pod['status'] = {
    ...running(true),
    containerStatuses: [{ name: 'replica', image: 'x', imageID: '', ready: true, restartCount: 5, state: { running: {} }, lastState: { terminated: { exitCode: 1 } } }],
  };
  const cases = [
    { name: 'a crash-looping pod of an old revision is not counted', pods: [pod('o1', 'r1', crashLoop), pod('n1', 'r2', running(true))], want: { failed: 0, crashLooping: false } },
    { name: 'restarts of a pod that is ready again do not count', pods: [pod('n1', 'r2', recovered)], want: { failed: 0, crashLooping: false } },
    { name: 'a container that just exited with an error crash-loops', pods: [pod('n1', 'r2', justExited)], want: { failed: 1, crashLooping: true } },
    {
      name: 'one per pod, however often it restarted; one looping pod makes the API crash-loop',
      pods: [pod('n1', 'r2', crashLoop), pod('n2', 'r2', { phase: 'Failed', reason: 'Evicted' })],
      want: { failed: 2, crashLooping: true },
    },
    { name: 'only a pod that ended once', pods: [pod('n1', 'r2', { phase: 'Failed', reason: 'Evicted' })], want: { failed: 1, crashLooping: false } },
  ];
  for (const c of cases) {
    const s = replicaStatus('iris', deployment, c.pods.map((p) => podView(p)!), []);
    const got = { failed: s.failed, crashLooping: s.crashLooping };
    assert.deepEqual(got, c.want, `${c.name}: want ${JSON.stringify(c.want)}, got ${JSON.stringify(got)}`);
  }
});
