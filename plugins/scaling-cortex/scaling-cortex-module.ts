import { ContainerModule } from 'inversify';
import { ScalingPolicy } from '../../core/ports/scaling-policy.js';
import { CortexScalingPolicy } from './cortex-scaling-policy.js';

/** Contributes the `cortex` scaling policy (the default). */
export const scalingCortexModule = new ContainerModule(({ bind }) => {
  bind(CortexScalingPolicy).toSelf().inSingletonScope();
  bind(ScalingPolicy).toService(CortexScalingPolicy);
});
