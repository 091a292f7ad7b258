/**
 * Delay before restarting something that crashed: `baseMs · 2^(crashes − 1)`, capped at `maxMs`
 * (Kubernetes' CrashLoopBackOff shape). `crashes` counts the recent crashes, this one included.
 * Example with base 1 s, cap 30 s: 1 s, 2 s, 4 s, 8 s, 16 s, 30 s, 30 s. Used for replicas (local
 * orchestrator) and Python workers alike.
 */
export function backoffDelayMs(crashes: number, baseMs: number, maxMs: number): number {
  if (crashes <= 0) return 0;
  // 2^30 already exceeds any sensible cap; bounding the exponent keeps the number finite.
  return Math.min(maxMs, baseMs * 2 ** Math.min(crashes - 1, 30));
}
