import { ContainerModule } from 'inversify';
import { ScalingPolicy } from '../../core/ports/scaling-policy.js';
import { CpuScalingPolicy } from './cpu-scaling-policy.js';

/** Contributes the `cpu` scaling policy (legacy `target_cpu_utilization`). */
export const scalingCpuModule = new ContainerModule(({ bind }) => {
  bind(CpuScalingPolicy).toSelf().inSingletonScope();
  bind(ScalingPolicy).toService(CpuScalingPolicy);
});
