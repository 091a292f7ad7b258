import { ContainerModule } from 'inversify';
import { ScalingPolicy } from '../../core/ports/scaling-policy.js';
import { BurstScalingPolicy } from './burst-scaling-policy.js';

/** Contributes the `burst` scaling policy (cortex rules + Knative-style panic mode). */
export const scalingBurstModule = new ContainerModule(({ bind }) => {
  bind(BurstScalingPolicy).toSelf().inSingletonScope();
  bind(ScalingPolicy).toService(BurstScalingPolicy);
});
