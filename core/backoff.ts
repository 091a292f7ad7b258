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

/**
 * Adds random jitter to a backoff delay so that many clients retrying the same server do not retry in
 * step: `delayMs + floor(random · min(maxJitterMs, delayMs/4 + 1))`, i.e. up to a quarter of the delay
 * (plus 1 ms, so a 0 ms delay still spreads), never more than `maxJitterMs` (default 100 ms).
 * `random` is a number in [0, 1), passed in (e.g. `Math.random()`) so the function stays pure.
 * Example: delay 250 ms, random 0.5 ⇒ 250 + floor(0.5 · min(100, 63.5)) = 281 ms; delay 5 s,
 * random 0.5 ⇒ 5000 + floor(0.5 · 100) = 5050 ms.
 */
export function withJitterMs(delayMs: number, random: number, maxJitterMs = 100): number {
  return delayMs + Math.floor(random * Math.min(maxJitterMs, delayMs / 4 + 1));
}
