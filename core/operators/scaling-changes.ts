import { filter, type MonoTypeOperatorFunction } from 'rxjs';
import { isScalingChange, type ScalingTick } from '../scaling/scaling-tick.js';

/**
 * Scaling ticks → only those that change the replica count (`decisions$`). Stateless: a tick counts as
 * a change when its decision's desired differs from the current count it decided from. Completes and
 * errors with the source.
 */
export function scalingChanges(): MonoTypeOperatorFunction<ScalingTick> {
  return filter(isScalingChange);
}
