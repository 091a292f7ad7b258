// The ReplicaSpawnSource port the daemon wires replica IPC channels from: the local orchestrator
// module binds it to its one LocalOrchestrator, the kubernetes one binds nothing (no local processes).
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Container } from 'inversify';
import { pino } from 'pino';
import { Subject } from 'rxjs';
import { computeModule } from '../../../adapters/compute/compute-module.js';
import { kubernetesOrchestratorModule } from '../../../adapters/orchestrators/kubernetes/kubernetes-orchestrator-module.js';
import { LocalOrchestrator, LocalOrchestratorConfig, NodeEntryReplicaLauncher, ReplicaLauncher, localOrchestratorModule, type SpawnedReplica } from '../../../adapters/orchestrators/local/local-orchestrator-module.js';
import { Clock } from '../../../core/clock.js';
import { Logger } from '../../../core/ports/logger.js';
import { OrchestratorTarget } from '../../../core/ports/orchestrator-target.js';
import { ReplicaSpawnSource, type ReplicaSpawn } from '../../../core/ports/replica-spawn-source.js';
import { SystemClock } from '../../../serving/composition/system-clock.js';
import { FAKE_REPLICA } from '../../harness/local-orchestrator-harness.js';

// Compile-time: the concrete class and its spawn type satisfy the port as they are (tsc checks these).
const _structural: (o: LocalOrchestrator) => ReplicaSpawnSource = (o) => o;
const _spawn: (s: SpawnedReplica) => ReplicaSpawn = (s) => s;
void _structural;
void _spawn;

test('localOrchestratorModule binds ReplicaSpawnSource to the LocalOrchestrator singleton', async () => {
  const runDir = await mkdtemp(join(tmpdir(), 'myelin-spawn-source-'));
  try {
    const container = new Container();
    container.bind(Logger).toConstantValue(pino({ level: 'silent' }));
    container.bind(Clock).toConstantValue(new SystemClock());
    container.bind(ReplicaLauncher).toConstantValue(new NodeEntryReplicaLauncher({ entry: FAKE_REPLICA }));
    container.bind(LocalOrchestratorConfig).toConstantValue({ runDir });
    await container.load(computeModule, localOrchestratorModule);
    assert.equal(container.isBound(ReplicaSpawnSource), true);
    const source = container.get<ReplicaSpawnSource>(ReplicaSpawnSource);
    assert.equal(source, container.get(LocalOrchestrator), 'the same singleton');
    assert.equal(source, container.get<OrchestratorTarget>(OrchestratorTarget), 'the same singleton as the target');
  } finally {
    await rm(runDir, { recursive: true, force: true });
  }
});

test('kubernetesOrchestratorModule binds no ReplicaSpawnSource', async () => {
  const container = new Container();
  await container.load(kubernetesOrchestratorModule);
  assert.equal(container.isBound(OrchestratorTarget), true);
  assert.equal(container.isBound(ReplicaSpawnSource), false);
});

test('a structural child (an EventEmitter) is a ReplicaSpawn: core needs no ChildProcess', () => {
  const spawns = new Subject<ReplicaSpawn>();
  const source: ReplicaSpawnSource = { spawns$: () => spawns.asObservable() };
  const got: string[] = [];
  const sub = source.spawns$().subscribe((s) => {
    s.child.on('message', (m) => got.push(`${s.replica}: ${String(m)}`));
    s.child.once('exit', () => got.push(`${s.replica}: exit`));
  });
  const child = new EventEmitter();
  spawns.next({ api: 'iris', replica: 'iris-0', revision: 'r1', child });
  child.emit('message', 'hello');
  child.emit('exit', 0, null);
  child.emit('exit', 0, null);
  sub.unsubscribe();
  assert.deepEqual(got, ['iris-0: hello', 'iris-0: exit']);
});
