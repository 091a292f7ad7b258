import { injectable, multiInject } from 'inversify';
import { ScalingPolicy } from '../ports/scaling-policy.js';
import { KindRegistry } from './kind-registry.js';

/** Resolves `autoscaling.policy` to the contributed `ScalingPolicy` (SG 3.2); unknown kinds throw `UnknownKindError`. */
@injectable()
export class ScalingPolicyRegistry extends KindRegistry<ScalingPolicy> {
  constructor(@multiInject(ScalingPolicy) all: readonly ScalingPolicy[]) {
    super('scaling policy', all);
  }
}
