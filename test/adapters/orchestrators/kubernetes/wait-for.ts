import { setTimeout as delay } from 'node:timers/promises';

/**
 * Polls `check` every 10 ms until it returns a value other than `undefined`/`false`, and returns
 * that value; fails with `what` after `timeoutMs` (a deadline, not a timing assertion: SG 9.2).
 */
export async function waitFor<T>(what: string, check: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await delay(10);
  }
}
