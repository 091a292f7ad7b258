import { ContainerModule } from 'inversify';
import { OrchestratorTarget } from '../../../core/ports/orchestrator-target.js';
import { KubernetesOrchestrator } from './kubernetes-orchestrator.js';

export { KubernetesOrchestrator } from './kubernetes-orchestrator.js';
export {
  DEFAULT_REPLICA_COMMAND,
  DEFAULT_REPLICA_IMAGE,
  KubernetesOrchestratorOptions,
} from './kubernetes-orchestrator-options.js';

/**
 * The `kubernetes` orchestrator target (`myelin up --target kubernetes`): binds `OrchestratorTarget`
 * to `KubernetesOrchestrator`. Its options are optional: bind `KubernetesOrchestratorOptions` to a
 * constant in the composition root to set the namespace, kubeconfig or server URL, image, etc.
 * Needs `Logger` bound (the composition root does).
 */
export const kubernetesOrchestratorModule = new ContainerModule(({ bind }) => {
  bind(KubernetesOrchestrator).toSelf().inSingletonScope();
  bind(OrchestratorTarget).toService(KubernetesOrchestrator);
});
