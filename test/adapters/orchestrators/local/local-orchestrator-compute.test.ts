import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { apiSpecFixture } from '../../../harness/api-spec-fixture.js';
import { latest, ofApi, pidAlive, replicaRequest, startTestOrchestrator, waitFor } from '../../../harness/local-orchestrator-harness.js';
import type { ReplicaInfo } from '../../../../core/ports/orchestrator-target.js';

async function cudaOf(r: ReplicaInfo): Promise<string> {
  const got = JSON.parse((await replicaRequest(r.address, 'GET', '/env')).body) as { env: Record<string, string> };
  return got.env.CUDA_VISIBLE_DEVICES;
}

describe('LocalOrchestrator compute accounting (real child processes)', () => {
  test('a replica that does not fit stays pending (compute unavailable) until room is freed', async () => {
    const t = await startTestOrchestrator({ capacity: { cpuMillis: 1000 } });
    try {
      await t.orch.apply({ spec: apiSpecFixture({ name: 'hog', compute: { cpuMillis: 600 } }), revision: 'hog0000000', replicas: 1 });
      await waitFor('hog ready', () => ofApi(latest(t), 'hog', 'ready').length === 1);
      await t.orch.apply({ spec: apiSpecFixture({ name: 'b', compute: { cpuMillis: 400 } }), revision: 'bbbb000000', replicas: 2 });
      await waitFor('one b ready', () => ofApi(latest(t), 'b', 'ready').length === 1);
      const pending = ofApi(latest(t), 'b', 'pending');
      assert.equal(pending.length, 1);
      assert.equal(pending[0].pendingReason, 'compute unavailable: requested 0.4 cpu, 0 free of 1');
      assert.equal(pending[0].pid, undefined);
      const s = t.orch.status('b')!;
      assert.deepEqual(
        { computeUnavailable: s.computeUnavailable, pending: s.pending, upToDate: s.upToDate, message: s.message },
        { computeUnavailable: true, pending: 1, upToDate: 1, message: 'compute unavailable: requested 0.4 cpu, 0 free of 1' },
      );

      await t.orch.remove('hog');
      await waitFor('both b ready', () => ofApi(latest(t), 'b', 'ready').length === 2);
      const after = t.orch.status('b')!;
      assert.equal(after.computeUnavailable, false);
      assert.equal(after.message, undefined);
      // The pending replica was placed, not replaced by another one.
      assert.ok(ofApi(latest(t), 'b').some((r) => r.id === pending[0].id && r.state === 'ready'));
    } finally {
      await t.close();
    }
  });

  test('GPU replicas get distinct CUDA_VISIBLE_DEVICES; a freed GPU goes to the next replica', async () => {
    const t = await startTestOrchestrator({ capacity: { gpuIndexes: [0, 1] } });
    try {
      await t.orch.apply({ spec: apiSpecFixture({ name: 'g', compute: { gpu: 1 } }), revision: 'gpu0000000', replicas: 3 });
      const ready = await waitFor('2 ready', () => ofApi(latest(t), 'g', 'ready').length === 2 && ofApi(latest(t), 'g', 'ready'));
      const devices = await Promise.all(ready.map(cudaOf));
      assert.deepEqual([...devices].sort(), ['0', '1']);
      const pending = ofApi(latest(t), 'g', 'pending');
      assert.equal(pending.length, 1);
      assert.equal(pending[0].pendingReason, 'compute unavailable: requested 1 gpu, 0 free of 2');
      assert.equal(t.orch.status('g')?.computeUnavailable, true);

      await t.orch.scale('g', 2);
      await waitFor('pending replica dropped', () => ofApi(latest(t), 'g', 'pending').length === 0);
      assert.equal(t.orch.status('g')?.computeUnavailable, false);

      // The replica holding GPU 0 dies; its replacement gets GPU 0 again.
      const onGpu0 = ready[devices.indexOf('0')];
      process.kill(onGpu0.pid!, 'SIGKILL');
      const replacement = await waitFor('replacement ready', () =>
        ofApi(latest(t), 'g', 'ready').find((r) => r.id !== ready[0].id && r.id !== ready[1].id),
      );
      assert.equal(await cudaOf(replacement), '0');

      // A CPU-only API on the same machine sees no GPU.
      await t.orch.apply({ spec: apiSpecFixture({ name: 'cpu' }), revision: 'cpu0000000', replicas: 1 });
      const cpu = await waitFor('cpu ready', () => ofApi(latest(t), 'cpu', 'ready')[0]);
      assert.equal(await cudaOf(cpu), '');
    } finally {
      await t.close();
    }
  });

  test('one GPU: max_surge 0 rolls over by stopping the old replica first; max_surge 1 stays pending', async () => {
    const t = await startTestOrchestrator({ capacity: { gpuIndexes: [0] } });
    try {
      const v1 = apiSpecFixture({ name: 'one', compute: { gpu: 1 }, updateStrategy: { maxSurge: { kind: 'absolute', value: 1 }, maxUnavailable: { kind: 'absolute', value: 0 } } });
      await t.orch.apply({ spec: v1, revision: 'one1111111', replicas: 1 });
      const old = await waitFor('v1 ready', () => ofApi(latest(t), 'one', 'ready')[0]);

      // Surge 1: the new replica cannot be placed, the old one keeps serving.
      const v2 = apiSpecFixture({ ...v1, predictor: { env: { USER_V: '2' } } });
      await t.orch.apply({ spec: v2, revision: 'one2222222', replicas: 1 });
      const stuck = await waitFor('v2 pending', () => t.orch.status('one')?.computeUnavailable && t.orch.status('one'));
      assert.equal(stuck.stale, 1);
      assert.equal(stuck.upToDate, 0);
      assert.equal(ofApi(latest(t), 'one', 'ready')[0]?.id, old.id);

      // Surge 0: the old replica stops first, then the new one gets the GPU.
      const v3 = apiSpecFixture({ ...v2, predictor: { env: { USER_V: '3' } }, updateStrategy: { maxSurge: { kind: 'absolute', value: 0 }, maxUnavailable: { kind: 'absolute', value: 1 } } });
      await t.orch.apply({ spec: v3, revision: 'one3333333', replicas: 1 });
      const next = await waitFor('v3 ready', () => ofApi(latest(t), 'one', 'ready').find((r) => r.revision === 'one3333333'));
      assert.equal(await cudaOf(next), '0');
      await waitFor('only v3 left', () => ofApi(latest(t), 'one').length === 1);
      assert.equal(pidAlive(old.pid!), false);
      const s = t.orch.status('one')!;
      assert.deepEqual([s.upToDate, s.stale, s.computeUnavailable], [1, 0, false]);
    } finally {
      await t.close();
    }
  });
});
