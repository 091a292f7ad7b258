import { ContainerModule } from 'inversify';
import { Clock } from '../../../core/clock.js';
import { ComputePlacement } from '../../../core/ports/compute-placement.js';
import { Logger } from '../../../core/ports/logger.js';
import { OrchestratorTarget } from '../../../core/ports/orchestrator-target.js';
import { ReplicaSpawnSource } from '../../../core/ports/replica-spawn-source.js';
import { LocalOrchestrator, type LocalOrchestratorConfig as LocalOrchestratorConfigShape } from './local-orchestrator.js';
import { ReplicaLauncher } from './replica-launcher.js';

/** Token for `LocalOrchestratorConfig` (optional: every field has a default). */
export const LocalOrchestratorConfig = Symbol('LocalOrchestratorConfig');
export type LocalOrchestratorConfig = LocalOrchestratorConfigShape;

/**
 * The `local` orchestrator target (SG 1.1): binds `LocalOrchestrator` as a singleton, and
 * `OrchestratorTarget` and `ReplicaSpawnSource` (its replica processes, for the daemon's IPC wiring) to it. Needs `ReplicaLauncher` (which process runs a replica — the daemon binds
 * the replica entry), `ComputePlacement` (adapters/compute's `computeModule`), `Clock` and `Logger`;
 * reads the optional `LocalOrchestratorConfig`.
 */
export const localOrchestratorModule = new ContainerModule(({ bind }) => {
  bind(LocalOrchestrator)
    .toDynamicValue(
      (ctx) =>
        new LocalOrchestrator(
          ctx.get<LocalOrchestratorConfig>(LocalOrchestratorConfig, { optional: true }) ?? {},
          ctx.get<ReplicaLauncher>(ReplicaLauncher),
          ctx.get<ComputePlacement>(ComputePlacement),
          ctx.get<Clock>(Clock),
          ctx.get<Logger>(Logger),
        ),
    )
    .inSingletonScope();
  bind(OrchestratorTarget).toService(LocalOrchestrator);
  bind(ReplicaSpawnSource).toService(LocalOrchestrator);
});

export { LocalOrchestrator, type SpawnedReplica } from './local-orchestrator.js';
export {
  ReplicaLauncher,
  NodeEntryReplicaLauncher,
  REPLICA_ENV,
  REPLICA_LISTENING,
  REPLICA_METRICS,
  listeningAddressOf,
  metricSampleOf,
  type ReplicaLaunch,
  type ReplicaLaunchContext,
} from './replica-launcher.js';
