/**
 * The OrchestratorTarget contract (test/contracts/orchestrator-target.contract.ts) for the
 * `kubernetes` target, against the in-process fake API server on 127.0.0.1 (SG 9.4). The fake has no
 * kubelet: pods become Running and Ready at once (`autoReady`), a crash is a container put in
 * CrashLoopBackOff, and the kubelet's restart of it is `markPodReady`.
 *
 * The contract's close() ("stops every replica this target started") holds with `removeOnClose`;
 * by default the workloads outlive close() (the last test here states that).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pino } from 'pino';
import { KubernetesOrchestrator, type KubernetesOrchestratorOptions } from '../../../../adapters/orchestrators/kubernetes/kubernetes-orchestrator-module.js';
import { apiSpecFixture } from '../../../harness/api-spec-fixture.js';
import { FakeKubeApi } from '../../../harness/fake-kube-api.js';
import { describeOrchestratorTargetContract, type OrchestratorTargetFixture } from '../../../contracts/orchestrator-target.contract.js';

const log = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });

async function kubernetesFixture(options: KubernetesOrchestratorOptions = {}): Promise<OrchestratorTargetFixture & { readonly fake: FakeKubeApi }> {
  const fake = await FakeKubeApi.start({ autoReady: true });
  const target = new KubernetesOrchestrator(log, { server: fake.url, image: 'myelin/replica:test', watchRetryMs: 20, ...options });
  await target.start();
  const selector = (api?: string): string => (api === undefined ? 'app.kubernetes.io/managed-by=myelin' : `myelin.dev/api=${api}`);
  const running = async (api?: string): Promise<string[]> => fake.list('pods', selector(api)).map((p) => `pod ${p.metadata.name}`);
  return {
    fake,
    target,
    running,
    async leftovers(api) {
      return [
        ...fake.list('deployments', selector(api)).map((d) => `deployment ${d.metadata.name}`),
        ...fake.list('services', selector(api)).map((s) => `service ${s.metadata.name}`),
        ...(await running(api)),
      ];
    },
    async crash(replica) {
      fake.markPodCrashLoop(replica.id, { exitCode: 3 });
      // The crashed entry carries the container's last termination, as status().message does.
      return {
        exitCode: 3,
        signal: null,
        crashReason: `CrashLoopBackOff: back-off 10s restarting failed container=replica pod=${replica.id} (Error, exit code 3, 1 restarts)`,
      };
    },
    async restartCrashed(replica) {
      fake.markPodReady(replica.id);
    },
    async [Symbol.asyncDispose]() {
      await target.close();
      await fake.close();
    },
  };
}

describeOrchestratorTargetContract('kubernetes (fake API server, removeOnClose)', () => kubernetesFixture({ removeOnClose: true }));

test('kubernetes by default: close() leaves the Deployments, Services and pods running (a cluster outlives the daemon)', async () => {
  await using f = await kubernetesFixture();
  await f.target.apply({ spec: apiSpecFixture({ name: 'iris' }), revision: 'aaaa1111aa', replicas: 2 });
  assert.equal((await f.running('iris')).length, 2);
  await f.target.close();
  assert.deepEqual((await f.leftovers('iris')).map((l) => l.split(' ')[0]).sort(), ['deployment', 'pod', 'pod', 'service']);
});
