/**
 * Formats a duration in ms the way autoscaling fields are written: `5m`, `60s`, `1500ms`, `1h`.
 * Used in decision reasons, so "held by upscale stabilization (lowest rec 4 in last 60s)" reads like the config.
 */
export function formatDuration(ms: number): string {
  if (ms >= 3_600_000 && ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms >= 120_000 && ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}

/** A number for a person: at most 3 decimals, no trailing zeros (`9.3`, `0.95`, `2.667`). */
export function formatNumber(x: number): string {
  return String(Number(x.toFixed(3)));
}
