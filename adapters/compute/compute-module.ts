import { ContainerModule } from 'inversify';
import { ComputePlacement } from '../../core/ports/compute-placement.js';
import { Logger } from '../../core/ports/logger.js';
import { MachineComputePlacement, type ComputeCapacityConfig as ComputeCapacityConfigShape } from './machine-compute-placement.js';

/** Token for `ComputeCapacityConfig` (optional: without it the capacity is detected). */
export const ComputeCapacityConfig = Symbol('ComputeCapacityConfig');
export type ComputeCapacityConfig = ComputeCapacityConfigShape;

/**
 * Compute accounting of this machine (SG 1.1): binds `ComputePlacement` to a singleton
 * `MachineComputePlacement` reading the optional `ComputeCapacityConfig`. Whoever places replicas
 * (the local orchestrator) calls `start()` before the first `reserve`.
 */
export const computeModule = new ContainerModule(({ bind }) => {
  bind(ComputePlacement)
    .toDynamicValue((ctx) => {
      const config = ctx.get<ComputeCapacityConfig>(ComputeCapacityConfig, { optional: true }) ?? {};
      const log = ctx.get<Logger>(Logger).child({ component: 'compute/placement' });
      return new MachineComputePlacement(config, log);
    })
    .inSingletonScope();
});
