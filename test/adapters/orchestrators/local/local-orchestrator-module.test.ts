import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Container } from 'inversify';
import { pino } from 'pino';
import { ComputeCapacityConfig, computeModule } from '../../../../adapters/compute/compute-module.js';
import {
  LocalOrchestrator,
  LocalOrchestratorConfig,
  NodeEntryReplicaLauncher,
  ReplicaLauncher,
  localOrchestratorModule,
} from '../../../../adapters/orchestrators/local/local-orchestrator-module.js';
import { Clock } from '../../../../core/clock.js';
import { ComputePlacement } from '../../../../core/ports/compute-placement.js';
import { Logger } from '../../../../core/ports/logger.js';
import { OrchestratorTarget } from '../../../../core/ports/orchestrator-target.js';
import { SystemClock } from '../../../../serving/composition/system-clock.js';
import { apiSpecFixture } from '../../../harness/api-spec-fixture.js';
import { FAKE_REPLICA, TEST_CAPACITY, pidAlive, waitFor } from '../../../harness/local-orchestrator-harness.js';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

test('the compute and local orchestrator modules wire one LocalOrchestrator behind OrchestratorTarget', async () => {
  const container = new Container();
  container.bind(Logger).toConstantValue(pino({ level: 'silent' }));
  container.bind(Clock).toConstantValue(new SystemClock());
  container.bind(ReplicaLauncher).toConstantValue(new NodeEntryReplicaLauncher({ entry: FAKE_REPLICA }));
  container.bind(ComputeCapacityConfig).toConstantValue({ capacity: { ...TEST_CAPACITY, cpuMillis: 300 } });
  container.bind(LocalOrchestratorConfig).toConstantValue({ runDir: await mkdtemp(join(tmpdir(), 'myelin-orch-module-')), probeIntervalMs: 50 });
  await container.load(computeModule, localOrchestratorModule);

  const target = container.get<OrchestratorTarget>(OrchestratorTarget);
  assert.ok(target instanceof LocalOrchestrator);
  assert.equal(target, container.get(LocalOrchestrator), 'one singleton under both tokens');
  assert.equal(target.kind, 'local');
  await target.start();
  assert.equal(container.get<ComputePlacement>(ComputePlacement).capacity().cpuMillis, 300);

  await target.apply({ spec: apiSpecFixture({ name: 'wired' }), revision: 'wired00000', replicas: 2 });
  let list: readonly { state: string; pid?: number; pendingReason?: string }[] = [];
  const sub = target.replicas$().subscribe((l) => (list = l));
  await waitFor('1 ready, 1 pending (300m for two 200m replicas)', () => list.filter((r) => r.state === 'ready').length === 1 && list.some((r) => r.state === 'pending'));
  const pid = list.find((r) => r.state === 'ready')!.pid!;
  await target.close();
  sub.unsubscribe();
  assert.equal(pidAlive(pid), false);
});
