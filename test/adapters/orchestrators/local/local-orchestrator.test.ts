import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { firstValueFrom, toArray } from 'rxjs';
import { apiSpecFixture } from '../../../harness/api-spec-fixture.js';
import {
  latest,
  ofApi,
  pidAlive,
  replicaRequest,
  startTestOrchestrator,
  waitFor,
} from '../../../harness/local-orchestrator-harness.js';

describe('LocalOrchestrator lifecycle (real child processes)', () => {
  test('starts N ready replicas with the launcher contract, scales up and down, close() ends every child', async () => {
    const t = await startTestOrchestrator();
    try {
      const spec = apiSpecFixture({ name: 'iris', predictor: { env: { USER_FLAG: 'x' } } });
      await t.orch.apply({ spec, revision: 'abcdef0123', replicas: 3 });
      const ready = await waitFor('3 ready', () => ofApi(latest(t), 'iris', 'ready').length === 3 && ofApi(latest(t), 'iris', 'ready'));
      assert.deepEqual(
        ready.map((r) => r.id).sort(),
        ['iris-abcdef01-0', 'iris-abcdef01-1', 'iris-abcdef01-2'],
      );
      for (const r of ready) {
        assert.ok(r.address && 'port' in r.address && r.address.host === '127.0.0.1', `address of ${r.id}`);
        assert.ok(r.pid !== undefined && pidAlive(r.pid), `pid of ${r.id}`);
        assert.ok(r.readyAt !== undefined && r.readyAt >= r.createdAt);
        const got = JSON.parse((await replicaRequest(r.address, 'GET', '/env')).body) as {
          env: Record<string, string>;
          specName: string;
          pid: number;
          cwd: string;
        };
        assert.equal(got.pid, r.pid);
        assert.equal(got.specName, 'iris');
        assert.equal(got.cwd, spec.projectDir);
        assert.deepEqual(
          // MYELIN_PYTHON comes from the test's own environment (scripts/run-tests.mjs sets it).
          { ...got.env, MYELIN_SPEC_FILE: undefined, MYELIN_PYTHON: undefined },
          {
            MYELIN_API: 'iris',
            MYELIN_REVISION: 'abcdef0123',
            MYELIN_REPLICA_ID: r.id,
            MYELIN_HOST: '127.0.0.1',
            MYELIN_PORT: '0',
            MYELIN_CPU_MILLIS: '200',
            MYELIN_SPEC_FILE: undefined,
            MYELIN_PYTHON: undefined,
            CUDA_VISIBLE_DEVICES: '',
            USER_FLAG: 'x',
          },
        );
        const predicted = await replicaRequest(r.address, 'POST', '/');
        assert.deepEqual(JSON.parse(predicted.body), { replica: r.id, revision: 'abcdef0123' });
      }
      assert.deepEqual(t.orch.status('iris'), {
        api: 'iris',
        revision: 'abcdef0123',
        requested: 3,
        upToDate: 3,
        stale: 0,
        pending: 0,
        starting: 0,
        failed: 0,
        crashLooping: false,
        computeUnavailable: false,
        lastLogLines: [],
      });

      await t.orch.scale('iris', 4);
      await waitFor('4 ready', () => ofApi(latest(t), 'iris', 'ready').length === 4);
      assert.ok(ofApi(latest(t), 'iris').some((r) => r.id === 'iris-abcdef01-3'));

      const before = ofApi(latest(t), 'iris', 'ready');
      await t.orch.scale('iris', 1);
      const left = await waitFor('1 replica left', () => ofApi(latest(t), 'iris').length === 1 && ofApi(latest(t), 'iris'));
      assert.equal(left[0].state, 'ready');
      // The newest replicas go first.
      assert.equal(left[0].id, 'iris-abcdef01-0');
      for (const r of before) if (r.id !== left[0].id) assert.equal(pidAlive(r.pid!), false, `${r.id} (pid ${r.pid}) still running`);
      assert.ok(
        t.lists.some((l) => l.some((r) => r.state === 'terminating')) && t.lists.some((l) => l.some((r) => r.state === 'stopped')),
        'replicas pass through terminating and stopped',
      );
    } finally {
      await t.close();
    }
    assert.ok(t.pids.size >= 4);
    for (const pid of t.pids) assert.equal(pidAlive(pid), false, `pid ${pid} still running after close()`);
  });

  test('a replica is ready only once its probe answers 200, and leaves service when the probe keeps failing', async () => {
    const t = await startTestOrchestrator();
    try {
      const spec = apiSpecFixture({ name: 'slow', predictor: { env: { FAKE_START_UNREADY: '1' } } });
      await t.orch.apply({ spec, revision: 'r1r1r1r1r1', replicas: 1 });
      const listening = await waitFor('address', () => ofApi(latest(t), 'slow')[0]?.address && ofApi(latest(t), 'slow')[0]);
      // Probed several times with 503: still starting.
      const probes = async (): Promise<number> => (JSON.parse((await replicaRequest(listening.address, 'GET', '/env')).body) as { probes: number }).probes;
      for (const deadline = Date.now() + 10_000; (await probes()) < 3; ) {
        if (Date.now() > deadline) throw new Error('the replica was not probed 3 times');
        await new Promise((r) => setTimeout(r, 20));
      }
      assert.equal(ofApi(latest(t), 'slow')[0].state, 'starting');
      assert.equal(t.orch.status('slow')?.starting, 1);
      await replicaRequest(listening.address, 'POST', '/ready');
      const ready = await waitFor('ready', () => ofApi(latest(t), 'slow', 'ready')[0]);
      assert.equal((await replicaRequest(ready.address, 'GET', '/healthz/ready')).status, 200);

      await replicaRequest(ready.address, 'POST', '/unready');
      const unready = await waitFor('back to starting', () => ofApi(latest(t), 'slow', 'starting')[0]);
      assert.equal(unready.id, ready.id);
      assert.equal(unready.pid, ready.pid, 'the same process, not restarted');
      assert.equal(unready.readyAt, undefined);
      assert.equal(t.orch.status('slow')?.upToDate, 0);

      await replicaRequest(unready.address, 'POST', '/ready');
      const again = await waitFor('ready again', () => ofApi(latest(t), 'slow', 'ready')[0]);
      assert.equal(again.pid, ready.pid);
    } finally {
      await t.close();
    }
  });

  test('a change with the same revision never restarts replicas', async () => {
    const t = await startTestOrchestrator();
    try {
      const spec = apiSpecFixture({ name: 'keep' });
      await t.orch.apply({ spec, revision: 'samesame00', replicas: 2 });
      const first = await waitFor('2 ready', () => ofApi(latest(t), 'keep', 'ready').length === 2 && ofApi(latest(t), 'keep', 'ready'));
      const changed = apiSpecFixture({ name: 'keep', autoscaling: { maxReplicas: 7, targetReplicaConcurrency: 3 } });
      await t.orch.apply({ spec: changed, revision: 'samesame00', replicas: 3 });
      await waitFor('3 ready', () => ofApi(latest(t), 'keep', 'ready').length === 3);
      const now = ofApi(latest(t), 'keep', 'ready');
      for (const r of first) {
        const same = now.find((x) => x.id === r.id);
        assert.ok(same, `${r.id} was replaced`);
        assert.equal(same.pid, r.pid);
      }
      assert.ok(!t.lists.some((l) => ofApi(l, 'keep').some((r) => r.state === 'terminating')), 'nothing was stopped');
    } finally {
      await t.close();
    }
  });

  test('logs$ gives recent lines per API, then live lines when following; spawns$ hands over each child with its IPC channel', async () => {
    const t = await startTestOrchestrator();
    try {
      const spawned = firstValueFrom(t.orch.spawns$());
      const spec = apiSpecFixture({ name: 'talk', predictor: { env: { FAKE_SAMPLE_INTERVAL_MS: '50' } } });
      await t.orch.apply({ spec, revision: 'logs000000', replicas: 1 });
      const s = await spawned;
      assert.equal(s.api, 'talk');
      assert.equal(s.replica, 'talk-logs0000-0');
      const sample = await new Promise<unknown>((resolve) => {
        const onMessage = (m: unknown): void => {
          if ((m as { type?: string }).type === 'myelin.metrics') {
            s.child.off('message', onMessage);
            resolve((m as { sample: unknown }).sample);
          }
        };
        s.child.on('message', onMessage);
      });
      assert.equal((sample as { replica: string }).replica, 'talk-logs0000-0');

      const r = await waitFor('ready', () => ofApi(latest(t), 'talk', 'ready')[0]);
      const recent = await firstValueFrom(t.orch.logs$('talk', { follow: false }).pipe(toArray()));
      assert.ok(recent.includes(`[${r.id}] fake replica ${r.id} starting (pid ${r.pid})`), recent.join('\n'));
      assert.ok(recent.includes(`[${r.id}] fake replica ${r.id} stderr line`), recent.join('\n'));
      const tail = await firstValueFrom(t.orch.logs$('talk', { follow: false, tail: 1 }).pipe(toArray()));
      assert.deepEqual(tail, recent.slice(-1));

      const live: string[] = [];
      const sub = t.orch.logs$('talk', { follow: true, tail: 0 }).subscribe({ next: (l) => live.push(l), complete: () => live.push('<complete>') });
      await t.orch.scale('talk', 0);
      await waitFor('drain line', () => live.some((l) => l.includes('SIGTERM, draining')));
      await t.orch.remove('talk');
      await waitFor('follow completes on remove', () => live.includes('<complete>'));
      sub.unsubscribe();
      assert.equal(t.orch.status('talk'), undefined);
    } finally {
      await t.close();
    }
  });

  test('a replica that ignores SIGTERM is killed after the grace period; close() leaves no child behind', async () => {
    const t = await startTestOrchestrator({ config: { stopGracePeriodMs: 300 } });
    const spec = apiSpecFixture({ name: 'stubborn', predictor: { env: { FAKE_IGNORE_SIGTERM: '1' } } });
    await t.orch.apply({ spec, revision: 'stubborn00', replicas: 2 });
    await waitFor('2 ready', () => ofApi(latest(t), 'stubborn', 'ready').length === 2);
    const pids = ofApi(latest(t), 'stubborn').map((r) => r.pid!);
    await t.close();
    for (const pid of pids) assert.equal(pidAlive(pid), false, `pid ${pid} survived close()`);
    const logs = await firstValueFrom(t.orch.logs$('stubborn', { follow: false }).pipe(toArray()));
    assert.deepEqual(logs, [], 'the API is forgotten after close()');
    await assert.rejects(t.orch.apply({ spec, revision: 'stubborn00', replicas: 1 }), /closed/);
  });
});
