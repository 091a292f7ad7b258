import type { ComputeSpec } from '../../core/config/api-spec.js';
import type { ComputeRequest } from '../../core/ports/compute-placement.js';

/** The reservation one replica of `compute` makes (memory not requested → 0 bytes). */
export function computeRequestOf(compute: ComputeSpec): ComputeRequest {
  return { cpuMillis: compute.cpuMillis, memBytes: compute.memBytes ?? 0, gpu: compute.gpu, inf: compute.inf };
}

/** Millicores as cores for messages, at most two decimals: 200 → `0.2`, 1800 → `1.8`, 2000 → `2`. */
export function formatCores(millis: number): string {
  return String(Math.round(millis / 10) / 100);
}

/**
 * Bytes for messages with a binary suffix and at most one decimal: 536870912 → `512Mi`,
 * 1610612736 → `1.5Gi`, 1000 → `1000`.
 */
export function formatBytes(bytes: number): string {
  const units: readonly [string, number][] = [
    ['Ti', 2 ** 40],
    ['Gi', 2 ** 30],
    ['Mi', 2 ** 20],
    ['Ki', 2 ** 10],
  ];
  for (const [suffix, size] of units) {
    if (bytes >= size) return `${Math.round((bytes / size) * 10) / 10}${suffix}`;
  }
  return String(bytes);
}
