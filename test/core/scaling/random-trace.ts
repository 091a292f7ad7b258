import type { AutoscalingSpec } from '../../../core/config/api-spec.js';
import { autoscalingSpec } from '../../harness/autoscaling-spec-fixture.js';

/** Seeded PRNG (mulberry32): the same seed gives the same trace, so a failure names its seed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A random but plausible autoscaling spec: periods that are and are not multiples of the tick. */
export function randomSpec(rnd: () => number): AutoscalingSpec {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)];
  const minReplicas = pick([1, 1, 1, 2, 3]);
  return autoscalingSpec({
    minReplicas,
    maxReplicas: minReplicas + pick([1, 4, 10, 40, 99]),
    targetReplicaConcurrency: pick([1, 1, 2, 4, 1.6, 0.5, 10]),
    downscaleStabilizationPeriodMs: pick([0, 30_000, 45_000, 60_000, 300_000]),
    upscaleStabilizationPeriodMs: pick([0, 10_000, 25_000, 60_000]),
    maxDownscaleFactor: pick([0.5, 0.75, 0.9, 0.2]),
    maxUpscaleFactor: pick([1.1, 1.5, 2, 3]),
    downscaleTolerance: pick([0, 0.05, 0.1, 0.3]),
    upscaleTolerance: pick([0, 0.05, 0.1, 0.3]),
  });
}

/** Average in-flight per tick: a random walk with jumps, and `null` (no data) now and then. */
export function randomAverages(rnd: () => number, ticks: number, scale: number): (number | null)[] {
  const out: (number | null)[] = [];
  let level = rnd() * scale;
  for (let i = 0; i < ticks; i++) {
    const r = rnd();
    if (r < 0.05) level = rnd() * scale * 3;
    else if (r < 0.1) level = 0;
    else level = Math.max(0, level + (rnd() - 0.5) * scale * 0.3);
    // Round like the pipeline does (micro-requests), and now and then an exact integer.
    const v = rnd() < 0.2 ? Math.round(level) : Math.round(level * 1e6) / 1e6;
    out.push(rnd() < 0.04 ? null : v);
  }
  return out;
}
