import type { AutoscalingSpec } from '../../core/config/api-spec.js';

/** An AutoscalingSpec with Cortex's defaults (reference/cortex.md §2.3), overridable per test. */
export function autoscalingSpec(overrides: Partial<AutoscalingSpec> = {}): AutoscalingSpec {
  return {
    policy: 'cortex',
    minReplicas: 1,
    maxReplicas: 100,
    initReplicas: 1,
    targetReplicaConcurrency: 1,
    maxReplicaConcurrency: 1024,
    windowMs: 60_000,
    downscaleStabilizationPeriodMs: 300_000,
    upscaleStabilizationPeriodMs: 60_000,
    maxDownscaleFactor: 0.75,
    maxUpscaleFactor: 1.5,
    downscaleTolerance: 0.05,
    upscaleTolerance: 0.05,
    tickMs: 10_000,
    panicWindowMs: 6_000,
    panicThreshold: 2,
    ...overrides,
  };
}
